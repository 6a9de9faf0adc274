/**
 * What reviewers and auditors see of a query (statements.ts): every statement of a query with
 * several, each with its own classes, on its own line; a detector match hides the secret only.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileMasker, loadSqlParser } from '@airlock/policy';
import { askOf } from '../src/cluster/approvals.ts';
import { classesOf, oneLine, reviewCommand, statementParts } from '../src/pg/statements.ts';

const CARD = '4111111111111111';
const masker = compileMasker(
  [
    { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
    { name: 'keys', match: { detectors: ['aws_access_key'] }, action: { type: 'hash' } },
    { name: 'emails', match: { columns: ['*.customers.email'] }, action: { type: 'redact' } },
  ],
  Buffer.from('key'),
);
const mask = (text: string): string => masker.maskText(text).text;

before(async () => {
  await loadSqlParser();
});

test('a query of several statements: each statement with its own classes, in order; one statement: none', () => {
  assert.equal(statementParts('INSERT INTO payments (amount) VALUES (1)', mask), undefined);
  assert.equal(statementParts("SELECT ';'", mask), undefined, 'a semicolon in a string is not a second statement');
  const parts = statementParts('INSERT INTO payments (amount) VALUES (1); DELETE FROM payments', mask);
  assert.deepEqual(parts, [
    { text: 'INSERT INTO payments (amount) VALUES (1)', classes: ['write'] },
    { text: 'DELETE FROM payments', classes: ['destructive', 'write'] },
  ]);
  assert.equal(reviewCommand('whole text', parts), '1/2 [write] INSERT INTO payments (amount) VALUES (1)\n2/2 [destructive, write] DELETE FROM payments');
  assert.equal(reviewCommand('INSERT INTO t VALUES (1)', undefined), 'INSERT INTO t VALUES (1)');
  assert.deepEqual(classesOf(parts), ['destructive', 'write']);
});

test('a statement cannot fake another line of the request: line breaks inside a statement are shown escaped', () => {
  const sql = "SELECT 'x\n2/2 [read] SELECT 1'; DROP TABLE payments";
  const command = reviewCommand(sql, statementParts(sql, mask));
  const lines = command.split('\n');
  assert.equal(lines.length, 2, command);
  assert.match(lines[0] ?? '', /^1\/2 \[read\] SELECT 'x\\n2\/2 \[read\] SELECT 1'$/);
  assert.match(lines[1] ?? '', /^2\/2 \[ddl, destructive\] DROP TABLE payments$/);
  assert.equal(oneLine('a\\n\u2028b\r\u0000'), 'a\\\\n\\u2028b\\r\\u0000');
});

test('property: a detector match in a statement hides the matched secret only, never the rest of the text', () => {
  const word = fc.stringMatching(/^[a-z][a-z ,()=]{0,20}$/);
  fc.assert(
    fc.property(word, word, fc.constantFrom(CARD, '5500000000000004', 'AKIAIOSFODNN7EXAMPLE'), (a, b, secret) => {
      const sql = `INSERT INTO notes (body) VALUES ('${a} ${secret} ${b}'); UPDATE notes SET body = '${b}' WHERE body = '${a}'`;
      const parts = statementParts(sql, mask);
      assert.ok(parts !== undefined && parts.length === 2, sql);
      const first = parts[0]?.text ?? '';
      assert.ok(!first.includes(secret), first);
      const [before, after] = [`INSERT INTO notes (body) VALUES ('${a} `, ` ${b}')`];
      assert.ok(first.startsWith(before) && first.endsWith(after), `${first} keeps the text around the secret`);
      const hidden = first.slice(before.length, first.length - after.length);
      assert.ok(hidden === '************' + secret.slice(-4) || /^hmac:[0-9a-f]{16}$/.test(hidden), hidden);
      assert.equal(parts[1]?.text, `UPDATE notes SET body = '${b}' WHERE body = '${a}'`);
    }),
    { numRuns: 200 },
  );
});

test("cluster approval asks keep ApprovalAsk's shape: the command lists the statements, classes are every statement's", () => {
  const sql = `INSERT INTO payments (amount) VALUES (1); DELETE FROM payments WHERE note = '${CARD}'`;
  const parts = statementParts(sql, mask);
  const ask = askOf({
    connection: 'orders',
    namespace: 'agents',
    session: '20261204T183500Z-1a2b3c4d',
    protocol: 'postgres',
    command: reviewCommand(mask(sql), parts),
    statements: parts ?? [],
    rules: ['guard/payments-need-review'],
    message: 'needs review',
    approvers: { users: ['alice'], groups: [] },
    required: 1,
    timeoutSeconds: 30,
    requireReason: false,
  });
  assert.equal(ask.command, "1/2 [write] INSERT INTO payments (amount) VALUES (1)\n2/2 [write] DELETE FROM payments WHERE note = '************1111'");
  assert.deepEqual(ask.classes, ['write']);
  assert.deepEqual(Object.keys(ask).sort(), ['approvers', 'classes', 'command', 'connection', 'message', 'protocol', 'required', 'requireReason', 'rule', 'session', 'timeoutSeconds'].sort());
});
