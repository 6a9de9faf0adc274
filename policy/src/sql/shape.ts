/**
 * A conservative statement-shape key: the token stream with number and plain string literals
 * replaced by placeholders. Two texts with the same key differ only in literal values, so a
 * decision that did not look at literal values holds for both. Anything this small lexer is not
 * certain about (comments, dollar quoting, E'' / U& / B'' / X'' strings, backslashes, non-ASCII,
 * odd numbers) yields undefined: no shape, decide from the text.
 *
 * The key is built as bytes in a scratch buffer and made into one flat string at the end (the
 * text is ASCII by then): no string is made per token. It runs on every statement the sidecar
 * forwards, so it matters: about a tenth of the time of concatenating tokens.
 */
const MAX_LENGTH = 8192;

/** the key's bytes: a key is never longer than its text */
const scratch = Buffer.alloc(MAX_LENGTH);

// character classes of ASCII, one table load per character
const IDENT_START = 1;
const IDENT_PART = 2;
const DIGIT = 4;
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
  const digit = c >= 48 && c <= 57;
  CLASS[c] = (letter ? IDENT_START | IDENT_PART : 0) | (digit ? DIGIT | IDENT_PART : 0) | (c === 36 ? IDENT_PART : 0);
}
/** the class of code unit c (0 outside ASCII and past the end: NaN) */
const cls = (c: number): number => (c < 128 ? (CLASS[c] ?? 0) : 0);

export function statementShape(text: string): string | undefined {
  const n = text.length;
  if (n > MAX_LENGTH) return undefined;
  const out = scratch;
  let o = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c > 127) return undefined;
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      // Whitespace runs become one space; tokens keep their adjacency (`<=` is not `< =`).
      if (o > 0 && out[o - 1] !== 32) out[o++] = 32;
      i++;
      continue;
    }
    const k = cls(c);
    if ((k & IDENT_START) !== 0) {
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if ((cls(d) & IDENT_PART) === 0) break;
        out[o++] = d >= 65 && d <= 90 ? d + 32 : d;
      }
      // A prefixed string (E'..', B'..', X'..', N'..', U&'..') or U& identifier: not handled.
      const next = text.charCodeAt(i);
      if (next === 39 || next === 38) return undefined;
      continue;
    }
    if ((k & DIGIT) !== 0) {
      if (i > 0 && text.charCodeAt(i - 1) === 46) return undefined;
      while (i < n && (cls(text.charCodeAt(i)) & DIGIT) !== 0) i++;
      if (text.charCodeAt(i) === 46 && (cls(text.charCodeAt(i + 1)) & DIGIT) !== 0) {
        i++;
        while (i < n && (cls(text.charCodeAt(i)) & DIGIT) !== 0) i++;
      }
      const after = text.charCodeAt(i);
      if (i < n && ((cls(after) & IDENT_PART) !== 0 || after === 46)) return undefined;
      out[o++] = 1;
      continue;
    }
    if (c === 39) {
      i++;
      for (;;) {
        if (i >= n) return undefined;
        const d = text.charCodeAt(i);
        if (d === 92 || d > 127) return undefined;
        if (d === 39) {
          if (text.charCodeAt(i + 1) === 39) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      out[o++] = 2;
      continue;
    }
    if (c === 34) {
      out[o++] = 34;
      i++;
      while (i < n && text.charCodeAt(i) !== 34) {
        const d = text.charCodeAt(i);
        if (d > 127) return undefined;
        out[o++] = d;
        i++;
      }
      if (i >= n) return undefined;
      out[o++] = 34;
      i++;
      continue;
    }
    if (c === 36) {
      // $1 parameters are fine; $tag$ dollar quoting is not handled.
      out[o++] = 36;
      i++;
      if ((cls(text.charCodeAt(i)) & DIGIT) === 0) return undefined;
      while (i < n && (cls(text.charCodeAt(i)) & DIGIT) !== 0) out[o++] = text.charCodeAt(i++);
      continue;
    }
    if (c === 45 && text.charCodeAt(i + 1) === 45) return undefined;
    if (c === 47 && text.charCodeAt(i + 1) === 42) return undefined;
    if (c === 92) return undefined;
    out[o++] = c;
    i++;
  }
  // trimEnd (vertical tab and form feed are copied like other characters, and are whitespace to it)
  while (o > 0 && (out[o - 1] === 32 || out[o - 1] === 11 || out[o - 1] === 12)) o--;
  return out.toString('latin1', 0, o);
}
