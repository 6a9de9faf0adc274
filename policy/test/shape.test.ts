import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { statementShape } from '../src/sql/shape.ts';
import { classifySql, loadSqlParser } from '../src/sql/classify.ts';

before(async () => {
  await loadSqlParser();
});

test('literals become placeholders; identifiers fold case; adjacency is kept', () => {
  assert.equal(statementShape('SELECT abalance FROM t WHERE aid = 42'), statementShape('select abalance from t where aid = 7'));
  assert.equal(statementShape("UPDATE t SET a = 'x' WHERE id = 1"), statementShape("UPDATE t SET a = 'it''s' WHERE id = 99"));
  assert.notEqual(statementShape('SELECT 1'), statementShape("SELECT '1'"), 'numbers and strings differ');
  assert.notEqual(statementShape('SELECT a <= b'), statementShape('SELECT a < = b'));
  assert.notEqual(statementShape('SELECT "A"'), statementShape('SELECT "a"'));
  assert.equal(statementShape('SELECT $1'), 'select $1');
});

test('anything the small lexer is not sure of has no shape', () => {
  for (const text of [
    "SELECT E'\\x'",
    "SELECT 'a\\'",
    'SELECT $$x$$',
    'SELECT 1 -- c',
    'SELECT /* c */ 1',
    "SELECT U&'d'",
    'SELECT U&"d"',
    "SELECT B'101'",
    "SELECT X'1f'",
    'SELECT 1e5',
    'SELECT 0x1f',
    'SELECT 1_000',
    'SELECT .5',
    "SELECT 'ü'",
    "SELECT 'open",
    'SELECT "open',
  ]) {
    assert.equal(statementShape(text), undefined, text);
  }
});

test('property: texts of one shape have the same classes unless the classification read a literal', () => {
  const lit = fc.oneof(fc.integer({ min: 0, max: 1e9 }).map(String), fc.string({ maxLength: 8 }).filter((s) => /^[a-z ]*$/.test(s)).map((s) => `'${s}'`));
  const templates: readonly ((a: string, b: string) => string)[] = [
    (a: string, b: string) => `SELECT * FROM t WHERE a = ${a} AND b = ${b}`,
    (a: string, b: string) => `DELETE FROM t WHERE ${a} = ${b}`,
    (a: string, b: string) => `UPDATE t SET x = ${a} WHERE id + ${a} = id + ${b}`,
    (a: string, b: string) => `SELECT set_config(${a}, ${b}, false)`,
    (a: string, b: string) => `EXPLAIN (ANALYZE ${a}) DELETE FROM t WHERE id = ${b}`,
  ];
  fc.assert(
    fc.property(fc.integer({ min: 0, max: templates.length - 1 }), lit, lit, lit, lit, (k, a1, b1, a2, b2) => {
      const tpl = templates[k];
      if (tpl === undefined) return;
      const t1 = tpl(a1, b1);
      const t2 = tpl(a2, b2);
      if (statementShape(t1) !== statementShape(t2) || statementShape(t1) === undefined) return;
      const s1 = classifySql(t1);
      if (s1.some((s) => !s.known || s.literalSensitive)) return;
      const s2 = classifySql(t2);
      assert.deepEqual(s2.map((s) => [...s.classes].sort()), s1.map((s) => [...s.classes].sort()), `${t1} vs ${t2}`);
    }),
    { numRuns: 400 },
  );
});
