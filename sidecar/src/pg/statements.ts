/**
 * The statements of a query, one by one, as reviewers and auditors see them: a query with
 * several statements is approved and recorded as the list of its statements, each with its own
 * classes, so approving one thing can never run another unseen. Texts are masked by the caller
 * (a detector match hides the matched secret only). Pure.
 */
import { classifySql, type StatementInfo } from '@airlock/policy';
import type { StatementPart } from '../approval/port.ts';

export type { StatementPart } from '../approval/port.ts';

/** Queries split recently (approvals and multi-statement recordings ask again for the same texts). */
const SPLIT_CACHE = 256;
const splits = new Map<string, readonly StatementInfo[]>();

function split(sql: string): readonly StatementInfo[] {
  let st = splits.get(sql);
  if (st === undefined) {
    st = classifySql(sql);
    if (splits.size >= SPLIT_CACHE) splits.clear();
    splits.set(sql, st);
  }
  return st;
}

/**
 * The statements of `sql` when it holds more than one (undefined otherwise: the text is the
 * statement), their texts passed through `mask`.
 */
export function statementParts(sql: string, mask: (text: string) => string): readonly StatementPart[] | undefined {
  // a second statement follows a semicolon: most texts stop here (a trailing one is no second statement)
  if (!/;\s*\S/.test(sql)) return undefined;
  const statements = split(sql);
  if (statements.length <= 1) return undefined;
  return statements.map((s) => ({ text: mask(s.text), classes: [...s.classes].sort() }));
}

/** Control characters and line separators a statement's text is shown with on one line (and the backslash that escapes them). */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const BREAKS = /[\u0000-\u001f\u007f\u0085\u2028\u2029\\]/g;

/** A text on one line: line breaks and other control characters escaped (`\n`, `\u0085`, a backslash doubled). */
export function oneLine(text: string): string {
  return text.replace(BREAKS, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/**
 * What an approval request shows for a query: its text when it is one statement; otherwise one
 * line per statement, `<n>/<count> [<classes>] <text on one line>`, so no statement can hide in
 * another's text (a line break inside a statement is shown escaped).
 */
export function reviewCommand(text: string, parts: readonly StatementPart[] | undefined): string {
  if (parts === undefined) return text;
  const n = String(parts.length);
  return parts.map((p, i) => `${String(i + 1)}/${n} [${p.classes.join(', ')}] ${oneLine(p.text)}`).join('\n');
}

/** The classes of every statement of a request, once each (an approval request's `classes`). */
export function classesOf(parts: readonly StatementPart[]): string[] {
  return [...new Set(parts.flatMap((p) => p.classes))].sort();
}
