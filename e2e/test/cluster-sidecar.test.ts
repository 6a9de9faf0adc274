/**
 * `airlock sidecar --cluster` against the real operator (`airlock operator`, child process) on a
 * real kube-apiserver + etcd, and a real PostgreSQL: the bundle comes from the control API
 * (authenticated with a projected token bound to a real Pod object; no node needed, the pod stays
 * Pending), policies hot-reload into running sessions, the sidecar keeps enforcing while the
 * operator is down, refuses approvals it cannot request, and delivers buffered session reports
 * once the operator is back, also after a restart of its own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { freePort, startPostgres, type Postgres } from '../src/postgres.ts';
import { sshClient, startSshd, type Sshd } from '../src/sshd.ts';
import { until as untilHolds } from '../src/wait.ts';
import { AirlockProcesses, type AirlockChild } from '../src/airlock-processes.ts';

const NS = 'agents';
const AIRLOCK_NS = 'airlock-system';
const POD = 'agent-0';
const SA = 'robot';
const CARD = '4111111111111111';

let cp: ControlPlane;
let postgres: Postgres;
let sshd: Sshd;
let sshPort: number;
let operator: Child | undefined;
let controlPort: number;
let listenPort: number;
let dirs: { work: string; recordings: string; state: string; token: string; ca: string };
const procs = new AirlockProcesses();
type Child = AirlockChild;
const run = (args: readonly string[]): Child => procs.run(args);
const stop = (c: Child | undefined): Promise<void> => procs.stop(c);

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const until = <T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 60_000): Promise<T> => untilHolds(what, read, accept, { timeoutMs, retryErrors: true, context: () => procs.tail() });

function startOperator(): Child {
  return run([
    'operator',
    '--kubeconfig', cp.kubeconfig,
    '--metrics-addr', '127.0.0.1:0',
    '--control-addr', `127.0.0.1:${String(controlPort)}`,
    '--airlock-namespace', AIRLOCK_NS,
    '--cert-extra-names', '127.0.0.1',
    '--resync-period', '30s',
  ]);
}

interface Sidecar extends Child {
  readonly health: string;
}

async function startClusterSidecar(): Promise<Sidecar> {
  const c = run([
    'sidecar', '--cluster',
    '--control-url', `https://127.0.0.1:${String(controlPort)}`,
    '--control-ca-file', dirs.ca,
    '--token-file', dirs.token,
    '--recordings-dir', dirs.recordings,
    '--state-dir', dirs.state,
    '--health-addr', '127.0.0.1:0',
    '--progress-seconds', '1',
  ]);
  const health = await until('the sidecar to serve its health endpoint', () => Promise.resolve(/"health":"([0-9.]+:[0-9]+)"/.exec(c.logs())?.[1]), (a) => a !== undefined, 30_000);
  return { ...c, health: `http://${health ?? ''}` };
}

async function ready(s: Sidecar): Promise<number> {
  return (await fetch(`${s.health}/healthz/ready`)).status;
}

function client(): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: listenPort, user: 'anyone', password: 'unchecked', database: 'whatever' });
}

const maskingPolicy = (rules: string): string => `apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: pii, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
${rules}`;

const CARDS_RULE = `    - name: cards
      match: { detectors: [credit_card] }
      action: { type: partial, keepLast: 4 }
`;
const EMAIL_RULE = `    - name: emails
      match: { columns: ["*.customers.email"] }
      action: { type: redact }
`;

let sidecar: Sidecar | undefined;

function sshRule(blocked: readonly string[]): Record<string, unknown> {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRule',
    metadata: { name: 'ssh-guard', namespace: NS },
    spec: { connectionSelector: { matchLabels: { proto: 'ssh' } }, rules: [{ name: 'blocked', match: { ssh: { commands: blocked } }, action: 'Block', message: 'not on these hosts' }] },
  };
}

before(async () => {
  postgres = await startPostgres();
  for (const sql of [
    "CREATE ROLE agent LOGIN PASSWORD 'agent-secret-pw'",
    'CREATE DATABASE orders OWNER agent',
  ]) assert.equal(postgres.psql(sql).code, 0);
  const schema = postgres.psql(
    `SET ROLE agent;
     CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card text);
     INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com', '${CARD}');
     CREATE TABLE payments (id serial PRIMARY KEY, amount int);`,
    { database: 'orders' },
  );
  assert.equal(schema.code, 0, schema.stderr);
  const work = mkdtempSync(join(tmpdir(), 'airlock-cluster-'));
  dirs = { work, recordings: join(work, 'recordings'), state: join(work, 'state'), token: join(work, 'token'), ca: join(work, 'ca.crt') };
  controlPort = await freePort();
  listenPort = await freePort();
  sshPort = await freePort();
  sshd = await startSshd();

  cp = startControlPlane();
  await ok(['apply', '-f', join(ROOT, 'crds')]);
  await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
  await ok(['create', 'namespace', AIRLOCK_NS]);
  await ok(['create', 'namespace', NS]);
  await ok(['create', 'serviceaccount', SA, '-n', NS]);
  await ok(['apply', '-f', '-'], `apiVersion: v1
kind: Pod
metadata:
  name: ${POD}
  namespace: ${NS}
  labels: { app: agent }
  annotations: { airlock.dev/injected: "test" }
spec:
  serviceAccountName: ${SA}
  automountServiceAccountToken: false
  containers: [{ name: agent, image: example.invalid/agent:1 }]
---
apiVersion: v1
kind: Secret
metadata: { name: orders-credentials, namespace: ${NS} }
stringData: { username: agent, password: agent-secret-pw }
---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: orders, namespace: ${NS}, labels: { data: pii } }
spec:
  protocol: postgres
  target: { host: 127.0.0.1, port: ${String(postgres.port)}, database: orders, tls: { mode: disable } }
  credentialsSecretRef: { name: orders-credentials }
  agents: { podSelector: { matchLabels: { app: agent } } }
  listenPort: ${String(listenPort)}
  defaultAction: Allow
---
${maskingPolicy(CARDS_RULE)}
---
apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: guardrails, namespace: ${NS} }
spec:
  connectionSelector: {}
  rules:
    - name: no-drops
      match: { sql: { classes: [destructive] } }
      action: Block
      message: destructive statements are not allowed
    - name: payments-need-review
      match: { sql: { classes: [write], tables: ["public.payments"] } }
      action: RequireApproval
      approval: { approvers: { users: [alice] }, required: 1, timeout: 60s }
`);
  // a second connection of the pod, SSH, served by the same process
  await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hosts-credentials', namespace: NS }, stringData: { username: sshd.user, privateKey: sshd.clientKey } },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'hosts', namespace: NS, labels: { data: 'pii', proto: 'ssh' } },
      spec: { protocol: 'ssh', target: { host: sshd.host, port: sshd.port }, credentialsSecretRef: { name: 'hosts-credentials' }, ssh: { hostKeyFingerprints: [sshd.hostKeyFingerprint] }, agents: { podSelector: { matchLabels: { app: 'agent' } } }, listenPort: sshPort, defaultAction: 'Allow' },
    },
    sshRule(['rm -rf *']),
  ] }));
  const uid = (await ok(['get', 'pod', POD, '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).trim();
  const token = (await ok(['create', 'token', SA, '-n', NS, '--audience', 'airlock.dev', '--bound-object-kind', 'Pod', '--bound-object-name', POD, '--bound-object-uid', uid, '--duration', '2h'])).trim();
  writeFileSync(dirs.token, token);
  operator = startOperator();
  const ca = await until(
    'the operator to issue its CA',
    async () => (await cp.kubectl(['get', 'secret', 'airlock-control-tls', '-n', AIRLOCK_NS, '-o', 'jsonpath={.data.ca\\.crt}'])).stdout.trim(),
    (v) => v !== '',
  );
  writeFileSync(dirs.ca, Buffer.from(ca, 'base64'));
});

after(async () => {
  await procs.stopAll();
  (cp as ControlPlane | undefined)?.stop();
  await (postgres as Postgres | undefined)?.stop();
  await (sshd as Sshd | undefined)?.stop();
});

async function agentSession(name: string): Promise<{ status?: { counts?: Record<string, number>; recording?: { chainHead?: string; path?: string; records?: number }; endTime?: string } } | undefined> {
  const r = await cp.kubectl(['get', 'agentsessions.airlock.dev', name, '-n', NS, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as { status?: { counts?: Record<string, number>; recording?: { chainHead?: string } } }) : undefined;
}

function sessionIds(): string[] {
  // the recordings directory is the claim's per-pod subdirectory (the kubelet mounts <namespace>/<pod> there)
  const dir = join(dirs.recordings, 'default', 'orders');
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -'.jsonl'.length)).sort();
  } catch {
    return [];
  }
}

describe('airlock sidecar --cluster', () => {
  test('serves the connection from the operator bundle: psql and node-postgres, masked and decided', async () => {
    sidecar = await startClusterSidecar();
    const s = sidecar;
    await until('the sidecar to be ready', () => ready(s), (code) => code === 200);
    assert.match(s.logs(), /"message":"policy compiled"/);
    const p = spawnSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(listenPort), '-U', 'agent', '-d', 'orders', '-c', 'SELECT id, card FROM customers'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'unchecked', PGCONNECT_TIMEOUT: '10' } });
    assert.equal(p.stdout, `1|************${CARD.slice(-4)}\n`, p.stderr);
    const c = client();
    await c.connect();
    const r = await c.query('SELECT card, email FROM customers WHERE id = 1');
    assert.deepEqual(r.rows[0], { card: `************${CARD.slice(-4)}`, email: 'alice@example.com' });
    await assert.rejects(c.query('DROP TABLE customers'), (err: Error & { code?: string }) => err.code === '42501' && /destructive statements are not allowed/.test(err.message));
    assert.equal(((await c.query('SELECT 1 AS one')).rows[0] as { one: number }).one, 1, 'the session goes on after a refusal');
    await c.end();
  });

  test('the same process serves the SSH connection: output masked, commands decided, a changed ApprovalRule applies to the next command', async () => {
    const out = await sshClient(sshPort, [`echo card ${CARD}`]);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(!out.stdout.includes(CARD), out.stdout);
    assert.match(out.stdout, /card /);
    const rm = await sshClient(sshPort, ['rm -rf /tmp/airlock-nothing-here']);
    assert.equal(rm.code, 126);
    assert.match(rm.stderr, /not on these hosts/);
    await ok(['apply', '-f', '-'], JSON.stringify(sshRule(['rm -rf *', 'echo *'])));
    const applied = Date.now();
    const blocked = await until('echo blocked by the new rule', () => sshClient(sshPort, ['echo hello']), (r) => r.code === 126, 15_000);
    assert.match(blocked.stderr, /not on these hosts/);
    assert.ok(Date.now() - applied <= 8000, `took ${String(Date.now() - applied)} ms (each try is a new ssh connection)`);
  });

  test('a granted connection the operator cannot serve (its Secret is missing): psql and ssh are told why, not refused at the port; the Secret created, it is served', async () => {
    const pgPort = await freePort();
    const jumpPort = await freePort();
    const conn = (name: string, spec: Record<string, unknown>): Record<string, unknown> => ({
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name, namespace: NS },
      spec: { agents: { podSelector: { matchLabels: { app: 'agent' } } }, defaultAction: 'Allow', ...spec },
    });
    await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      conn('ledger', { protocol: 'postgres', target: { host: '127.0.0.1', port: postgres.port, database: 'orders', tls: { mode: 'disable' } }, credentialsSecretRef: { name: 'ledger-credentials' }, listenPort: pgPort }),
      conn('jump', { protocol: 'ssh', target: { host: sshd.host, port: sshd.port }, credentialsSecretRef: { name: 'jump-credentials' }, ssh: { hostKeyFingerprints: [sshd.hostKeyFingerprint] }, listenPort: jumpPort }),
    ] }));
    const psql = (): { status: number | null; stdout: string; stderr: string } =>
      spawnSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(pgPort), '-U', 'agent', '-d', 'orders', '-c', 'SELECT count(*) FROM customers'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'unchecked', PGCONNECT_TIMEOUT: '10' } });
    const refused = await until('the ledger listener to answer', async () => Promise.resolve(psql()), (r) => !/Connection refused/.test(r.stderr), 20_000);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /FATAL: {2}airlock: no policy is loaded for connection ledger \(the Airlock operator cannot serve it \(CredentialsNotResolved\): Secret "ledger-credentials" named by spec.credentialsSecretRef does not exist in namespace "agents"\): the connection is refused/);
    // the two connections may reach the sidecar in two bundles
    const ssh = await until('the jump listener to answer', () => sshClient(jumpPort, ['uname']), (r) => !/Connection refused/.test(r.stderr), 20_000);
    assert.equal(ssh.code, 126, ssh.stderr);
    assert.match(ssh.stderr, /airlock: no policy is loaded for connection jump \(the Airlock operator cannot serve it \(CredentialsNotResolved\): Secret "jump-credentials"/);
    assert.equal(ssh.stdout, '');
    assert.equal(await ready(sidecar ?? assert.fail('no sidecar')), 200, 'a refused connection has its listener: the sidecar stays ready');

    await ok(['create', 'secret', 'generic', 'ledger-credentials', '-n', NS, '--from-literal=username=agent', '--from-literal=password=agent-secret-pw']);
    const served = await until('ledger served once its Secret exists', async () => Promise.resolve(psql()), (r) => r.status === 0, 20_000);
    assert.equal(served.stdout, '1\n');
    await ok(['delete', 'agentconnection', 'ledger', 'jump', '-n', NS]);
    await ok(['delete', 'secret', 'ledger-credentials', '-n', NS]);
  });

  test('a kubectl apply of a changed MaskingPolicy takes effect in the running session within 5 s', async () => {
    const c = client();
    await c.connect();
    try {
      assert.equal(((await c.query('SELECT email FROM customers WHERE id = 1')).rows[0] as { email: string }).email, 'alice@example.com');
      await ok(['apply', '-f', '-'], maskingPolicy(CARDS_RULE + EMAIL_RULE));
      const applied = Date.now();
      const masked = await until(
        'the new rule in the same session',
        async () => ((await c.query('SELECT email FROM customers WHERE id = 1')).rows[0] as { email: string }).email,
        (e) => e !== 'alice@example.com',
        10_000,
      );
      const took = Date.now() - applied;
      assert.ok(took <= 5000, `took ${String(took)} ms`);
      assert.notEqual(masked, 'alice@example.com');
    } finally {
      await c.end();
    }
  });

  test('operator down: the last bundle stays enforced, approvals are refused (42501); reports wait and arrive after it is back, across a sidecar restart', async () => {
    assert.ok(sidecar !== undefined);
    const before = new Set(sessionIds());
    await stop(operator);
    // the sidecar keeps serving with the last bundle
    const c = client();
    await c.connect();
    const r = await c.query('SELECT card, email FROM customers WHERE id = 1');
    assert.equal((r.rows[0] as { card: string }).card, `************${CARD.slice(-4)}`);
    assert.notEqual((r.rows[0] as { email: string }).email, 'alice@example.com');
    await assert.rejects(c.query('INSERT INTO payments(amount) VALUES (5)'), (err: Error & { code?: string }) => {
      assert.equal(err.code, '42501');
      assert.match(err.message, /cannot create the approval request/);
      return true;
    });
    assert.equal(postgres.psql('SELECT count(*) FROM payments', { database: 'orders' }).stdout.trim(), '0', 'nothing forwarded');
    await c.query('SELECT 1');
    await c.end();
    const id = await until('the session recording', () => Promise.resolve(sessionIds().find((x) => !before.has(x))), (x) => x !== undefined);
    assert.ok(id !== undefined);
    const name = id.toLowerCase();
    // the end report is in the buffer on disk
    const buffered = (): string => {
      try {
        return readFileSync(join(dirs.state, 'session-reports.jsonl'), 'utf8');
      } catch {
        return '';
      }
    };
    await until('the end report buffered on disk', () => Promise.resolve(buffered()), (t) => t.split('\n').some((l) => l.includes(`"session":"${name}"`) && l.includes('"type":"end"')));
    await sleep(1500);
    assert.equal(await agentSession(name), undefined, 'not delivered while the operator is down');
    // the sidecar restarts while the operator is still down: nothing is served until a bundle comes
    await stop(sidecar);
    sidecar = await startClusterSidecar();
    const s = sidecar;
    await sleep(1000);
    assert.equal(await ready(s), 503);
    operator = startOperator();
    const session = await until('the buffered reports delivered', () => agentSession(name), (x) => x?.status?.endTime !== undefined && x.status.recording?.chainHead !== undefined, 90_000);
    const counts = session?.status?.counts ?? {};
    assert.equal(counts['statements'], 3);
    assert.equal(counts['blocked'], 1);
    assert.match(session?.status?.recording?.chainHead ?? '', /^sha256:[0-9a-f]{64}$/);
    // the path inside the claim: <namespace>/<pod>/<connection>/<session>.jsonl, the file written under the pod's subdirectory
    const path = session?.status?.recording?.path ?? '';
    assert.match(path, new RegExp(`^${NS}/${POD}/orders/[0-9]{8}T[0-9]{6}Z-[0-9a-f]+\\.jsonl$`));
    assert.ok(existsSync(join(dirs.recordings, 'default', path.slice(`${NS}/${POD}/`.length))), `${path} is not under the pod's subdirectory`);
    await until('the sidecar ready again', () => ready(s), (code) => code === 200);
    assert.equal(await until('the buffer drained', () => Promise.resolve(buffered()), (t) => t === ''), '');
  });
});
