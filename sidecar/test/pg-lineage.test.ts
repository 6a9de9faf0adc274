import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { analyzeLineage, compileMasker, loadSqlParser } from '@airlock/policy';
import { dataRow } from '../src/pg/backend.ts';
import { decodeBinary, maskDataRow, planRow, unknownLineageRefusal, withholdEchoes, type FieldInfo, type RowLineage } from '../src/pg/rows.ts';

before(async () => {
  await loadSqlParser();
});

const masker = compileMasker(
  [
    { name: 'emails', match: { columns: ['*.customers.email'] }, action: { type: 'redact' } },
    { name: 'names', match: { columns: ['*.customers.name'] }, action: { type: 'hash' } },
    { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
  ],
  Buffer.from('k'),
);
const CARD = '4111111111111111';
const columnName = (t: number, c: number): string | undefined => (t === 100 ? (['', 'public.customers.id', 'public.customers.email', 'public.customers.name'][c] ?? undefined) : t === 300 ? 'public.v.contact' : undefined);
const field = (tableID: number, columnID: number, dataTypeID = 25, format = 0): FieldInfo => ({ tableID, columnID, dataTypeID, format });

function lineageOf(sql: string, opaqueRelations: readonly string[] = []): RowLineage {
  const st = analyzeLineage(sql).statements[0];
  return { outputs: st?.outputs, plainTable: (t) => t === 100, opaqueRelations: new Set(opaqueRelations) };
}

function values(msg: Buffer | undefined, row: Buffer): (string | null)[] {
  const m = msg ?? row;
  const n = m.readInt16BE(5);
  const out: (string | null)[] = [];
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = m.readInt32BE(pos);
    pos += 4;
    out.push(len < 0 ? null : m.toString('utf8', pos, pos + len));
    if (len > 0) pos += len;
  }
  return out;
}

test('computed columns are masked by their lineage; identified columns by their own rules; a view is opaque', () => {
  const sql = "SELECT id, email, lower(c.email), c.name || 'x', upper('a'), contact FROM customers c, v";
  const fields = [field(100, 1, 23), field(100, 2), field(0, 0), field(0, 0), field(0, 0), field(300, 1)];
  const plan = planRow(fields, masker, columnName, lineageOf(sql, ['public.v']));
  const row = dataRow([Buffer.from('1'), Buffer.from('a@b.c'), Buffer.from('a@b.c'), Buffer.from('Ann x'), Buffer.from('A'), Buffer.from('c@d.e')]);
  const v = values(maskDataRow(plan, row, 0, row.length).message, row);
  assert.equal(v[0], '1');
  assert.equal(v[1], '[REDACTED]');
  assert.equal(v[2], '[REDACTED]');
  assert.match(v[3] ?? '', /^hmac:[0-9a-f]{16}$/);
  assert.equal(v[4], 'A');
  assert.equal(v[5], '[REDACTED]', 'a view column: every column rule, the strictest (redact)');
  // without lineage (no column rules to follow), the old behaviour: computed columns by detectors only
  const old = values(maskDataRow(planRow(fields, masker, columnName), row, 0, row.length).message, row);
  assert.equal(old[2], 'a@b.c');
});

test('a computed column through a view named in the statement, and rows of unknown lineage, take every column rule', () => {
  const plan = planRow([field(0, 0)], masker, columnName, lineageOf('SELECT lower(contact) FROM v', ['public.v']));
  const row = dataRow([Buffer.from('x')]);
  assert.deepEqual(values(maskDataRow(plan, row, 0, row.length).message, row), ['[REDACTED]']);
  const fetch = planRow([field(0, 0), field(100, 1, 23)], masker, columnName, { outputs: undefined, plainTable: () => true, opaqueRelations: new Set() });
  const r2 = dataRow([Buffer.from('computed'), Buffer.from('7')]);
  assert.deepEqual(values(maskDataRow(fetch, r2, 0, r2.length).message, r2), ['[REDACTED]', '7']);
});

test('json values masked as a whole stay JSON; other types become NULL', () => {
  const sql = "SELECT to_json(email), jsonb_build_object('k', email), length(email), ARRAY[name] FROM customers";
  const fields = [field(0, 0, 114), field(0, 0, 3802), field(0, 0, 23), field(0, 0, 1009)];
  const plan = planRow(fields, masker, columnName, lineageOf(sql));
  const row = dataRow([Buffer.from('"a@b.c"'), Buffer.from('{"k": "a@b.c"}'), Buffer.from('5'), Buffer.from('{Ann}')]);
  const v = values(maskDataRow(plan, row, 0, row.length).message, row);
  assert.equal(v[0], '"[REDACTED]"');
  assert.equal(JSON.parse(v[1] ?? ''), '[REDACTED]');
  assert.equal(v[2], null);
  assert.equal(v[3], null);
});

function binArray(elem: number, items: readonly (Buffer | null)[]): Buffer {
  const head = Buffer.alloc(20);
  head.writeInt32BE(1, 0);
  head.writeInt32BE(items.includes(null) ? 1 : 0, 4);
  head.writeUInt32BE(elem, 8);
  head.writeInt32BE(items.length, 12);
  head.writeInt32BE(1, 16);
  return Buffer.concat([head, ...items.map((i) => (i === null ? Buffer.from([255, 255, 255, 255]) : Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, k) => (i.length >>> (8 * (3 - k))) & 255)), i])))]);
}

test('binary values of arrays, records, numeric, bytea, inet and uuid are decoded for the detectors', () => {
  assert.equal(decodeBinary(1009, binArray(25, [Buffer.from('a'), null, Buffer.from('b')]), 0, binArray(25, [Buffer.from('a'), null, Buffer.from('b')]).length), '{a,,b}');
  const num = Buffer.from([0, 2, 0, 1, 0, 0, 0, 2, 0, 12, 0x0d, 0x80]); // 12 3456 → 120003.4560? weight 1: 12|3456 → 123456 scale 2
  assert.equal(decodeBinary(1700, num, 0, num.length), '123456.00');
  const card = Buffer.alloc(8);
  card.writeBigInt64BE(BigInt(CARD));
  const rec = Buffer.concat([Buffer.from([0, 0, 0, 2, 0, 0, 0, 20, 0, 0, 0, 8]), card, Buffer.from([0, 0, 0, 25, 0, 0, 0, 1]), Buffer.from('x')]);
  assert.equal(decodeBinary(2249, rec, 0, rec.length), `(${CARD},x)`);
  const inet = Buffer.from([2, 32, 0, 4, 10, 0, 0, 1]);
  assert.equal(decodeBinary(869, inet, 0, inet.length), '10.0.0.1/32');
  assert.equal(decodeBinary(17, Buffer.from('hi'), 0, 2), 'hi');
  assert.equal(decodeBinary(99999, Buffer.from('x'), 0, 1), undefined);
  // a card inside a binary record (any column: the detector applies) is found; the value becomes NULL
  const plan = planRow([field(0, 0, 2249, 1), field(0, 0, 16400, 1)], masker, columnName);
  const row = dataRow([rec, Buffer.from('opaque composite')]);
  const r = maskDataRow(plan, row, 0, row.length);
  assert.deepEqual(values(r.message, row), [null, null], 'a card in a record, and a type that cannot be read, are not passed');
  assert.ok(r.rules.includes('cards'));
});

test('property: decodeBinary never throws and never reads past the value, whatever the bytes', () => {
  fc.assert(
    fc.property(fc.constantFrom(1009, 1007, 2249, 1700, 869, 2950, 17, 3802, 1016), fc.uint8Array({ maxLength: 64 }), (type, bytes) => {
      const buf = Buffer.concat([Buffer.from(bytes), Buffer.from('SENTINEL')]);
      const v = decodeBinary(type, buf, 0, bytes.length);
      assert.ok(v === undefined || !v.includes('SENTINEL'));
    }),
    { numRuns: 2000 },
  );
});

test('errors: fields that may quote a value are withheld for data errors, kept for syntax and access errors', () => {
  const data = withholdEchoes([
    [0x53, 'ERROR'],
    [0x43, '22P02'],
    [0x4d, 'invalid input syntax for type integer: "a@b.c"'],
    [0x44, 'detail a@b.c'],
    [0x57, 'context'],
    [0x74, 'customers'],
  ]);
  assert.ok(data !== undefined);
  assert.deepEqual(data.map(([c]) => String.fromCharCode(c)), ['S', 'C', 'M', 't']);
  assert.ok(!JSON.stringify(data).includes('a@b.c'));
  assert.equal(withholdEchoes([[0x43, '42703'], [0x4d, 'column "x" does not exist']]), undefined);
  assert.ok(withholdEchoes([[0x43, '23505'], [0x4d, 'duplicate key'], [0x44, 'Key (email)=(a@b.c) already exists.']]) !== undefined);
});

test('unknownLineage Refuse: which statements are refused', () => {
  assert.match(unknownLineageRefusal(analyzeLineage('SELECT f(email) FROM customers')) ?? '', /column "f"/);
  assert.match(unknownLineageRefusal(analyzeLineage('FETCH ALL FROM c')) ?? '', /FETCH/);
  assert.equal(unknownLineageRefusal(analyzeLineage('SELECT lower(email), count(*) FROM customers GROUP BY 1')), undefined);
  assert.equal(unknownLineageRefusal(analyzeLineage('INSERT INTO t VALUES (1)')), undefined);
});
