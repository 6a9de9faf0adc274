/**
 * Schema defaults: local validation applies them exactly as the API server's structural
 * defaulting does (issue 12 follow-up), so local mode and the cluster see the same objects.
 * The real API server is checked against the same cases in e2e/test/defaults.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import yaml from 'js-yaml';
import { KINDS, airlockValidators, objectSchema, parseManifests, type Schema } from '@airlock/api';
import { defaultsCases, referenceDefault } from './defaults-cases.ts';
import { exampleFiles } from './cases.ts';

const schemaOf = (kind: string): Schema => {
  const def = KINDS.find((k) => k.kind === kind);
  assert.ok(def !== undefined, kind);
  return objectSchema(def);
};

function validated(object: Record<string, unknown>): { object: Record<string, unknown>; errors: string[] } {
  const v = airlockValidators().get(String(object['kind']));
  assert.ok(v !== undefined);
  const errors = v.validate(object).map((e) => `${e.field}: ${e.message}`);
  return { object, errors };
}

test('validation fills in the schema defaults in place, inside present objects only', () => {
  for (const c of defaultsCases()) {
    const { object, errors } = validated(c.object);
    assert.deepEqual(errors, [], c.name);
    assert.deepEqual(object['spec'], c.spec, c.name);
  }
});

test('parseManifests hands out the defaulted objects (what airlock sidecar -f and airlock validate use)', () => {
  const text = defaultsCases()
    .map((c) => yaml.dump(c.object))
    .join('---\n');
  const parsed = parseManifests('defaults.yaml', text);
  assert.deepEqual(parsed.errors, []);
  const byName = new Map(parsed.manifests.map((m) => [m.name, m.object]));
  for (const c of defaultsCases()) assert.deepEqual(byName.get(c.name)?.['spec'], c.spec, c.name);
});

test('the defaults equal a port of the API server algorithm on every case and example', () => {
  const objects = [
    ...defaultsCases().map((c) => c.object),
    ...exampleFiles().flatMap((f) => yaml.loadAll(readFileSync(f, 'utf8')) as Record<string, unknown>[]),
  ].filter((o) => String(o['apiVersion']).startsWith('airlock.dev/'));
  assert.ok(objects.length >= 10);
  for (const o of objects) {
    const want = structuredClone(o);
    referenceDefault(want, schemaOf(String(o['kind'])));
    const { object, errors } = validated(structuredClone(o));
    assert.deepEqual(errors, []);
    assert.deepEqual(object, want, (o['metadata'] as { name: string }).name);
  }
});

test('CEL rules see the defaulted object, as on the server: tls {caSecretRef} alone defaults mode to require and is refused', () => {
  const [first] = defaultsCases();
  assert.ok(first !== undefined);
  const o = structuredClone(first.object);
  ((o['spec'] as Record<string, Record<string, unknown>>)['target'] ?? {})['tls'] = { caSecretRef: { name: 'ca' } };
  assert.deepEqual(validated(o).errors, ['spec.target.tls.caSecretRef: Invalid value: caSecretRef is only used with mode verify-full']);
});

/** Paths (property names from the root) of every optional property present, and absent optional objects. */
function optionalPaths(x: unknown, s: Schema, path: readonly string[], out: { path: readonly string[]; object: boolean; present: boolean }[]): void {
  if (Array.isArray(x) && s.items !== undefined) {
    x.forEach((item: unknown, i) => {
      if (s.items !== undefined) optionalPaths(item, s.items, [...path, String(i)], out);
    });
    return;
  }
  if (x === null || typeof x !== 'object' || s.properties === undefined) return;
  const record = x as Record<string, unknown>;
  for (const [k, sub] of Object.entries(s.properties)) {
    if (path.length === 0 && k !== 'spec') continue;
    const optional = !(s.required ?? []).includes(k);
    const present = k in record;
    if (optional && (present || sub.type === 'object')) out.push({ path: [...path, k], object: sub.type === 'object', present });
    if (present) optionalPaths(record[k], sub, [...path, k], out);
  }
}

function setAt(x: Record<string, unknown>, path: readonly string[], how: 'delete' | 'null' | 'empty'): void {
  let node: unknown = x;
  for (const k of path.slice(0, -1)) node = (node as Record<string, unknown>)[k];
  const key = path[path.length - 1] ?? '';
  const parent = node as Record<string, unknown>;
  if (how === 'delete') Reflect.deleteProperty(parent, key);
  else parent[key] = how === 'null' ? null : {};
}

test('property: with optional fields removed, set to null or emptied at random, the defaults equal the API server algorithm', () => {
  const bases = [
    ...defaultsCases().map((c) => c.object),
    ...exampleFiles().flatMap((f) => yaml.loadAll(readFileSync(f, 'utf8')) as Record<string, unknown>[]),
  ].filter((o) => String(o['apiVersion']).startsWith('airlock.dev/'));
  fc.assert(
    fc.property(fc.constantFrom(...bases), fc.array(fc.tuple(fc.nat(), fc.constantFrom('delete', 'null', 'empty')), { maxLength: 4 }), (base, edits) => {
      const o = structuredClone(base);
      const schema = schemaOf(String(o['kind']));
      for (const [pick, how] of edits) {
        const paths: { path: readonly string[]; object: boolean; present: boolean }[] = [];
        optionalPaths(o, schema, [], paths);
        const p = paths[pick % Math.max(1, paths.length)];
        if (p === undefined) continue;
        if (how === 'empty' && !p.object) continue;
        if (!p.present && how !== 'empty') continue;
        setAt(o, p.path, how);
      }
      const want = structuredClone(o);
      referenceDefault(want, schema);
      const { object, errors } = validated(o);
      if (errors.length === 0) assert.deepEqual(object, want);
    }),
    { numRuns: 1500 },
  );
});
