/**
 * Built-in detectors: hand-written scanners (plus a few RegExp literals of ours, each linear:
 * disjoint character classes, bounded repeats, literal prefixes) that find sensitive values in
 * text and validate them (Luhn, mod-97, SSN invalidation rules, JSON of a JWT, ...) so random
 * digit runs are not reported.
 *
 * Every scanner starts with a cheap prefilter (a length check, `indexOf` of a character the
 * value must contain, or one native RegExp search), so text without candidates costs a few
 * native string searches and allocates nothing.
 *
 * Boundaries: a value is found wherever it stands, also glued to letters, `_`, `=` or other
 * word characters (`x4111111111111111y`, `ibanDE89370400440532013000`, `key_AKIA…`,
 * `token=ghp_…end`): gluing must not hide a secret. The only neighbours that stop a value are
 * those that would continue it: a digit next to a number (`14111111111111111` is a 17-digit
 * number, not a card; a chain of digit groups is checked group by group), a character of the
 * token's own alphabet where the format has no fixed length (it is taken into the span). The
 * validations (Luhn and brand lengths, mod-97 and country lengths, JSON of a JWT, fixed
 * prefixes) keep random glued text from matching. One exception: an IPv6 address must not
 * touch a letter, digit or `_` (`std::vector`, `Foo::Bar` are code, not addresses); IP
 * addresses are not secrets. No detector but `private_key` spans a newline, and every check
 * treats a newline exactly like the start or end of the text: masking line by line finds the
 * same spans as masking the whole text, which is what makes streaming exact (see stream.ts).
 */
import type { Detector } from '@airlock/api';

/** [start, end) in UTF-16 code units. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * Spans found so far, as flat [start, end, start, end, ...] pairs in `pairs[0, n)`. The array is
 * reused across texts and never shrunk (so the no-match path allocates nothing).
 */
export interface SpanBuffer {
  readonly pairs: number[];
  n: number;
}

export const spanBuffer = (): SpanBuffer => ({ pairs: [], n: 0 });

function add(out: SpanBuffer, start: number, end: number): void {
  out.pairs[out.n++] = start;
  out.pairs[out.n++] = end;
}

/** Adds the [start, end) pairs it finds to `out`; `features` are the text's (see textFeatures). */
type Scanner = (text: string, out: SpanBuffer, features: number) => void;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isAlpha = (c: number): boolean => (c | 32) >= 97 && (c | 32) <= 122;
const isAlnum = (c: number): boolean => isDigit(c) || isAlpha(c);
const isWord = (c: number): boolean => isAlnum(c) || c === 95;
const isHex = (c: number): boolean => isDigit(c) || ((c | 32) >= 97 && (c | 32) <= 102);
const isB64Url = (c: number): boolean => isAlnum(c) || c === 45 || c === 95;
/** Non-ASCII characters that separate words (NEL, NBSP, the U+2000 spaces, ideographic space, BOM). */
const isWideSpace = (c: number): boolean =>
  c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200b) || c === 0x2028 || c === 0x2029 ||
  c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
const isNonAsciiWordish = (c: number): boolean => c >= 0x80 && !isWideSpace(c);
/**
 * The code unit at i, or -1 outside the text (every predicate is false for -1). Reading out of
 * bounds with charCodeAt itself is much slower in V8, and the scanners do it at every edge.
 */
const cc = (text: string, i: number): number => (i >= 0 && i < text.length ? text.charCodeAt(i) : -1);
const wordAt = (text: string, i: number): boolean => isWord(cc(text, i));

// Features: one pass over a short text (an SQL value) records which characters it has and how
// many digits, and rules out most detectors before any of them runs (see textFeatures).
const F_AT = 1;
const F_COLON = 2;
const F_DOT = 4;
const F_PLUS = 8;
const F_DASH = 16;
const F_PAREN = 32;
const F_UNDERSCORE = 64;
const F_X = 128;
const F_B = 256;
const F_A = 512;
const F_ALPHA = 1024;
const CHAR_FLAGS = new Uint16Array(128);
const FLAGGED = { '@': F_AT, ':': F_COLON, '.': F_DOT, '+': F_PLUS, '-': F_DASH, '(': F_PAREN, _: F_UNDERSCORE, x: F_X, b: F_B, B: F_B, A: F_A };
for (const [ch, flag] of Object.entries(FLAGGED)) CHAR_FLAGS[ch.charCodeAt(0)] = flag;
for (let c = 65; c <= 122; c++) if (isAlpha(c)) CHAR_FLAGS[c] = (CHAR_FLAGS[c] ?? 0) | F_ALPHA;
/** CHAR_FLAGS, and 1 << 16 for a digit (one table load per character in textFeatures). */
const CHAR_INFO = Int32Array.from(CHAR_FLAGS, (flags, c) => flags | (isDigit(c) ? 1 << 16 : 0));

/** Checks one RegExp match text[start, end) and adds the span it stands for, if any. */
type MatchCheck = (text: string, out: SpanBuffer, start: number, end: number) => void;

const addMatch: MatchCheck = (_text, out, start, end) => {
  add(out, start, end);
};

/** Runs a global RegExp literal over text and hands each match to `check` (a module-level function: no closure per call). */
function eachMatch(re: RegExp, text: string, out: SpanBuffer, check: MatchCheck): void {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) check(text, out, m.index, re.lastIndex);
}

// ---------------------------------------------------------------------------------------------
// email: dot-atom local part of common characters (letters, digits, . _ % + -, any non-ASCII
// letter), `@`, at least two domain labels, the last one a TLD (letters, or xn--punycode).

const isLocalChar = (c: number): boolean =>
  isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45 || isNonAsciiWordish(c);
const isLabelChar = (c: number): boolean => isAlnum(c) || c === 45 || isNonAsciiWordish(c);

/** End of the longest valid domain starting at `i` (the TLD may have digits or `-` glued to it), or -1. */
function domainEnd(text: string, i: number): number {
  let labels = 0;
  let good = -1;
  for (;;) {
    const start = i;
    let letters = -1; // the length of the label's leading letters, -1 while they are all letters
    for (let c = cc(text, i); isLabelChar(c); c = cc(text, ++i)) {
      if (c < 0x80 && !isAlpha(c) && letters < 0) letters = i - start;
    }
    if (i === start || cc(text, start) === 45) return good;
    labels++;
    const dashEnd = cc(text, i - 1) === 45;
    const tld = letters < 0 || ((cc(text, start) | 32) === 120 && (cc(text, start + 1) | 32) === 110 && text.startsWith('--', start + 2));
    if (labels >= 2 && i - start >= 2 && tld && !dashEnd) good = i;
    else if (labels >= 2 && letters >= 2) good = start + letters; // a TLD with digits or a dash glued to it: `a@b.com1`
    if (dashEnd || cc(text, i) !== 46) return good;
    i++;
  }
}

const scanEmail: Scanner = (text, out) => {
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (isLocalChar(cc(text, start - 1))) start--;
    while (start < at && cc(text, start) === 46) start++;
    if (start === at) continue;
    const end = domainEnd(text, at + 1);
    if (end > 0) add(out, start, end);
  }
};

// ---------------------------------------------------------------------------------------------
// credit_card: 13-19 digits, alone or in groups joined by single spaces or dashes, the first
// group of at least 4 digits (as every brand prints them). A chain of groups (at least 13
// digits) is found by CARD_CHAIN, or in short texts by the same scan written by hand; every
// run of whole groups with 13-19 digits is then checked (Luhn, IIN prefix and the brand's
// lengths), so `ref 2024 4111 1111 1111 1111` finds the card and a 25-digit number finds nothing.

/** The chains of long texts (terminal output): V8's compiled RegExp skips non-digits faster than a JavaScript loop. */
const CARD_CHAIN = /(?<![0-9])[0-9]{4}(?:[ -]?[0-9]){9,}/g;
/** Texts up to this length are scanned by hand (a RegExp call costs more than a short scan). */
const CARD_SCAN_MAX_LENGTH = 256;

/** IIN prefix (first 4 digits) and length of the brands: Visa, Mastercard, Amex, Discover, JCB, Diners. */
function cardBrandOk(p4: number, n: number): boolean {
  const p2 = Math.trunc(p4 / 100);
  const p3 = Math.trunc(p4 / 10);
  if (p4 >= 4000 && p4 <= 4999) return n === 13 || n === 16 || n === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || p2 === 35) return n >= 16 && n <= 19;
  if (p2 === 30 || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19;
  return false;
}

/** Luhn: the sum of the digits of 2 * d. */
const DOUBLED = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];

/**
 * Scratch for one chain: the value of each digit; for each group its start and end in the text
 * and the index of its first digit (groupDigit[groups] = the digit count). Grown for long chains
 * and given back after them.
 */
let chainDigits = new Uint8Array(64);
let groupStart = new Int32Array(64);
let groupEnd = new Int32Array(64);
let groupDigit = new Int32Array(65);

function chainScratch(length: number): void {
  if (chainDigits.length >= length && chainDigits.length <= 4096) return;
  const size = Math.max(64, length);
  chainDigits = new Uint8Array(size);
  groupStart = new Int32Array(size);
  groupEnd = new Int32Array(size);
  groupDigit = new Int32Array(size + 1);
}

/** Brand and Luhn check of the `n` digits chainDigits[from, from + n). */
function cardValid(from: number, n: number): boolean {
  const p4 = (chainDigits[from] ?? 0) * 1000 + (chainDigits[from + 1] ?? 0) * 100 + (chainDigits[from + 2] ?? 0) * 10 + (chainDigits[from + 3] ?? 0);
  if (!cardBrandOk(p4, n)) return false;
  let sum = 0;
  for (let i = from + n - 1, double = false; i >= from; i--, double = !double) {
    const d = chainDigits[i] ?? 0;
    sum += double ? (DOUBLED[d] ?? 0) : d;
  }
  return sum % 10 === 0;
}

/**
 * Checks every run of whole groups with 13-19 digits of the chain text[start, end) (see
 * cardChains). A chain is never preceded or followed by a digit; letters around it do not
 * matter (`x4111111111111111y` is a glued card).
 */
function checkCardChain(text: string, start: number, end: number, out: SpanBuffer): void {
  chainScratch(end - start);
  let digits = 0;
  let groups = 0;
  for (let i = start; i < end; i++) {
    groupStart[groups] = i;
    groupDigit[groups] = digits;
    for (let c = text.charCodeAt(i); i < end && isDigit(c); c = cc(text, ++i)) chainDigits[digits++] = c - 48;
    groupEnd[groups++] = i; // then skip the separator
  }
  groupDigit[groups] = digits;
  for (let a = 0; a < groups; a++) {
    const first = groupStart[a] ?? 0;
    const from = groupDigit[a] ?? 0;
    for (let b = a; b < groups; b++) {
      const n = (groupDigit[b + 1] ?? 0) - from;
      if (n > 19) break;
      const last = groupEnd[b] ?? 0;
      if (n >= 13 && cardValid(from, n)) add(out, first, last);
    }
  }
}

/**
 * The end of the chain that starts at `start` (a digit not preceded by one), or -1: what
 * CARD_CHAIN matches there (the tests compare the two):
 * four digits, then digits each optionally after one space or dash, greedily, at least 13 digits
 * in all. By hand: the native RegExp call cost more than the check of the chain it finds.
 */
function cardChainEnd(text: string, start: number): number {
  const n = text.length;
  let i = start;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  if (i - start < 4) return -1;
  let digits = i - start;
  for (;;) {
    if (i < n && isDigit(text.charCodeAt(i))) {
      i++;
      digits++;
      continue;
    }
    const c = cc(text, i);
    if ((c === 32 || c === 45) && isDigit(cc(text, i + 1))) {
      i += 2;
      digits++;
      continue;
    }
    break;
  }
  return digits >= 13 ? i : -1;
}

/** The card chains of text, left to right, as [start, end) (exported for tests: the RegExp's matches). */
export function cardChains(text: string, each: (start: number, end: number) => void): void {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    if (!isDigit(text.charCodeAt(i))) continue;
    const end = cardChainEnd(text, i);
    if (end >= 0) {
      each(i, end);
      i = end - 1;
      continue;
    }
    // no chain starts in this run of digits (each one is preceded by a digit), and one that
    // failed cannot succeed from a later group: the same end, fewer digits
    while (i + 1 < n && isDigit(text.charCodeAt(i + 1))) i++;
  }
}

const scanCreditCard: Scanner = (text, out) => {
  if (text.length > CARD_SCAN_MAX_LENGTH) {
    CARD_CHAIN.lastIndex = 0;
    for (let m = CARD_CHAIN.exec(text); m !== null; m = CARD_CHAIN.exec(text)) checkCardChain(text, m.index, CARD_CHAIN.lastIndex, out);
    return;
  }
  cardChains(text, (start, end) => {
    checkCardChain(text, start, end, out);
  });
};

// ---------------------------------------------------------------------------------------------
// iban: country code, 2 check digits, BBAN; compact or in groups of 4 joined by single spaces;
// the length must be the country's and the mod-97 remainder 1. Letters in either case.

/**
 * The BBAN format of each IBAN country (the SWIFT IBAN registry): runs of `n` digits, `a`
 * letters, `c` letters or digits. The IBAN's length is 4 + the BBAN's. Checking the format,
 * not only the length and mod-97, is what keeps random hex and base64 text (which may now
 * touch an IBAN on both sides) from matching.
 */
const IBAN_FORMATS: Readonly<Record<string, string>> = {
  AD: '8n12c', AE: '19n', AL: '8n16c', AT: '16n', AZ: '4a20c', BA: '16n', BE: '12n', BG: '4a6n8c', BH: '4a14c',
  BR: '23n1a1c', BY: '4c4n16c', CH: '5n12c', CR: '18n', CY: '8n16c', CZ: '20n', DE: '18n', DK: '14n', DO: '4c20n',
  EE: '16n', EG: '25n', ES: '20n', FI: '14n', FO: '14n', FR: '10n11c2n', GB: '4a14n', GE: '2c16n', GI: '4a15c',
  GL: '14n', GR: '7n16c', GT: '24c', HR: '17n', HU: '24n', IE: '4c14n', IL: '19n', IQ: '4a15n', IS: '22n',
  IT: '1a10n12c', JO: '4a4n18c', KW: '4a22c', KZ: '3n13c', LB: '4n20c', LC: '4a24c', LI: '5n12c', LT: '16n',
  LU: '3n13c', LV: '4a13c', LY: '21n', MC: '10n11c2n', MD: '20c', ME: '18n', MK: '3n10c2n', MR: '23n',
  MT: '4a5n18c', MU: '4a19n3a', NL: '4a10n', NO: '11n', PK: '4c16n', PL: '24n', PS: '4c21n', PT: '21n',
  QA: '4a21c', RO: '4a16c', RS: '18n', SA: '2n18c', SC: '4a20n3a', SE: '20n', SI: '15n', SK: '20n',
  SM: '1a10n12c', ST: '21n', SV: '4a20n', TL: '19n', TN: '20n', TR: '5n17c', UA: '6n19c', VA: '18n',
  VG: '4c16n', XK: '16n',
};

const IBAN_DIGIT = 0;
const IBAN_LETTER = 1;
const IBAN_ALNUM = 2;

/** Per country: the class of each BBAN character (IBAN_DIGIT, IBAN_LETTER, IBAN_ALNUM). */
const IBAN_BBAN: ReadonlyMap<string, Uint8Array> = new Map(
  Object.entries(IBAN_FORMATS).map(([country, format]) => {
    const classes: number[] = [];
    for (const [, count, kind] of format.matchAll(/([0-9]+)([nac])/g)) {
      const k = kind === 'n' ? IBAN_DIGIT : kind === 'a' ? IBAN_LETTER : IBAN_ALNUM;
      for (let i = 0; i < Number(count); i++) classes.push(k);
    }
    return [country, Uint8Array.from(classes)];
  }),
);

/** IBAN_BBAN by the country code's letters, (first - A) * 26 + (second - A), either case: no string per candidate. */
const IBAN_BBAN_BY_CODE: readonly (Uint8Array | undefined)[] = Array.from({ length: 26 * 26 }, (_, i) =>
  IBAN_BBAN.get(String.fromCharCode(65 + Math.trunc(i / 26), 65 + (i % 26))),
);

/** IBAN length of each country (exported for tests). */
export const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map([...IBAN_BBAN].map(([country, bban]) => [country, 4 + bban.length]));

/**
 * A country code of the table and check digits, in either case (`(?:A[DELTZ]|B[AEGHRY]|…)[0-9]{2}`):
 * glued letters before it cannot be part of it (the digits fix where it starts), and naming the
 * countries keeps the candidates in random text (hex) few.
 */
const IBAN_START = new RegExp(
  `(?:${Object.entries(
    Object.keys(IBAN_FORMATS).reduce<Record<string, string>>((by, code) => {
      by[code.charAt(0)] = (by[code.charAt(0)] ?? '') + code.charAt(1);
      return by;
    }, {}),
  )
    .map(([first, seconds]) => `${first}[${seconds}]`)
    .join('|')})[0-9]{2}`,
  'gi',
);

/** Remainder mod 97 of the IBAN in text[start, end) (spaces skipped), rearranged per ISO 13616. */
function ibanMod97(text: string, start: number, end: number): number {
  let r = 0;
  const step = (i: number): void => {
    const c = cc(text, i);
    if (isDigit(c)) r = (r * 10 + c - 48) % 97;
    else if (isAlpha(c)) r = (r * 100 + (c | 32) - 87) % 97; // A = 10 ... Z = 35
  };
  for (let i = start + 4; i < end; i++) step(i);
  for (let i = start; i < start + 4; i++) step(i);
  return r;
}

/** Whether code unit c may be BBAN character k of the format (false past its end). */
function bbanCharOk(bban: Uint8Array, k: number, c: number): boolean {
  const want = bban[k];
  if (want === IBAN_DIGIT) return isDigit(c);
  if (want === IBAN_LETTER) return isAlpha(c);
  return want === IBAN_ALNUM && isAlnum(c);
}

/**
 * End of the IBAN at `start` whose BBAN has the format `bban`, compact or grouped by 4 (single
 * spaces), or -1. What follows does not matter (the country's length says where it ends):
 * `DE89…3000end` is found. Each character is checked against the format as it is read, so
 * random text fails within a few characters.
 */
function ibanEnd(text: string, start: number, bban: Uint8Array): number {
  const n = bban.length;
  let i = start + 4;
  let k = 0;
  while (k < n && bbanCharOk(bban, k, cc(text, i))) {
    i++;
    k++;
  }
  if (k === n) return i;
  if (k !== 0) return -1;
  while (k < n) {
    if (cc(text, i) !== 32) return -1;
    i++;
    for (const last = Math.min(k + 4, n); k < last; k++, i++) if (!bbanCharOk(bban, k, cc(text, i))) return -1;
  }
  return i;
}

const checkIban: MatchCheck = (text, out, s) => {
  const bban = IBAN_BBAN_BY_CODE[((text.charCodeAt(s) | 32) - 97) * 26 + ((text.charCodeAt(s + 1) | 32) - 97)];
  if (bban === undefined) return;
  const end = ibanEnd(text, s, bban);
  if (end > 0 && ibanMod97(text, s, end) === 1) add(out, s, end);
};

/** test() rather than exec(): no match array per candidate (a match is always 4 characters). */
const scanIban: Scanner = (text, out) => {
  IBAN_START.lastIndex = 0;
  while (IBAN_START.test(text)) checkIban(text, out, IBAN_START.lastIndex - 4, IBAN_START.lastIndex);
};

// ---------------------------------------------------------------------------------------------
// us_ssn: AAA-GG-SSSS; area not 000, 666 or 9xx; group not 00; serial not 0000.

/** Not inside a longer number or dash-joined digits; letters around it do not matter. */
const SSN = /(?<![0-9]|[0-9]-)[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9]|-[0-9])/g;

const checkSsn: MatchCheck = (text, out, s, e) => {
  const area = text.slice(s, s + 3);
  if (area === '000' || area === '666' || area.startsWith('9')) return;
  if (text.startsWith('00', s + 4) || text.startsWith('0000', s + 7)) return;
  add(out, s, e);
};

const scanUsSsn: Scanner = (text, out) => {
  if (text.includes('-')) eachMatch(SSN, text, out, checkSsn);
};

// ---------------------------------------------------------------------------------------------
// phone: `+` and 8-15 digits (first not 0) with single spaces, dashes or parentheses between
// digit groups; or North-American `(555) 123-4567`, `555-123-4567`, `555.123.4567` (area code
// and exchange start with 2-9).
// Plain digit runs and dates have no `+` and the wrong shape, so they are not phones.

/** The exchange-and-line tail (3 digits, separator, 4 digits) of a North-American number; the area code before it is checked by hand. */
const NANP_TAIL = /[0-9]{3}[-.][0-9]{4}(?![0-9]|[-.][0-9])/g;

/** Start of the North-American number whose tail starts at `t`, or -1. */
function nanpStart(text: string, t: number): number {
  const areaAt = (i: number): boolean =>
    cc(text, i) >= 50 && cc(text, i) <= 57 && isDigit(cc(text, i + 1)) && isDigit(cc(text, i + 2));
  const sep = cc(text, t - 1);
  if ((sep === 45 || sep === 46) && areaAt(t - 4) && !isDigit(cc(text, t - 5))) return t - 4; // 555-123-4567
  const paren = sep === 32 ? t - 2 : t - 1; // (555) 123-4567, (555)123-4567
  if (cc(text, paren) === 41 && areaAt(paren - 3) && cc(text, paren - 4) === 40 && !isDigit(cc(text, paren - 5))) return paren - 4;
  return -1;
}

const isPhoneSep = (c: number): boolean => c === 32 || c === 45 || c === 40 || c === 41;

/** End of an E.164 number whose `+` is at `plus`, or -1. */
function e164End(text: string, plus: number): number {
  if (isDigit(cc(text, plus - 1))) return -1; // an arithmetic `1+2…`, not a number
  let i = plus + 1;
  let c = cc(text, i);
  if (!isDigit(c) || c === 48) return -1;
  let digits = 0;
  let good = -1;
  for (;;) {
    while (isDigit(c)) {
      digits++;
      c = cc(text, ++i);
    }
    if (digits > 15) return good;
    if (digits >= 8) good = i;
    if (isWord(c)) return good; // glued letters end the number
    // up to two separators, not the same one twice ("  ", "--")
    const sep = i;
    while (isPhoneSep(c) && i - sep < 2 && !(i > sep && c === cc(text, i - 1))) c = cc(text, ++i);
    if (i === sep || !isDigit(c)) return good;
  }
}

const checkNanp: MatchCheck = (text, out, t, e) => {
  const start = nanpStart(text, t);
  if (start >= 0) add(out, start, e);
};

const scanPhone: Scanner = (text, out) => {
  for (let p = text.indexOf('+'); p >= 0; p = text.indexOf('+', p + 1)) {
    const end = e164End(text, p);
    if (end > 0) add(out, p, end);
  }
  if (text.length >= 12) eachMatch(NANP_TAIL, text, out, checkNanp);
};

// ---------------------------------------------------------------------------------------------
// ip_address: IPv4 (octets 0-255, not part of a longer dotted number); IPv6 full, compressed
// (`::`, at least one hex digit) and with an embedded IPv4 tail. A zone (`%eth0`) or prefix
// length (`/64`) is not part of the span.

/** Not inside a longer number or dotted number; letters around it do not matter (`ip10.0.0.1`). */
const IPV4 = /(?<![0-9]|[0-9]\.)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9]|\.[0-9])/g;

/** Whether text[start, end) is a dotted quad with octets <= 255. */
function isIPv4(text: string, start: number, end: number): boolean {
  let parts = 0;
  for (let i = start; i <= end; i++) {
    const s = i;
    let v = 0;
    while (i < end && isDigit(cc(text, i))) v = v * 10 + cc(text, i++) - 48;
    if (i === s || i - s > 3 || v > 255) return false;
    parts++;
    if (i < end && cc(text, i) !== 46) return false;
  }
  return parts === 4;
}

/** Whether text[start, end) is an IPv6 address. */
function isIPv6(text: string, start: number, end: number): boolean {
  let i = start;
  let groups = 0;
  let compressed = false;
  if (text.startsWith('::', i)) {
    compressed = true;
    i += 2;
    if (i === end) return false; // a bare "::" is punctuation more often than an address
  }
  while (i < end) {
    const g = i;
    while (i < end && i - g < 4 && isHex(cc(text, i))) i++;
    if (i === g) return false;
    if (i < end && cc(text, i) === 46) {
      if (!isIPv4(text, g, end)) return false;
      groups += 2;
      break;
    }
    groups++;
    if (i === end) break;
    if (cc(text, i) !== 58 || groups > 8) return false;
    if (cc(text, i + 1) === 58) {
      if (compressed) return false;
      compressed = true;
      i += 2;
    } else if (++i === end) {
      return false;
    }
  }
  return compressed ? groups <= 7 : groups === 8;
}

const isIPv6Char = (c: number): boolean => isHex(c) || c === 58 || c === 46;

/**
 * Finds an IPv6 address in a run of hex digits, colons and dots text[start, end). The run may
 * begin with a label glued to the address ("node:2001:db8::1" gives the run "de:2001:db8::1"):
 * when the run's start is inside a word, or the run is not an address but what follows its
 * first colon is a compressed one, the address after that first colon is taken.
 */
function checkIPv6Run(text: string, start: number, end: number, out: SpanBuffer): void {
  if (wordAt(text, end)) return;
  while (end > start && cc(text, end - 1) === 46) end--;
  if (cc(text, end - 1) === 58 && cc(text, end - 2) !== 58) end--;
  if (cc(text, start) === 58 && cc(text, start + 1) !== 58) start++;
  const glued = wordAt(text, start - 1);
  if (!glued && isIPv6(text, start, end)) {
    add(out, start, end);
    return;
  }
  let colon = start;
  while (colon < end && cc(text, colon) !== 58) colon++;
  const next = colon + 1;
  if (colon === start || cc(text, next) === 58 || next >= end || !isIPv6(text, next, end)) return;
  if (glued || text.slice(next, end).includes('::')) add(out, next, end);
}

const checkIPv4: MatchCheck = (text, out, s, e) => {
  if (isIPv4(text, s, e)) add(out, s, e);
};

const scanIpAddress: Scanner = (text, out, features) => {
  if ((features & F_DOT) !== 0 && features >>> 16 >= 4 && text.length >= 7 && text.includes('.')) eachMatch(IPV4, text, out, checkIPv4);
  for (let colon = (features & F_COLON) === 0 ? -1 : text.indexOf(':'); colon >= 0; ) {
    let s = colon;
    while (isIPv6Char(cc(text, s - 1))) s--;
    let e = colon + 1;
    while (isIPv6Char(cc(text, e))) e++;
    checkIPv6Run(text, s, e, out);
    colon = text.indexOf(':', e);
  }
};

// ---------------------------------------------------------------------------------------------
// jwt: header.payload.signature, base64url; header and payload decode to JSON objects, the
// header has "alg". The signature may be empty (alg "none").

/** Decodes base64url to a string of byte values, or null. */
function decodeBase64Url(seg: string): string | null {
  if (seg.length % 4 === 1) return null;
  try {
    return atob(seg.replaceAll('-', '+').replaceAll('_', '/') + '=='.slice(0, (4 - (seg.length % 4)) % 4));
  } catch {
    return null;
  }
}

function jsonObject(seg: string): Record<string, unknown> | null {
  const raw = decodeBase64Url(seg);
  if (raw === null || !raw.trimStart().startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Base64 of a JSON object starts with "ey" (`{"`, `{ `), "ew" (`{\n`, `{\t`, `{\r`) or "e3" (`{}`). */
const startsLikeJsonB64 = (text: string, i: number): boolean =>
  cc(text, i) === 101 && (cc(text, i + 1) === 121 || cc(text, i + 1) === 119 || cc(text, i + 1) === 51);

/** Whether text[h, dot) is a JWT header: base64url of a JSON object with "alg". */
function isJwtHeader(text: string, h: number, dot: number): boolean {
  const header = jsonObject(text.slice(h, dot));
  return header !== null && 'alg' in header;
}

/** Header starts tried inside one run of base64url characters glued before a header, and how far back. */
const JWT_GLUED_TRIES = 32;
const JWT_GLUED_REACH = 16 * 1024;

/**
 * Start of the JWT header that ends at `dot`, or -1. The header is the whole run of base64url
 * characters before the dot, or, when characters are glued before it (`tokeneyJhbGci…`), the
 * nearest start inside the run (tried right to left, a bounded number of times) that decodes
 * to a header: a suffix of base64 that is not the header does not decode to a JSON object.
 */
function jwtHeaderStart(text: string, dot: number): number {
  let h = dot;
  while (isB64Url(cc(text, h - 1))) h--;
  if (h === dot) return -1;
  if (startsLikeJsonB64(text, h) && cc(text, h - 1) !== 46 && isJwtHeader(text, h, dot)) return h;
  const floor = Math.max(h + 1, dot - JWT_GLUED_REACH);
  let tries = 0;
  for (let s = text.lastIndexOf('e', dot - 2); s >= floor && tries < JWT_GLUED_TRIES; s = text.lastIndexOf('e', s - 1)) {
    if (!startsLikeJsonB64(text, s) || (dot - s) % 4 === 1) continue;
    tries++;
    if (isJwtHeader(text, s, dot)) return s;
  }
  return -1;
}

const scanJwt: Scanner = (text, out) => {
  for (let dot = text.indexOf('.e'); dot >= 0; dot = text.indexOf('.e', dot + 1)) {
    if (!startsLikeJsonB64(text, dot + 1)) continue;
    let p = dot + 1;
    while (isB64Url(cc(text, p))) p++;
    if (cc(text, p) !== 46) continue;
    if (jsonObject(text.slice(dot + 1, p)) === null) continue;
    const h = jwtHeaderStart(text, dot);
    if (h < 0) continue;
    let s = p + 1;
    while (isB64Url(cc(text, s))) s++;
    add(out, h, s);
    dot = s;
  }
};

// ---------------------------------------------------------------------------------------------
// Tokens with a fixed prefix.

// Found wherever they stand: the prefix and the length (or the alphabet, taken greedily) make
// the token, whatever is glued before or after it.
const AWS_KEY = /A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z2-7]{16}/g;
const GITHUB_TOKEN = /gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{82,}/g;
const SLACK_TOKEN = /(?:xox[abeprs]|xapp)-[A-Za-z0-9-]{10,}/g;
const BEARER = /bearer[ \t]+[A-Za-z0-9\-._~+/]{16,}=*/gi;

/**
 * Every key, also where matches overlap: glue that itself looks like a key's start (`ASIA` +
 * the key) must not take the key's first characters and leave the rest visible.
 */
const scanAwsKey: Scanner = (text, out) => {
  AWS_KEY.lastIndex = 0;
  for (let m = AWS_KEY.exec(text); m !== null; m = AWS_KEY.exec(text)) {
    add(out, m.index, AWS_KEY.lastIndex);
    AWS_KEY.lastIndex = m.index + 1;
  }
};

const scanGithubToken: Scanner = (text, out) => {
  if (text.includes('_')) eachMatch(GITHUB_TOKEN, text, out, addMatch);
};

/** A Slack token without its trailing dashes. */
const checkSlack: MatchCheck = (text, out, s, e) => {
  while (cc(text, e - 1) === 45) e--;
  add(out, s, e);
};

const scanSlackToken: Scanner = (text, out) => {
  if (text.includes('xox') || text.includes('xapp-')) eachMatch(SLACK_TOKEN, text, out, checkSlack);
};

/** The token after "Bearer" and its blanks. */
const checkBearer: MatchCheck = (text, out, s, e) => {
  let t = s + 6;
  while (cc(text, t) === 32 || cc(text, t) === 9) t++;
  add(out, t, e);
};

/**
 * A token may run into the next `Bearer` glued to it (`…tokenBearer token2`): a token holds no
 * blank, so that `Bearer` can only end the match; the search resumes at it.
 */
const scanBearer: Scanner = (text, out) => {
  BEARER.lastIndex = 0;
  for (let m = BEARER.exec(text); m !== null; m = BEARER.exec(text)) {
    const end = BEARER.lastIndex;
    checkBearer(text, out, m.index, end);
    if (end - m.index > 12 && text.slice(end - 6, end).toLowerCase() === 'bearer') BEARER.lastIndex = end - 6;
  }
};

// ---------------------------------------------------------------------------------------------
// private_key: from `-----BEGIN <label>-----` (label of A-Z, 0-9, spaces, containing "PRIVATE
// KEY") through the matching `-----END <label>-----`. A block without its END line runs to the
// end of the text.

const BEGIN = '-----BEGIN ';

/** An unterminated private key block: where it starts, the END line it waits for. */
export interface OpenKeyBlock {
  readonly start: number;
  readonly endMarker: string;
  /** where the search for endMarker may resume */
  readonly searchFrom: number;
}

/** Parses a BEGIN line at `b`; the END marker it needs and where the BEGIN marker ends, or null. */
function beginMarker(text: string, b: number): { readonly endMarker: string; readonly after: number } | null {
  const from = b + BEGIN.length;
  let i = from;
  const isLabel = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 90) || c === 32;
  while (i - from < 64 && isLabel(cc(text, i))) i++;
  const label = text.slice(from, i);
  if (!text.startsWith('-----', i) || !label.includes('PRIVATE KEY')) return null;
  return { endMarker: `-----END ${label}-----`, after: i + 5 };
}

/**
 * Adds the private key blocks of text to out (when given) and returns the block that is
 * still open at the end of the text, or null.
 */
export function scanPrivateKeys(text: string, out: SpanBuffer | null): OpenKeyBlock | null {
  for (let b = text.indexOf(BEGIN); b >= 0; ) {
    const marker = beginMarker(text, b);
    if (marker === null) {
      b = text.indexOf(BEGIN, b + 1);
      continue;
    }
    const e = text.indexOf(marker.endMarker, marker.after);
    if (e < 0) {
      if (out !== null) add(out, b, text.length);
      return { start: b, endMarker: marker.endMarker, searchFrom: marker.after };
    }
    const end = e + marker.endMarker.length;
    if (out !== null) add(out, b, end);
    b = text.indexOf(BEGIN, end);
  }
  return null;
}

const scanPrivateKey: Scanner = (text, out) => {
  scanPrivateKeys(text, out);
};

// ---------------------------------------------------------------------------------------------
// url_credentials: the password of scheme://user:password@host. The authority ends at
// whitespace, / ? # or a quote / angle bracket; the password runs from the first ':' of the
// userinfo to the last '@' (so an unencoded '@' in a password is still covered).

const endsAuthority = (c: number): boolean =>
  c <= 32 || c === 127 || c === 47 || c === 63 || c === 35 || c === 34 || c === 39 || c === 96 || c === 60 || c === 62;
const isSchemeChar = (c: number): boolean => isAlnum(c) || c === 43 || c === 45 || c === 46;

const scanUrlCredentials: Scanner = (text, out) => {
  for (let sep = text.indexOf('://'); sep >= 0; sep = text.indexOf('://', sep + 3)) {
    let s = sep;
    while (isSchemeChar(cc(text, s - 1))) s--;
    while (s < sep && !isAlpha(cc(text, s))) s++;
    if (s === sep) continue;
    const start = sep + 3;
    let end = start;
    while (end < text.length && !endsAuthority(cc(text, end))) end++;
    // Both searches stay inside the authority: linear time over the text.
    let at = end - 1;
    while (at >= start && cc(text, at) !== 64) at--;
    let colon = start;
    while (colon < at && cc(text, colon) !== 58) colon++;
    if (colon < at - 1) add(out, colon + 1, at);
  }
};

// ---------------------------------------------------------------------------------------------

const SCANNERS: Readonly<Record<Detector, Scanner>> = {
  email: scanEmail,
  credit_card: scanCreditCard,
  iban: scanIban,
  us_ssn: scanUsSsn,
  phone: scanPhone,
  ip_address: scanIpAddress,
  jwt: scanJwt,
  aws_access_key: scanAwsKey,
  github_token: scanGithubToken,
  slack_token: scanSlackToken,
  private_key: scanPrivateKey,
  url_credentials: scanUrlCredentials,
  bearer_token: scanBearer,
};

// ---------------------------------------------------------------------------------------------

/** Features of a text that has everything: no detector is ruled out. */
export const ALL_FEATURES = 0x7fffffff;

/** The characters (flags, low 16 bits) and the digit count (capped at 255, from bit 16) of text. */
export function textFeatures(text: string): number {
  let flags = 0;
  let digits = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const info = c < 128 ? (CHAR_INFO[c] ?? 0) : F_ALPHA; // non-ASCII letters count (IDN domains)
    flags |= info;
    digits += info >>> 16;
  }
  return (flags & 0xffff) | (Math.min(digits, 255) << 16);
}

/** Bytes-features of a value that is not plain ASCII: the callers decode it and run the detectors. */
export const NOT_ASCII = -1;

/**
 * textFeatures of the text whose UTF-8 is bytes[start, end), read from the bytes, when they are
 * all ASCII (then the bytes are the text's code units, one for one); NOT_ASCII otherwise.
 */
export function bytesFeatures(bytes: Uint8Array, start: number, end: number): number {
  let flags = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = bytes[i] ?? 0;
    if (c >= 128) return NOT_ASCII;
    const info = CHAR_INFO[c] ?? 0;
    flags |= info;
    digits += info >>> 16;
  }
  return (flags & 0xffff) | (Math.min(digits, 255) << 16);
}

/**
 * The features every text that contains `literal` has (bytesFeatures' flags and digit count of
 * the literal's ASCII characters): a text without them cannot contain it.
 */
export function literalFeatures(literal: string): number {
  let flags = 0;
  let digits = 0;
  for (let i = 0; i < literal.length; i++) {
    const c = literal.charCodeAt(i);
    if (c >= 128) continue;
    const info = CHAR_INFO[c] ?? 0;
    flags |= info;
    digits += info >>> 16;
  }
  return (flags & 0xffff) | (Math.min(digits, 255) << 16);
}

/** Whether a text of this length and these features may hold a match of the detector (runDetector's check). */
export function detectorMayMatch(d: CompiledDetector, length: number, features: number): boolean {
  return !(length < d.length || (features & d.all) !== d.all || (d.any !== 0 && (features & d.any) === 0) || features >>> 16 < d.digits);
}

/** A detector ready to run: what a text needs to possibly hold a match, and its scanner. */
export interface CompiledDetector {
  readonly id: Detector;
  /** feature flags that must all be present */
  readonly all: number;
  /** feature flags of which one must be present (0: none needed) */
  readonly any: number;
  readonly digits: number;
  readonly length: number;
  readonly scan: Scanner;
}

type Needs = Pick<CompiledDetector, 'all' | 'any' | 'digits' | 'length'>;

const NEEDS: Readonly<Record<Detector, Needs>> = {
  email: { all: F_AT | F_DOT | F_ALPHA, any: 0, digits: 0, length: 6 },
  credit_card: { all: 0, any: 0, digits: 13, length: 13 },
  iban: { all: F_ALPHA, any: 0, digits: 2, length: 15 },
  us_ssn: { all: F_DASH, any: 0, digits: 9, length: 11 },
  phone: { all: 0, any: F_PLUS | F_DASH | F_DOT | F_PAREN, digits: 8, length: 9 },
  ip_address: { all: 0, any: F_DOT | F_COLON, digits: 0, length: 3 },
  jwt: { all: F_DOT | F_ALPHA, any: 0, digits: 0, length: 12 },
  aws_access_key: { all: F_A, any: 0, digits: 0, length: 20 },
  github_token: { all: F_UNDERSCORE, any: 0, digits: 0, length: 40 },
  slack_token: { all: F_DASH | F_X, any: 0, digits: 0, length: 15 },
  private_key: { all: F_DASH, any: 0, digits: 0, length: 27 },
  url_credentials: { all: F_COLON | F_AT, any: 0, digits: 0, length: 7 },
  bearer_token: { all: F_B, any: 0, digits: 0, length: 23 },
};

export function compileDetector(id: Detector): CompiledDetector {
  return COMPILED[id];
}

const COMPILED = Object.fromEntries(
  Object.entries(NEEDS).map(([id, needs]) => [id, { id, ...needs, scan: SCANNERS[id as Detector] }]),
) as Readonly<Record<Detector, CompiledDetector>>;

/**
 * Adds the spans of a detector to `out`.
 * `features` (from textFeatures) lets it return at once when the text cannot hold a match.
 */
export function runDetector(d: CompiledDetector, text: string, out: SpanBuffer, features: number): void {
  if (!detectorMayMatch(d, text.length, features)) return;
  d.scan(text, out, features);
}

/** Adds the spans of one detector to `out`. */
export function scanDetector(text: string, detector: Detector, out: SpanBuffer): void {
  runDetector(COMPILED[detector], text, out, ALL_FEATURES);
}

/** All detected spans of the given detector in text, by start; non-overlapping is NOT required. */
export function detect(text: string, detector: Detector): Span[] {
  const out = spanBuffer();
  scanDetector(text, detector, out);
  const spans: Span[] = [];
  for (let i = 0; i + 1 < out.n; i += 2) spans.push({ start: out.pairs[i] ?? 0, end: out.pairs[i + 1] ?? 0 });
  return spans.sort((a, b) => a.start - b.start || b.end - a.end);
}
