/**
 * Sidecar injection (webhooks/src/inject): golden patches on AdmissionReview pods, the patched
 * pod's shape, idempotency and reinvocation, every no-bypass refusal with its message, and a
 * property: no random pod spec is ever patched into a pod that breaks the no-bypass rules.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { CONTROL_AUDIENCE, INJECTED_ANNOTATION, SIDECAR_GID, SIDECAR_TOKEN_DIR, SIDECAR_UID, type AgentConnection } from '@airlock/api';
import { ephemeralContainerViolations, injectedContainersChanged, optedIn, planInjection, type InjectionInput, type InjectionResult, type InjectionSettings } from '../src/inject/index.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));
}

type Json = Record<string, unknown>;
interface Review {
  request: { namespace: string; object: V1Pod };
}
/** a pod as plain JSON, for tests that change one (the client's V1* classes are not built by hand) */
interface PodJson {
  metadata: Json & { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Json & { containers: Json[]; initContainers?: Json[]; volumes?: Json[] };
}

function toPod(p: object): V1Pod {
  return p;
}

function toNamespace(n: object): V1Namespace {
  return n;
}

/** a changed copy of a pod */
function edit(pod: V1Pod, change: (p: PodJson) => void): V1Pod {
  const p = structuredClone(pod) as unknown as PodJson;
  change(p);
  return toPod(p);
}

const NAMESPACE = toNamespace(fixture('namespace.json') as object);
const CONNECTIONS = fixture('connections.json') as AgentConnection[];
const CREDENTIALS = CONNECTIONS.map((c) => c.spec.credentialsSecretRef.name);
const SETTINGS: InjectionSettings = {
  image: 'registry.example/airlock:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  controlUrl: 'https://airlock-operator.airlock-system.svc:8443',
  controlCa: '-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIUAirlockTestCA\n-----END CERTIFICATE-----\n',
  defaultCapture: 'transparent',
  airlockNamespace: 'airlock-system',
};

function podOf(name: string): V1Pod {
  return (fixture(`${name}.review.json`) as Review).request.object;
}

function plan(pod: V1Pod, over: Partial<InjectionInput> = {}): InjectionResult {
  return planInjection({ pod, namespace: NAMESPACE, connections: CONNECTIONS, settings: SETTINGS, ...over });
}

function patched(pod: V1Pod, patch: readonly Operation[]): V1Pod {
  // validate: every operation must apply to the pod as submitted (RFC 6902)
  return jsonpatch.applyPatch(structuredClone(pod), [...patch], true, false).newDocument;
}

function expectPatch(r: InjectionResult): { patch: readonly Operation[]; warnings: readonly string[] } {
  assert.equal(r.kind, 'patch', JSON.stringify(r));
  return r;
}

function expectDeny(r: InjectionResult): string {
  assert.equal(r.kind, 'deny', JSON.stringify(r));
  return (r as { message: string }).message;
}

const PREFIX = 'Airlock refuses this pod: it would let the agent bypass the Airlock sidecar: ';

const ALL_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

function containersOf(pod: V1Pod): { path: string; c: Json }[] {
  const spec = (pod.spec ?? {}) as unknown as Json;
  return ALL_LISTS.flatMap((l) => ((spec[l] ?? []) as Json[]).map((c, i) => ({ path: `spec.${l}[${i}]`, c })));
}

/**
 * An independent statement of the no-bypass rules on an injected pod (written apart from
 * src/inject/bypass.ts): the sidecar is a native sidecar, alone with the token and recordings;
 * nothing else can rewrite the capture rules, run as the sidecar, leave the network namespace,
 * see the sidecar's processes, or read a connection's credentials.
 */
/** every string under a key that mentions a secret, at any depth */
function secretStrings(value: unknown, underSecret = false): string[] {
  if (typeof value === 'string') return underSecret ? [value] : [];
  if (Array.isArray(value)) return value.flatMap((v) => secretStrings(v, underSecret));
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => secretStrings(v, underSecret || /secret/i.test(k)));
  return [];
}

function assertNoBypass(pod: V1Pod): void {
  const spec = (pod.spec ?? {}) as unknown as Json;
  const inits = (spec.initContainers ?? []) as Json[];
  const sidecars = containersOf(pod).filter(({ c }) => c.name === 'airlock-proxy');
  assert.equal(sidecars.length, 1, 'one sidecar');
  const sidecarIndex = inits.findIndex((c) => c.name === 'airlock-proxy');
  assert.ok(sidecarIndex >= 0 && sidecarIndex <= 1, 'the sidecar is one of the first init containers');
  assert.equal(inits[sidecarIndex]?.restartPolicy, 'Always');
  const ours = new Set(inits.slice(0, sidecarIndex + 1).filter((c) => c.image === SETTINGS.image).map((c) => c));
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace']) assert.notEqual(spec[f], true, f);
  const podSc = (spec.securityContext ?? {}) as Json;
  assert.notEqual(podSc.runAsUser, SIDECAR_UID);
  assert.notEqual(podSc.runAsGroup, SIDECAR_GID);
  assert.notEqual(podSc.fsGroup, SIDECAR_GID);
  assert.ok(!((podSc.supplementalGroups ?? []) as number[]).includes(SIDECAR_GID));
  for (const { path, c } of containersOf(pod)) {
    if (ours.has(c)) continue;
    assert.ok(!String(c.name).startsWith('airlock-'), `${path} is named ${String(c.name)}`);
    const sc = (c.securityContext ?? {}) as Json;
    assert.notEqual(sc.privileged, true, `${path} privileged`);
    assert.notEqual(sc.runAsUser, SIDECAR_UID, `${path} runAsUser`);
    assert.notEqual(sc.runAsGroup, SIDECAR_GID, `${path} runAsGroup`);
    const add = (((sc.capabilities ?? {}) as Json).add ?? []) as string[];
    for (const cap of add) assert.ok(!['NET_ADMIN', 'NET_RAW', 'ALL'].includes(cap.toUpperCase().replace(/^CAP_/, '')), `${path} adds ${cap}`);
    const refs = secretStrings([c.env ?? [], c.envFrom ?? []]);
    for (const cred of CREDENTIALS) assert.ok(!refs.includes(cred), `${path} env references ${cred}`);
    for (const m of [...((c.volumeMounts ?? []) as { name: string }[]), ...((c.volumeDevices ?? []) as { name: string }[])]) assert.ok(!m.name.startsWith('airlock-'), `${path} mounts ${m.name}`);
    assert.ok(typeof c.targetContainerName !== 'string' || !c.targetContainerName.startsWith('airlock-'));
  }
  for (const v of (spec.volumes ?? []) as Json[]) {
    if (String(v.name).startsWith('airlock-')) continue;
    const refs = secretStrings(v);
    for (const cred of CREDENTIALS) assert.ok(!refs.includes(cred), `volume ${String(v.name)} references ${cred}`);
  }
}

describe('golden patches', () => {
  const cases = ['deployment-pod', 'bare-pod', 'init-container-pod', 'explicit-pod', 'two-connections-pod'];
  for (const name of cases) {
    test(name, () => {
      const pod = podOf(name);
      const result = plan(pod);
      const file = join(FIXTURES, `${name}.result.json`);
      if (UPDATE) writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      assert.deepEqual(result, JSON.parse(readFileSync(file, 'utf8')));
      const { patch } = expectPatch(result);
      const after = patched(pod, patch);
      assertNoBypass(after);
      // idempotent: a second pass (or a reinvocation) changes nothing
      assert.deepEqual(plan(after), { kind: 'skip', reason: 'already injected' });
    });
  }

  test('deployment pod: native sidecar with the token and recordings, capture first, agent untouched', () => {
    const pod = podOf('deployment-pod');
    const after = patched(pod, expectPatch(plan(pod)).patch);
    const inits = after.spec?.initContainers ?? [];
    assert.deepEqual(inits.map((c) => c.name), ['airlock-capture', 'airlock-proxy']);
    const capture = inits[0];
    const sidecar = inits[1];
    assert.ok(capture && sidecar);
    assert.deepEqual(capture.args, ['capture', '--sidecar-uid', '15532', '--redirect', 'orders-db=orders-db.databases.svc:5432:15432']);
    assert.deepEqual(capture.securityContext?.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    assert.equal(capture.securityContext.runAsUser, 0);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.deepEqual(sidecar.args, ['sidecar', '--cluster']);
    assert.deepEqual(sidecar.volumeMounts, [
      { name: 'airlock-token', mountPath: SIDECAR_TOKEN_DIR, readOnly: true },
      { name: 'airlock-state', mountPath: '/var/lib/airlock/state' },
      { name: 'airlock-recordings-0', mountPath: '/var/lib/airlock/recordings/agent-recordings', subPathExpr: '$(AIRLOCK_POD_NAMESPACE)/$(AIRLOCK_POD_NAME)' },
    ]);
    const token = after.spec?.volumes?.find((v) => v.name === 'airlock-token');
    assert.deepEqual(token?.projected?.sources, [{ serviceAccountToken: { audience: CONTROL_AUDIENCE, expirationSeconds: 3600, path: 'token' } }]);
    // the agent container gets Airlock's CA (the ConfigMap airlock-ca, read-only) and PGSSLROOTCERT, nothing else
    const agentBefore = pod.spec?.containers[0];
    const agentAfter = after.spec?.containers[0];
    assert.ok(agentBefore && agentAfter);
    const rest = (c: object): object => Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'env' && k !== 'volumeMounts'));
    assert.deepEqual(rest(agentAfter), rest(agentBefore), 'nothing else of the agent container changes');
    assert.deepEqual(agentAfter.env?.slice((agentBefore.env ?? []).length), [{ name: 'PGSSLROOTCERT', value: '/etc/airlock/ca/ca.crt' }]);
    assert.deepEqual(agentAfter.volumeMounts?.slice((agentBefore.volumeMounts ?? []).length), [{ name: 'agent-airlock-ca', mountPath: '/etc/airlock/ca', readOnly: true }]);
    assert.deepEqual(after.spec?.volumes?.find((v) => v.name === 'agent-airlock-ca'), { name: 'agent-airlock-ca', configMap: { name: 'airlock-ca', optional: true } });
    assert.equal(after.metadata?.annotations?.[INJECTED_ANNOTATION], '{"image":"registry.example/airlock:0.1.0","capture":"transparent","connections":["orders-db"]}');
  });

  test('existing init containers run after capture and the sidecar', () => {
    const pod = podOf('init-container-pod');
    const after = patched(pod, expectPatch(plan(pod)).patch);
    assert.deepEqual(after.spec?.initContainers?.map((c) => c.name), ['airlock-capture', 'airlock-proxy', 'wait-for-schema']);
  });

  test('explicit: no capture container, env for the agent containers, the pod\'s own PGHOST kept', () => {
    const pod = podOf('explicit-pod');
    const { patch, warnings } = expectPatch(plan(pod));
    const after = patched(pod, patch);
    assert.deepEqual(after.spec?.initContainers?.map((c) => c.name), ['airlock-proxy']);
    const env = (i: number): Record<string, string | undefined> => Object.fromEntries((after.spec?.containers[i]?.env ?? []).map((e) => [e.name, e.value]));
    assert.deepEqual(env(0), { LOG_LEVEL: 'info', PGHOST: '127.0.0.1', PGPORT: '15432', AIRLOCK_ORDERS_DB_HOST: '127.0.0.1', AIRLOCK_ORDERS_DB_PORT: '15432', PGSSLROOTCERT: '/etc/airlock/ca/ca.crt' });
    assert.equal(env(1).PGHOST, 'orders-db.databases.svc');
    assert.ok(warnings.some((w) => w.startsWith('capture explicit: agent traffic is not captured')));
    assert.ok(warnings.some((w) => w.includes('spec.containers[1].env PGHOST')));
  });

  test('agent trust: an ssh connection adds ssh_known_hosts at /etc/ssh; a path the container mounts itself is kept, with a warning; reinvocation skips', () => {
    const pod = edit(podOf('bare-pod'), (p) => {
      p.metadata.labels = { ...p.metadata.labels, role: 'debug' };
      const c = p.spec.containers[0] as { volumeMounts?: unknown[] };
      c.volumeMounts = [{ name: 'own-ca', mountPath: '/etc/airlock/ca/' }];
      p.spec.volumes = [...(p.spec.volumes ?? []), { name: 'own-ca', emptyDir: {} }];
    });
    const { patch, warnings } = expectPatch(plan(pod));
    const after = patched(pod, patch);
    const mounts = after.spec?.containers[0]?.volumeMounts ?? [];
    assert.deepEqual(mounts.filter((m) => m.name === 'agent-airlock-ca'), [{ name: 'agent-airlock-ca', mountPath: '/etc/ssh/ssh_known_hosts', subPath: 'ssh_known_hosts', readOnly: true }]);
    assert.ok(warnings.some((w) => w.includes('already mounts /etc/airlock/ca')), warnings.join('\n'));
    assert.deepEqual(plan(after), { kind: 'skip', reason: 'already injected' });
  });

  test('agent trust: a pod with its own volume of that name keeps it and gets no mounts (warning)', () => {
    const pod = edit(podOf('deployment-pod'), (p) => {
      p.spec.volumes = [...(p.spec.volumes ?? []), { name: 'agent-airlock-ca', emptyDir: {} }];
    });
    const { patch, warnings } = expectPatch(plan(pod));
    const after = patched(pod, patch);
    assert.equal(after.spec?.volumes?.filter((v) => v.name === 'agent-airlock-ca').length, 1);
    assert.ok(!(after.spec.containers[0]?.volumeMounts ?? []).some((m) => m.name === 'agent-airlock-ca'));
    assert.ok(warnings.some((w) => w.includes('already has a volume named agent-airlock-ca')));
  });

  test('two connections on one port: captured by address, one claim mounted once', () => {
    const pod = podOf('two-connections-pod');
    const { patch, warnings } = expectPatch(plan(pod));
    const after = patched(pod, patch);
    const capture = after.spec?.initContainers?.[0];
    assert.ok(capture);
    assert.deepEqual(capture.args, ['capture', '--sidecar-uid', '15532', '--redirect', 'analytics=analytics-db.databases.svc:5432:15433', '--redirect', 'orders-db=orders-db.databases.svc:5432:15432']);
    assert.equal(after.spec?.volumes?.filter((v) => v.persistentVolumeClaim?.claimName === 'agent-recordings').length, 1);
    assert.ok(warnings.some((w) => w.includes('share target port 5432')));
  });

  test('a connection without a claim records to an emptyDir, with a warning', () => {
    const pod = podOf('bare-pod');
    const { patch, warnings } = expectPatch(plan(pod));
    const after = patched(pod, patch);
    assert.deepEqual(after.spec?.volumes?.find((v) => v.name === 'airlock-recordings-default'), { name: 'airlock-recordings-default', emptyDir: {} });
    assert.ok(warnings.some((w) => w.includes('AgentConnection bastion: no spec.recording.claimName')));
    assert.ok(warnings.some((w) => w.includes('spec.containers[0] (shell): may run as root with CAP_SETUID')));
  });
});

describe('skip', () => {
  const pod = podOf('deployment-pod');
  test("Airlock's own namespace and pods", () => {
    const inAirlock = edit(pod, (p) => {
      p.metadata.namespace = 'airlock-system';
    });
    assert.deepEqual(plan(inAirlock), { kind: 'skip', reason: "pod in Airlock's own namespace airlock-system" });
    const own = edit(pod, (p) => {
      p.metadata.labels = { ...p.metadata.labels, 'app.kubernetes.io/part-of': 'airlock' };
    });
    assert.deepEqual(plan(own), { kind: 'skip', reason: "pod labelled app.kubernetes.io/part-of=airlock (Airlock's own)" });
  });
  test('not opted in, opted out, no connection', () => {
    const plain = toNamespace({ metadata: { name: 'agents' } });
    const notOptedIn = { kind: 'skip', reason: 'not opted in (namespace label airlock.dev/inject=enabled or pod label airlock.dev/inject=true)' };
    assert.deepEqual(plan(pod, { namespace: plain }), notOptedIn);
    const out = edit(pod, (p) => {
      p.metadata.labels = { ...p.metadata.labels, 'airlock.dev/inject': 'false' };
    });
    assert.deepEqual(plan(out), notOptedIn);
    assert.deepEqual(plan(pod, { connections: CONNECTIONS.filter((c) => c.metadata.name !== 'orders-db') }), { kind: 'skip', reason: 'no AgentConnection in namespace agents selects this pod' });
    const deleting = CONNECTIONS.map((c) => (c.metadata.name === 'orders-db' ? { ...c, metadata: { ...c.metadata, deletionTimestamp: '2026-12-04T10:00:00Z' } } : c));
    assert.deepEqual(plan(pod, { connections: deleting }), { kind: 'skip', reason: 'no AgentConnection in namespace agents selects this pod' });
  });
  test('optedIn', () => {
    const ns = (labels?: Record<string, string>): V1Namespace => toNamespace({ metadata: { name: 'x', ...(labels ? { labels } : {}) } });
    const p = (labels?: Record<string, string>): V1Pod => toPod({ metadata: { name: 'p', ...(labels ? { labels } : {}) } });
    assert.equal(optedIn(p(), ns({ 'airlock.dev/inject': 'enabled' })), true);
    assert.equal(optedIn(p(), ns({ 'airlock.dev/inject': 'true' })), false);
    assert.equal(optedIn(p({ 'airlock.dev/inject': 'true' }), ns()), true);
    assert.equal(optedIn(p({ 'airlock.dev/inject': 'false' }), ns({ 'airlock.dev/inject': 'enabled' })), false);
    assert.equal(optedIn(p({ 'airlock.dev/inject': 'yes' }), ns()), false);
  });
  test('selection by service account (default when unset) and matchExpressions', () => {
    const bare = podOf('bare-pod');
    const asBilling = edit(bare, (p) => {
      Object.assign(p.spec, { serviceAccountName: 'billing-agent', serviceAccount: 'billing-agent' });
    });
    const args = (r: InjectionResult): unknown => (r.kind === 'patch' ? JSON.stringify(r.patch) : r.kind);
    assert.match(String(args(plan(asBilling))), /billing=billing-db\.databases\.svc:5432:15432/);
    const noSa = edit(bare, (p) => {
      delete p.spec.serviceAccountName;
      delete p.spec.serviceAccount;
    });
    assert.match(String(args(plan(noSa))), /bastion=bastion\.ops\.svc\.cluster\.local:22:2222/);
  });
});

describe('reinvocation', () => {
  const pod = podOf('deployment-pod');
  const after = patched(pod, expectPatch(plan(pod)).patch);

  test('fields the API server defaults do not matter', () => {
    const defaulted = structuredClone(after) as unknown as { spec: { initContainers: Json[]; volumes: Json[] } };
    for (const c of defaulted.spec.initContainers) {
      Object.assign(c, { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' });
      for (const probe of ['startupProbe', 'readinessProbe']) {
        const p = c[probe] as Json | undefined;
        if (p) Object.assign(p, { timeoutSeconds: 1, successThreshold: 1, httpGet: { ...(p.httpGet as Json), scheme: 'HTTP' } });
      }
      for (const e of (c.env ?? []) as Json[]) {
        const ref = (e.valueFrom as Json | undefined)?.fieldRef as Json | undefined;
        if (ref) ref.apiVersion = 'v1';
      }
      if (c.resources) c.resources = { requests: { cpu: '0.1', memory: '128Mi' }, limits: { memory: '512Mi' } };
    }
    const token = defaulted.spec.volumes.find((v) => v.name === 'airlock-token');
    if (token) (token.projected as Json).defaultMode = 420;
    assert.deepEqual(plan(defaulted as unknown as V1Pod), { kind: 'skip', reason: 'already injected' });
  });

  test('a changed sidecar is not Airlock\'s: refused', () => {
    const tampered = structuredClone(after);
    const sidecar = tampered.spec?.initContainers?.[1];
    assert.ok(sidecar);
    sidecar.command = ['/bin/sh', '-c', 'psql -h orders-db.databases.svc'];
    assert.equal(
      expectDeny(plan(tampered)),
      `${PREFIX}spec.volumes[1].name: airlock-token: volume names starting with "airlock-" are reserved for the Airlock sidecar; spec.volumes[1].projected.sources[0].serviceAccountToken.audience: airlock.dev: a token for Airlock's control API would let the agent fetch the connection's credentials; only the Airlock sidecar gets one; spec.volumes[2].name: airlock-state: volume names starting with "airlock-" are reserved for the Airlock sidecar; spec.volumes[3].name: airlock-recordings-0: volume names starting with "airlock-" are reserved for the Airlock sidecar; spec.initContainers[0].name: airlock-capture is the name of a container Airlock injects, and this one is not Airlock's (or was changed after injection); spec.initContainers[1].name: airlock-proxy is the name of a container Airlock injects, and this one is not Airlock's (or was changed after injection)`,
    );
  });

  test('a container added after injection is still checked', () => {
    const later = edit(after, (p) => {
      p.spec.containers.push({ name: 'debug', image: 'busybox', securityContext: { capabilities: { add: ['NET_ADMIN'] } } });
    });
    assert.equal(expectDeny(plan(later)), `${PREFIX}spec.containers[1].securityContext.capabilities.add[0]: NET_ADMIN: a container with NET_ADMIN can rewrite or sidestep the capture rules and reach targets unproxied`);
  });

  test('the annotation alone does not skip injection', () => {
    const forged = edit(pod, (p) => {
      p.metadata.annotations = { [INJECTED_ANNOTATION]: '{"image":"registry.example/airlock:0.1.0","capture":"transparent","connections":["orders-db"]}' };
    });
    const after2 = patched(forged, expectPatch(plan(forged)).patch);
    assert.deepEqual(after2.spec?.initContainers?.map((c) => c.name), ['airlock-capture', 'airlock-proxy']);
  });
});

describe('after creation', () => {
  const pod = podOf('deployment-pod');
  const after = patched(pod, expectPatch(plan(pod)).patch);

  test("an update may not change Airlock's containers", () => {
    const swapped = edit(after, (p) => {
      const sidecar = p.spec.initContainers?.[1];
      if (sidecar) sidecar.image = 'registry.example/not-airlock:1';
      const agent = p.spec.containers[0];
      if (agent) agent.image = 'registry.example/orders-agent:1.4.3';
    });
    assert.deepEqual(injectedContainersChanged(after, swapped), [{ path: 'spec.initContainers[1]', message: "airlock-proxy is Airlock's container and may not be changed after injection" }]);
    const agentOnly = edit(after, (p) => {
      const agent = p.spec.containers[0];
      if (agent) agent.image = 'registry.example/orders-agent:1.4.3';
    });
    assert.deepEqual(injectedContainersChanged(after, agentOnly), []);
  });

  test('ephemeral containers obey the same rules', () => {
    const debug = (c: Json): V1Pod => edit(after, (p) => {
      p.spec.ephemeralContainers = [{ name: 'debugger-x1', image: 'busybox', ...c }];
    });
    assert.deepEqual(ephemeralContainerViolations(debug({ targetContainerName: 'agent' }), CONNECTIONS), []);
    assert.deepEqual(ephemeralContainerViolations(debug({ targetContainerName: 'airlock-proxy' }), CONNECTIONS), [
      { path: 'spec.ephemeralContainers[0].targetContainerName', message: "airlock-proxy: an ephemeral container may not join the processes of Airlock's containers" },
    ]);
    assert.deepEqual(ephemeralContainerViolations(debug({ securityContext: { privileged: true } }), CONNECTIONS), [
      { path: 'spec.ephemeralContainers[0].securityContext.privileged', message: 'true: a privileged container can rewrite the capture rules and reach targets unproxied' },
    ]);
    assert.deepEqual(ephemeralContainerViolations(debug({ volumeMounts: [{ name: 'airlock-token', mountPath: '/t' }] }), CONNECTIONS), [
      { path: 'spec.ephemeralContainers[0].volumeMounts[0].name', message: 'airlock-token: volumes starting with "airlock-" belong to the Airlock sidecar (its token and recordings)' },
    ]);
  });
});

describe('no-bypass refusals', () => {
  type Mutate = (pod: { metadata: Json; spec: Json }) => void;
  const agent = (p: { spec: Json }): Json => (p.spec.containers as Json[])[0] ?? {};
  const sc = (c: Json): Json => (c.securityContext ??= {}) as Json;
  const cases: [string, Mutate, string][] = [
    ['NET_ADMIN', (p) => { (sc(agent(p)).capabilities as Json).add = ['NET_ADMIN']; }, 'spec.containers[0].securityContext.capabilities.add[0]: NET_ADMIN: a container with NET_ADMIN can rewrite or sidestep the capture rules and reach targets unproxied'],
    ['cap_net_raw in an init container', (p) => { p.spec.initContainers = [{ name: 'init', image: 'x', securityContext: { capabilities: { add: ['CHOWN', 'cap_net_raw'] } } }]; }, 'spec.initContainers[0].securityContext.capabilities.add[1]: cap_net_raw: a container with NET_RAW can rewrite or sidestep the capture rules and reach targets unproxied'],
    ['ALL in an ephemeral container', (p) => { p.spec.ephemeralContainers = [{ name: 'dbg', image: 'x', securityContext: { capabilities: { add: ['ALL'] } } }]; }, 'spec.ephemeralContainers[0].securityContext.capabilities.add[0]: ALL: a container with every capability can rewrite or sidestep the capture rules and reach targets unproxied'],
    ['privileged', (p) => { sc(agent(p)).privileged = true; }, 'spec.containers[0].securityContext.privileged: true: a privileged container can rewrite the capture rules and reach targets unproxied'],
    ['container runAsUser', (p) => { sc(agent(p)).runAsUser = SIDECAR_UID; }, "spec.containers[0].securityContext.runAsUser: 15532 is the Airlock sidecar's UID, whose traffic is not captured"],
    ['container runAsGroup', (p) => { sc(agent(p)).runAsGroup = SIDECAR_GID; }, "spec.containers[0].securityContext.runAsGroup: 15532 is the Airlock sidecar's GID"],
    ['pod runAsUser', (p) => { p.spec.securityContext = { runAsUser: SIDECAR_UID }; }, "spec.securityContext.runAsUser: 15532 is the Airlock sidecar's UID, whose traffic is not captured"],
    ['pod fsGroup', (p) => { p.spec.securityContext = { fsGroup: SIDECAR_GID }; }, "spec.securityContext.fsGroup: 15532 is the Airlock sidecar's GID"],
    ['pod supplementalGroups', (p) => { p.spec.securityContext = { supplementalGroups: [1000, SIDECAR_GID] }; }, "spec.securityContext.supplementalGroups[1]: 15532 is the Airlock sidecar's GID"],
    ['hostNetwork', (p) => { p.spec.hostNetwork = true; }, "spec.hostNetwork: true: the pod runs in the node's network namespace, where the capture rules do not apply"],
    ['hostPID', (p) => { p.spec.hostPID = true; }, "spec.hostPID: true: the pod sees the node's processes, the sidecar's included"],
    ['hostIPC', (p) => { p.spec.hostIPC = true; }, "spec.hostIPC: true: the pod shares the node's IPC namespace"],
    ['shareProcessNamespace', (p) => { p.spec.shareProcessNamespace = true; }, "spec.shareProcessNamespace: true: the pod lets every container see the sidecar's processes (its memory, environment and token)"],
    ['a container named airlock-proxy', (p) => { (p.spec.containers as Json[]).push({ name: 'airlock-proxy', image: 'x' }); }, "spec.containers[1].name: airlock-proxy is the name of a container Airlock injects, and this one is not Airlock's (or was changed after injection)"],
    ['an init container named airlock-capture', (p) => { p.spec.initContainers = [{ name: 'airlock-capture', image: 'x' }]; }, "spec.initContainers[0].name: airlock-capture is the name of a container Airlock injects, and this one is not Airlock's (or was changed after injection)"],
    ['an ephemeral container targeting the sidecar', (p) => { p.spec.ephemeralContainers = [{ name: 'dbg', image: 'x', targetContainerName: 'airlock-proxy' }]; }, 'spec.ephemeralContainers[0].targetContainerName: airlock-proxy: an ephemeral container may not join the processes of Airlock\'s containers'],
    ['secret volume', (p) => { (p.spec.volumes as Json[]).push({ name: 'creds', secret: { secretName: 'orders-db-credentials' } }); }, 'spec.volumes[1].secret.secretName: Secret orders-db-credentials holds the credentials of AgentConnection orders-db; only the Airlock sidecar may read it, never the agent pod'],
    ['projected secret', (p) => { (p.spec.volumes as Json[]).push({ name: 'creds', projected: { sources: [{ configMap: { name: 'cfg' } }, { secret: { name: 'orders-db-credentials', items: [{ key: 'password', path: 'pw' }] } }] } }); }, 'spec.volumes[1].projected.sources[1].secret.name: Secret orders-db-credentials holds the credentials of AgentConnection orders-db; only the Airlock sidecar may read it, never the agent pod'],
    ['CSI secret ref', (p) => { (p.spec.volumes as Json[]).push({ name: 'csi', csi: { driver: 'x', nodePublishSecretRef: { name: 'orders-db-credentials' } } }); }, 'spec.volumes[1].csi.nodePublishSecretRef.name: Secret orders-db-credentials holds the credentials of AgentConnection orders-db; only the Airlock sidecar may read it, never the agent pod'],
    ['env secretKeyRef', (p) => { (agent(p).env as Json[]).push({ name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: 'orders-db-credentials', key: 'password' } } }); }, 'spec.containers[0].env[1].valueFrom.secretKeyRef.name: Secret orders-db-credentials holds the credentials of AgentConnection orders-db; only the Airlock sidecar may read it, never the agent pod'],
    ['envFrom secretRef of a connection that does not select the pod', (p) => { agent(p).envFrom = [{ secretRef: { name: 'billing-credentials' } }]; }, 'spec.containers[0].envFrom[0].secretRef.name: Secret billing-credentials holds the credentials of AgentConnection billing; only the Airlock sidecar may read it, never the agent pod'],
    ['a projected token for the control API', (p) => { (p.spec.volumes as Json[]).push({ name: 'my-token', projected: { sources: [{ serviceAccountToken: { audience: 'airlock.dev', path: 'token' } }] } }); }, "spec.volumes[1].projected.sources[0].serviceAccountToken.audience: airlock.dev: a token for Airlock's control API would let the agent fetch the connection's credentials; only the Airlock sidecar gets one"],
    ['a reserved volume', (p) => { (p.spec.volumes as Json[]).push({ name: 'airlock-token', emptyDir: {} }); }, 'spec.volumes[1].name: airlock-token: volume names starting with "airlock-" are reserved for the Airlock sidecar'],
    ['mounting the sidecar token volume', (p) => { (agent(p).volumeMounts as Json[]).push({ name: 'airlock-token', mountPath: '/t' }); }, 'spec.containers[0].volumeMounts[1].name: airlock-token: volumes starting with "airlock-" belong to the Airlock sidecar (its token and recordings)'],
  ];
  for (const [name, mutate, expected] of cases) {
    test(name, () => {
      const pod = structuredClone(podOf('deployment-pod')) as unknown as { metadata: Json; spec: Json };
      mutate(pod);
      assert.equal(expectDeny(plan(pod as unknown as V1Pod)), PREFIX + expected);
    });
  }

  test('every violation is named, in one message', () => {
    const pod = structuredClone(podOf('deployment-pod'));
    Object.assign(pod.spec ?? {}, { hostNetwork: true, shareProcessNamespace: true });
    assert.equal(
      expectDeny(plan(pod)),
      `${PREFIX}spec.hostNetwork: true: the pod runs in the node's network namespace, where the capture rules do not apply; spec.shareProcessNamespace: true: the pod lets every container see the sidecar's processes (its memory, environment and token)`,
    );
  });

  test('a capture annotation that is not a mode', () => {
    const pod = podOf('deployment-pod');
    const odd = edit(pod, (p) => {
      p.metadata.annotations = { 'airlock.dev/capture': 'off' };
    });
    assert.equal(expectDeny(plan(odd)), 'Airlock refuses this pod: metadata.annotations[airlock.dev/capture]: "off" is not a capture mode (transparent or explicit)');
    const ns = structuredClone(NAMESPACE) as unknown as { metadata: Json };
    ns.metadata.annotations = { 'airlock.dev/capture': 'Explicit' };
    assert.equal(expectDeny(plan(pod, { namespace: toNamespace(ns) })), 'Airlock refuses this pod: namespace agents metadata.annotations[airlock.dev/capture]: "Explicit" is not a capture mode (transparent or explicit)');
  });

  test('two selected connections on one listen port', () => {
    const pod = podOf('two-connections-pod');
    const same = CONNECTIONS.map((c) => (c.metadata.name === 'analytics' ? { ...c, spec: { ...c.spec, listenPort: 15432 } } : c));
    assert.equal(
      expectDeny(plan(pod, { connections: same })),
      'Airlock refuses this pod: its connections cannot share one sidecar: AgentConnection orders-db spec.listenPort: 15432 is also the listen port of AgentConnection analytics, and both select this pod; give one of them another spec.listenPort',
    );
  });
});

describe('property: no random pod is patched into a bypass', () => {
  // mostly harmless values, a bypass now and then: every outcome is reached
  const rare = <T, U>(usual: fc.Arbitrary<T>, bad: fc.Arbitrary<U>): fc.Arbitrary<T | U> => fc.oneof({ arbitrary: usual, weight: 12 }, { arbitrary: bad, weight: 1 });
  const secret = rare(fc.constantFrom('app-config', 'tls', 'other'), fc.constantFrom('orders-db-credentials', 'billing-credentials', 'analytics-credentials', 'bastion-key'));
  const cap = rare(fc.constantFrom('CHOWN', 'SYS_TIME', 'NET_BIND_SERVICE', 'cap_sys_ptrace'), fc.constantFrom('NET_ADMIN', 'net_raw', 'CAP_NET_ADMIN', 'ALL', 'all'));
  const id = rare(fc.constantFrom(undefined, 0, 1000, 65532), fc.constant(SIDECAR_UID));
  const securityContext = fc.record(
    { privileged: rare(fc.constantFrom(undefined, false), fc.constant(true)), runAsUser: id, runAsGroup: id, allowPrivilegeEscalation: fc.option(fc.boolean(), { nil: undefined }), capabilities: fc.record({ add: fc.array(cap, { maxLength: 2 }), drop: fc.array(fc.constantFrom('ALL', 'SETUID', 'NET_RAW'), { maxLength: 2 }) }, { requiredKeys: [] }) },
    { requiredKeys: [] },
  );
  const env = fc.oneof(
    fc.record({ name: fc.constantFrom('A', 'PGPASSWORD', 'PGHOST'), value: fc.constant('x') }),
    fc.record({ name: fc.constant('S'), valueFrom: fc.record({ secretKeyRef: fc.record({ name: secret, key: fc.constant('password') }) }) }),
  );
  const mountName = rare(fc.constantFrom('data', 'cache', 'kube-api-access-x7k2p'), fc.constantFrom('airlock-token', 'airlock-state', 'airlock-recordings-0'));
  const container = fc.record(
    {
      name: rare(fc.constantFrom('agent', 'tool', 'helper'), fc.constantFrom('airlock-proxy', 'airlock-capture')),
      image: rare(fc.constant('registry.example/agent:1'), fc.constant(SETTINGS.image)),
      securityContext,
      env: fc.array(env, { maxLength: 3 }),
      envFrom: fc.array(fc.record({ secretRef: fc.record({ name: secret }) }), { maxLength: 1 }),
      volumeMounts: fc.array(fc.record({ name: mountName, mountPath: fc.constant('/m') }), { maxLength: 2 }),
      targetContainerName: rare(fc.constant('agent'), fc.constant('airlock-proxy')),
      restartPolicy: fc.constant('Always'),
    },
    { requiredKeys: ['name', 'image'] },
  );
  const volume = fc.oneof(
    fc.record({ name: mountName, secret: fc.record({ secretName: secret }) }),
    fc.record({ name: mountName, projected: fc.record({ sources: fc.array(fc.oneof(fc.record({ secret: fc.record({ name: secret }) }), fc.record({ configMap: fc.record({ name: secret }) })), { maxLength: 2 }) }) }),
    fc.record({ name: mountName, emptyDir: fc.constant({}) }),
    fc.record({ name: mountName, csi: fc.record({ driver: fc.constant('d'), nodePublishSecretRef: fc.record({ name: secret }) }) }),
  );
  const flag = rare(fc.constantFrom(undefined, false), fc.constant(true));
  const pod = fc.record({
    labels: fc.constantFrom({ app: 'orders-agent' }, { app: 'orders-agent', team: 'data' }, { role: 'debug' }),
    spec: fc.record(
      {
        containers: fc.array(container, { minLength: 1, maxLength: 3 }),
        initContainers: fc.array(container, { maxLength: 2 }),
        ephemeralContainers: fc.array(container, { maxLength: 1 }),
        volumes: fc.array(volume, { maxLength: 3 }),
        hostNetwork: flag,
        hostPID: flag,
        hostIPC: flag,
        shareProcessNamespace: flag,
        serviceAccountName: fc.constantFrom('default', 'orders-agent', 'billing-agent'),
        securityContext: fc.record({ runAsUser: id, runAsGroup: id, fsGroup: id, supplementalGroups: fc.array(rare(fc.constant(1000), fc.constant(SIDECAR_GID)), { maxLength: 2 }) }, { requiredKeys: [] }),
      },
      { requiredKeys: ['containers'] },
    ),
    capture: fc.constantFrom(undefined, 'transparent', 'explicit'),
  });

  test('patched pods keep every no-bypass rule, and are not injected twice', () => {
    const seen = { patch: 0, deny: 0, skip: 0 };
    fc.assert(
      fc.property(pod, ({ labels, spec, capture }) => {
        // JSON round trip: the webhook receives JSON (no undefined members)
        const p = JSON.parse(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'agent-', namespace: 'agents', labels, ...(capture ? { annotations: { 'airlock.dev/capture': capture } } : {}) }, spec })) as V1Pod;
        const r = plan(p);
        seen[r.kind]++;
        if (r.kind === 'deny') {
          assert.match(r.message, /^Airlock refuses this pod: .*spec\.|^Airlock refuses this pod: /);
          return;
        }
        if (r.kind === 'skip') {
          assert.match(r.reason, /no AgentConnection/);
          return;
        }
        const after = patched(p, r.patch);
        assertNoBypass(after);
        assert.deepEqual(plan(after), { kind: 'skip', reason: 'already injected' });
      }),
      { numRuns: 2000 },
    );
    // the generator reaches every outcome (a property that never patches proves nothing)
    assert.ok(seen.patch > 50 && seen.deny > 500 && seen.skip > 50, JSON.stringify(seen));
  });
});
