/**
 * `make bench-webhook`, second part: the pod start-up time that injection adds, on the real node
 * (e2e/src/node.ts) with Airlock installed from the chart.
 *
 * ROUNDS rounds; in each, one pod of the same spec (the test-agent image, already on the node) is
 * created in a namespace opted in to injection (one AgentConnection selects it: capture init
 * container, native sidecar that fetches its bundle from the operator and must be ready before
 * the agent starts) and one in a plain namespace (the floor), in alternating order. The time of a
 * pod is from just before the create call to the watch event in which its `agent` container is
 * running, seen by this client (the kubelet's status updates are the same for both).
 *
 * Prints p50/max of each and the difference of the medians against the target (≤ 1 s), and
 * writes bench/pod-startup.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CoreV1Api, KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';
import { controlPlaneBinaries, ROOT } from '../src/controlplane.ts';
import { createNamespace, imageRef, NODE_DIR, startNode, type Node } from '../src/node.ts';

const ROUNDS = Number(process.env['AIRLOCK_BENCH_ROUNDS'] ?? 10);
const TARGET_MS = 1000;

/** the pod, as JSON the API takes (client-node's classes are for what it returns) */
function podBody(name: string): V1Pod {
  return JSON.parse(JSON.stringify({
    metadata: { name, labels: { app: 'bench-agent' } },
    spec: {
      serviceAccountName: 'default',
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'agent', image: imageRef('test-agent'), imagePullPolicy: 'Never' }],
    },
  })) as V1Pod;
}

/** ms from the create call to the watch event with the agent container running */
async function timeToAgentRunning(kc: KubeConfig, core: CoreV1Api, namespace: string, name: string): Promise<number> {
  let stopWatch: (() => void) | undefined;
  const running = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`pod ${namespace}/${name}: agent container not running after 120 s`)); }, 120_000);
    void new Watch(kc)
      .watch(`/api/v1/namespaces/${namespace}/pods`, { fieldSelector: `metadata.name=${name}` }, (_type: string, pod: V1Pod) => {
        const agent = pod.status?.containerStatuses?.find((c) => c.name === 'agent');
        if (agent?.state?.running !== undefined) {
          clearTimeout(timer);
          resolve(performance.now());
        }
      }, (err: unknown) => { if (err instanceof Error) reject(err); else if (err !== null && err !== undefined) reject(new Error(`watch of ${namespace}/${name} ended: ${JSON.stringify(err)}`)); })
      .then((req: { abort(): void }) => { stopWatch = () => { req.abort(); }; });
  });
  await new Promise((r) => setTimeout(r, 300)); // the watch is open before the pod exists
  const t0 = performance.now();
  await core.createNamespacedPod({ namespace, body: podBody(name) });
  const t1 = await running;
  stopWatch?.();
  return t1 - t0;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

async function installAirlock(node: Node): Promise<void> {
  const { spawnSync } = await import('node:child_process');
  const helm = join(controlPlaneBinaries(), 'helm');
  const home = join(NODE_DIR, 'bench-helm');
  const r = spawnSync(helm, ['install', 'airlock', join(ROOT, 'charts', 'airlock'), '-n', 'airlock-system', '--create-namespace', '--wait', '--timeout', '240s', '--hide-notes'], {
    env: { ...process.env, KUBECONFIG: node.kubeconfig, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`helm install failed:\n${r.stdout}${r.stderr}`);
}

async function main(): Promise<void> {
  const node = startNode();
  try {
    await installAirlock(node);
    const injected = await createNamespace(node, 'bench-injected', { 'airlock.dev/inject': 'enabled' });
    const plain = await createNamespace(node, 'bench-plain');
    await node.run(['apply', '-n', injected, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-credentials' }, stringData: { username: 'u', password: 'p' } },
          {
            apiVersion: 'airlock.dev/v1alpha1',
            kind: 'AgentConnection',
            metadata: { name: 'orders-db' },
            spec: { protocol: 'postgres', target: { host: 'orders-db.databases.svc.cluster.local', port: 5432, database: 'orders' }, credentialsSecretRef: { name: 'db-credentials' }, agents: { podSelector: { matchLabels: { app: 'bench-agent' } } }, defaultAction: 'Allow' },
          },
        ],
      }),
    });
    await node.run(['wait', '-n', injected, 'agentconnection/orders-db', '--for=condition=Ready', '--timeout=60s']);
    const kc = new KubeConfig();
    kc.loadFromFile(node.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    // one pod of each first, not counted: the first start of an image and of the sidecar's code
    await timeToAgentRunning(kc, core, plain, 'warm-up');
    await timeToAgentRunning(kc, core, injected, 'warm-up');
    const times = { plain: [] as number[], injected: [] as number[] };
    const load0 = loadavg();
    for (let i = 0; i < ROUNDS; i++) {
      const order: readonly ('plain' | 'injected')[] = i % 2 === 0 ? ['plain', 'injected'] : ['injected', 'plain'];
      for (const kind of order) times[kind].push(await timeToAgentRunning(kc, core, kind === 'plain' ? plain : injected, `pod-${String(i)}`));
    }
    const init = await node.run(['get', 'pod', 'pod-0', '-n', injected, '-o', 'jsonpath={.spec.initContainers[*].name}']);
    if (!init.includes('airlock-proxy')) throw new Error(`the opted-in pod has no sidecar (init containers: ${init})`);
    const sorted = { plain: [...times.plain].sort((a, b) => a - b), injected: [...times.injected].sort((a, b) => a - b) };
    const p50 = { plain: quantile(sorted.plain, 0.5), injected: quantile(sorted.injected, 0.5) };
    const extra = p50.injected - p50.plain;
    const load1 = loadavg();
    console.log(`airlock pod start-up bench: ${String(ROUNDS)} rounds, create → agent container running (watch event), ${String(cpus().length)} cores, load ${load0.map((l) => l.toFixed(2)).join(' ')} → ${load1.map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`  ${'plain namespace (no webhook)'.padEnd(48)} p50 ${p50.plain.toFixed(0).padStart(6)} ms   max ${(sorted.plain.at(-1) ?? 0).toFixed(0).padStart(6)} ms`);
    console.log(`  ${'opted in (capture init + native sidecar)'.padEnd(48)} p50 ${p50.injected.toFixed(0).padStart(6)} ms   max ${(sorted.injected.at(-1) ?? 0).toFixed(0).padStart(6)} ms`);
    console.log(`  extra start-up from injection (p50 difference): ${extra.toFixed(0)} ms (target ≤ ${String(TARGET_MS)} ms: ${extra <= TARGET_MS ? 'PASS' : 'MISS'})`);
    mkdirSync(join(ROOT, 'bench'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'pod-startup.json'), `${JSON.stringify({
      bench: 'pod-startup',
      date: new Date().toISOString(),
      cores: cpus().length,
      load: { before: load0, after: load1 },
      rounds: ROUNDS,
      ms: { plain: times.plain.map(Math.round), injected: times.injected.map(Math.round) },
      p50: { plain: Math.round(p50.plain), injected: Math.round(p50.injected) },
      extraP50Ms: Math.round(extra),
      targetMs: TARGET_MS,
      pass: extra <= TARGET_MS,
    }, null, 2)}\n`);
  } finally {
    const r = node.stop();
    if (r.code !== 0) console.error(r.stderr);
  }
}

await main();
