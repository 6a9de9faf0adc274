/** The pod handler around planInjection: fail closed while unsynced or unconfigured, deny → 403, patch passed on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Namespace } from '@kubernetes/client-node';
import type { AgentConnection } from '@airlock/api';
import type { AdmissionRequest } from '../src/admission.ts';
import { injectPodAdmission } from '../src/pods.ts';
import type { InjectionSettings } from '../src/inject/index.ts';

const settings: InjectionSettings = { image: 'airlock:test', controlUrl: 'https://control:8443', controlCa: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', defaultCapture: 'transparent', airlockNamespace: 'airlock-system' };
const enabled = { metadata: { name: 'agents', labels: { 'airlock.dev/inject': 'enabled' } } } as unknown as V1Namespace;
const plain = { metadata: { name: 'agents' } } as unknown as V1Namespace;
const connection = {
  apiVersion: 'airlock.dev/v1alpha1',
  kind: 'AgentConnection',
  metadata: { name: 'db', namespace: 'agents' },
  spec: { protocol: 'postgres', target: { host: 'db.example', port: 5432, database: 'd' }, credentialsSecretRef: { name: 'db-credentials' }, agents: { podSelector: { matchLabels: { app: 'agent' } } } },
} as AgentConnection;

function create(spec: Record<string, unknown> = {}, operation: 'CREATE' | 'UPDATE' = 'CREATE'): AdmissionRequest {
  return {
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'agents',
    operation,
    userInfo: { username: 'a', groups: [] },
    object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'agents', labels: { app: 'agent' } }, spec: { containers: [{ name: 'agent', image: 'agent:1' }], ...spec } },
    dryRun: false,
  };
}

test('a pod that is not opted in is allowed untouched, even before the caches sync', () => {
  assert.deepEqual(injectPodAdmission(create(), { namespace: plain, connections: undefined, settings: undefined }), { allowed: true });
  const update = create({}, 'UPDATE');
  assert.deepEqual(injectPodAdmission({ ...update, oldObject: update.object }, { namespace: enabled, connections: undefined, settings }), { allowed: true });
});

test('an UPDATE: Airlock\'s containers may not change, and one without its old object is malformed', () => {
  const sidecar = { name: 'airlock-proxy', image: 'airlock:1', restartPolicy: 'Always' };
  const old = create({ initContainers: [sidecar] }, 'UPDATE');
  const swapped = create({ initContainers: [{ ...sidecar, image: 'evil:1' }] }, 'UPDATE');
  const denied = injectPodAdmission({ ...swapped, oldObject: old.object }, { namespace: plain, connections: [], settings });
  assert.ok(!denied.allowed && /spec\.initContainers\[0\]: airlock-proxy is Airlock's container and may not be changed after injection/.test(denied.message), JSON.stringify(denied));
  assert.deepEqual(injectPodAdmission({ ...old, oldObject: old.object }, { namespace: plain, connections: [], settings }), { allowed: true });
  const malformed = injectPodAdmission(create({}, 'UPDATE'), { namespace: enabled, connections: [], settings });
  assert.ok(!malformed.allowed && malformed.code === 400);
});

test('an opted-in pod is refused (503) while the caches have not synced or the settings are missing', () => {
  const unsynced = injectPodAdmission(create(), { namespace: enabled, connections: undefined, settings });
  assert.ok(!unsynced.allowed && unsynced.code === 503 && /not synced/.test(unsynced.message));
  const unset = injectPodAdmission(create(), { namespace: enabled, connections: [connection], settings: undefined, settingsProblem: 'the control CA is missing' });
  assert.ok(!unset.allowed && unset.code === 503 && /the control CA is missing/.test(unset.message));
});

test('planInjection decides: a patch is passed on, a refusal is 403 with its message, skip is allowed', () => {
  const patched = injectPodAdmission(create(), { namespace: enabled, connections: [connection], settings });
  assert.ok(patched.allowed && (patched.patch?.length ?? 0) > 0, JSON.stringify(patched));
  const refused = injectPodAdmission(create({ hostNetwork: true }), { namespace: enabled, connections: [connection], settings });
  assert.ok(!refused.allowed && refused.code === 403 && /spec\.hostNetwork/.test(refused.message), JSON.stringify(refused));
  assert.deepEqual(injectPodAdmission(create(), { namespace: enabled, connections: [], settings }), { allowed: true });
});
