import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileMasker } from '@airlock/policy';
import { maskCopyRow, readCsvRow, readTextRow, writeCsvRow, writeTextRow } from '../src/pg/copy.ts';
import { planRow } from '../src/pg/rows.ts';

const values = fc.array(fc.option(fc.string({ unit: 'binary', maxLength: 12 }), { nil: null }), { minLength: 1, maxLength: 6 });

test('property: text and csv rows read back exactly what was written (values, nulls, tabs, quotes, newlines, backslashes)', () => {
  fc.assert(
    fc.property(values, (v) => {
      assert.deepEqual(readTextRow(writeTextRow(v)), v);
      // csv cannot tell an unquoted empty value from NULL: PostgreSQL quotes the empty string
      assert.deepEqual(readCsvRow(writeCsvRow(v)), v);
    }),
    { numRuns: 3000 },
  );
});

test('golden rows as PostgreSQL writes them', () => {
  assert.deepEqual(readTextRow('1\\tab\\\\c\t\\N\t\\n'), ['1\tab\\c', null, '\n']);
  assert.deepEqual(readCsvRow('1,"a,b","say ""hi""",,""'), ['1', 'a,b', 'say "hi"', null, '']);
  assert.equal(readCsvRow('1,"open'), undefined);
  assert.equal(readCsvRow('a"b'), undefined);
});

test('a COPY row is masked like a DataRow: column rules, detectors, NULL for a masked non-text value', () => {
  const masker = compileMasker(
    [
      { name: 'emails', match: { columns: ['*.customers.email'] }, action: { type: 'redact' } },
      { name: 'ids', match: { columns: ['*.customers.id'] }, action: { type: 'redact' } },
      { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
    ],
    new Uint8Array(32),
  );
  const names = ['public.customers.id', 'public.customers.email', 'public.customers.note'];
  const plan = planRow(
    [
      { tableID: 1, columnID: 1, dataTypeID: 23, format: 0 },
      { tableID: 1, columnID: 2, dataTypeID: 25, format: 0 },
      { tableID: 1, columnID: 3, dataTypeID: 25, format: 0 },
    ],
    masker,
    (_t, c) => names[c - 1],
  );
  const text = maskCopyRow('text', '7\ta@b.example\tpaid 4111111111111111\n', plan);
  assert.deepEqual(text, { row: '\\N\t[REDACTED]\tpaid ************1111\n', masked: 3, rules: ['ids', 'emails', 'cards'] });
  const csv = maskCopyRow('csv', '7,"x,y",plain\n', plan);
  assert.equal(csv?.row, ',[REDACTED],plain\n');
  assert.equal(maskCopyRow('text', '7\tonly two\n', plan), undefined, 'a row of another shape is refused');
});
