/**
 * `make bench-operator`: the operator (`airlock operator`, a child process) against a real
 * kube-apiserver + etcd on loopback, one run:
 *
 *   1. 1,000 AgentConnections with their Secrets and 100 policies (50 MaskingPolicies, 50
 *      ApprovalRules) applied at once (server-side apply, CHUNKS kubectl processes at the same
 *      time): seconds from the apply's start until every AgentConnection has Ready=True
 *      (listed in-process every 250 ms). Target ≤ 60 s.
 *   2. approval latency: POST /v1/approvals with a pod-bound token, then a waiting
 *      GET /v1/approvals/<name>?waitSeconds=30; from the moment the signed decision annotation is
 *      written (a JSON patch through the API client, what the approval webhook's patch amounts to)
 *      to the waiting GET returning Approved. SAMPLES samples, p50/p95. Target p95 ≤ 1 s.
 *   3. GET /v1/bundle with a valid token (the pod is granted 10 of the 1,000 connections),
 *      BUNDLE_REQUESTS sequential requests on one keep-alive connection, p50/p99.
 *   4. the operator's RSS (VmRSS) idle, after the 1,000 connections are Ready, and the peak
 *      sampled every 250 ms throughout. Target ≤ 200 MiB. With the V8 heap and external memory
 *      from the operator's /metrics, its CPU seconds, reconciles and mean reconcile time.
 *
 * The operator runs as the image and the chart run it: the image's Node flags, environment and
 * compile cache (its modules already stripped of their types), and V8's old generation capped at the chart's
 * operator.heapPercent of its memory limit (in a pod Node reads the limit from its cgroup; here
 * the cap is given as --max-old-space-size). Steps 2 and 3 run
 * once the operator's work queue is empty. AIRLOCK_BENCH_WORKERS passes
 * --workers to the operator (its default when unset); AIRLOCK_BENCH_CONNECTIONS, _POLICIES,
 * _APPROVALS, _BUNDLES, _APPLY_CHUNKS, _LOAD_TIMEOUT_SECONDS (180) and _SETTLE_TIMEOUT_SECONDS
 * (120) change the sizes. A target missed is reported, not thrown: the run goes on.
 *
 * Prints the figures with their targets and writes bench/operator.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { APPROVAL_KEY_SECRET, DECISIONS_ANNOTATION, GROUP, VERSION } from '@airlock/api';
import { signDecision } from '@airlock/policy';
import yaml from 'js-yaml';
import { localImageCache } from '../../hack/images/compile-cache.ts';
import { AIRLOCK_ENV, AIRLOCK_NODE_FLAGS } from '../../hack/images/entrypoint.ts';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { Watch } from '@kubernetes/client-node';
import { kubeFromConfig, loadKubeConfig, type Kube } from '../../operator/src/kube.ts';

const CONNECTIONS = Number(process.env['AIRLOCK_BENCH_CONNECTIONS'] ?? 1000);
const POLICIES = Number(process.env['AIRLOCK_BENCH_POLICIES'] ?? 100);
const SAMPLES = Number(process.env['AIRLOCK_BENCH_APPROVALS'] ?? 30);
const BUNDLE_REQUESTS = Number(process.env['AIRLOCK_BENCH_BUNDLES'] ?? 500);
const LOAD_TIMEOUT_MS = Number(process.env['AIRLOCK_BENCH_LOAD_TIMEOUT_SECONDS'] ?? 180) * 1000;
const SETTLE_TIMEOUT_MS = Number(process.env['AIRLOCK_BENCH_SETTLE_TIMEOUT_SECONDS'] ?? 120) * 1000;
const WORKERS = process.env['AIRLOCK_BENCH_WORKERS']; // --workers of the operator; its default when unset
const CHUNKS = Number(process.env['AIRLOCK_BENCH_APPLY_CHUNKS'] ?? 4);
/** more node flags for the operator process, split on spaces (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) */
const OPERATOR_NODE_ARGS = (process.env['AIRLOCK_BENCH_OPERATOR_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

/** MiB in a Kubernetes memory quantity (Ki, Mi, Gi, or bytes) */
function quantityMiB(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (m === null) throw new Error(`memory quantity ${q}: expected <n>Ki, <n>Mi, <n>Gi or bytes`);
  const unit = { Ki: 1 / 1024, Mi: 1, Gi: 1024 }[m[2] ?? ''] ?? 1 / MiB;
  return Number(m[1]) * unit;
}

/** the chart's operator memory limit and heap share, and the old-generation cap they give V8 */
function chartHeap(): { readonly limit: string; readonly percent: number; readonly oldSpaceMiB: number } {
  const values = yaml.load(readFileSync(join(ROOT, 'charts', 'airlock', 'values.yaml'), 'utf8')) as { operator: { heapPercent: number; resources: { limits: { memory: string } } } };
  const limit = values.operator.resources.limits.memory;
  const percent = values.operator.heapPercent;
  return { limit, percent, oldSpaceMiB: Math.floor((quantityMiB(limit) * percent) / 100) };
}

const TEAMS = 100; // connection i belongs to team i % TEAMS; the bench pod is in team 0
const NS = 'bench-operator';
const AIRLOCK_NS = 'airlock-system';
const POD = 'agent-0';
const SA = 'agent';
const MiB = 1048576;
const CHART_HEAP = chartHeap();

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

interface Condition {
  readonly type: string;
  readonly status: string;
}

const pad = (i: number): string => String(i).padStart(4, '0');

function rssOf(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU time (user + system, all threads) of a process so far, in seconds */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${String(pid)}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** the sum of a metric's samples (every label set) in a Prometheus text exposition */
function metricSum(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** nearest-rank percentile of a sorted list */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

/** the objects of step 1: CONNECTIONS connections with their Secrets, POLICIES policies, as YAML documents */
function loadDocuments(): string[] {
  const docs: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const team = `t${String(i % TEAMS)}`;
    docs.push(`apiVersion: v1
kind: Secret
metadata: { name: conn-${pad(i)}-credentials, namespace: ${NS} }
stringData: { username: user${String(i)}, password: pw-${String(i)} }
`);
    docs.push(`apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: conn-${pad(i)}, namespace: ${NS}, labels: { team: ${team}, data: pii } }
spec:
  protocol: postgres
  target: { host: db-${String(i)}.example, port: 5432, database: db${String(i)} }
  credentialsSecretRef: { name: conn-${pad(i)}-credentials }
  agents: { podSelector: { matchLabels: { team: ${team} } } }
`);
  }
  const half = Math.floor(POLICIES / 2);
  for (let j = 0; j < half; j++) {
    docs.push(`apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: mask-${pad(j)}, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { team: t${String(j % TEAMS)} } }
  rules:
    - name: employee-ids
      match: { pattern: "EMP-[0-9]{6}" }
      action: { type: redact }
`);
  }
  for (let j = 0; j < POLICIES - half; j++) {
    docs.push(`apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: guard-${pad(j)}, namespace: ${NS} }
spec:
  connectionSelector: { matchLabels: { team: t${String(j % TEAMS)} } }
  rules:
    - name: writes
      match: { sql: { classes: [write] } }
      action: RequireApproval
      approval: { approvers: { users: [bob] }, timeout: 10m }
`);
  }
  return docs;
}

async function main(): Promise<void> {
  const started = Date.now();
  const cp: ControlPlane = startControlPlane();
  const tlsDir = mkdtempSync(join(tmpdir(), 'airlock-bench-operator-tls-'));
  const imageCache = localImageCache({ root: ROOT, node: process.execPath, flags: AIRLOCK_NODE_FLAGS, uid: process.getuid?.() ?? 0 });
  let child: ChildProcess | undefined;
  let logs = '';
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const ok = async (args: readonly string[], input?: string): Promise<string> => {
      const r = await cp.kubectl(args, input === undefined ? {} : { input });
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${r.stderr}`);
      return r.stdout;
    };
    const until = async <T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, ms = 60_000, every = 200): Promise<T> => {
      const deadline = Date.now() + ms;
      let last: T | undefined;
      while (Date.now() < deadline) {
        last = await read();
        if (accept(last)) return last;
        await sleep(every);
      }
      throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}\noperator logs:\n${logs.slice(-4000)}`);
    };

    const keygen = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=airlock-operator',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(tlsDir, 'tls.key'), '-out', join(tlsDir, 'tls.crt'),
    ], { stdio: 'ignore' });
    if (keygen.status !== 0) throw new Error('openssl could not make the serving certificate');
    const ca = readFileSync(join(tlsDir, 'tls.crt'), 'utf8');
    await ok(['apply', '-f', join(ROOT, 'crds')]);
    await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
    await ok(['create', 'namespace', NS]);
    await ok(['create', 'namespace', AIRLOCK_NS]);
    await ok(['create', 'serviceaccount', SA, '-n', NS]);
    // the approval key, as the chart (or the leader) provides it; the bench signs with it as the webhook would
    const key = new Uint8Array(randomBytes(32));
    await ok(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: APPROVAL_KEY_SECRET, namespace: AIRLOCK_NS }, data: { key: Buffer.from(key).toString('base64') } }));
    const storedKey = new Uint8Array(Buffer.from((await ok(['get', 'secret', APPROVAL_KEY_SECRET, '-n', AIRLOCK_NS, '-o', 'jsonpath={.data.key}'])).trim(), 'base64'));
    // a Pending pod with the injection annotation (no node: the control API only needs it to exist)
    await ok(['apply', '-f', '-'], `apiVersion: v1
kind: Pod
metadata:
  name: ${POD}
  namespace: ${NS}
  labels: { team: t0 }
  annotations: { airlock.dev/injected: "bench" }
spec:
  serviceAccountName: ${SA}
  automountServiceAccountToken: false
  containers: [{ name: agent, image: busybox }]
`);
    const podUid = (await ok(['get', 'pod', POD, '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).trim();
    const token = (await ok(['create', 'token', SA, '-n', NS, '--audience', 'airlock.dev', '--duration', '1h', '--bound-object-kind', 'Pod', '--bound-object-name', POD, '--bound-object-uid', podUid])).trim();
    const kube: Kube = kubeFromConfig(loadKubeConfig(cp.kubeconfig));

    const operator = spawn(
      process.execPath,
      [
        ...AIRLOCK_NODE_FLAGS,
        `--max-old-space-size=${String(CHART_HEAP.oldSpaceMiB)}`,
        ...OPERATOR_NODE_ARGS,
        join(ROOT, 'cli', 'src', 'main.ts'), 'operator', '--kubeconfig', cp.kubeconfig, '--metrics-addr', '127.0.0.1:0', '--control-addr', '127.0.0.1:0',
        '--control-tls-dir', tlsDir, '--manage-certificates=false', '--airlock-namespace', AIRLOCK_NS,
        ...(WORKERS === undefined ? [] : ['--workers', WORKERS]),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...AIRLOCK_ENV, NODE_COMPILE_CACHE: imageCache.dir } },
    );
    child = operator;
    const pid = operator.pid ?? 0;
    operator.stderr.setEncoding('utf8');
    operator.stderr.on('data', (chunk: string) => (logs = logs.length > 1_000_000 ? logs.slice(-200_000) + chunk : logs + chunk));
    const controlPort = Number(await until('the control API to listen', () => Promise.resolve(/"controlAddress":"127\.0\.0\.1:(\d+)"/.exec(logs)?.[1]), (p) => p !== undefined));
    const metricsBase = `http://${/"address":"([0-9.]+:[0-9]+)"/.exec(logs)?.[1] ?? ''}`;
    await until('/readyz', async () => (await fetch(`${metricsBase}/readyz`)).status, (s) => s === 200, 60_000);

    const call = (method: string, path: string, body?: unknown): Promise<Reply> => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: controlPort,
            path,
            method,
            ca,
            servername: 'localhost',
            agent,
            headers: { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => {
              resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as unknown) });
            });
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    };

    console.log(`operator bench: node ${process.version}, ${String(cpus().length)} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the start, operator --workers ${WORKERS ?? 'default'}, its old generation capped at ${String(CHART_HEAP.oldSpaceMiB)} MiB (the chart's heapPercent ${String(CHART_HEAP.percent)} of its ${CHART_HEAP.limit} limit)\n`);
    // (4a) idle: informers synced, nothing to reconcile
    await sleep(2000);
    const idleRss = rssOf(pid);
    const scrape = async (): Promise<string> => (await fetch(`${metricsBase}/metrics`)).text();
    const idleHeap = metricSum(await scrape(), 'nodejs_heap_size_used_bytes');
    let peakRss = idleRss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssOf(pid));
    }, 250);

    // (1) everything at once: CHUNKS server-side applies running at the same time
    const docs = loadDocuments();
    const chunks: string[][] = Array.from({ length: CHUNKS }, () => []);
    docs.forEach((d, i) => chunks[i % CHUNKS]?.push(d));
    // Ready is followed with a watch (the API server pushes changes: polling 1,000 objects would
    // compete with the operator for the two cores), checked against a list every 5 s
    const isReady = (o: { status?: { conditions?: Condition[] } }): boolean => o.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') === true;
    const readiness = new Map<string, boolean>();
    const readyCount = (): number => [...readiness.values()].filter(Boolean).length;
    const watcher = await new Watch(kube.config).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${NS}/agentconnections`,
      {},
      (phase: string, object: { metadata?: { name?: string }; status?: { conditions?: Condition[] } }) => {
        const name = object.metadata?.name ?? '';
        if (phase === 'DELETED') readiness.delete(name);
        else if (phase === 'ADDED' || phase === 'MODIFIED') readiness.set(name, isReady(object));
      },
      () => undefined,
    );
    const listReady = async (): Promise<number> => {
      const list = (await kube.customObjects.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: 'agentconnections' })) as { items: { status?: { conditions?: Condition[] } }[] };
      return list.items.filter(isReady).length;
    };
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    let appliedAt = 0;
    const applies = Promise.all(chunks.map((c) => ok(['apply', '--server-side', '--field-manager', 'bench', '-f', '-'], c.join('---\n')))).then(() => (appliedAt = Date.now()));
    applies.catch(() => undefined);
    let firstReadyAt = 0;
    let lastList = t0;
    let ready = 0;
    const timeline: { seconds: number; ready: number }[] = [];
    let readyAt = 0;
    while (Date.now() - t0 < LOAD_TIMEOUT_MS) {
      ready = readyCount();
      if (Date.now() - lastList >= 5000) {
        lastList = Date.now();
        ready = Math.max(ready, await listReady());
        timeline.push({ seconds: Math.round((Date.now() - t0) / 1000), ready });
      }
      if (ready > 0 && firstReadyAt === 0) firstReadyAt = Date.now();
      if (ready >= CONNECTIONS) {
        readyAt = Date.now();
        break;
      }
      await sleep(100);
    }
    watcher.abort();
    const allReady = readyAt !== 0;
    const loadCpu = cpuSeconds(pid) - cpu0;
    const loadSeconds = allReady ? (readyAt - t0) / 1000 : Infinity;
    const wallSeconds = ((allReady ? readyAt : Date.now()) - t0) / 1000;
    await applies;
    console.log(
      `${String(CONNECTIONS)} AgentConnections + ${String(CONNECTIONS)} Secrets + ${String(POLICIES)} policies (${String(CHUNKS)} server-side applies at once): applied in ${((appliedAt - t0) / 1000).toFixed(1)} s, ` +
        (allReady ? `all ${String(ready)} Ready after ${loadSeconds.toFixed(1)} s` : `only ${String(ready)} Ready after ${String(LOAD_TIMEOUT_MS / 1000)} s (gave up)`),
    );
    console.log(`  Ready over time (s:count): ${timeline.map((t) => `${String(t.seconds)}:${String(t.ready)}`).join(' ')}`);
    // the approvals and bundle figures are taken on a settled operator: wait for an empty work queue
    let settledAt = 0;
    while (Date.now() - t0 < LOAD_TIMEOUT_MS + SETTLE_TIMEOUT_MS) {
      if (metricSum(await scrape(), 'airlock_operator_workqueue_depth') === 0) {
        settledAt = Date.now();
        break;
      }
      await sleep(1000);
    }
    const settledSeconds = settledAt === 0 ? null : (settledAt - t0) / 1000;
    console.log(`  work queue empty ${settledSeconds === null ? 'never (gave up)' : `after ${settledSeconds.toFixed(1)} s`}`);
    await sleep(2000);
    const loadedRss = rssOf(pid);
    const loadedMetrics = await scrape();
    const loadedHeap = metricSum(loadedMetrics, 'nodejs_heap_size_used_bytes');
    const loadedHeapTotal = metricSum(loadedMetrics, 'nodejs_heap_size_total_bytes');
    const loadedExternal = metricSum(loadedMetrics, 'nodejs_external_memory_bytes');
    const reconciles = metricSum(loadedMetrics, 'airlock_operator_reconcile_total');
    const statusWrites = metricSum(loadedMetrics, 'airlock_operator_status_writes_total');
    const events = (await kube.events.listNamespacedEvent({ namespace: NS })).items.length;
    const reconcileMeanMs = (metricSum(loadedMetrics, 'airlock_operator_reconcile_duration_seconds_sum') / metricSum(loadedMetrics, 'airlock_operator_reconcile_duration_seconds_count')) * 1000;
    console.log(`  operator during the load: ${loadCpu.toFixed(1)} CPU s in ${wallSeconds.toFixed(1)} s wall (${((loadCpu / wallSeconds) * 100).toFixed(0)}% of one core), ${String(reconciles)} reconciles (mean ${reconcileMeanMs.toFixed(0)} ms), ${String(statusWrites)} status writes, ${String(events)} Events in the namespace (counted when the queue emptied); V8 heap used ${(idleHeap / MiB).toFixed(0)} MiB idle, ${(loadedHeap / MiB).toFixed(0)} MiB loaded (heap total ${(loadedHeapTotal / MiB).toFixed(0)} MiB, external ${(loadedExternal / MiB).toFixed(0)} MiB)`);

    // (3) bundle fetch, sequential, one keep-alive connection
    const first = await until('a 200 bundle', () => call('GET', '/v1/bundle'), (r) => r.status === 200);
    const granted = (first.body as { connections: unknown[] }).connections.length;
    const bundleMs: number[] = [];
    for (let i = 0; i < BUNDLE_REQUESTS; i++) {
      const s = process.hrtime.bigint();
      const r = await call('GET', '/v1/bundle');
      bundleMs.push(Number(process.hrtime.bigint() - s) / 1e6);
      if (r.status !== 200) throw new Error(`bundle ${String(i)}: ${String(r.status)} ${JSON.stringify(r.body)}`);
    }
    bundleMs.sort((a, b) => a - b);
    const bundleBytes = JSON.stringify(first.body).length;
    console.log(`GET /v1/bundle (${String(granted)} connections, ${(bundleBytes / 1024).toFixed(0)} KiB), ${String(BUNDLE_REQUESTS)} sequential: p50 ${percentile(bundleMs, 0.5).toFixed(2)} ms, p99 ${percentile(bundleMs, 0.99).toFixed(2)} ms`);

    // (2) approval latency: decision annotation written → the waiting GET returns Approved
    const ask = {
      connection: 'conn-0000',
      session: 'bench-session',
      protocol: 'postgres',
      command: 'DELETE FROM orders WHERE id = $1',
      classes: ['write'],
      rule: { approvalRule: 'guard-0000', name: 'writes' },
      approvers: { users: ['bob'], groups: [] },
      required: 1,
      requireReason: false,
      timeoutSeconds: 600,
      message: 'writes need a human',
    };
    const approvalMs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const created = await call('POST', '/v1/approvals', ask);
      if (created.status !== 201) throw new Error(`POST /v1/approvals: ${String(created.status)} ${JSON.stringify(created.body)}`);
      const { name } = created.body as { name: string };
      const read = async (): Promise<{ uid: string; phase: string | undefined }> => {
        const r = (await kube.customObjects.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: 'approvalrequests', name })) as { metadata: { uid?: string }; status?: { phase?: string } };
        return { uid: r.metadata.uid ?? '', phase: r.status?.phase };
      };
      const pending = await until(`${name} Pending`, read, (r) => r.phase === 'Pending', 30_000, 50);
      let answeredAt = 0;
      const waiting = call('GET', `/v1/approvals/${name}?waitSeconds=30`).then((r) => {
        answeredAt = Date.now();
        return r;
      });
      await sleep(200);
      const fields = { user: 'bob', groups: ['dba'], decision: 'approve' as const, time: new Date().toISOString() };
      const value = JSON.stringify([{ ...fields, signature: signDecision(storedKey, { namespace: NS, name, uid: pending.uid }, fields) }]);
      const decidedAt = Date.now();
      await kube.customObjects.patchNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: 'approvalrequests',
        name,
        body: [{ op: 'add', path: `/metadata/annotations/${DECISIONS_ANNOTATION.replace('/', '~1')}`, value }],
      });
      const reply = await waiting;
      const phase = (reply.body as { phase?: string } | undefined)?.phase;
      if (reply.status !== 200 || phase !== 'Approved') throw new Error(`approval ${name}: ${String(reply.status)} ${JSON.stringify(reply.body)}\n${logs.slice(-3000)}`);
      approvalMs.push(answeredAt - decidedAt);
    }
    const approvalsRaw = [...approvalMs];
    approvalMs.sort((a, b) => a - b);
    console.log(`approval latency (decision annotation written → waiting GET returns Approved), ${String(SAMPLES)} samples: p50 ${String(percentile(approvalMs, 0.5))} ms, p95 ${String(percentile(approvalMs, 0.95))} ms, max ${String(approvalMs.at(-1) ?? NaN)} ms`);
    clearInterval(sampler);
    peakRss = Math.max(peakRss, rssOf(pid));
    console.log(`operator RSS: ${(idleRss / MiB).toFixed(0)} MiB idle, ${(loadedRss / MiB).toFixed(0)} MiB with ${String(CONNECTIONS)} connections Ready, ${(peakRss / MiB).toFixed(0)} MiB peak (sampled every 250 ms)`);

    const targets = {
      allReadySeconds: { target: 60, measured: allReady ? loadSeconds : null, met: allReady && loadSeconds <= 60 },
      approvalP95Ms: { target: 1000, measured: percentile(approvalMs, 0.95), met: percentile(approvalMs, 0.95) <= 1000 },
      rssMiB: { target: 200, measured: peakRss / MiB, met: peakRss <= 200 * MiB },
    };
    console.log('\ntarget                  measured      target     result');
    console.log(`all Ready               ${(allReady ? loadSeconds.toFixed(1) : `>${String(LOAD_TIMEOUT_MS / 1000)}`).padStart(8)} s   ≤ 60 s      ${targets.allReadySeconds.met ? 'PASS' : 'MISS'}`);
    console.log(`approval p95            ${String(targets.approvalP95Ms.measured).padStart(8)} ms  ≤ 1000 ms   ${targets.approvalP95Ms.met ? 'PASS' : 'MISS'}`);
    console.log(`operator RSS (peak)     ${(peakRss / MiB).toFixed(0).padStart(8)} MiB ≤ 200 MiB   ${targets.rssMiB.met ? 'PASS' : 'MISS'}`);
    console.log(`bundle p99              ${percentile(bundleMs, 0.99).toFixed(2).padStart(8)} ms  (no target)`);

    const out = {
      date: new Date().toISOString(),
      node: process.version,
      cores: cpus().length,
      load: { connections: CONNECTIONS, secrets: CONNECTIONS, policies: POLICIES, applyChunks: CHUNKS, appliedSeconds: (appliedAt - t0) / 1000, firstReadySeconds: (firstReadyAt - t0) / 1000, allReady, allReadySeconds: allReady ? loadSeconds : null, readyAtEnd: ready, timeoutSeconds: LOAD_TIMEOUT_MS / 1000, timeline },
      approvals: { samples: SAMPLES, p50Ms: percentile(approvalMs, 0.5), p95Ms: percentile(approvalMs, 0.95), maxMs: approvalMs.at(-1) ?? NaN, runsMs: approvalsRaw },
      bundle: { requests: BUNDLE_REQUESTS, connections: granted, bytes: bundleBytes, keepAlive: true, p50Ms: percentile(bundleMs, 0.5), p99Ms: percentile(bundleMs, 0.99), maxMs: bundleMs.at(-1) ?? NaN },
      operatorRss: { idleBytes: idleRss, loadedBytes: loadedRss, peakBytes: peakRss, nodeFlags: [...AIRLOCK_NODE_FLAGS, `--max-old-space-size=${String(CHART_HEAP.oldSpaceMiB)}`], chart: CHART_HEAP },
      operatorDuringLoad: { cpuSeconds: loadCpu, wallSeconds, settledSeconds, workers: WORKERS, reconcileMeanMs, reconciles, statusWrites, events, heapUsedIdleBytes: idleHeap, heapUsedLoadedBytes: loadedHeap, heapTotalLoadedBytes: loadedHeapTotal, externalLoadedBytes: loadedExternal },
      loadAverage: loadavg(),
      targets,
      runSeconds: (Date.now() - started) / 1000,
    };
    mkdirSync(new URL('../../bench/', import.meta.url), { recursive: true });
    writeFileSync(new URL('../../bench/operator.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote bench/operator.json (run took ${out.runSeconds.toFixed(0)} s)`);
  } finally {
    agent.destroy();
    const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
    if (child !== undefined && alive(child)) {
      child.kill('SIGTERM');
      // a profiled operator (AIRLOCK_BENCH_OPERATOR_NODE_ARGS) writes its profile on exit, after draining its queue
      await Promise.race([once(child, 'exit'), sleep(OPERATOR_NODE_ARGS.length > 0 ? 180_000 : 10_000)]);
      if (alive(child)) child.kill('SIGKILL');
    }
    cp.stop();
    rmSync(tlsDir, { recursive: true, force: true });
    imageCache.remove();
  }
}

await main();
