/**
 * Micro benchmark of the `hash` action's implementations, ns per value (distinct 20-character
 * emails, so no cache helps): the native addon (OpenSSL's SHA-256, what the masker uses when
 * it is built), the JavaScript reference (hmac.ts, what it uses without the addon) and
 * node:crypto's createHmac per value (neither uses it: the baseline). CPU time, best of 5.
 * Run from the repository root: node_modules/.bin/node policy/bench/hash.bench.ts
 */
import { createHmac } from 'node:crypto';
import { nativeHmac } from '@airlock/native';
import { hmacSha256 } from '../src/mask/hmac.ts';

const key = new TextEncoder().encode('bench-key');
const native = nativeHmac(key);
const js = hmacSha256(key);
const N = 200_000;
const values = Array.from({ length: N }, (_, i) => Buffer.from(`user${String(i)}@example.com`).toString('utf8'));
const impls: Record<string, ((s: string) => unknown) | undefined> = {
  native: native,
  'js reference': (s) => js(s),
  'node:crypto createHmac': (s) => createHmac('sha256', key).update(s, 'utf8').digest('hex'),
};
let sink = 0;
for (const [name, f] of Object.entries(impls)) {
  if (f === undefined) {
    console.log(`${name.padEnd(24)} (the addon is not built)`);
    continue;
  }
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) if (f(values[i] ?? '') !== undefined) sink++;
    const d = process.cpuUsage(t0);
    best = Math.min(best, ((d.user + d.system) * 1000) / N);
  }
  console.log(`${name.padEnd(24)} ${best.toFixed(0).padStart(6)} ns/value`);
}
if (sink === 0) throw new Error('nothing hashed');
