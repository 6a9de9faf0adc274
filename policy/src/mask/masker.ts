/**
 * Compiles MaskingPolicy rules into a Masker for SQL result values and free text (SSH output).
 *
 * A rule's `match` fields must all hold: `columns` alone masks whole values of matching
 * columns; `columns` with `detectors`/`pattern` masks the spans found in those columns' values;
 * `detectors`/`pattern` alone mask spans in every value and in free text. Overlapping spans
 * merge, and the union takes the strongest action (null > redact > hash > partial).
 *
 * Column globs are over `schema.table.column`: exactly three dot-separated parts, `*` matches
 * within one part, `?` one character; matched without RegExp, and remembered per column.
 * User patterns are RE2 (linear time); the simplest ones (a literal, classes, bounded counts:
 * `EMP-[0-9]{6}`) run on an equivalent JavaScript matcher that spares the native call (see
 * simple-pattern.ts). In free text they match within one line (`^`/`$` are line anchors; a
 * match never spans a newline), which makes streamed output identical to masking the whole
 * text at once. The `hash` action is HMAC-SHA256 through the native addon (@airlock/native,
 * OpenSSL) or, without it, in JavaScript (hmac.ts), with the hashes of short spans remembered.
 */
import RE2 from 're2';
import { DETECTORS, MASK_ACTIONS, type Detector, type MaskAction } from '@airlock/api';
import { PolicyError } from '../errors.ts';
import { ALL_FEATURES, NOT_ASCII, bytesFeatures, compileDetector, detectorMayMatch, literalFeatures, runDetector, spanBuffer, textFeatures, type CompiledDetector } from './detectors.ts';
import { nativeHmac } from '@airlock/native';
import { hmacSha256 } from './hmac.ts';
import { compileSimplePattern, type SimplePattern } from './simple-pattern.ts';
import { createStreamMasker, textGate, type StreamMasker, type StreamOptions } from './stream.ts';

export interface MaskRuleSpec {
  readonly name: string;
  readonly match: { readonly columns?: readonly string[]; readonly detectors?: readonly Detector[]; readonly pattern?: string };
  readonly action: { readonly type: MaskAction; readonly keepFirst?: number; readonly keepLast?: number };
}

export interface MaskResult {
  readonly value: string | null;
  readonly masked: number;
  readonly rules: readonly string[];
}

export interface Masker {
  /** masks one SQL result value of a column (`schema.table.column`, or undefined when unknown) */
  maskValue(column: string | undefined, value: string): MaskResult;
  /** the masking of one column, resolved once (for a result's columns) */
  forColumn(column: string | undefined): ColumnMasker;
  /** masks free text (SSH output): column rules do not apply; `null` action renders as the redact marker */
  maskText(text: string): { readonly text: string; readonly masked: number };
  /** a streaming text masker: any split of a text into chunks gives maskText's output */
  stream(options?: StreamOptions): StreamMasker;
  /**
   * The masking of a result column computed from table columns (see sql/lineage.ts): the rules
   * of `column` and of each `passthrough` column apply as they apply to that column's values;
   * every column rule matching a `derived` column (`schema.table.*`: any column of the table)
   * applies its action to the whole value; `all`: every column rule does (lineage unknown).
   */
  forLineage(lineage: LineageSpec): ColumnMasker;
  /** the strictest action of the column rules matching these columns (`all`: of every column rule), or undefined */
  strictestFor(columns: readonly string[], all: boolean): MaskAction | undefined;
}

/** What a result column's value may be derived from (Masker.forLineage). */
export interface LineageSpec {
  readonly column?: string | undefined;
  readonly passthrough?: readonly string[];
  readonly derived?: readonly string[];
  readonly all?: boolean;
}

/** The masking of one column (Masker.forColumn). */
export interface ColumnMasker {
  /** false when no rule can ever touch values of this column */
  readonly canMatch: boolean;
  /**
   * A quick look at a value's UTF-8 bytes before it is decoded: false only when maskValue would
   * certainly leave the value unchanged (no whole-value rule, and the bytes rule out every
   * detector and pattern: too short, missing characters or the literal a pattern needs); true
   * when it might mask something (or the value is not ASCII, or long).
   */
  mayMaskBytes(bytes: Uint8Array, start: number, end: number): boolean;
  /** Masker.maskValue of this column */
  maskValue(value: string): MaskResult;
  /**
   * mayMaskBytes and maskValue in one pass over a value's UTF-8 bytes: undefined when the bytes
   * rule every rule out (maskValue would leave the value unchanged), else maskValue of
   * `decode(bytes, start, end)` (the bytes' text), with what the look at the bytes learnt reused.
   */
  maskUtf8<B extends Uint8Array>(bytes: B, start: number, end: number, decode: (bytes: B, start: number, end: number) => string): MaskResult | undefined;
  /**
   * This column's masking for values of a known class only (a column's type: an int4 column's
   * values are an optional '-' and up to 10 digits): the detectors and patterns that cannot match
   * any value of the class are left out (canMatch is false when nothing is left). Gives the same
   * result as this masker for every value of the class; decided once per column, not per value.
   */
  narrow(values: ValueClass): ColumnMasker;
}

/**
 * What every value of a column holds at most (see ColumnMasker.narrow): only characters of
 * `chars`, at most `maxLength` UTF-16 units, at most `maxDigits` ASCII digits.
 */
export interface ValueClass {
  readonly chars: string;
  readonly maxLength: number;
  readonly maxDigits: number;
}

/** What `redact` (and `null` in free text) puts in place of a span. */
export const REDACTED = '[REDACTED]';

const RANK: Readonly<Record<MaskAction, number>> = { partial: 0, hash: 1, redact: 2, null: 3 };
const NO_RULES: readonly string[] = Object.freeze([]);
const PLAN_CACHE_LIMIT = 4096;
/** Slots of the hash cache (a power of two), and the longest span it keeps. */
const HASH_SLOTS = 4096;
const HASH_KEY_MAX_LENGTH = 256;

interface Rule {
  readonly index: number;
  readonly name: string;
  /** [name], for results masked by this rule alone */
  readonly names: readonly string[];
  readonly type: MaskAction;
  readonly rank: number;
  readonly keepFirst: number;
  readonly keepLast: number;
  /** null: every column (and free text) */
  readonly globs: readonly ColumnGlob[] | null;
  readonly detectors: readonly Detector[];
  readonly valuePattern: RE2 | null;
  /** the pattern with `m`, for free text; null for column rules */
  readonly textPattern: RE2 | null;
  /** the pattern has \A, \z or turns `m` off: free text is matched line by line */
  readonly textPerLine: boolean;
  /** a literal every match contains (a prefilter that spares the native call), or null */
  readonly required: string | null;
  /** the pattern's matches found in JavaScript, when it is simple enough (see simple-pattern.ts) */
  readonly simple: SimplePattern | null;
}

/** The span finders that apply to a value or to free text, each detector once. */
interface Finders {
  readonly detectors: readonly { readonly detector: CompiledDetector; readonly rules: readonly Rule[] }[];
  readonly patterns: readonly Rule[];
}

interface Plan {
  /** column-only rules: the whole value */
  readonly whole: readonly Rule[];
  readonly finders: Finders;
  /** what mayMaskBytes checks, flattened (see gateOf) */
  readonly gate: Gate;
}

/**
 * A plan's look at bytes: always true (a whole-value rule, or a pattern without a literal), or
 * the literals of its patterns and, per detector, what a text needs (from detectors.ts).
 */
interface Gate {
  readonly always: boolean;
  readonly literals: readonly string[];
  /** per literal: the features a value that contains it has (see literalFeatures) */
  readonly literalNeeds: Int32Array;
  /** per detector: all, any, digits, length */
  readonly needs: Int32Array;
}

function gateOf(whole: readonly Rule[], f: Finders): Gate {
  const literals: string[] = [];
  let always = whole.length > 0;
  for (const rule of f.patterns) {
    // a literal every match contains (or starts with) rules the value out when absent
    const literal = rule.required ?? (rule.simple !== null && rule.simple.prefix.length > 0 ? rule.simple.prefix : null);
    if (literal === null) always = true;
    else literals.push(literal);
  }
  const needs = new Int32Array(f.detectors.length * 4);
  f.detectors.forEach(({ detector: d }, i) => {
    needs.set([d.all, d.any, d.digits, d.length], i * 4);
  });
  return { always, literals, literalNeeds: Int32Array.from(literals, literalFeatures), needs };
}

function planOf(whole: readonly Rule[], f: Finders): Plan {
  return { whole, finders: f, gate: gateOf(whole, f) };
}

/**
 * The plan for values of a class: the detectors whose needs (detectors.ts) the class cannot meet,
 * and the patterns whose required literal (every match contains it) it cannot hold, are left out.
 * Whole-value rules and patterns without a literal stay. Sound: what is left out finds no span
 * in any value of the class, so the narrowed plan masks each such value exactly as the plan does.
 */
function narrowPlanFinders(f: Finders, values: ValueClass): Finders {
  const flags = literalFeatures(values.chars) & 0xffff;
  const chars = new Set(values.chars);
  const detectors = f.detectors.filter(({ detector: d }) => detectorMayMatch(d, values.maxLength, flags | (Math.min(values.maxDigits, 255) << 16)));
  const patterns = f.patterns.filter((rule) => {
    const literal = rule.required ?? (rule.simple !== null && rule.simple.prefix.length > 0 ? rule.simple.prefix : null);
    if (literal === null) return true;
    let digits = 0;
    for (const c of literal) {
      if (!chars.has(c)) return false;
      if (c >= '0' && c <= '9') digits++;
    }
    return literal.length <= values.maxLength && digits <= values.maxDigits;
  });
  return detectors.length === f.detectors.length && patterns.length === f.patterns.length ? f : { detectors, patterns };
}

/** A span one rule found. Pooled: masking is synchronous and never re-entered. */
interface Hit {
  start: number;
  end: number;
  rule: Rule;
}

const pairs = spanBuffer();
const hits: Hit[] = [];
let hitCount = 0;

function addHit(start: number, end: number, rule: Rule): void {
  const h = hits[hitCount++];
  if (h === undefined) {
    hits.push({ start, end, rule });
  } else {
    h.start = start;
    h.end = end;
    h.rule = rule;
  }
}

/** After a text with very many spans, lets the pooled scratch (and the rules it points to) go. */
function releaseScratch(): void {
  if (hits.length > 1024) hits.length = 1024;
  if (pairs.pairs.length > 4096) pairs.pairs.length = 4096;
}

/** Characters after which the streaming masker prefers to cut a long line. */
const BOUNDARY = /[\s"'<>,;(){}[\]]/;

const byPosition = (a: Hit, b: Hit): number => a.start - b.start || b.end - a.end;

/** Sorts hits[0, hitCount) by start (longest first). Never reads outside the array (slow in V8). */
function sortHits(): void {
  if (hitCount > 16) {
    const sorted = hits.slice(0, hitCount).sort(byPosition);
    sorted.forEach((h, i) => (hits[i] = h));
    return;
  }
  for (let i = 1; i < hitCount; i++) {
    const h = hits[i];
    if (h === undefined) break;
    let j = i - 1;
    for (; j >= 0; j--) {
      const prev = hits[j];
      if (prev === undefined || byPosition(prev, h) <= 0) break;
      hits[j + 1] = prev;
    }
    hits[j + 1] = h;
  }
}

// ---------------------------------------------------------------------------------------------
// Column globs

/** One dot-separated part: literal runs (with `?`) between stars, as code points. */
type PartGlob = readonly (readonly string[])[];
type ColumnGlob = readonly PartGlob[];

function compileColumnGlob(rule: string, glob: string): ColumnGlob {
  const fail = (why: string): never => {
    throw new PolicyError('InvalidGlob', `rule "${rule}": invalid column glob ${JSON.stringify(glob)}: ${why}`);
  };
  const parts = glob.split('.');
  if (parts.length !== 3) fail('want three dot-separated parts, schema.table.column');
  if (parts.some((p) => p === '')) fail('empty name part');
  if (/[\\[\]]/.test(glob)) fail('only * and ? are wildcards; \\, [ and ] are reserved');
  return parts.map((p) => p.split('*').map((lit) => Array.from(lit)));
}

function literalAt(lit: readonly string[], text: readonly string[], at: number): boolean {
  for (let j = 0; j < lit.length; j++) if (lit[j] !== '?' && lit[j] !== text[at + j]) return false;
  return true;
}

/**
 * Matches one part: the first literal at the start, the last at the end, the ones between at
 * their leftmost place in order (greedy leftmost is exact for `*` globs). O(part × glob).
 */
function partMatches(glob: PartGlob, text: readonly string[]): boolean {
  const first = glob[0] ?? [];
  const last = glob[glob.length - 1] ?? [];
  if (glob.length === 1) return first.length === text.length && literalAt(first, text, 0);
  const limit = text.length - last.length;
  if (first.length > limit || !literalAt(first, text, 0) || !literalAt(last, text, limit)) return false;
  let pos = first.length;
  for (let k = 1; k < glob.length - 1; k++) {
    const lit = glob[k] ?? [];
    while (pos + lit.length <= limit && !literalAt(lit, text, pos)) pos++;
    if (pos + lit.length > limit) return false;
    pos += lit.length;
  }
  return true;
}

function columnMatches(globs: readonly ColumnGlob[], column: readonly (readonly string[])[]): boolean {
  return globs.some((g) => g.length === column.length && g.every((part, i) => partMatches(part, column[i] ?? [])));
}

/** A source column of a lineage: `schema.table.column`, or `schema.table.*` for any column of the table. */
function sourceMatches(globs: readonly ColumnGlob[], source: string): boolean {
  const parts = source.split('.').map((p) => Array.from(p));
  const last = parts[parts.length - 1];
  if (parts.length === 3 && last?.length === 1 && last[0] === '*') {
    return globs.some((g) => g.length === 3 && g.slice(0, 2).every((part, i) => partMatches(part, parts[i] ?? [])));
  }
  return columnMatches(globs, parts);
}

// ---------------------------------------------------------------------------------------------
// Compiling

function compilePattern(rule: string, source: string, flags: string): RE2 {
  try {
    return new RE2(source, flags);
  } catch (err) {
    throw new PolicyError('InvalidPattern', `rule "${rule}": ${err instanceof Error ? err.message : String(err)}`);
  }
}

function keep(rule: string, n: number | undefined, what: string): number {
  if (n === undefined) return 0;
  if (!Number.isInteger(n) || n < 0) throw new PolicyError('InvalidInput', `rule "${rule}": ${what} must be a non-negative integer`);
  return n;
}

/** The hash cache's tag of text[start, end): FNV-1a (32 bits) seeded with the length. */
export function spanTag(text: string, start: number, end: number): number {
  let x = 0x811c9dc5 ^ (end - start);
  for (let i = start; i < end; i++) x = Math.imul(x ^ text.charCodeAt(i), 0x01000193);
  return x;
}

function compileRule(spec: MaskRuleSpec, index: number): Rule {
  const { name, match, action } = spec;
  if (!(MASK_ACTIONS as readonly string[]).includes(action.type)) {
    throw new PolicyError('InvalidInput', `rule "${name}": unknown action ${JSON.stringify(action.type)}`);
  }
  for (const d of match.detectors ?? []) {
    if (!(DETECTORS as readonly string[]).includes(d)) throw new PolicyError('InvalidInput', `rule "${name}": unknown detector ${JSON.stringify(d)}`);
  }
  const columns = match.columns ?? [];
  const detectors = [...new Set(match.detectors ?? [])];
  const pattern = match.pattern;
  if (columns.length === 0 && detectors.length === 0 && (pattern === undefined || pattern === '')) {
    throw new PolicyError('InvalidInput', `rule "${name}": match must set at least one of columns, detectors or pattern`);
  }
  const globs = columns.length > 0 ? columns.map((g) => compileColumnGlob(name, g)) : null;
  const usePattern = pattern !== undefined && pattern !== '';
  return {
    index,
    name,
    names: Object.freeze([name]),
    type: action.type,
    rank: RANK[action.type],
    keepFirst: keep(name, action.keepFirst, 'keepFirst'),
    keepLast: keep(name, action.keepLast, 'keepLast'),
    globs,
    detectors,
    valuePattern: usePattern ? compilePattern(name, pattern, 'gu') : null,
    textPattern: usePattern && globs === null ? compilePattern(name, pattern, 'gmu') : null,
    textPerLine: usePattern && /\\[Az]|\(\?[a-zA-Z]*-[a-zA-Z]*m/.test(pattern),
    required: usePattern ? requiredLiteral(pattern) : null,
    simple: usePattern ? compileSimplePattern(pattern) : null,
  };
}

const PLAIN = /^[A-Za-z0-9 _\-:=@#%&'",;<>/!~`]$/;

/**
 * The literal a pattern starts with, when every match must contain it: the leading run of
 * plain characters, less a last one a quantifier makes optional. No literal (null) for
 * patterns with alternation or inline flags anywhere, or a run shorter than two characters.
 */
export function requiredLiteral(pattern: string): string | null {
  if (pattern.includes('|') || pattern.includes('(?')) return null;
  let run = '';
  let i = 0;
  for (; i < pattern.length && PLAIN.test(pattern[i] ?? ''); i++) run += pattern[i] ?? '';
  const next = pattern[i];
  if (next === '*' || next === '?' || next === '{') run = run.slice(0, -1);
  return run.length >= 2 ? run : null;
}

function finders(rules: readonly Rule[]): Finders {
  const byDetector = new Map<Detector, Rule[]>();
  for (const r of rules) for (const d of r.detectors) byDetector.set(d, [...(byDetector.get(d) ?? []), r]);
  return {
    detectors: [...byDetector].map(([id, rs]) => ({ detector: compileDetector(id), rules: rs })),
    patterns: rules.filter((r) => r.valuePattern !== null),
  };
}

const hasFinders = (f: Finders): boolean => f.detectors.length > 0 || f.patterns.length > 0;

// ---------------------------------------------------------------------------------------------
// Finding spans

/** Adds the matches of a simple pattern (never empty, never across a newline) to the hits. */
function simpleHits(simple: SimplePattern, rule: Rule, text: string): void {
  for (let s = simple.find(text, 0); s >= 0; s = simple.find(text, simple.lastEnd)) addHit(s, simple.lastEnd, rule);
}

/** Adds the non-empty matches of a pattern in text (offset by base) to the hits; true when one spans a newline. */
function patternHits(re: RE2, rule: Rule, text: string, base: number): boolean {
  // A literal every match must contain rules most texts out without calling into RE2.
  if (rule.required !== null && !text.includes(rule.required)) return false;
  // search() is the cheapest RE2 call (about half of exec), and most texts have no match; after
  // the literal prefilter passed, a match is likely and search() would only add a native call.
  if (rule.required === null && re.search(text) < 0) return false;
  let crossesLine = false;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const len = m[0].length;
    if (len === 0) {
      const c = text.charCodeAt(m.index);
      re.lastIndex = m.index + (c >= 0xd800 && c <= 0xdbff ? 2 : 1);
      continue;
    }
    if (m[0].includes('\n')) crossesLine = true;
    addHit(base + m.index, base + m.index + len, rule);
  }
  return crossesLine;
}

/** Free text: the matches of each line. One pass over the whole text gives the same spans unless a match spans lines. */
function textPatternHits(re: RE2, rule: Rule, text: string): void {
  const mark = hitCount;
  if (!rule.textPerLine && !patternHits(re, rule, text, 0)) return;
  hitCount = mark;
  for (let start = 0; start < text.length; ) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end > start) patternHits(re, rule, text.slice(start, end), start);
    start = end + 1;
  }
}

/** Values longer than this are always decoded by mayMaskBytes's callers (the look would cost as much). */
const BYTES_GATE_MAX_LENGTH = 4096;

/** Whether bytes[start, end) contains the ASCII literal. */
function bytesInclude(bytes: Uint8Array, start: number, end: number, literal: string): boolean {
  const n = literal.length;
  const first = literal.charCodeAt(0);
  for (let i = start; i + n <= end; i++) {
    if (bytes[i] !== first) continue;
    let j = 1;
    while (j < n && bytes[i + j] === literal.charCodeAt(j)) j++;
    if (j === n) return true;
  }
  return false;
}

/** planGate: the bytes rule every rule of the plan out. */
const RULED_OUT = -2;
/** planGate: a rule may apply, the text's features were not computed (findSpans computes them). */
const FEATURES_UNKNOWN = -1;

/** mayMaskBytes of a plan: see ColumnMasker. */
function planMayMask(plan: Plan, bytes: Uint8Array, start: number, end: number): boolean {
  return planGate(plan, bytes, start, end) !== RULED_OUT;
}

/**
 * The look at a value's bytes: RULED_OUT when no rule of the plan can apply, else the features
 * of the bytes' text (textFeatures: they are ASCII) or FEATURES_UNKNOWN.
 */
function planGate(plan: Plan, bytes: Uint8Array, start: number, end: number): number {
  const g = plan.gate;
  if (g.always) return FEATURES_UNKNOWN;
  const length = end - start;
  if (length > BYTES_GATE_MAX_LENGTH) return FEATURES_UNKNOWN;
  const literals = g.literals;
  const needs = g.needs;
  if (literals.length === 0 && needs.length === 0) return RULED_OUT;
  // one pass for the features; a literal is looked for only where they allow it
  const features = bytesFeatures(bytes, start, end);
  if (features === NOT_ASCII) {
    for (let i = 0; i < literals.length; i++) if (bytesInclude(bytes, start, end, literals[i] ?? '')) return FEATURES_UNKNOWN;
    return needs.length > 0 ? FEATURES_UNKNOWN : RULED_OUT;
  }
  const digits = features >>> 16;
  for (let i = 0; i < literals.length; i++) {
    const need = g.literalNeeds[i] ?? 0;
    const flags = need & 0xffff;
    if ((features & flags) === flags && digits >= need >>> 16 && bytesInclude(bytes, start, end, literals[i] ?? '')) return features;
  }
  for (let i = 0; i < needs.length; i += 4) {
    const all = needs[i] ?? 0;
    const any = needs[i + 1] ?? 0;
    if (length >= (needs[i + 3] ?? 0) && (features & all) === all && (any === 0 || (features & any) !== 0) && digits >= (needs[i + 2] ?? 0)) return features;
  }
  return RULED_OUT;
}

/** Texts up to this length get a features pass (cheaper than one native search per detector). */
const FEATURES_MAX_LENGTH = 512;

function findSpans(text: string, f: Finders, freeText: boolean, known = FEATURES_UNKNOWN): void {
  // features known from the bytes (planGate) are the text's own: exact, whatever its length
  const features = known >= 0 ? known : f.detectors.length > 1 && text.length <= FEATURES_MAX_LENGTH ? textFeatures(text) : ALL_FEATURES;
  for (let d = 0; d < f.detectors.length; d++) {
    const use = f.detectors[d];
    if (use === undefined) break;
    pairs.n = 0;
    runDetector(use.detector, text, pairs, features);
    for (let i = 0; i + 1 < pairs.n; i += 2) {
      const start = pairs.pairs[i] ?? 0;
      const end = pairs.pairs[i + 1] ?? 0;
      if (end > start) for (const rule of use.rules) addHit(start, end, rule);
    }
  }
  if (f.patterns.length === 0) return;
  for (const rule of f.patterns) {
    if (rule.simple !== null) simpleHits(rule.simple, rule, text);
    else if (freeText && rule.textPattern !== null) textPatternHits(rule.textPattern, rule, text);
    else if (rule.valuePattern !== null) patternHits(rule.valuePattern, rule, text, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

const HEX_DIGITS = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const hexDigit = (word: number, shift: number): number => HEX_DIGITS[(word >>> shift) & 15] ?? 0;

/** What `hash` shows: `hmac:` and the first 8 bytes of the digest as 16 hex digits (one flat string). */
function hashTag(digest: Int32Array): string {
  const a = digest[0] ?? 0;
  const b = digest[1] ?? 0;
  // prettier-ignore
  return String.fromCharCode(
    104, 109, 97, 99, 58, // "hmac:"
    hexDigit(a, 28), hexDigit(a, 24), hexDigit(a, 20), hexDigit(a, 16), hexDigit(a, 12), hexDigit(a, 8), hexDigit(a, 4), hexDigit(a, 0),
    hexDigit(b, 28), hexDigit(b, 24), hexDigit(b, 20), hexDigit(b, 16), hexDigit(b, 12), hexDigit(b, 8), hexDigit(b, 4), hexDigit(b, 0),
  );
}

const isSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdfff;
/** '*' repeated n times, for the usual lengths. */
const STARS = Array.from({ length: 65 }, (_, n) => '*'.repeat(n));
const stars = (n: number): string => STARS[n] ?? '*'.repeat(n);

/** text[start, end) with the first/last characters (code points) kept, one `*` for each other character. */
function partial(text: string, start: number, end: number, keepFirst: number, keepLast: number): string {
  let i = start;
  while (i < end && !isSurrogate(text.charCodeAt(i))) i++;
  if (i === end) {
    const n = end - start;
    return keepFirst + keepLast >= n ? stars(n) : text.slice(start, start + keepFirst) + stars(n - keepFirst - keepLast) + text.slice(end - keepLast, end);
  }
  const chars = Array.from(text.slice(start, end));
  const n = chars.length;
  if (keepFirst + keepLast >= n) return stars(n);
  return chars.slice(0, keepFirst).join('') + stars(n - keepFirst - keepLast) + chars.slice(n - keepLast).join('');
}

export function compileMasker(specs: readonly MaskRuleSpec[], key: Uint8Array): Masker {
  const rules = specs.map(compileRule);
  const hmac = hmacSha256(key);
  // the addon's HMAC (OpenSSL, SHA-NI) when it is built: same output, a third of the time
  const hmacTag = nativeHmac(key);
  const hashOf = hmacTag ?? ((span: string): string => hashTag(hmac(span)));
  const globalRules = rules.filter((r) => r.globs === null);
  const globalPlan: Plan = planOf([], finders(globalRules));
  // free text (SSH output) that no detector or pattern can match passes the stream masker untouched
  const streamGate = textGate({ detectors: globalPlan.finders.detectors.map((d) => d.detector.id), literals: globalPlan.gate.always ? null : globalPlan.gate.literals });
  const columnRules = rules.filter((r) => r.globs !== null);
  const plans = new Map<string, Plan>();

  function planFor(column: string | undefined): Plan {
    if (column === undefined || columnRules.length === 0) return globalPlan;
    let plan = plans.get(column);
    if (plan !== undefined) return plan;
    const parts = column.split('.').map((p) => Array.from(p));
    const matching = columnRules.filter((r) => r.globs !== null && columnMatches(r.globs, parts));
    const spanRules = rules.filter((r) => r.globs === null || (matching.includes(r) && (r.detectors.length > 0 || r.valuePattern !== null)));
    plan = planOf(
      matching.filter((r) => r.detectors.length === 0 && r.valuePattern === null),
      finders(spanRules),
    );
    if (plans.size >= PLAN_CACHE_LIMIT) plans.clear();
    plans.set(column, plan);
    return plan;
  }

  const lineagePlans = new Map<string, Plan>();

  /** The plan of a column computed from others (Masker.forLineage). */
  function planForLineage(l: LineageSpec): Plan {
    const passthrough = l.passthrough ?? [];
    const derived = l.derived ?? [];
    const all = l.all === true;
    if (passthrough.length === 0 && derived.length === 0 && !all) return planFor(l.column);
    if (columnRules.length === 0) return globalPlan;
    const key = JSON.stringify([l.column ?? null, passthrough, derived, all]);
    let plan = lineagePlans.get(key);
    if (plan !== undefined) return plan;
    const direct = [l.column, ...passthrough].filter((c): c is string => c !== undefined);
    const matchingDirect = columnRules.filter((r) => r.globs !== null && direct.some((c) => sourceMatches(r.globs ?? [], c)));
    // a derived value: the rule's action on the whole value, whatever the rule finds in its column's values
    const wholeDerived = all ? columnRules : columnRules.filter((r) => r.globs !== null && derived.some((c) => sourceMatches(r.globs ?? [], c)));
    const whole = [...new Set([...matchingDirect.filter((r) => r.detectors.length === 0 && r.valuePattern === null), ...wholeDerived])];
    const spanRules = rules.filter((r) => r.globs === null || (matchingDirect.includes(r) && !whole.includes(r) && (r.detectors.length > 0 || r.valuePattern !== null)));
    plan = planOf(whole, finders(spanRules));
    if (lineagePlans.size >= PLAN_CACHE_LIMIT) lineagePlans.clear();
    lineagePlans.set(key, plan);
    return plan;
  }

  function strictestFor(columns: readonly string[], all: boolean): MaskAction | undefined {
    const matching = all ? columnRules : columnRules.filter((r) => r.globs !== null && columns.some((c) => sourceMatches(r.globs ?? [], c)));
    let best: Rule | undefined;
    for (const r of matching) if (best === undefined || r.rank > best.rank) best = r;
    return best?.type;
  }

  // Hashes of short spans, remembered (values repeat): a direct-mapped table, so a miss costs
  // a pass over the span rather than a Map insertion (and no rehashing as the table fills).
  const hashKeys: (string | undefined)[] = new Array<string | undefined>(HASH_SLOTS).fill(undefined);
  const hashValues: string[] = new Array<string>(HASH_SLOTS).fill('');
  /** the full 32-bit FNV-1a of each slot's key: most misses are told apart without comparing strings */
  const hashTags = new Int32Array(HASH_SLOTS);

  /** `hmac:` + 16 hex digits of HMAC-SHA256(key, text[start, end)). */
  function hash(text: string, start: number, end: number): string {
    const length = end - start;
    if (length > HASH_KEY_MAX_LENGTH) return hashOf(text.slice(start, end));
    const x = spanTag(text, start, end);
    const slot = (x ^ (x >>> 16)) & (HASH_SLOTS - 1);
    const key = hashKeys[slot];
    if (hashTags[slot] === x && key !== undefined && key.length === length && text.startsWith(key, start)) return hashValues[slot] ?? '';
    const span = text.slice(start, end);
    const h = hashOf(span);
    hashKeys[slot] = span;
    hashValues[slot] = h;
    hashTags[slot] = x;
    return h;
  }

  function renderSpan(text: string, start: number, end: number, rank: number, keepFirst: number, keepLast: number): string {
    if (rank === RANK.partial) return partial(text, start, end, keepFirst, keepLast);
    if (rank === RANK.hash) return hash(text, start, end);
    return REDACTED;
  }

  /** The names of each combination of rules seen, keyed by the rule indexes, bounded. */
  const combinations = new Map<number | string, readonly string[]>();

  /** Names of the rules whose indexes are given (a bit set when there are at most 30 rules). */
  function namesOf(key: number | string, indexes: () => number[]): readonly string[] {
    let names = combinations.get(key);
    if (names === undefined) {
      names = Object.freeze(indexes().map((i) => rules[i]?.name ?? ''));
      if (combinations.size >= PLAN_CACHE_LIMIT) combinations.clear();
      combinations.set(key, names);
    }
    return names;
  }

  function ruleNames(only: Rule | null, bits: number, many: Set<number> | null): readonly string[] {
    if (many !== null) {
      const sorted = [...many].sort((a, b) => a - b);
      return namesOf(sorted.join(','), () => sorted);
    }
    if (only === null) return NO_RULES;
    if (bits === 1 << only.index) return only.names;
    return namesOf(bits, () => rules.filter((r) => (bits & (1 << r.index)) !== 0).map((r) => r.index));
  }

  // What render() found besides the text (no result object per value).
  let renderedNull = false;
  let renderedCount = 0;
  let renderedRules: readonly string[] = NO_RULES;

  /** Merges the overlapping hits and masks each union with its strongest action. */
  function render(text: string): string {
    if (hitCount === 1) {
      // one span (most masked values): no merging, and a whole value's replacement stays a flat string
      const h = hits[0];
      if (h !== undefined) {
        const rule = h.rule;
        const r = renderSpan(text, h.start, h.end, rule.rank, rule.keepFirst, rule.keepLast);
        hitCount = 0;
        renderedNull = rule.rank === RANK.null;
        renderedCount = 1;
        renderedRules = rule.names;
        return h.start === 0 && h.end === text.length ? r : text.slice(0, h.start) + r + text.slice(h.end);
      }
    }
    sortHits();
    let out = '';
    let pos = 0;
    let masked = 0;
    let isNull = false;
    // The rules that masked something: a bit set, or a Set beyond 30 rules.
    let only: Rule | null = null;
    let bits = 0;
    let many: Set<number> | null = null;
    for (let i = 0; i < hitCount; ) {
      const first = hits[i];
      if (first === undefined) break;
      const start = first.start;
      let end = first.end;
      let rank = -1;
      let keepFirst = Infinity;
      let keepLast = Infinity;
      for (; i < hitCount; i++) {
        const h = hits[i];
        if (h === undefined || (h !== first && h.start >= end)) break;
        const rule = h.rule;
        end = Math.max(end, h.end);
        rank = Math.max(rank, rule.rank);
        if (rule.rank === RANK.partial) {
          keepFirst = Math.min(keepFirst, rule.keepFirst);
          keepLast = Math.min(keepLast, rule.keepLast);
        }
        only ??= rule;
        if (rules.length <= 30) bits |= 1 << rule.index;
        else (many ??= new Set()).add(rule.index);
      }
      isNull ||= rank === RANK.null;
      out += text.slice(pos, start) + renderSpan(text, start, end, rank, keepFirst, keepLast);
      pos = end;
      masked++;
    }
    hitCount = 0;
    releaseScratch();
    renderedNull = isNull;
    renderedCount = masked;
    renderedRules = ruleNames(only, bits, many);
    return out + text.slice(pos);
  }

  function maskText(text: string): { readonly text: string; readonly masked: number } {
    hitCount = 0;
    findSpans(text, globalPlan.finders, true);
    if (hitCount === 0) return { text, masked: 0 };
    const out = render(text);
    return { text: out, masked: renderedCount };
  }

  /**
   * Masks text[from, cut) of a line seen only in part (the streaming masker's long lines):
   * `text[0, from)` is context already emitted, `cut <= upTo` is chosen where no masked span
   * is cut, after a blank or a delimiter when one is near. Spans reaching into the context are
   * clipped to it (masked anyway); spans from `cut` on are left for the next window.
   */
  function maskWindow(text: string, from: number, upTo: number): { readonly text: string; readonly masked: number; readonly cut: number } {
    hitCount = 0;
    findSpans(text, globalPlan.finders, true);
    sortHits();
    // Keep the spans that reach past `from`, clipped to it; find the merged spans around upTo.
    let kept = 0;
    let cut = upTo;
    let unionStart = -1;
    let unionEnd = -1;
    for (let i = 0; i < hitCount; i++) {
      const h = hits[i];
      if (h === undefined || h.end <= from) continue;
      if (h.start < from) h.start = from;
      hits[i] = hits[kept] ?? h;
      hits[kept++] = h;
      if (h.start >= unionEnd) unionStart = h.start;
      unionEnd = Math.max(unionEnd, h.end);
      if (unionStart < cut && cut < unionEnd) cut = unionStart;
    }
    // Prefer to cut after a blank or delimiter (context a detector may need never spans one).
    const floor = upTo >= text.length ? cut : Math.max(from + 1, cut - 4096);
    for (let i = cut; i > floor; i--) {
      if (!BOUNDARY.test(text.charAt(i - 1))) continue;
      if (!insideHit(i, kept)) cut = i;
      break;
    }
    if (cut <= from) {
      hitCount = 0;
      return { text: '', masked: 0, cut: from };
    }
    // The kept spans are sorted by start: those before the cut are a prefix of them.
    let n = 0;
    while (n < kept && (hits[n]?.start ?? cut) < cut) n++;
    hitCount = n;
    if (n === 0) return { text: text.slice(from, cut), masked: 0, cut };
    const out = render(text.slice(0, cut));
    return { text: out.slice(from), masked: renderedCount, cut };
  }

  function insideHit(at: number, count: number): boolean {
    for (let i = 0; i < count; i++) {
      const h = hits[i];
      if (h !== undefined && h.start < at && at < h.end) return true;
    }
    return false;
  }

  /** Narrowed plans, per plan and value class (a result's columns ask again for every statement shape). */
  const narrowed = new WeakMap<Plan, Map<string, Plan>>();

  function narrowPlan(plan: Plan, values: ValueClass): Plan {
    let byClass = narrowed.get(plan);
    if (byClass === undefined) {
      byClass = new Map();
      narrowed.set(plan, byClass);
    }
    const key = `${values.chars}\u0000${String(values.maxLength)}\u0000${String(values.maxDigits)}`;
    let n = byClass.get(key);
    if (n === undefined) {
      const f = narrowPlanFinders(plan.finders, values);
      n = f === plan.finders ? plan : planOf(plan.whole, f);
      if (byClass.size >= PLAN_CACHE_LIMIT) byClass.clear();
      byClass.set(key, n);
    }
    return n;
  }

  function columnMasker(plan: Plan): ColumnMasker {
    return {
      canMatch: plan.whole.length > 0 || hasFinders(plan.finders),
      mayMaskBytes: (bytes, start, end) => planMayMask(plan, bytes, start, end),
      maskValue: (value) => maskWith(plan, value, FEATURES_UNKNOWN),
      maskUtf8: (bytes, start, end, decode) => {
        const features = planGate(plan, bytes, start, end);
        return features === RULED_OUT ? undefined : maskWith(plan, decode(bytes, start, end), features);
      },
      narrow: (values) => columnMasker(narrowPlan(plan, values)),
    };
  }

  function maskWith(plan: Plan, value: string, features: number): MaskResult {
    hitCount = 0;
    for (const rule of plan.whole) addHit(0, value.length, rule);
    findSpans(value, plan.finders, false, features);
    if (hitCount === 0) return { value, masked: 0, rules: NO_RULES };
    const out = render(value);
    return { value: renderedNull ? null : out, masked: renderedCount, rules: renderedRules };
  }

  return {
    maskValue(column, value) {
      return maskWith(planFor(column), value, FEATURES_UNKNOWN);
    },
    forLineage(lineage) {
      return columnMasker(planForLineage(lineage));
    },
    strictestFor,
    forColumn(column) {
      return columnMasker(planFor(column));
    },
    maskText,
    stream(options) {
      return createStreamMasker(maskText, REDACTED, options, maskWindow, streamGate);
    },
  };
}
