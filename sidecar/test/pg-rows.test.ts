import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileMasker } from '@airlock/policy';
import { dataRow } from '../src/pg/backend.ts';
import { PASS_THROUGH, maskDataRow, planRow, withFormats, type FieldInfo } from '../src/pg/rows.ts';
import { BackendFramer } from '../src/pg/wire.ts';
import { applyReview, type LocalApprovalFile } from '../src/approval/local.ts';

const CARD = '4111111111111111';
const masker = compileMasker(
  [
    { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
    { name: 'emails', match: { columns: ['*.customers.email'] }, action: { type: 'hash' } },
    { name: 'salary', match: { columns: ['hr.employees.salary'] }, action: { type: 'null' } },
  ],
  Buffer.from('key'),
);
const names = new Map([
  [100, new Map([[1, 'public.customers.id'], [2, 'public.customers.email'], [3, 'public.customers.note']])],
  [200, new Map([[1, 'hr.employees.salary']])],
]);
const columnName = (t: number, c: number): string | undefined => names.get(t)?.get(c);
const text = (tableID: number, columnID: number, dataTypeID = 25): FieldInfo => ({ tableID, columnID, dataTypeID, format: 0 });

function values(msg: Buffer): (string | null)[] {
  assert.equal(msg[0], 0x44, 'a DataRow');
  assert.equal(msg.readInt32BE(1), msg.length - 1, 'its length header');
  const n = msg.readInt16BE(5);
  const out: (string | null)[] = [];
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(pos);
    pos += 4;
    out.push(len < 0 ? null : msg.toString('utf8', pos, pos + len));
    if (len > 0) pos += len;
  }
  assert.equal(pos, msg.length, 'the columns end where the message does');
  return out;
}

test('masks by column identity and by detector; untouched rows pass as the same bytes', () => {
  const plan = planRow([text(100, 1, 23), text(100, 2), text(100, 3)], masker, columnName);
  const row = dataRow([Buffer.from('1'), Buffer.from('a@example.com'), Buffer.from(`card ${CARD}`)]);
  const r = maskDataRow(plan, row, 0, row.length);
  assert.ok(r.message !== undefined);
  const [id, email, note] = values(r.message);
  assert.equal(id, '1');
  assert.match(email ?? '', /^hmac:[0-9a-f]{16}$/);
  assert.equal(note, 'card ************1111');
  assert.equal(r.masked, 2);
  assert.deepEqual([...new Set(r.rules)].sort(), ['cards', 'emails']);
  const clean = dataRow([Buffer.from('2'), null, Buffer.from('nothing here')]);
  const plan2 = planRow([text(100, 1, 23), text(0, 0), text(100, 3)], masker, columnName);
  assert.equal(maskDataRow(plan2, clean, 0, clean.length).message, undefined);
});

test('binary values: text types masked in place, others NULL when a rule masks them, never corrupted', () => {
  const fields: FieldInfo[] = [
    { tableID: 200, columnID: 1, dataTypeID: 1700, format: 1 }, // numeric salary, binary: whole-column null rule
    { tableID: 0, columnID: 0, dataTypeID: 20, format: 1 }, // int8 holding a card number
    { tableID: 0, columnID: 0, dataTypeID: 25, format: 1 }, // text
    { tableID: 0, columnID: 0, dataTypeID: 17, format: 1 }, // bytea: its bytes are read as UTF-8 for the detectors
  ];
  const int8 = Buffer.alloc(8);
  int8.writeBigInt64BE(BigInt(CARD));
  const bytea = Buffer.from(CARD);
  const row = dataRow([Buffer.from([0, 1, 0, 0, 0, 0, 0, 0]), int8, Buffer.from(`x ${CARD}`), bytea]);
  const r = maskDataRow(planRow(fields, masker, columnName), row, 0, row.length);
  assert.ok(r.message !== undefined);
  const n = r.message.readInt16BE(5);
  assert.equal(n, 4);
  const v = values(r.message);
  assert.equal(v[0], null);
  assert.equal(v[1], null);
  assert.equal(v[2], 'x ************1111');
  assert.equal(v[3], null, 'a bytea value holding a card is NULL (a masked value of a non-text type)');
});

test('a malformed row that would be rewritten is an error, never a message with stray bytes', () => {
  const plan = planRow([text(100, 1, 23), text(100, 2), text(100, 3)], masker, columnName);
  const good = dataRow([Buffer.from('1'), Buffer.from('a@example.com'), Buffer.from('note')]);
  // bytes after the last column (the header's length says so)
  const trailing = Buffer.concat([good, Buffer.from('XYZ')]);
  trailing.writeInt32BE(trailing.length - 1, 1);
  assert.throws(() => maskDataRow(plan, trailing, 0, trailing.length), /bytes after its last column/);
  // the last column, after the masked one, claims more bytes than the message has
  const long = Buffer.from(good);
  long.writeInt32BE(1000, long.length - 4 - 4);
  assert.throws(() => maskDataRow(plan, long, 0, long.length), /DataRow is truncated/);
  const negative = Buffer.from(good);
  negative.writeInt32BE(-7, negative.length - 4 - 4);
  assert.throws(() => maskDataRow(plan, negative, 0, negative.length), /column 3 has length -7/);
});

test('formats from Bind apply per column', () => {
  const f = withFormats([text(1, 1), text(1, 2)], [1]);
  assert.deepEqual(f.map((x) => x.format), [1, 1]);
  assert.deepEqual(withFormats([text(1, 1), text(1, 2)], [0, 1]).map((x) => x.format), [0, 1]);
  assert.equal(PASS_THROUGH.columns.length, 0);
});

test('property: a detected card never survives a DataRow, whatever surrounds it', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string(), fc.boolean()), { minLength: 1, maxLength: 6 }), (cols) => {
      const vals = cols.map(([s, withCard]) => Buffer.from(withCard ? `${s} ${CARD} ${s}` : s));
      const row = dataRow(vals);
      const plan = planRow(cols.map(() => text(0, 0)), masker, columnName);
      const r = maskDataRow(plan, row, 0, row.length);
      const out = r.message ?? row;
      for (const v of values(out)) assert.ok(v === null || !v.includes(CARD));
      if (r.message === undefined) assert.ok(!cols.some(([, c]) => c));
    }),
  );
});

test('property: a rewritten DataRow holds each column masked alone, unchanged and NULL columns kept in place', () => {
  fc.assert(
    fc.property(fc.array(fc.option(fc.tuple(fc.string(), fc.boolean()), { nil: null }), { minLength: 1, maxLength: 8 }), (cols) => {
      const vals = cols.map((c) => (c === null ? null : Buffer.from(c[1] ? `${c[0]} ${CARD}` : c[0])));
      const row = dataRow(vals);
      const r = maskDataRow(planRow(cols.map(() => text(0, 0)), masker, columnName), row, 0, row.length);
      const expected = vals.map((v) => (v === null ? null : masker.maskValue(undefined, v.toString('utf8')).value));
      assert.deepEqual(values(r.message ?? row), expected);
      assert.equal(r.message === undefined, !cols.some((c) => c?.[1] === true));
    }),
  );
});

test('BackendFramer: the same messages whatever the split', () => {
  const stream = Buffer.concat([dataRow([Buffer.from('a'), null]), Buffer.from([0x5a, 0, 0, 0, 5, 0x49]), dataRow([Buffer.alloc(300, 1)])]);
  const whole: string[] = [];
  new BackendFramer().push(stream, (t, b, s, e) => whole.push(`${String(t)}:${b.subarray(s, e).toString('hex')}`));
  assert.equal(whole.length, 3);
  for (let i = 0; i <= stream.length; i++) {
    for (const j of [i, Math.min(stream.length, i + 7)]) {
      const got: string[] = [];
      const f = new BackendFramer();
      for (const part of [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]) f.push(part, (t, b, s, e) => got.push(`${String(t)}:${b.subarray(s, e).toString('hex')}`));
      assert.deepEqual(got, whole, `split at ${String(i)}/${String(j)}`);
    }
  }
  assert.throws(() => {
    new BackendFramer().push(Buffer.from([0x44, 0, 0, 0, 2]), () => undefined);
  }, /length 2/);
});

const request: LocalApprovalFile = {
  name: 'orders-abc',
  createdAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2099-01-01T00:00:00.000Z',
  spec: {
    connection: 'orders',
    namespace: 'agents',
    session: 's',
    protocol: 'postgres',
    command: 'DELETE FROM t WHERE id = 1',
    rules: ['r/x'],
    message: 'needs review',
    approvers: { users: ['alice'], groups: ['dba'] },
    required: 2,
    timeoutSeconds: 60,
    requireReason: true,
  },
  status: { phase: 'Pending', decisions: [] },
};

test('approvals: approvers enforced, reasons required, N of M, any deny denies, no double votes', () => {
  assert.throws(() => applyReview(request, { user: 'mallory', decision: 'approve', reason: 'x' }), /not an approver/);
  assert.throws(() => applyReview(request, { user: 'alice', decision: 'approve' }), /requires a reason/);
  const one = applyReview(request, { user: 'alice', decision: 'approve', reason: 'ok' });
  assert.equal(one.status.phase, 'Pending');
  assert.throws(() => applyReview(one, { user: 'alice', decision: 'approve', reason: 'again' }), /already decided/);
  const two = applyReview(one, { user: 'bob', groups: ['dba'], decision: 'approve', reason: 'fine' });
  assert.equal(two.status.phase, 'Approved');
  assert.throws(() => applyReview(two, { user: 'carol', groups: ['dba'], decision: 'deny', reason: 'no' }), /already Approved/);
  assert.equal(applyReview(one, { user: 'dave', groups: ['dba'], decision: 'deny', reason: 'no' }).status.phase, 'Denied');
  const expired = { ...request, expiresAt: '2020-01-01T00:00:00.000Z' };
  assert.throws(() => applyReview(expired, { user: 'alice', decision: 'approve', reason: 'late' }), /expired/);
});

test('fast paths: a row masked through planRow (columns narrowed by type, bytes looked at once) equals masking each value by the reference path', () => {
  const policyMasker = compileMasker(
    [
      { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
      { name: 'contact', match: { columns: ['*.customers.email'], detectors: ['email', 'phone'] }, action: { type: 'hash' } },
      { name: 'secrets', match: { detectors: ['aws_access_key', 'jwt', 'url_credentials'] }, action: { type: 'redact' } },
      { name: 'digits', match: { pattern: '12[0-9]{3}' }, action: { type: 'redact' } },
    ],
    Buffer.from('key'),
  );
  // id int4, email text, note text, big int8, flag bool (text format)
  const fields: FieldInfo[] = [text(100, 1, 23), text(100, 2), text(100, 3), text(0, 0, 20), text(0, 0, 16)];
  const plan = planRow(fields, policyMasker, columnName);
  const cols = ['public.customers.id', 'public.customers.email', 'public.customers.note', undefined, undefined];
  const typed = [true, false, false, true, true];
  const textValue = fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 40 }), fc.constantFrom('a@example.com', `card ${CARD}`, 'AKIAIOSFODNN7EXAMPLE', 'x 12345 y', 'é a@example.com'));
  fc.assert(
    fc.property(
      fc.integer({ min: -2147483648, max: 2147483647 }),
      textValue,
      textValue,
      fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(4111111111111111n, 12345n)),
      fc.boolean(),
      (id, email, note, big, flag) => {
        const vals = [String(id), email, note, String(big), flag ? 't' : 'f'];
        const row = dataRow(vals.map((v) => Buffer.from(v)));
        const got = maskDataRow(plan, row, 0, row.length);
        const want = vals.map((v, i) => {
          const r = policyMasker.forColumn(cols[i]).maskValue(v);
          return r.masked === 0 ? v : typed[i] === true ? null : r.value;
        });
        const masked = vals.reduce((n, v, i) => n + policyMasker.forColumn(cols[i]).maskValue(v).masked, 0);
        assert.deepEqual(got.message === undefined ? vals : values(got.message), want);
        assert.equal(got.masked, masked);
      },
    ),
    { numRuns: 1000 },
  );
  // the bool needs nothing of this policy: not in the plan; the int4 id stays (the pattern's
  // literal 12 fits an integer), the int8 too (a card number fits it)
  assert.deepEqual(plan.columns.map((c) => c.index), [0, 1, 2, 3]);
  const noDigits = compileMasker([{ name: 'cards', match: { detectors: ['credit_card', 'email'] }, action: { type: 'redact' } }], Buffer.from('key'));
  assert.deepEqual(planRow(fields, noDigits, columnName).columns.map((c) => c.index), [1, 2, 3]);
});
