/**
 * What SQL statements do to the names the extended protocol uses. Prepared statements and
 * portals share their namespaces with SQL: `DEALLOCATE` / `PREPARE` drop and define statement
 * names, `DECLARE` / `CLOSE` portal names, `DISCARD ALL` both, and code the statement runs (an
 * opaque statement: a function, DO, CALL, EXECUTE of a SQL-prepared statement, a FETCH of a
 * cursor whose query is opaque) can do any of it. The sidecar forgets what it knew of a name a
 * statement may have changed: the name is then handled as one made with SQL (decided when run,
 * its rows described before they are read, their lineage unknown). Pure.
 */

export type NameEffect =
  /** a prepared statement name may be dropped or redefined; null: every name */
  | { readonly kind: 'statement'; readonly name: string | null }
  /** a portal (cursor) name may be closed or redefined; null: every name */
  | { readonly kind: 'portal'; readonly name: string | null }
  /** a SQL cursor is declared over a query that runs no code the sidecar cannot see (else: every name) */
  | { readonly kind: 'declare'; readonly name: string }
  /** a cursor is fetched (its query runs on); null: the name is not known */
  | { readonly kind: 'fetch'; readonly name: string | null };

/** Words a statement that changes names starts with (a cheap test before the statements are split). */
export const NAME_WORDS = /deallocate|prepare|discard|declare|close|fetch|move/i;

/** One statement of a query: its text (from its first token) and its classes. */
export interface StatementOf {
  readonly text: string;
  readonly classes: Iterable<string>;
}

/**
 * The identifier at the start of `text` (after blanks): an unquoted name folded to lower case
 * (PostgreSQL folds ASCII letters only), a quoted one exactly; undefined when the text does not
 * start with a plain identifier (U&"…", a string, …). `rest`: the text after it.
 */
export function leadingIdentifier(text: string): { readonly name: string; readonly quoted: boolean; readonly rest: string } | undefined {
  const s = text.replace(/^\s+/, '');
  if (s.startsWith('"')) {
    let name = '';
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '"') {
        if (s[i + 1] === '"') {
          name += '"';
          i++;
          continue;
        }
        return name === '' ? undefined : { name, quoted: true, rest: s.slice(i + 1) };
      }
      name += s.charAt(i);
    }
    return undefined;
  }
  const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(s);
  if (m === null) return undefined;
  // U&"…" and similar prefixed forms are not plain identifiers
  const rest = s.slice(m[0].length);
  if (rest.startsWith('&') || rest.startsWith("'") || rest.startsWith('"')) return undefined;
  return { name: m[0].replace(/[A-Z]+/g, (x) => x.toLowerCase()), quoted: false, rest };
}

/** The effects of one statement on protocol names. */
function effectsOf(st: StatementOf): NameEffect[] {
  const classes = new Set(st.classes);
  if (classes.has('opaque')) return [{ kind: 'statement', name: null }, { kind: 'portal', name: null }];
  const head = leadingIdentifier(st.text);
  if (head === undefined || head.quoted) return [];
  const next = leadingIdentifier(head.rest);
  const every = (kind: 'statement' | 'portal'): NameEffect[] => [{ kind, name: null }];
  switch (head.name) {
    case 'deallocate': {
      if (next === undefined) return every('statement');
      if (!next.quoted && next.name === 'all') return every('statement');
      if (!next.quoted && next.name === 'prepare') {
        const after = leadingIdentifier(next.rest);
        if (after === undefined) return /^\s*;?\s*$/.test(next.rest) ? [{ kind: 'statement', name: 'prepare' }] : every('statement');
        if (!after.quoted && after.name === 'all') return every('statement');
        // `DEALLOCATE prepare` alone names a statement called prepare
        return [
          { kind: 'statement', name: after.name },
          { kind: 'statement', name: 'prepare' },
        ];
      }
      return [{ kind: 'statement', name: next.name }];
    }
    case 'prepare':
      // PREPARE TRANSACTION 'gid' ends the transaction: its portals are closed
      if (next === undefined) return [...every('statement'), ...every('portal')];
      if (!next.quoted && next.name === 'transaction' && /^\s*'/.test(next.rest)) return every('portal');
      return [{ kind: 'statement', name: next.name }];
    case 'discard':
      if (next !== undefined && !next.quoted && (next.name === 'plans' || next.name === 'sequences' || next.name === 'temp' || next.name === 'temporary')) return [];
      return [...every('statement'), ...every('portal')];
    case 'declare':
      return next === undefined ? every('portal') : [{ kind: 'declare', name: next.name }];
    case 'close':
      if (next === undefined || (!next.quoted && next.name === 'all')) return every('portal');
      return [{ kind: 'portal', name: next.name }];
    case 'fetch':
    case 'move':
      return [{ kind: 'fetch', name: fetchTarget(head.rest) }];
    default:
      return [];
  }
}

/** The cursor a FETCH or MOVE names: the identifier after FROM or IN, else the last one; null when not found. */
function fetchTarget(rest: string): string | null {
  const words: { name: string; quoted: boolean }[] = [];
  let s = rest;
  for (;;) {
    // counts and signs (FETCH -2 FROM c, FETCH RELATIVE +1 IN c)
    s = s.replace(/^(?:\s|[+-]|\d)+/, '');
    if (s === '' || s.startsWith(';')) break;
    const id = leadingIdentifier(s);
    if (id === undefined) return null;
    words.push(id);
    s = id.rest;
  }
  const i = words.findIndex((w) => !w.quoted && (w.name === 'from' || w.name === 'in'));
  const target = i >= 0 ? words[i + 1] : words.at(-1);
  return target === undefined ? null : target.name;
}

/** What the statements of a query (in order) do to protocol names. */
export function nameEffects(statements: readonly StatementOf[]): NameEffect[] {
  return statements.flatMap(effectsOf);
}
