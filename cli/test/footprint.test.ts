import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { airlockValidators, releaseValidators } from '@airlock/api';

const root = join(import.meta.dirname, '..', '..');

/** The CommonJS files a fresh process has loaded after running `code` (an ES module), as paths from node_modules on. */
function loadedFiles(code: string): string[] {
  const probe = `${code}
const { createRequire } = await import('node:module');
console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).map((f) => f.replace(/^.*?node_modules\\//, ''))));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: join(root, 'cli'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

/** The packages among loadedFiles(). */
function packagesOf(files: readonly string[]): string[] {
  return [...new Set(files.map((f) => /^((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1] ?? ''))].filter((n) => n !== '' && !n.startsWith('/')).sort();
}

test('what the PostgreSQL sidecar runs loads neither ssh2 nor the validators\' libraries; validating loads the compiled validators, never ajv\'s compiler', () => {
  const loaded = packagesOf(loadedFiles(`await import('@airlock/api'); await import('@airlock/policy'); await import('@airlock/sidecar');`));
  assert.ok(loaded.includes('winston'), `the probe sees CommonJS packages loaded through import: ${loaded.join(', ')}`);
  for (const name of ['ssh2', 'ajv', 'ajv-formats']) assert.ok(!loaded.includes(name), `${name} loaded: ${loaded.join(', ')}`);
  const validating = loadedFiles(`const api = await import('@airlock/api'); api.airlockValidators().get('AgentConnection')?.validate({});`);
  assert.ok(validating.some((f) => f.endsWith('api/src/generated/validators.cjs')), `the compiled validators not loaded: ${validating.join(', ')}`);
  assert.ok(validating.includes('ajv-formats/dist/formats.js'), `the date-time format not loaded: ${validating.join(', ')}`);
  const compiler = validating.filter((f) => /^ajv(-formats)?\/(dist\/(core|ajv|compile|vocabularies)|dist\/index)/.test(f) || f.includes('ajv-formats/node_modules/'));
  assert.deepEqual(compiler, [], 'ajv\'s compiler was loaded');
});

test('the operator, the webhooks and an SSH-only sidecar load no SQL parser; loadSqlParser() loads it', () => {
  const operator = packagesOf(loadedFiles(`await import('./src/commands/operator.ts'); await import('./src/commands/webhook.ts'); await import('@airlock/sidecar');`));
  assert.ok(operator.includes('@kubernetes/client-node'), `the probe sees the operator's packages: ${operator.join(', ')}`);
  assert.ok(!operator.includes('libpg-query'), `libpg-query loaded: ${operator.join(', ')}`);
  const parsing = packagesOf(loadedFiles(`const policy = await import('@airlock/policy'); await policy.loadSqlParser(); policy.classifySql('select 1');`));
  assert.ok(parsing.includes('libpg-query'), `libpg-query not loaded by loadSqlParser(): ${parsing.join(', ')}`);
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

/** The internal modules a fresh process has loaded after running `code` (an ES module). */
function loadedBuiltins(code: string): string[] {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `${code}\nconsole.log(JSON.stringify(process.moduleLoadList));`], { cwd: join(root, 'cli'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test('what the sidecar imports does not build node:http\'s ES module facade (it would load undici, http2, perf_hooks: ~9 MiB)', () => {
  const undici = 'NativeModule internal/deps/undici/undici';
  // the probe sees it: an ES import of node:http reads every export, so runs each lazy getter
  assert.ok(loadedBuiltins(`await import('node:http');`).includes(undici));
  const loaded = loadedBuiltins(`await import('@airlock/api'); await import('@airlock/policy'); await import('@airlock/sidecar'); await import('./src/commands/sidecar.ts');`);
  assert.ok(loaded.includes('NativeModule net'), 'the probe lists internal modules');
  assert.ok(!loaded.includes(undici), 'undici loaded: some module imports node:http or node:https as an ES module (use process.getBuiltinModule)');
});
