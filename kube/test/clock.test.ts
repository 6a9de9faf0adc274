import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../src/clock.ts';

test('now() is the wall clock; a timer fires once; a cancelled one never does', async () => {
  const before = Date.now();
  const now = systemClock.now();
  assert.ok(now >= before && now <= Date.now());
  const fired: string[] = [];
  systemClock.setTimer(20, () => fired.push('kept'));
  const cancel = systemClock.setTimer(10, () => fired.push('cancelled'));
  cancel();
  await sleep(80);
  assert.deepEqual(fired, ['kept']);
});

test('a pending timer does not keep the process alive', () => {
  const script = `import { systemClock } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'clock.ts'))}; systemClock.setTimer(60_000, () => { process.exitCode = 3; });`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Date.now() - started < 30_000);
});
