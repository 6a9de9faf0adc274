/**
 * A conservative statement-shape key: the token stream with number and plain string literals
 * replaced by placeholders. Two texts with the same key differ only in literal values, so a
 * decision that did not look at literal values holds for both. Anything this small lexer is not
 * certain about (comments, dollar quoting, E'' / U& / B'' / X'' strings, backslashes, non-ASCII,
 * odd numbers) yields undefined: no shape, decide from the text.
 */
const MAX_LENGTH = 8192;

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function statementShape(text: string): string | undefined {
  if (text.length > MAX_LENGTH) return undefined;
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c > 127) return undefined;
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      // Whitespace runs become one space; tokens keep their adjacency (`<=` is not `< =`).
      if (out !== '' && !out.endsWith(' ')) out += ' ';
      i++;
      continue;
    }
    if (isIdentStart(c)) {
      const start = i;
      while (i < n && isIdentPart(text.charCodeAt(i))) i++;
      // A prefixed string (E'..', B'..', X'..', N'..', U&'..') or U& identifier: not handled.
      const next = text.charCodeAt(i);
      if (next === 39 || next === 38) return undefined;
      out += text.slice(start, i).toLowerCase();
      continue;
    }
    if (isDigit(c)) {
      if (i > 0 && text.charCodeAt(i - 1) === 46) return undefined;
      while (i < n && isDigit(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) === 46 && isDigit(text.charCodeAt(i + 1))) {
        i++;
        while (i < n && isDigit(text.charCodeAt(i))) i++;
      }
      const after = text.charCodeAt(i);
      if (i < n && (isIdentPart(after) || after === 46)) return undefined;
      out += '\u0001';
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
      out += '\u0002';
      continue;
    }
    if (c === 34) {
      const start = i;
      i++;
      while (i < n && text.charCodeAt(i) !== 34) {
        if (text.charCodeAt(i) > 127) return undefined;
        i++;
      }
      if (i >= n) return undefined;
      i++;
      out += text.slice(start, i);
      continue;
    }
    if (c === 36) {
      // $1 parameters are fine; $tag$ dollar quoting is not handled.
      const start = i;
      i++;
      if (!isDigit(text.charCodeAt(i))) return undefined;
      while (i < n && isDigit(text.charCodeAt(i))) i++;
      out += text.slice(start, i);
      continue;
    }
    if (c === 45 && text.charCodeAt(i + 1) === 45) return undefined;
    if (c === 47 && text.charCodeAt(i + 1) === 42) return undefined;
    if (c === 92) return undefined;
    out += text[i] ?? '';
    i++;
  }
  return out.trimEnd();
}
