import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { statementShape } from '../src/sql/shape.ts';
import { classifySql } from '../src/sql/classify.ts';
import { loadSqlParser } from '../src/sql/parser.ts';

// The first, textbook version (tokens concatenated into a string): the reference the fast one
// must equal on every input.
const REFERENCE_MAX_LENGTH = 8192;

function ref_isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

function ref_isIdentPart(c: number): boolean {
  return ref_isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}

function ref_isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function referenceShape(text: string): string | undefined {
  if (text.length > REFERENCE_MAX_LENGTH) return undefined;
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
    if (ref_isIdentStart(c)) {
      const start = i;
      while (i < n && ref_isIdentPart(text.charCodeAt(i))) i++;
      // A prefixed string (E'..', B'..', X'..', N'..', U&'..') or U& identifier: not handled.
      const next = text.charCodeAt(i);
      if (next === 39 || next === 38) return undefined;
      out += text.slice(start, i).toLowerCase();
      continue;
    }
    if (ref_isDigit(c)) {
      if (i > 0 && text.charCodeAt(i - 1) === 46) return undefined;
      while (i < n && ref_isDigit(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) === 46 && ref_isDigit(text.charCodeAt(i + 1))) {
        i++;
        while (i < n && ref_isDigit(text.charCodeAt(i))) i++;
      }
      const after = text.charCodeAt(i);
      if (i < n && (ref_isIdentPart(after) || after === 46)) return undefined;
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
      if (!ref_isDigit(text.charCodeAt(i))) return undefined;
      while (i < n && ref_isDigit(text.charCodeAt(i))) i++;
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

test('property: the shape equals the reference lexer\'s on any text', () => {
  const sqlish = fc.string({
    unit: fc.constantFrom('SELECT', ' ', '  ', '\t', '\n', 'a', 'Z', '_', '$', '$1', '1', '2.5', '.', "'", "''", '"', 'x', 'E', '&', '-', '--', '/', '*', '\\', '=', '<', 'é', ';', '(', ')'),
    maxLength: 40,
  });
  fc.assert(
    fc.property(fc.oneof(sqlish, fc.string({ unit: 'binary-ascii', maxLength: 60 }), fc.string({ maxLength: 60 })), (text) => {
      assert.equal(statementShape(text), referenceShape(text), JSON.stringify(text));
    }),
    { numRuns: 20000 },
  );
  const long = `SELECT ${'a, '.repeat(4000)}b`;
  assert.equal(statementShape(long), referenceShape(long));
  assert.equal(statementShape(long.slice(0, 8192)), referenceShape(long.slice(0, 8192)));
});
