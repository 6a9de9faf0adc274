/** The hand-written record bodies are exactly JSON.stringify of the objects they stand for. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Decision } from '@airlock/policy';
import { resultJson, statementJson } from '../src/pg/records.ts';

const str = fc.string({ unit: 'binary', maxLength: 60 });
const decision: fc.Arbitrary<Decision> = fc.record({
  decision: fc.constantFrom('Allow', 'Block', 'RequireApproval'),
  classes: fc.array(fc.constantFrom('read', 'write', 'destructive', 'opaque'), { maxLength: 3 }),
  rules: fc.array(str, { maxLength: 3 }),
  message: str,
});

test('property: statementJson is JSON.stringify of the statement record', () => {
  const extraKey = fc.constantFrom('portal', 'statement', 'approved', 'x y', 'é"\\');
  fc.assert(
    fc.property(fc.nat(), fc.constantFrom('simple', 'parse', 'execute'), fc.dictionary(extraKey, str), str, decision, fc.option(fc.array(fc.record({ text: str, classes: fc.array(str, { maxLength: 3 }) }), { minLength: 2, maxLength: 4 }), { nil: undefined }), (id, via, extra, text, d, statements) => {
      const want = JSON.stringify({ type: 'statement', id, via, ...extra, text, ...(statements !== undefined ? { statements } : {}), decision: d.decision, classes: d.classes, rules: d.rules, ...(d.decision === 'Allow' ? {} : { message: d.message }) });
      assert.equal(statementJson(id, via, extra, text, d, statements), want);
      assert.equal(statementJson(id, via, extra, text, d, statements), want, 'and again, from the per-decision cache');
    }),
    { numRuns: 2000 },
  );
});

test('property: resultJson is JSON.stringify of the result record', () => {
  fc.assert(
    fc.property(fc.nat(), fc.nat(), fc.nat(), fc.option(fc.uniqueArray(str, { maxLength: 3 }), { nil: undefined }), fc.array(str, { maxLength: 3 }), fc.option(str, { nil: undefined }), (statement, rows, masked, rules, tags, error) => {
      const set = rules === undefined ? undefined : new Set(rules);
      const want = JSON.stringify({ type: 'result', statement, rows, masked, ...(set !== undefined ? { maskRules: [...set] } : {}), ...(tags.length > 0 ? { tag: tags.join('; ') } : {}), ...(error !== undefined ? { error } : {}) });
      assert.equal(resultJson(statement, rows, masked, set, tags, error), want);
    }),
    { numRuns: 2000 },
  );
});
