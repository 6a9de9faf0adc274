/**
 * A JavaScript matcher for the simplest user patterns, which spares the native RE2 call (1-2 µs
 * per value that has a candidate, most of it converting the string to UTF-8 and building the
 * match array). The pattern is still compiled by RE2 first (the syntax check, and the fallback
 * for everything else).
 *
 * The subset: a sequence of atoms, each an ASCII set — a printable ASCII literal, an escaped
 * ASCII punctuation character, `\d`, `\w`, or a class `[...]` of those and ranges — with an
 * optional `?`, `{n}` or `{n,m}`. No alternation, groups, flags, anchors, `.`, `*`, `+`,
 * negated classes or non-ASCII characters; at most 64 characters per match, at least one.
 * A variable atom (`?`, `{n,m}`) must be the last one or be followed by an atom that needs at
 * least one character and shares none with it. Then, at a given start, taking each atom
 * greedily without backtracking finds the one match RE2's leftmost-first semantics choose
 * (fewer characters of a variable atom would leave one of its own characters for the next
 * atom, which cannot take it), so scanning starts left to right gives RE2's matches exactly,
 * in at most 64 steps per start: linear time. The sets are ASCII-only: no match contains a
 * newline or part of a surrogate pair, and `m`/`u` change nothing.
 */

/** Longest match the subset allows (bounds the work per start position). */
const MAX_LENGTH = 64;

export interface SimplePattern {
  /** the fixed literal every match starts with ('' when none) */
  readonly prefix: string;
  /** the start of the first match in text at or after `from`, or -1; its end is `lastEnd` */
  find(text: string, from: number): number;
  /** the end of the match `find` returned last */
  readonly lastEnd: number;
}

interface Atom {
  readonly set: Uint8Array;
  readonly min: number;
  readonly max: number;
}

const isPunct = (c: number): boolean => (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const META = new Set('.^$|?*+()[]{}\\');

function range(set: Uint8Array, lo: number, hi: number): void {
  for (let c = lo; c <= hi; c++) set[c] = 1;
}

/** \d and \w (ASCII in RE2), into set; false for any other letter escape. */
function perlClass(set: Uint8Array, letter: string): boolean {
  if (letter === 'd') {
    range(set, 48, 57);
    return true;
  }
  if (letter === 'w') {
    range(set, 48, 57);
    range(set, 65, 90);
    range(set, 97, 122);
    set[95] = 1;
    return true;
  }
  return false;
}

/** Parses the atoms of source, or null when it is outside the subset. */
function parse(source: string): Atom[] | null {
  const atoms: Atom[] = [];
  let i = 0;
  /** one class member at i: a code (>= 0) and the new index, a Perl class (-1), or null */
  const member = (set: Uint8Array): { readonly code: number; readonly next: number } | null => {
    const c = source.charCodeAt(i);
    if (c === 0x5c) {
      const e = source.charCodeAt(i + 1);
      if (isPunct(e)) return { code: e, next: i + 2 };
      return perlClass(set, source.charAt(i + 1)) ? { code: -1, next: i + 2 } : null;
    }
    if (c < 0x20 || c > 0x7e || c === 0x5b || c === 0x5d) return null;
    return { code: c, next: i + 1 };
  };
  while (i < source.length) {
    const set = new Uint8Array(128);
    const c = source.charCodeAt(i);
    if (c === 0x5b) {
      // [...]: members and ranges of letters or digits; a bare '-' only first or last
      i++;
      if (source.charAt(i) === '^' || source.charAt(i) === ']') return null;
      const open = i;
      while (i < source.length && source.charAt(i) !== ']') {
        if (source.charAt(i) === '-' && i !== open && source.charAt(i + 1) !== ']') return null;
        const lo = member(set);
        if (lo === null) return null;
        i = lo.next;
        if (lo.code < 0) continue;
        if (source.charAt(i) === '-' && source.charAt(i + 1) !== ']' && i + 1 < source.length) {
          i++;
          const hi = member(set);
          if (hi === null || !isAlnum(lo.code) || !isAlnum(hi.code) || hi.code < lo.code) return null;
          i = hi.next;
          range(set, lo.code, hi.code);
        } else {
          set[lo.code] = 1;
        }
      }
      if (i >= source.length) return null;
      i++;
    } else if (c === 0x5c) {
      const m = member(set);
      if (m === null) return null;
      if (m.code >= 0) set[m.code] = 1;
      i = m.next;
    } else {
      if (c < 0x20 || c > 0x7e || META.has(source.charAt(i))) return null;
      set[c] = 1;
      i++;
    }
    // a quantifier: ?, {n}, {n,m}; not lazy, not twice
    let min = 1;
    let max = 1;
    const q = source.charAt(i);
    if (q === '?') {
      min = 0;
      i++;
    } else if (q === '{') {
      const m = /^\{([0-9]{1,4})(?:,([0-9]{1,4}))?\}/.exec(source.slice(i));
      if (m === null) return null;
      min = Number(m[1]);
      max = m[2] === undefined ? min : Number(m[2]);
      if (max < min) return null;
      i += m[0].length;
    }
    if (i < source.length && '?*+{'.includes(source.charAt(i))) return null;
    if (max > 0) atoms.push({ set, min, max });
  }
  return atoms;
}

function disjoint(a: Uint8Array, b: Uint8Array): boolean {
  for (let c = 0; c < 128; c++) if (a[c] === 1 && b[c] === 1) return false;
  return true;
}

/** A matcher for source when it is in the subset (see above), else null. */
export function compileSimplePattern(source: string): SimplePattern | null {
  const atoms = parse(source);
  if (atoms === null || atoms.length === 0) return null;
  let minLength = 0;
  let maxLength = 0;
  for (let k = 0; k < atoms.length; k++) {
    const a = atoms[k];
    if (a === undefined) return null;
    minLength += a.min;
    maxLength += a.max;
    const next = atoms[k + 1];
    if (a.min !== a.max && next !== undefined && (next.min === 0 || !disjoint(a.set, next.set))) return null;
  }
  if (minLength === 0 || maxLength > MAX_LENGTH) return null;

  // Flat tables: the sets one after the other (128 entries each), the counts.
  const n = atoms.length;
  const sets = new Uint8Array(n * 128);
  const mins = new Int32Array(n);
  const maxs = new Int32Array(n);
  atoms.forEach((a, k) => {
    sets.set(a.set, k * 128);
    mins[k] = a.min;
    maxs[k] = a.max;
  });
  // The prefix: leading atoms of exactly one character, one count.
  let prefix = '';
  for (const a of atoms) {
    const members = a.set.reduce((count, v) => count + v, 0);
    if (a.min !== 1 || a.max !== 1 || members !== 1) break;
    prefix += String.fromCharCode(a.set.indexOf(1));
  }
  const skip = prefix.length;

  /** End of the match starting at s (its first `skip` characters already checked), or -1. */
  const matchAt = (text: string, s: number): number => {
    let i = s + skip;
    for (let k = skip; k < n; k++) {
      const base = k * 128;
      const max = maxs[k] ?? 0;
      let count = 0;
      while (count < max) {
        const c = i < text.length ? text.charCodeAt(i) : 128;
        if (c >= 128 || sets[base + c] !== 1) break;
        i++;
        count++;
      }
      if (count < (mins[k] ?? 0)) return -1;
    }
    return i;
  };

  const matcher = {
    prefix,
    lastEnd: -1,
    find(text: string, from: number): number {
      const last = text.length - minLength;
      if (skip > 0) {
        for (let s = text.indexOf(prefix, from); s >= 0 && s <= last; s = text.indexOf(prefix, s + 1)) {
          const e = matchAt(text, s);
          if (e >= 0) {
            matcher.lastEnd = e;
            return s;
          }
        }
        return -1;
      }
      for (let s = from; s <= last; s++) {
        const e = matchAt(text, s);
        if (e >= 0) {
          matcher.lastEnd = e;
          return s;
        }
      }
      return -1;
    },
  };
  return matcher;
}
