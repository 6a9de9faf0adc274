/** `airlock validate` gives the verdict admission gives: RE2 patterns, detectors, globs, selectors; warnings do not fail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { policyVerdict } from '@airlock/policy';
import { parseManifests } from '@airlock/api';
import { validateCommand } from '../src/commands/validate.ts';

async function validate(text: string): Promise<{ code: number; out: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-validate-'));
  const file = join(dir, 'p.yaml');
  writeFileSync(file, text);
  let out = '';
  let err = '';
  try {
    const code = await validateCommand(['-f', file], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
    return { code, out, err: err.replaceAll(file, 'p.yaml') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const policy = (pattern: string): string => `apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: pii, namespace: agents }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: ids
      match: { pattern: ${JSON.stringify(pattern)} }
      action: { type: redact }
`;

test('a pattern RE2 refuses (lookbehind) fails validate, with the message admission gives', async () => {
  const r = await validate(policy('(?<=id=)[0-9]+'));
  assert.equal(r.code, 1);
  const object = parseManifests('p.yaml', policy('(?<=id=)[0-9]+')).manifests[0]?.object;
  const expected = policyVerdict(object).errors[0];
  assert.ok(expected);
  assert.equal(r.err, `p.yaml:1: MaskingPolicy/pii: ${expected.field}: ${expected.message}\n1 problem(s) in 1 file(s)\n`);
  assert.match(r.err, /spec\.rules\[0\]\.match\.pattern: Invalid value: rule "ids": invalid perl operator: \(\?</);
  assert.equal((await validate(policy('id=[0-9]+'))).code, 0);
});

test('risky but legal objects are valid, with warning lines', async () => {
  const r = await validate(`apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: db, namespace: agents, labels: { airlock.dev/data-classification: pii } }
spec:
  protocol: postgres
  target: { host: db.example, port: 5432, database: d }
  credentialsSecretRef: { name: db }
  agents: { serviceAccounts: [agent] }
  defaultAction: Allow
`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /1 Airlock object\(s\) in 1 file\(s\) are valid/);
  assert.match(r.err, /^p\.yaml:1: AgentConnection\/db: warning: spec\.defaultAction is Allow on a connection labelled airlock\.dev\/data-classification=pii/);
});
