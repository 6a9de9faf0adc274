/**
 * A bundle does not depend on the process's locale: policies are ordered by name in code-unit
 * order, as the operator orders them, whatever LANG says (localeCompare in a Danish locale sorts
 * "aa-…" after "b-…"). Compiled in child processes started with two locales.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

/** two masking policies and two approval rules for orders-db, named so that Danish collation reorders them */
const EXTRA = ['aa-mask', 'b-mask']
  .map((name) => `apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: ${name}, namespace: agents }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - { name: ids, match: { pattern: "ID-[0-9]+" }, action: { type: redact } }
`)
  .concat(
    ['aa-rules', 'b-rules'].map((name) => `apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: ${name}, namespace: agents }
spec:
  connectionSelector: { matchLabels: { env: prod } }
  rules:
    - { name: no-drop, match: { sql: { classes: [destructive] } }, action: Block }
`),
  )
  .join('---\n');

/** the bundle's policy order and digest, compiled in a fresh process under `locale` */
function compiledUnder(locale: string): unknown {
  const code = `
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifests } from '@airlock/api';
import { compileBundle } from '@airlock/policy';
const dir = process.env.EXAMPLES;
const texts = readdirSync(dir).sort().map((f) => readFileSync(join(dir, f), 'utf8')).concat(process.env.EXTRA);
const manifests = texts.flatMap((t, i) => { const r = parseManifests('f' + i + '.yaml', t); if (r.errors.length > 0) throw new Error(JSON.stringify(r.errors)); return r.manifests; });
const b = compileBundle(manifests, { connection: 'orders-db', serviceAccount: 'planner' });
console.log(JSON.stringify({ locale: Intl.DateTimeFormat().resolvedOptions().locale, maskingPolicies: b.maskingPolicies, approvalRules: b.approvalRules, digest: b.digest }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: join(import.meta.dirname, '..'),
    encoding: 'utf8',
    env: { ...process.env, LANG: locale, LC_ALL: locale, EXAMPLES, EXTRA },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('a bundle orders its policies by name in code-unit order, and has the same digest, in every locale', () => {
  const english = compiledUnder('en_US.UTF-8') as { locale: string; digest: string };
  const danish = compiledUnder('da_DK.UTF-8') as { locale: string; digest: string };
  assert.equal(english.locale, 'en-US');
  assert.equal(danish.locale, 'da-DK', 'the child runs in a Danish locale (the probe can tell)');
  assert.deepEqual({ ...danish, locale: '' }, { ...english, locale: '' });
  assert.deepEqual((english as unknown as { maskingPolicies: string[] }).maskingPolicies, ['aa-mask', 'b-mask', 'pii']);
  assert.deepEqual((english as unknown as { approvalRules: string[] }).approvalRules, ['aa-rules', 'b-rules', 'ops-shell', 'prod-guardrails']);
});
