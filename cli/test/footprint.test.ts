import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { airlockValidators, releaseValidators } from '@airlock/api';

const root = join(import.meta.dirname, '..', '..');

/** The CommonJS packages a fresh process has loaded after running `code` (an ES module). */
function loadedPackages(code: string): string[] {
  const probe = `${code}
const { createRequire } = await import('node:module');
const names = Object.keys(createRequire(import.meta.url).cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1] ?? '');
console.log(JSON.stringify([...new Set(names)].filter((n) => n !== '').sort()));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: join(root, 'cli'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test('what the PostgreSQL sidecar runs loads neither ssh2 nor the validators\' libraries', () => {
  const loaded = loadedPackages(`await import('@airlock/api'); await import('@airlock/policy'); await import('@airlock/sidecar');`);
  assert.ok(loaded.includes('winston'), `the probe sees CommonJS packages loaded through import: ${loaded.join(', ')}`);
  for (const name of ['ssh2', 'ajv', 'ajv-formats']) assert.ok(!loaded.includes(name), `${name} loaded: ${loaded.join(', ')}`);
  const validating = loadedPackages(`const api = await import('@airlock/api'); api.airlockValidators();`);
  for (const name of ['ajv', 'ajv-formats']) assert.ok(validating.includes(name), `${name} not loaded by airlockValidators(): ${validating.join(', ')}`);
});

test('validators released after use are compiled again, and validate the same', () => {
  const object = { apiVersion: 'airlock.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name: 'r' }, spec: { rules: [{ name: 'x', action: 'Bogus' }] } };
  const before = airlockValidators().get('ApprovalRule')?.validate(object);
  releaseValidators();
  const fresh = airlockValidators();
  assert.deepEqual(fresh.get('ApprovalRule')?.validate(object), before);
  assert.ok((before?.length ?? 0) > 0);
  assert.equal(airlockValidators(), fresh);
});
