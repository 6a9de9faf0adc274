/**
 * Rule globs: the patterns ApprovalRule and MaskingPolicy rules match command lines, tables and
 * columns with. `*` matches any run of characters (spaces and '/' included), `?` exactly one
 * character, `\` makes the next character literal; everything else is literal and the whole text
 * must match. Matching is a two-pointer scan with one backtrack point (no RegExp), so a hostile
 * pattern or text costs at most O(pattern × text), never exponential time.
 */
import { PolicyError } from '../errors.ts';
import type { ShellAnalysis } from './analyze.ts';

/** One pattern element: a literal character, `?` (any one character) or `*` (any run). */
type Token = { readonly kind: 'char'; readonly ch: string } | { readonly kind: 'one' } | { readonly kind: 'any' };

/** Compiles a rule glob; throws PolicyError('InvalidGlob') for a malformed pattern. */
export function compileGlob(pattern: string): (text: string) => boolean {
  // Characters are code points, so `?` matches one emoji just as it matches one letter.
  const chars = Array.from(pattern);
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '\\') {
      const next = chars[i + 1];
      if (next === undefined) throw new PolicyError('InvalidGlob', `glob ${JSON.stringify(pattern)} ends with a lone backslash`);
      tokens.push({ kind: 'char', ch: next });
      i++;
    } else if (c === '*') {
      // Consecutive stars mean the same as one.
      if (tokens.at(-1)?.kind !== 'any') tokens.push({ kind: 'any' });
    } else if (c === '?') {
      tokens.push({ kind: 'one' });
    } else if (c !== undefined) {
      tokens.push({ kind: 'char', ch: c });
    }
  }
  return (text: string) => matchTokens(tokens, Array.from(text));
}

/**
 * The classic wildcard scan: advance both pointers while they agree; on a mismatch go back to
 * the last `*` and let it swallow one more character. Only the latest star needs remembering,
 * because a later star can absorb anything an earlier one could.
 */
function matchTokens(tokens: readonly Token[], text: readonly string[]): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const tok = tokens[p];
    if (tok !== undefined && (tok.kind === 'one' || (tok.kind === 'char' && tok.ch === text[t]))) {
      p++;
      t++;
    } else if (tok?.kind === 'any') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  // The text is used up: only stars may remain in the pattern.
  while (tokens[p]?.kind === 'any') p++;
  return p === tokens.length;
}

/** True when any command of the analysis matches any glob, or when the line is unresolvable. */
export function shellMatches(globs: readonly ((text: string) => boolean)[], analysis: ShellAnalysis): boolean {
  if (analysis.unresolvable) return true;
  return analysis.commands.some((cmd) => globs.some((match) => match(cmd.text)));
}
