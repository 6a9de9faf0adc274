import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import {
  authenticationOk,
  backendKeyData,
  commandComplete,
  dataRow,
  emptyQueryResponse,
  errorResponse,
  noticeResponse,
  parameterStatus,
  readyForQuery,
} from '../src/pg/backend.ts';

function parseWithPgProtocol(chunks: readonly Buffer[]): BackendMessage[] {
  const parser = new Parser();
  const out: BackendMessage[] = [];
  for (const c of chunks) {
    // pg-protocol takes ownership of the buffers it is given (it may compact data into them): copy.
    parser.parse(Buffer.from(c), (m) => {
      out.push(m);
    });
  }
  return out;
}

const refusal = errorResponse({ severity: 'ERROR', code: '42501', message: 'blocked by airlock: destructive statements are not allowed', hint: 'see ApprovalRule prod-guardrails' });
const golden = Buffer.concat([
  authenticationOk(),
  parameterStatus('server_version', '17.2'),
  backendKeyData(4242, Buffer.from([1, 2, 3, 4])),
  readyForQuery('I'),
  refusal,
  noticeResponse({ severity: 'NOTICE', code: '00000', message: 'waiting for approval areq-1' }),
  dataRow([Buffer.from('a'), null, Buffer.from('')]),
  commandComplete('SELECT 1'),
  emptyQueryResponse(),
  readyForQuery('T'),
]);

test('golden bytes: the exact encoding of a refusal', () => {
  assert.equal(
    refusal.toString('hex'),
    Buffer.concat([
      Buffer.from('E'),
      Buffer.from([0, 0, 0, 0x78]),
      Buffer.from('SERROR\0VERROR\0C42501\0Mblocked by airlock: destructive statements are not allowed\0Hsee ApprovalRule prod-guardrails\0\0'),
    ]).toString('hex'),
  );
  assert.equal(readyForQuery('I').toString('hex'), '5a0000000549');
  assert.equal(dataRow([null]).toString('hex'), '44000000' + '0a' + '0001' + 'ffffffff');
});

test('pg-protocol parses what we write, split at every offset', () => {
  const whole = parseWithPgProtocol([golden]).map((m) => m.name);
  assert.deepEqual(whole, [
    'authenticationOk',
    'parameterStatus',
    'backendKeyData',
    'readyForQuery',
    'error',
    'notice',
    'dataRow',
    'commandComplete',
    'emptyQuery',
    'readyForQuery',
  ]);
  for (let i = 0; i <= golden.length; i++) {
    const split = parseWithPgProtocol([golden.subarray(0, i), golden.subarray(i)]);
    assert.deepEqual(split.map((m) => m.name), whole, `split at ${i}`);
  }
  const [, , , , err, , row] = parseWithPgProtocol([golden]) as unknown as [unknown, unknown, unknown, unknown, { code: string; message: string; severity: string; hint: string }, unknown, { fields: unknown[] }];
  assert.equal(err.code, '42501');
  assert.equal(err.severity, 'ERROR');
  assert.equal(err.message, 'blocked by airlock: destructive statements are not allowed');
  assert.equal(err.hint, 'see ApprovalRule prod-guardrails');
  assert.deepEqual(row.fields, ['a', null, '']);
});

test('fuzz: any message text and row values survive the round trip', () => {
  fc.assert(
    fc.property(fc.string(), fc.array(fc.option(fc.string())), (message, values) => {
      const bytes = Buffer.concat([
        errorResponse({ severity: 'ERROR', code: '42501', message }),
        dataRow(values.map((v) => (v === null ? null : Buffer.from(v)))),
      ]);
      const [err, row] = parseWithPgProtocol([bytes]) as unknown as [{ message: string }, { fields: (string | null)[] }];
      assert.equal(err.message, message.replace(/\0/g, ''));
      assert.deepEqual(row.fields, values);
    }),
    { numRuns: 500 },
  );
});
