/**
 * Masking of DataRow messages. A result's plan lists only the columns a masking rule can touch
 * (by column identity or because detectors apply to every column); every other column, and
 * every row nothing matched, passes through as the original bytes. Pure.
 *
 * Formats: text-format values are masked as text. Binary values of text types (text, varchar,
 * char, name, json, xml, unknown) are UTF-8 too and are masked in place; binary jsonb is a
 * version byte plus text. Binary integers are decoded to decimal for the detectors. Any other
 * binary value cannot be rewritten without corrupting it: when a rule masks it (a column rule,
 * or a detector on a decoded integer) it becomes NULL. A masked value of a non-text type in text
 * format becomes NULL as well, so typed clients never receive text that does not parse as the
 * column's type.
 *
 * A value is decoded only when the masker's look at its bytes (ColumnMasker.mayMaskBytes) says a rule
 * might apply; rewritten rows are built in a Slab, one after the other, so a run of them is one
 * contiguous slice to write.
 */
import { LineageCache, alignOutputs, type ColumnMasker, type Masker, type MaskResult, type OutputSegment, type QueryLineage, type StatementLineage, type ValueClass } from '@airlock/policy';
import type { Catalog } from './catalog.ts';

export interface FieldInfo {
  readonly tableID: number;
  readonly columnID: number;
  readonly dataTypeID: number;
  /** 0 text, 1 binary */
  readonly format: number;
}

type Kind = 'text' | 'typedText' | 'textBytea' | 'binText' | 'binJsonb' | 'binInt' | 'binDecoded' | 'binOther';

interface ColumnMask {
  readonly index: number;
  readonly masker: ColumnMasker;
  readonly kind: Kind;
  /** json or jsonb: a masked value is made a JSON string when masking left it invalid JSON */
  readonly json: boolean;
  readonly dataTypeID: number;
}

/**
 * What the statement's parse tree says of a result's columns (see policy's sql/lineage.ts), for
 * the columns the server does not identify (computed columns have no table OID).
 */
export interface RowLineage {
  /** the statement's output segments; undefined: its rows' lineage is unknown (FETCH, EXECUTE, …) */
  readonly outputs: readonly OutputSegment[] | undefined;
  /** false for a table OID whose columns are not a table's own (a view, a materialized view, …) or unknown */
  readonly plainTable: (tableID: number) => boolean;
  /** `schema.table` of the relations the statement names that are not plain tables (views, …) */
  readonly opaqueRelations: ReadonlySet<string>;
  /** equal for results planned alike (plan caches) */
  readonly key?: string;
}

export interface RowPlan {
  readonly fieldCount: number;
  /** columns to look at, ascending by index; empty: rows pass through untouched */
  readonly columns: readonly ColumnMask[];
}

export const PASS_THROUGH: RowPlan = Object.freeze({ fieldCount: -1, columns: Object.freeze([]) });

/** text 25, varchar 1043, bpchar 1042, name 19, "char" 18, json 114, xml 142, unknown 705 */
const TEXT_TYPES: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 18, 114, 142, 705]);
const JSONB = 3802;
/** int2 21, int4 23, int8 20, oid 26 */
const INT_TYPES: ReadonlySet<number> = new Set([21, 23, 20, 26]);

const JSON_TYPE = 114;
/**
 * Binary types whose values cannot hold text (fixed layouts of numbers and bits): bool, date,
 * time, timetz, timestamp, timestamptz, interval, point, lseg, path, box, polygon, line, circle,
 * money, macaddr, macaddr8, tid, xid, cid, regproc, regclass, regtype, regnamespace, regrole.
 */
const NO_TEXT_TYPES: ReadonlySet<number> = new Set([16, 1082, 1083, 1266, 1114, 1184, 1186, 600, 601, 602, 603, 604, 628, 718, 790, 829, 774, 27, 28, 29, 24, 2205, 2206, 4089, 4096]);

function kindOf(f: FieldInfo): Kind {
  if (f.format === 0) return TEXT_TYPES.has(f.dataTypeID) || f.dataTypeID === JSONB ? 'text' : f.dataTypeID === 17 ? 'textBytea' : 'typedText';
  if (TEXT_TYPES.has(f.dataTypeID)) return 'binText';
  if (f.dataTypeID === JSONB) return 'binJsonb';
  if (INT_TYPES.has(f.dataTypeID)) return 'binInt';
  if (NO_TEXT_TYPES.has(f.dataTypeID)) return 'binOther';
  // bytea, numeric, floats, inet, uuid, arrays, records: decoded to text for the detectors; a type
  // that cannot be decoded is NULL when a rule could look into it
  return 'binDecoded';
}

const SIGNED = '-0123456789';
/** int2, int4, int8 and oid as text (int2out, int4out, …) or decoded from binary (decodeInt: an oid as int4). */
const INT_CLASSES: ReadonlyMap<number, ValueClass> = new Map([
  [21, { chars: SIGNED, maxLength: 6, maxDigits: 5 }],
  [23, { chars: SIGNED, maxLength: 11, maxDigits: 10 }],
  [26, { chars: SIGNED, maxLength: 11, maxDigits: 10 }],
  [20, { chars: SIGNED, maxLength: 20, maxDigits: 19 }],
]);
/** bool as text: t or f */
const BOOL_TEXT: ValueClass = { chars: 'tf', maxLength: 1, maxDigits: 0 };
/** what maskDataRow gives the masker for a binary value that holds no text */
const NO_TEXT: ValueClass = { chars: '\u0000', maxLength: 1, maxDigits: 0 };

/**
 * What every value of a column is, from its type and format, when the type says (integers,
 * booleans, binary values without text): the column's masker is narrowed to the detectors and
 * patterns that can match such values, once per result shape (an int4 column needs none).
 */
export function valueClassOf(f: FieldInfo): ValueClass | undefined {
  const k = kindOf(f);
  if (k === 'binOther') return NO_TEXT;
  if (k === 'typedText' || k === 'binInt') return f.dataTypeID === 16 && k === 'typedText' ? BOOL_TEXT : INT_CLASSES.get(f.dataTypeID);
  return undefined;
}

/**
 * The plan of one result. `columnName(tableID, columnID)` gives `schema.table.column` for a
 * column of a table (undefined for computed columns or when unknown).
 *
 * With `lineage`, a column the server identifies (a table OID and attribute number: its values
 * are that column's own) is masked by that column's rules, unless the OID is a view's or the
 * like (what it shows is not known: every column rule applies). Any other column (computed) is
 * masked by what the statement's parse tree says it derives from: the rules of columns whose
 * values pass through unchanged as they apply to those columns, the action of every column rule
 * matching a column it is computed from on the whole value, and every column rule when its
 * lineage is unknown or reads through a view.
 */
export function planRow(fields: readonly FieldInfo[], masker: Masker, columnName: (tableID: number, columnID: number) => string | undefined, lineage?: RowLineage): RowPlan {
  const columns: ColumnMask[] = [];
  const aligned = lineage === undefined ? undefined : alignOutputs(lineage.outputs, fields.length);
  fields.forEach((f, index) => {
    const identified = f.tableID !== 0 && f.columnID > 0;
    const column = identified ? columnName(f.tableID, f.columnID) : undefined;
    let m: ColumnMasker;
    if (lineage === undefined || aligned === undefined) m = masker.forColumn(column);
    else if (identified) m = lineage.plainTable(f.tableID) && column !== undefined ? masker.forColumn(column) : masker.forLineage({ all: true });
    else {
      const a = aligned[index];
      const l = a?.lineage;
      const sources = [...(l?.passthrough ?? []), ...(l?.derived ?? [])];
      const throughView = sources.some((c) => lineage.opaqueRelations.has(c.slice(0, c.lastIndexOf('.'))));
      if (l === undefined || l.opaque || throughView) m = masker.forLineage({ all: true });
      else m = masker.forLineage({ passthrough: [...l.passthrough, ...(a?.tables ?? []).map((t) => `${t}.*`)], derived: l.derived });
    }
    const values = valueClassOf(f);
    if (values !== undefined) m = m.narrow(values);
    if (!m.canMatch) return;
    columns.push({ index, masker: m, kind: kindOf(f), json: f.dataTypeID === JSON_TYPE || f.dataTypeID === JSONB, dataTypeID: f.dataTypeID });
  });
  return { fieldCount: fields.length, columns };
}

/** Array types of the catalogue (the element type is in each value's header). */
const ARRAY_TYPES: ReadonlySet<number> = new Set([1000, 1001, 1002, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1231, 199, 3807, 143, 2951, 1041, 651, 1115, 1182, 1183, 1185, 1187, 1270, 1040, 2287, 1013]);
const RECORD = 2249;

function decodeNumeric(buf: Buffer, pos: number, len: number): string | undefined {
  if (len < 8) return undefined;
  const ndigits = buf.readInt16BE(pos);
  const weight = buf.readInt16BE(pos + 2);
  const sign = buf.readUInt16BE(pos + 4);
  const dscale = buf.readInt16BE(pos + 6);
  if (len !== 8 + 2 * ndigits) return undefined;
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  let int = '';
  let frac = '';
  for (let i = 0; i < ndigits; i++) {
    const d = String(buf.readInt16BE(pos + 8 + 2 * i)).padStart(4, '0');
    if (i <= weight) int += d;
    else frac += d;
  }
  if (weight >= ndigits) int += '0000'.repeat(weight - ndigits + 1);
  if (weight < -1) frac = '0000'.repeat(-weight - 1) + frac;
  int = int.replace(/^0+(?=.)/, '') || '0';
  frac = frac.padEnd(dscale, '0').slice(0, dscale);
  return `${sign === 0x4000 ? '-' : ''}${int}${frac === '' ? '' : `.${frac}`}`;
}

function decodeInet(buf: Buffer, pos: number, len: number): string | undefined {
  if (len < 4) return undefined;
  const family = buf[pos];
  const bits = buf[pos + 1] ?? 0;
  const n = buf[pos + 3] ?? 0;
  if (len !== 4 + n) return undefined;
  const addr = buf.subarray(pos + 4, pos + 4 + n);
  let text: string;
  if (family === 2 && n === 4) text = [...addr].join('.');
  else if (n === 16) text = Array.from({ length: 8 }, (_, i) => addr.readUInt16BE(2 * i).toString(16)).join(':');
  else return undefined;
  return `${text}/${String(bits)}`;
}

/**
 * A binary value as text the detectors can read (not always PostgreSQL's own text form):
 * text types, jsonb, integers, numeric, floats, bytea (its bytes as UTF-8), inet/cidr, uuid, and
 * arrays and records of these. Undefined when the type (or an element's) cannot be read.
 */
export function decodeBinary(type: number, buf: Buffer, pos: number, len: number, depth = 0): string | undefined {
  if (len < 0) return '';
  if (depth > 8 || pos + len > buf.length) return undefined;
  if (TEXT_TYPES.has(type) || type === 17) return buf.toString('utf8', pos, pos + len);
  if (type === JSONB) return len === 0 ? '' : buf.toString('utf8', pos + 1, pos + len);
  if (type === 26 && len === 4) return String(buf.readUInt32BE(pos));
  if (INT_TYPES.has(type)) return decodeInt(buf, pos, len);
  if (type === 1700) return decodeNumeric(buf, pos, len);
  if (type === 700 && len === 4) return String(buf.readFloatBE(pos));
  if (type === 701 && len === 8) return String(buf.readDoubleBE(pos));
  if (type === 869 || type === 650) return decodeInet(buf, pos, len);
  if (type === 2950 && len === 16) return buf.toString('hex', pos, pos + 16);
  if (NO_TEXT_TYPES.has(type)) return '';
  if (ARRAY_TYPES.has(type)) {
    if (len < 12) return undefined;
    const ndim = buf.readInt32BE(pos);
    const elem = buf.readUInt32BE(pos + 8);
    if (ndim < 0 || ndim > 6 || len < 12 + 8 * ndim) return undefined;
    let count = ndim === 0 ? 0 : 1;
    for (let d = 0; d < ndim; d++) count *= buf.readInt32BE(pos + 12 + 8 * d);
    let p = pos + 12 + 8 * ndim;
    const end = pos + len;
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      if (p + 4 > end) return undefined;
      const l = buf.readInt32BE(p);
      p += 4;
      if (l > 0 && p + l > end) return undefined;
      const v = decodeBinary(elem, buf, p, l, depth + 1);
      if (v === undefined) return undefined;
      parts.push(v);
      if (l > 0) p += l;
    }
    return `{${parts.join(',')}}`;
  }
  if (type === RECORD) {
    if (len < 4) return undefined;
    const count = buf.readInt32BE(pos);
    let p = pos + 4;
    const end = pos + len;
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      if (p + 8 > end) return undefined;
      const oid = buf.readUInt32BE(p);
      const l = buf.readInt32BE(p + 4);
      p += 8;
      if (l > 0 && p + l > end) return undefined;
      const v = decodeBinary(oid, buf, p, l, depth + 1);
      if (v === undefined) return undefined;
      parts.push(v);
      if (l > 0) p += l;
    }
    return `(${parts.join(',')})`;
  }
  return undefined;
}

/** A masked json/jsonb value that is no longer JSON (a whole value replaced) becomes a JSON string. */
function jsonSafe(value: string): string {
  try {
    JSON.parse(value);
    return value;
  } catch {
    return JSON.stringify(value);
  }
}

const UNDECODABLE = Object.freeze(['airlock/undecodable-binary-value']);

/** The formats a Bind asks for, per result column (0 = one format for all, else one each). */
export function withFormats(fields: readonly FieldInfo[], resultFormats: readonly number[]): FieldInfo[] {
  return fields.map((f, i) => ({ ...f, format: resultFormats.length === 0 ? 0 : resultFormats.length === 1 ? (resultFormats[0] ?? 0) : (resultFormats[i] ?? 0) }));
}

function decodeInt(buf: Buffer, start: number, len: number): string | undefined {
  if (len === 2) return String(buf.readInt16BE(start));
  if (len === 4) return String(buf.readInt32BE(start));
  if (len === 8) return String(buf.readBigInt64BE(start));
  return undefined;
}

export interface MaskedRow {
  /** the rewritten message, or undefined when nothing changed */
  readonly message: Buffer | undefined;
  readonly masked: number;
  /** the rules that masked something (may repeat a name when several columns were masked) */
  readonly rules: readonly string[];
}

const utf8 = (buf: Buffer, start: number, end: number): string => buf.toString('utf8', start, end);

const UNCHANGED: MaskedRow = Object.freeze({ message: undefined, masked: 0, rules: Object.freeze([]) });

const SLAB_SIZE = 64 * 1024;

/**
 * Memory for rewritten messages: consecutive allocations are consecutive bytes of one buffer
 * (so writes coalesce), and a region handed out is never handed out again (it may still be
 * queued for writing): a full slab is replaced, not reused.
 */
export class Slab {
  #buf = Buffer.allocUnsafe(SLAB_SIZE);
  #used = 0;

  alloc(n: number): Buffer {
    if (n > SLAB_SIZE / 4) return Buffer.allocUnsafe(n);
    if (this.#used + n > this.#buf.length) {
      this.#buf = Buffer.allocUnsafe(SLAB_SIZE);
      this.#used = 0;
    }
    const b = this.#buf.subarray(this.#used, this.#used + n);
    this.#used += n;
    return b;
  }

  /** a copy of src[start, end) */
  copy(src: Buffer, start: number, end: number): Buffer {
    const b = this.alloc(end - start);
    src.copy(b, 0, start, end);
    return b;
  }
}

/**
 * Masks one DataRow (`buf[start, end)` is the whole message). Throws on a malformed row, which
 * the session treats as an upstream protocol error.
 */
export function maskDataRow(plan: RowPlan, buf: Buffer, start: number, end: number, slab?: Slab): MaskedRow {
  const cols = plan.columns;
  if (cols.length === 0) return UNCHANGED;
  const n = buf.readInt16BE(start + 5);
  let pos = start + 7;
  let ci = 0;
  let next = cols[0];
  let replaced: (string | null | undefined)[] | undefined;
  let masked = 0;
  let rules: readonly string[] = UNCHANGED.rules;
  for (let i = 0; i < n && next !== undefined; i++) {
    if (pos + 4 > end) throw new Error('DataRow is truncated');
    const len = buf.readInt32BE(pos);
    pos += 4;
    if (len > 0 && pos + len > end) throw new Error('DataRow is truncated');
    if (i === next.index) {
      const col = next;
      next = cols[++ci];
      if (len < 0) continue;
      const masker = col.masker;
      let text: string | undefined;
      let r: MaskResult | undefined;
      switch (col.kind) {
        case 'text':
        case 'typedText':
        case 'binText':
          // the look at the bytes and the masking in one call (what the look learnt is reused)
          r = masker.maskUtf8(buf, pos, pos + len, utf8);
          break;
        case 'binJsonb':
          if (len === 0) text = '';
          else r = masker.maskUtf8(buf, pos + 1, pos + len, utf8);
          break;
        case 'binInt':
          text = decodeInt(buf, pos, len);
          break;
        case 'textBytea':
          // \x and hex digits: the bytes, read as UTF-8, are what detectors look at
          text = buf[pos] === 0x5c && buf[pos + 1] === 0x78 ? Buffer.from(buf.toString('latin1', pos + 2, pos + len), 'hex').toString('utf8') : buf.toString('utf8', pos, pos + len);
          break;
        case 'binOther':
          // holds no text: only a rule that masks whole values of this column applies
          text = '\u0000';
          break;
        case 'binDecoded': {
          text = decodeBinary(col.dataTypeID, buf, pos, len);
          if (text === undefined) {
            // cannot be read: a value a rule could apply to is not passed unread
            rules = masked === 0 ? UNDECODABLE : [...rules, ...UNDECODABLE];
            masked += 1;
            replaced ??= scratchReplaced(n);
            replaced[i] = null;
          }
          break;
        }
      }
      if (text !== undefined) r = masker.maskValue(text);
      if (r !== undefined) {
        if (r.masked > 0) {
          rules = masked === 0 ? r.rules : [...rules, ...r.rules];
          masked += r.masked;
          replaced ??= scratchReplaced(n);
          if (r.value === null || col.kind === 'typedText' || col.kind === 'binInt' || col.kind === 'binOther' || col.kind === 'binDecoded' || col.kind === 'textBytea') replaced[i] = null;
          else if (col.kind === 'binJsonb') replaced[i] = `\u0001${jsonSafe(r.value)}`; // the jsonb version byte, then the text
          else replaced[i] = col.json ? jsonSafe(r.value) : r.value;
        }
      }
    }
    if (len > 0) pos += len;
  }
  if (replaced === undefined) return UNCHANGED;
  return { message: rebuild(buf, start, end, n, replaced, slab), masked, rules };
}

/**
 * The replacements of the row being masked, one per column (undefined: unchanged): one array
 * for all rows (maskDataRow is synchronous), cleared for each row that needs it.
 */
let replacedScratch: (string | null | undefined)[] = [];
let bytesScratch = new Int32Array(64);

function scratchReplaced(n: number): (string | null | undefined)[] {
  if (replacedScratch.length < n) replacedScratch = new Array<string | null | undefined>(n);
  const r = replacedScratch;
  for (let i = 0; i < n; i++) r[i] = undefined;
  return r;
}

/** Strings up to this length are measured and written in JavaScript when they are ASCII (no native call). */
const SHORT_STRING = 64;

/** The UTF-8 length of s: its length when it is short ASCII (checked here), else Buffer.byteLength. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT_STRING) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return n;
}

/** Writes s (its UTF-8 is `bytes` long) at out[at]. */
function writeUtf8(out: Buffer, s: string, at: number, bytes: number): void {
  if (bytes === s.length && bytes <= SHORT_STRING) {
    for (let i = 0; i < bytes; i++) out[at + i] = s.charCodeAt(i);
  } else out.write(s, at, bytes, 'utf8');
}

function rebuild(buf: Buffer, start: number, end: number, n: number, replaced: readonly (string | null | undefined)[], slab: Slab | undefined): Buffer {
  let size = end - start;
  let pos = start + 7;
  if (bytesScratch.length < n) bytesScratch = new Int32Array(n);
  const bytes = bytesScratch;
  for (let i = 0; i < n; i++) {
    // maskDataRow stops reading after the last column it masks: the rest is checked here, so a
    // malformed row never leaves unwritten bytes in (or copies another message into) the output
    if (pos + 4 > end) throw new Error('DataRow is truncated');
    const len = buf.readInt32BE(pos);
    if (len < -1) throw new Error(`DataRow column ${String(i + 1)} has length ${String(len)}`);
    if (pos + 4 + Math.max(len, 0) > end) throw new Error('DataRow is truncated');
    const r = replaced[i];
    if (r !== undefined) {
      const b = r === null ? 0 : utf8Length(r);
      bytes[i] = b;
      size += b - Math.max(len, 0);
    }
    pos += 4 + Math.max(len, 0);
  }
  if (pos !== end) throw new Error('DataRow has bytes after its last column');
  const out = slab === undefined ? Buffer.allocUnsafe(size) : slab.alloc(size);
  out[0] = 0x44;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(n, 5);
  let src = start + 7;
  let dst = 7;
  // unchanged columns are copied a run at a time: [runStart, src) is the pending run
  let runStart = src;
  for (let i = 0; i < n; i++) {
    const len = buf.readInt32BE(src);
    const r = replaced[i];
    if (r !== undefined) {
      if (src > runStart) dst += buf.copy(out, dst, runStart, src);
      if (r === null) {
        out.writeInt32BE(-1, dst);
        dst += 4;
      } else {
        const b = bytes[i] ?? 0;
        out.writeInt32BE(b, dst);
        writeUtf8(out, r, dst + 4, b);
        dst += 4 + b;
      }
    }
    src += 4 + Math.max(len, 0);
    if (r !== undefined) runStart = src;
  }
  if (src > runStart) buf.copy(out, dst, runStart, src);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lineage of a session's results

/** The lineage of a session's statements, decided once per statement shape and search path. */
export class SessionLineage {
  readonly #caches = new Map<string, LineageCache>();

  of(sql: string, searchPath: readonly string[] | undefined): QueryLineage {
    const path = searchPath ?? ['public'];
    const key = path.join(',');
    let cache = this.#caches.get(key);
    if (cache === undefined) {
      cache = new LineageCache({ searchPath: path });
      this.#caches.set(key, cache);
    }
    return cache.of(sql);
  }
}

/** Rows whose statement Airlock did not analyse (FETCH, SQL EXECUTE): computed columns are opaque. */
const UNKNOWN_ROWS: StatementLineage = Object.freeze({ outputs: undefined, opaqueRows: true, relations: Object.freeze([]), reads: Object.freeze({ passthrough: [], derived: [], opaque: true }), writes: Object.freeze({ passthrough: [], derived: [], opaque: false }) });

/**
 * The lineage of one result for planRow, once the kinds of the relations it names are known
 * (a promise while they are looked up). `st` undefined: the statement is not known.
 */
export function rowLineageOf(st: StatementLineage | undefined, catalog: Catalog): RowLineage | Promise<void> {
  const s = st ?? UNKNOWN_ROWS;
  const now = Date.now();
  const hit = rowLineages.get(s);
  // the relation kinds it was made from are re-checked every second (they are cached for a minute)
  if (hit !== undefined && hit.catalog === catalog && now - hit.at < 1000) return hit.value;
  if (s.relations.length > 0 && !catalog.hasRelations(s.relations)) return catalog.loadRelations(s.relations);
  const opaqueRelations = catalog.opaqueRelations(s.relations);
  const value: RowLineage = { outputs: s.outputs, plainTable: (t) => catalog.plainTable(t), opaqueRelations, key: `${lineageKey(s)}\u0000${[...opaqueRelations].join(',')}` };
  rowLineages.set(s, { at: now, catalog, value });
  return value;
}

const rowLineages = new WeakMap<StatementLineage, { readonly at: number; readonly catalog: Catalog; readonly value: RowLineage }>();
const lineageKeys = new WeakMap<StatementLineage, string>();

/** A key of a statement's lineage for plan caches. */
export function lineageKey(st: StatementLineage | undefined): string {
  if (st === undefined) return 'unknown';
  let k = lineageKeys.get(st);
  if (k === undefined) {
    k = JSON.stringify([st.outputs, st.relations]);
    lineageKeys.set(st, k);
  }
  return k;
}

/** true when a statement reads (anywhere: WHERE, JOIN, …) a column some column rule masks, or what it reads is unknown. */
export function readsMasked(masker: Masker, statements: readonly (StatementLineage | undefined)[]): boolean {
  return statements.some((st) => {
    const reads = (st ?? UNKNOWN_ROWS).reads;
    return masker.strictestFor([...reads.passthrough, ...reads.derived], reads.opaque) !== undefined;
  });
}

/**
 * SQLSTATE classes whose messages never quote a value: connection, feature, transaction state,
 * authorization, syntax and access (42: names, types, never values), resources, operator
 * intervention, system errors.
 */
const NO_VALUE_CLASSES: ReadonlySet<string> = new Set(['08', '0A', '25', '28', '2D', '3D', '3F', '40', '42', '53', '54', '55', '57', '58']);

/**
 * The fields of an ErrorResponse or NoticeResponse of a statement that reads masked columns,
 * with what may quote their values withheld (message, detail, hint, context, internal query):
 * `invalid input syntax for type integer: "<value>"`, a key in a unique violation's detail, the
 * failing row of a NOT NULL or CHECK violation, a RAISE in a function. The severity, SQLSTATE
 * and names (schema, table, column, constraint, type) stay. Undefined when nothing is withheld.
 */
export function withholdEchoes(fields: readonly (readonly [number, string])[]): (readonly [number, string])[] | undefined {
  const code = fields.find(([c]) => c === 0x43)?.[1] ?? '';
  if (NO_VALUE_CLASSES.has(code.slice(0, 2))) return undefined;
  const out: (readonly [number, string])[] = [];
  let withheld = false;
  for (const [c, v] of fields) {
    // M message, D detail, H hint, W where (context), q internal query, p internal position
    if (c === 0x4d) {
      out.push([c, `airlock: the server's message is withheld: the statement reads masked columns, and the message may quote their values (SQLSTATE ${code})`]);
      withheld = true;
    } else if (c === 0x44 || c === 0x48 || c === 0x57 || c === 0x71 || c === 0x70) withheld = true;
    else out.push([c, v]);
  }
  return withheld ? out : undefined;
}

/**
 * Why a query must be refused under `unknownLineage: Refuse`: one of its statements returns rows
 * whose lineage is unknown (FETCH, EXECUTE, CALL, text that does not parse) or a column computed
 * by something Airlock does not know. Undefined when every column's lineage is known.
 */
export function unknownLineageRefusal(lineage: QueryLineage | undefined): string | undefined {
  if (lineage === undefined) return undefined;
  for (const st of lineage.statements) {
    if (st.opaqueRows) return 'the lineage of this statement\'s result columns cannot be known (FETCH, EXECUTE, CALL or text Airlock cannot analyse), and the masking policy refuses such results (unknownLineage: Refuse)';
    const opaque = (st.outputs ?? []).find((o) => o.lineage.opaque);
    if (opaque !== undefined) {
      const what = opaque.kind === 'column' ? `column "${opaque.name}"` : 'a result column';
      return `the lineage of ${what} cannot be known (a function, operator or type Airlock does not know), and the masking policy refuses such results (unknownLineage: Refuse)`;
    }
  }
  return undefined;
}

/**
 * Why a query must be refused because it copies values of masked columns where masking cannot
 * follow them: into a setting (set_config; SHOW and current_setting would read it back) or a
 * NOTIFY payload (pg_notify). Undefined when it does not.
 */
export function maskedWriteRefusal(masker: Masker, lineage: QueryLineage | undefined): string | undefined {
  if (lineage === undefined) return undefined;
  for (const st of lineage.statements) {
    const w = st.writes;
    if (masker.strictestFor([...w.passthrough, ...w.derived], w.opaque) !== undefined) {
      return 'the statement copies values of masked columns into a setting or a NOTIFY payload (set_config, pg_notify), where masking cannot follow them';
    }
  }
  return undefined;
}
