/**
 * make bench-policy: µs per SQL decision (cold and repeated shapes) and MB/s of masking with no
 * match and with every value matching. Prints a table and writes bench/policy.json.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifests } from '@airlock/api';
import { SqlDecider, classifySql, compileBundle, decideStatements, loadSqlParser } from '@airlock/policy';

const root = join(import.meta.dirname, '..', '..');
const examples = join(root, 'examples');
const manifests = readdirSync(examples)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseManifests(f, readFileSync(join(examples, f), 'utf8')).manifests);

await loadSqlParser();
const bundle = compileBundle(manifests, { connection: 'orders-db', serviceAccount: 'planner' });

function timeIt(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 1000); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

const SHAPES: readonly ((i: number) => string)[] = [
  (i: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i}`,
  (i: number) => `UPDATE pgbench_accounts SET abalance = abalance + ${i} WHERE aid = ${i + 1}`,
  (i: number) => `SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > ${i} ORDER BY o.id LIMIT 50`,
  (i: number) => `DELETE FROM orders WHERE id = ${i}`,
];

function shapeText(i: number, literal: number): string {
  const shape = SHAPES[i % SHAPES.length];
  return shape === undefined ? '' : shape(literal);
}

// Cold: no cache at all, every statement parsed and decided from scratch.
const cold = timeIt(20_000, (i) => decideStatements(bundle, classifySql(shapeText(i, i * 7919 + 1_000_000))));
// Repeated shapes: statements seen before with other literal values (pgbench -S, ORMs inlining values).
const shaped = new SqlDecider(bundle);
for (const s of SHAPES) shaped.decide(s(42));
const repeated = timeIt(200_000, (i) => shaped.decide(shapeText(i, i + 5_000_000)));
// Repeated texts: the very same statement text again (prepared statements).
const warm = new SqlDecider(bundle);
const repeatedTexts = SHAPES.map((s) => s(42));
const sameText = timeIt(1_000_000, (i) => warm.decide(repeatedTexts[i % repeatedTexts.length] ?? ''));

function mbps(values: readonly string[], column: string, rounds: number): number {
  const bytes = values.reduce((n, v) => n + Buffer.byteLength(v), 0) * rounds;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const v of values) bundle.masker.maskValue(column, v);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return bytes / 1e6 / s;
}

const plain = Array.from({ length: 10_000 }, (_, i) => `order ${i} shipped to warehouse ${i % 17} on schedule, status nominal, notes: none`);
const matching = Array.from({ length: 10_000 }, (_, i) => `customer${i}@example.com paid with 4111 1111 1111 1111 ref EMP-${String(100000 + i)}`);
const cards = Array.from({ length: 10_000 }, (_, i) => `payment ${i} settled with card 4111 1111 1111 1111 on ${String(1 + (i % 28))} Nov`);
const noMatch = mbps(plain, 'public.orders.notes', 30);
const allMatch = mbps(matching, 'public.customers.email', 10);
const cardMatch = mbps(cards, 'public.payments.note', 10);

const result = {
  date: new Date().toISOString(),
  node: process.version,
  sqlDecisionMicros: { cold: Number(cold.toFixed(2)), repeatedShapes: Number(repeated.toFixed(3)), repeatedTexts: Number(sameText.toFixed(3)) },
  maskingMBps: {
    noMatch: Number(noMatch.toFixed(1)),
    everyValueMatchingAllRules: Number(allMatch.toFixed(1)),
    everyValueMatchingCardDetector: Number(cardMatch.toFixed(1)),
  },
  targets: { repeatedShapesMicros: 10, coldMicros: 150, noMatchMBps: 200, everyValueMatchingMBps: 60 },
};
console.log(`SQL decision, cold:             ${cold.toFixed(2)} µs   (target <= 150)`);
console.log(`SQL decision, repeated shapes:  ${repeated.toFixed(3)} µs   (target <= 10)`);
console.log(`SQL decision, repeated texts:   ${sameText.toFixed(3)} µs`);
console.log(`masking, no match:              ${noMatch.toFixed(1)} MB/s (target >= 200)`);
console.log(`masking, every value matching:  ${allMatch.toFixed(1)} MB/s (target >= 60; email hashed + card partial + RE2 pattern in each value)`);
console.log(`masking, every value matching:  ${cardMatch.toFixed(1)} MB/s (target >= 60; one card number per value)`);
mkdirSync(join(root, 'bench'), { recursive: true });
writeFileSync(join(root, 'bench', 'policy.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log('wrote bench/policy.json');
