/** What SQL statements do to protocol names (names.ts): every form that can change a name is seen. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classifySql, loadSqlParser } from '@airlock/policy';
import { leadingIdentifier, nameEffects, NAME_WORDS, type NameEffect } from '../src/pg/names.ts';

before(async () => {
  await loadSqlParser();
});

function effects(sql: string): NameEffect[] {
  return nameEffects(classifySql(sql));
}

const EVERY: NameEffect[] = [
  { kind: 'statement', name: null },
  { kind: 'portal', name: null },
];

test('DEALLOCATE, PREPARE, DECLARE, CLOSE, DISCARD, FETCH and MOVE: the names they touch', () => {
  const cases: [string, NameEffect[]][] = [
    ['DEALLOCATE s1', [{ kind: 'statement', name: 's1' }]],
    ['deallocate prepare "S 1"', [{ kind: 'statement', name: 'S 1' }, { kind: 'statement', name: 'prepare' }]],
    ['DEALLOCATE ALL', [{ kind: 'statement', name: null }]],
    ['DEALLOCATE PREPARE ALL', [{ kind: 'statement', name: null }]],
    ['DEALLOCATE prepare', [{ kind: 'statement', name: 'prepare' }]],
    ['PREPARE S1 (int) AS SELECT $1', [{ kind: 'statement', name: 's1' }]],
    ['DECLARE "Cur" BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT 1', [{ kind: 'declare', name: 'Cur' }]],
    ['CLOSE c1', [{ kind: 'portal', name: 'c1' }]],
    ['CLOSE ALL', [{ kind: 'portal', name: null }]],
    ['DISCARD ALL', [{ kind: 'statement', name: null }, { kind: 'portal', name: null }]],
    ['DISCARD PLANS', []],
    ['FETCH 1 FROM c1', [{ kind: 'fetch', name: 'c1' }]],
    ['FETCH FORWARD ALL IN "C 1"', [{ kind: 'fetch', name: 'C 1' }]],
    ['FETCH c1', [{ kind: 'fetch', name: 'c1' }]],
    ['MOVE BACKWARD 2 FROM c1', [{ kind: 'fetch', name: 'c1' }]],
    ['/* comment */ DEALLOCATE s1; -- x\n PREPARE s1 AS SELECT 1', [{ kind: 'statement', name: 's1' }, { kind: 'statement', name: 's1' }]],
    ['SELECT 1', []],
    ['SELECT my_function()', EVERY],
    ['DO $$ BEGIN END $$', EVERY],
    ['EXECUTE ps', EVERY],
    ['CALL p()', EVERY],
  ];
  for (const [sql, want] of cases) assert.deepEqual(effects(sql), want, sql);
});

test('leadingIdentifier folds unquoted names as PostgreSQL does and keeps quoted ones', () => {
  assert.deepEqual(leadingIdentifier('  Foo_1 rest'), { name: 'foo_1', quoted: false, rest: ' rest' });
  assert.deepEqual(leadingIdentifier('"a""b" x'), { name: 'a"b', quoted: true, rest: ' x' });
  assert.equal(leadingIdentifier('U&"\\0061"'), undefined);
  assert.equal(leadingIdentifier("E'x'"), undefined);
  assert.equal(leadingIdentifier('"unterminated'), undefined);
});

test('property: every statement that names a cursor or a prepared statement is seen by the cheap word test, and its name is found', () => {
  // a cursor or statement name is a ColId: never one of PostgreSQL's reserved or type/function-name
  // keywords (`DEALLOCATE do` does not parse, and an unparsable statement forgets every name)
  const NOT_COLID = new Set(['all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric', 'both', 'case', 'cast', 'check', 'collate', 'column', 'constraint', 'create', 'current_catalog', 'current_date', 'current_role', 'current_time', 'current_timestamp', 'current_user', 'default', 'deferrable', 'desc', 'distinct', 'do', 'else', 'end', 'except', 'false', 'fetch', 'for', 'foreign', 'from', 'grant', 'group', 'having', 'in', 'initially', 'intersect', 'into', 'lateral', 'leading', 'limit', 'localtime', 'localtimestamp', 'not', 'null', 'offset', 'on', 'only', 'or', 'order', 'placing', 'primary', 'references', 'returning', 'select', 'session_user', 'some', 'symmetric', 'system_user', 'table', 'then', 'to', 'trailing', 'true', 'union', 'unique', 'user', 'using', 'variadic', 'when', 'where', 'window', 'with', 'authorization', 'binary', 'collation', 'concurrently', 'cross', 'current_schema', 'freeze', 'full', 'ilike', 'inner', 'is', 'isnull', 'join', 'left', 'like', 'natural', 'notnull', 'outer', 'overlaps', 'right', 'similar', 'tablesample', 'verbose']);
  const ident = fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/).filter((s) => !NOT_COLID.has(s) && !['prepare', 'forward', 'backward', 'next', 'prior', 'first', 'last', 'absolute', 'relative', 'transaction'].includes(s));
  // ASCII only: one code unit per character
  const caseOf = (s: string, upper: boolean[]): string => Array.from({ length: s.length }, (_, i) => (upper[i % upper.length] === true ? s.charAt(i).toUpperCase() : s.charAt(i))).join('');
  fc.assert(
    fc.property(ident, fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }), fc.constantFrom('DEALLOCATE', 'PREPARE', 'DECLARE', 'CLOSE', 'FETCH ALL FROM', 'MOVE'), (name, upper, verb) => {
      const tail = verb === 'PREPARE' ? ' AS SELECT 1' : verb === 'DECLARE' ? ' CURSOR FOR SELECT 1' : '';
      const sql = `${caseOf(verb, upper)} ${caseOf(name, upper)}${tail}`;
      assert.ok(NAME_WORDS.test(sql), sql);
      const found = effects(sql);
      assert.equal(found.length, 1, `${sql}: ${JSON.stringify(found)}`);
      assert.equal((found[0] as { name: string }).name, name, sql);
    }),
    { numRuns: 300 },
  );
});
