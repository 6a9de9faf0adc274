import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseCel } from '@marcbachmann/cel-js';
import { KINDS, airlockValidators, formatFieldError, objectSchema, parseManifests, type Schema } from '@airlock/api';
import { exampleFiles, invalidCases } from './cases.ts';

test('every example manifest validates', () => {
  const files = exampleFiles();
  assert.ok(files.length >= 4, 'examples/ holds the example set');
  const kinds = new Set<string>();
  for (const file of files) {
    const parsed = parseManifests(file, readFileSync(file, 'utf8'));
    assert.deepEqual(parsed.errors, [], `${file} has errors`);
    for (const m of parsed.manifests) kinds.add(m.kind);
  }
  for (const kind of ['AgentConnection', 'MaskingPolicy', 'ApprovalRule', 'Secret']) assert.ok(kinds.has(kind), `examples contain a ${kind}`);
});

test('the examples cover a postgres and an ssh connection', () => {
  const protocols = exampleFiles()
    .flatMap((f) => parseManifests(f, readFileSync(f, 'utf8')).manifests)
    .filter((m) => m.kind === 'AgentConnection')
    .map((m) => (m.object['spec'] as { protocol: string }).protocol)
    .sort();
  assert.deepEqual(protocols, ['postgres', 'ssh']);
});

for (const c of invalidCases()) {
  test(`invalid manifest ${c.name} is rejected naming ${c.field}`, () => {
    const parsed = parseManifests(c.file, c.text);
    assert.equal(parsed.manifests.length, 0, 'nothing is accepted');
    assert.ok(parsed.errors.length >= 1, 'an error is reported');
    const first = parsed.errors[0];
    assert.ok(first !== undefined);
    assert.equal(first.document, 1);
    assert.match(first.message, new RegExp(`: ${c.field.replace(/[[\].]/g, '\\$&')}: `), `names the field: ${first.message}`);
    assert.ok(first.message.includes(c.message), `says "${c.message}": ${first.message}`);
  });
}

test('errors name the file and the document', () => {
  const text = `apiVersion: v1\nkind: Namespace\nmetadata: { name: a }\n---\napiVersion: airlock.dev/v1alpha1\nkind: MaskingPolicy\nmetadata: { name: p }\nspec:\n  connectionSelector: {}\n  rules: []\n`;
  const parsed = parseManifests('policies.yaml', text);
  assert.deepEqual(
    parsed.errors.map((e) => `${e.source}:${e.document}: ${e.message}`),
    ['policies.yaml:2: MaskingPolicy/p: spec.rules: Invalid value: should have at least 1 items'],
  );
});

test('YAML syntax errors give the line', () => {
  const parsed = parseManifests('broken.yaml', 'apiVersion: v1\nkind: [\n');
  assert.equal(parsed.errors.length, 1);
  assert.match(parsed.errors[0]?.message ?? '', /^line \d+ column \d+: invalid YAML: /);
});

test('non-mapping documents, unknown airlock kinds and missing kind are precise errors', () => {
  const parsed = parseManifests('x.yaml', '- a\n---\napiVersion: airlock.dev/v1alpha1\nkind: Gateway\nmetadata: { name: g }\n---\napiVersion: v1\n');
  assert.deepEqual(
    parsed.errors.map((e) => `${e.document}: ${e.message}`),
    ['1: Invalid value: a manifest must be a YAML mapping', '2: kind: Unsupported value: "Gateway": not a kind of airlock.dev', '3: kind: Required value'],
  );
});

test('objects of other kinds are ignored, Secrets kept, Lists unwrapped', () => {
  const text = `apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: Secret, metadata: { name: s }, stringData: { password: x } }\n  - { apiVersion: apps/v1, kind: Deployment, metadata: { name: d } }\n`;
  const parsed = parseManifests('list.yaml', text);
  assert.deepEqual(parsed.errors, []);
  assert.deepEqual(parsed.manifests.map((m) => `${m.kind}/${m.name}`), ['Secret/s']);
});

test('metadata.name is required and must be a DNS subdomain', () => {
  const v = airlockValidators().get('MaskingPolicy');
  assert.ok(v);
  const spec = { connectionSelector: {}, rules: [{ name: 'r', match: { detectors: ['email'] }, action: { type: 'redact' } }] };
  assert.deepEqual(v.validate({ apiVersion: 'airlock.dev/v1alpha1', kind: 'MaskingPolicy', metadata: {}, spec }).map(formatFieldError), [
    'metadata.name: Required value: name is required',
  ]);
  assert.deepEqual(v.validate({ apiVersion: 'airlock.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name: 'Bad_Name' }, spec }).map(formatFieldError), [
    'metadata.name: Invalid value: "Bad_Name": must be a lowercase RFC 1123 subdomain',
  ]);
  assert.deepEqual(v.validate({ apiVersion: 'airlock.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name: 'ok' }, spec }), []);
});

test('ApprovalRequest.spec is immutable (transition rule checked against the old object)', () => {
  const v = airlockValidators().get('ApprovalRequest');
  assert.ok(v);
  const obj = (command: string) => ({
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: 'req-1' },
    spec: {
      connection: 'orders-db',
      protocol: 'postgres',
      requester: { pod: 'planner-0' },
      command,
      rule: { approvalRule: 'prod-guardrails', name: 'writes-need-review' },
      approvers: { groups: ['dba'] },
      required: 1,
      expiresAt: '2026-11-23T10:00:00Z',
    },
  });
  assert.deepEqual(v.validate(obj('DELETE FROM t WHERE id = $1')), [], 'valid on create');
  assert.deepEqual(v.validate(obj('DELETE FROM t WHERE id = $1'), obj('DELETE FROM t WHERE id = $1')), [], 'unchanged spec passes');
  assert.deepEqual(v.validate(obj('SELECT 1'), obj('DELETE FROM t WHERE id = $1')).map(formatFieldError), ['spec: Invalid value: spec is immutable']);
});

function walk(schema: Schema, path: string, visit: (s: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [name, child] of Object.entries(schema.properties ?? {})) walk(child, `${path}.${name}`, visit);
  if (schema.items !== undefined) walk(schema.items, `${path}[]`, visit);
}

test('every field of every kind has a description (kubectl explain teaches the API)', () => {
  const missing: string[] = [];
  for (const def of KINDS) {
    walk(objectSchema(def), def.kind, (s, path) => {
      if (path === `${def.kind}.metadata`) return; // the API server forbids anything but type there
      if (s.description === undefined || s.description.length < 3) missing.push(path);
    });
  }
  assert.deepEqual(missing, []);
});

test('every CEL rule parses, and every kind has printer columns and short names', () => {
  for (const def of KINDS) {
    assert.ok(def.printerColumns.length >= 2, `${def.kind} has printer columns`);
    assert.ok(def.shortNames.length >= 1, `${def.kind} has a short name`);
    walk(objectSchema(def), def.kind, (s, path) => {
      for (const r of s['x-kubernetes-validations'] ?? []) {
        assert.doesNotThrow(() => parseCel(r.rule), `${path}: ${r.rule}`);
        assert.ok(r.message.length > 0);
      }
    });
  }
});
