/**
 * Schema defaults through a real API server (issue 12 follow-up): objects with defaulted fields
 * left out, set to null or given as empty objects are created through kube-apiserver and read
 * back; the stored objects must equal what the local validator (api/src/validate.ts, used by
 * `airlock sidecar -f` and `airlock validate`) makes of the same input, and the sidecar must
 * resolve the same upstream from both (`tls: {}` is TLS mode require, not disable).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { airlockValidators, parseManifests, type Manifest } from '@airlock/api';
import { resolveUpstream } from '@airlock/sidecar';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { DEFAULTS_NAMESPACE, defaultsCases } from '../../api/test/defaults-cases.ts';

let cp: ControlPlane;

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  cp = startControlPlane();
  await ok(['apply', '-f', join(ROOT, 'crds')]);
  await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
  await ok(['create', 'namespace', DEFAULTS_NAMESPACE]);
});

after(() => {
  cp.stop();
});

/** The object as the API server stores it: created from exactly this JSON (nulls included), returned by the create. */
async function created(object: Record<string, unknown>): Promise<Record<string, unknown>> {
  return JSON.parse(await ok(['create', '-f', '-', '-o', 'json'], JSON.stringify(object))) as Record<string, unknown>;
}

test('the API server stores each case as the local validator defaults it', async () => {
  for (const c of defaultsCases()) {
    const local = structuredClone(c.object);
    const validator = airlockValidators().get(String(local['kind']));
    assert.ok(validator !== undefined);
    assert.deepEqual(validator.validate(local), [], c.name);
    const server = await created(c.object);
    assert.deepEqual(server['spec'], local['spec'], `${c.name}: server vs local`);
    assert.deepEqual(server['spec'], c.spec, `${c.name}: server vs expected`);
    // and reading it back later gives the same (defaults are also applied on read)
    const read = JSON.parse(await ok(['get', String(local['kind']).toLowerCase(), c.name, '-n', DEFAULTS_NAMESPACE, '-o', 'json'])) as Record<string, unknown>;
    assert.deepEqual(read['spec'], local['spec'], `${c.name}: read back`);
  }
});

test('the server refuses what the local validator refuses once defaults apply: tls {caSecretRef} defaults mode to require', async () => {
  const [first] = defaultsCases();
  assert.ok(first !== undefined);
  const o = structuredClone(first.object);
  (o['metadata'] as Record<string, unknown>)['name'] = 'ca-without-verify';
  ((o['spec'] as Record<string, Record<string, unknown>>)['target'] ?? {})['tls'] = { caSecretRef: { name: 'ca' } };
  const local = airlockValidators().get('AgentConnection')?.validate(structuredClone(o));
  assert.deepEqual(local?.map((e) => e.field), ['spec.target.tls.caSecretRef']);
  const r = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(o) });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /spec\.target\.tls\.caSecretRef: Invalid value: .*caSecretRef is only used with mode verify-full/);
});

test('the sidecar resolves the same upstream from the local file and from the stored object: tls {} is mode require', async () => {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: DEFAULTS_NAMESPACE }, stringData: { username: 'u', password: 'p' } };
  for (const name of ['pg-tls-empty', 'pg-no-tls', 'pg-tls-nulls']) {
    const c = defaultsCases().find((x) => x.name === name);
    assert.ok(c !== undefined);
    const fromFile = parseManifests('local.yaml', [c.object, secret].map((m) => JSON.stringify(m)).join('\n---\n'));
    assert.deepEqual(fromFile.errors, []);
    const stored = JSON.parse(await ok(['get', 'agentconnection', name, '-n', DEFAULTS_NAMESPACE, '-o', 'json'])) as Record<string, unknown>;
    const fromCluster = parseManifests('cluster.json', [stored, secret].map((m) => JSON.stringify(m)).join('\n---\n'));
    assert.deepEqual(fromCluster.errors, []);
    const upstream = (manifests: readonly Manifest[]) => resolveUpstream(manifests, name, DEFAULTS_NAMESPACE);
    assert.deepEqual(upstream(fromFile.manifests), upstream(fromCluster.manifests), name);
    assert.equal(upstream(fromFile.manifests).tls.mode, name === 'pg-no-tls' ? 'disable' : 'require', name);
  }
});
