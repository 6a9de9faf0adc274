/**
 * The real single-node Kubernetes (hack/cluster/up.sh) for tests that need pods: start it, stop it,
 * and a few helpers to create a namespace, apply manifests and wait for pods with a timeout message
 * that shows why (the pod's events and its containers' logs).
 *
 * One node per machine: the node's network, iptables chains and kubelet are host-global. A test
 * file starts it, uses it and stops it; `make cluster-up` running at the same time makes the start
 * fail with up.sh's message.
 */
import { execFile, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, controlPlaneBinaries, type CommandResult } from './controlplane.ts';

const CLUSTER = join(ROOT, 'hack', 'cluster');
export const NODE_DIR = '/var/lib/airlock-node';
export const NODE_NAME = 'airlock-node';

export type ImageName = 'airlock' | 'test-agent' | 'test-postgres' | 'test-sshd';

/** The reference of an image `make images` built (dist/images.json), imported by up.sh. */
export function imageRef(name: ImageName): string {
  const file = join(ROOT, 'dist', 'images.json');
  const images = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { images?: Partial<Record<string, { reference: string }>> }).images : undefined;
  const found = images?.[name];
  if (found === undefined) throw new Error(`image ${name} is not built: run 'make images' (${file} does not list it)`);
  return found.reference;
}

export interface Kubectl {
  /** Runs kubectl against the node; never throws on a non-zero exit. */
  (args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
}

export interface Node {
  readonly kubeconfig: string;
  readonly kubectl: Kubectl;
  /** kubectl that throws with stderr on a non-zero exit and returns stdout */
  run(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** kubectl as a child process (port-forward, watches), stdout and stderr piped */
  spawnKubectl(args: readonly string[]): ChildProcessWithoutNullStreams;
  /** up.sh's own output (timings and memory) */
  readonly upLog: string;
  stop(): CommandResult;
}

/** Whether a process of the node (up.sh's pid files) is alive. */
export function nodeRunning(): boolean {
  const run = join(NODE_DIR, 'run');
  if (!existsSync(run)) return false;
  return readdirSync(run).filter((f) => f.endsWith('.pid')).some((f) => {
    const pid = Number(readFileSync(join(run, f), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

export function clusterScript(name: 'up' | 'down', env: NodeJS.ProcessEnv = {}): CommandResult {
  const r = spawnSync('bash', [join(CLUSTER, `${name}.sh`)], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function kubectlFor(binDir: string, kubeconfig: string): Kubectl {
  return (args, options = {}) =>
    new Promise((resolve) => {
      const child = execFile(
        join(binDir, 'kubectl'),
        ['--kubeconfig', kubeconfig, ...args],
        { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 120_000 },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
      child.stdin?.end(options.input ?? '');
    });
}

/** Starts the node (images in dist/ are imported by up.sh); throws with up.sh's output when it cannot. */
export function startNode(): Node {
  const binDir = controlPlaneBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-node-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const up = clusterScript('up', { KUBECONFIG_OUT: kubeconfig });
  if (up.code !== 0) {
    // a node of someone else's (make cluster-up) is left alone; a half-started one of ours is removed
    if (!/already running/.test(up.stderr)) clusterScript('down');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start the node (hack/cluster/up.sh):\n${up.stderr}`);
  }
  const kubectl = kubectlFor(binDir, kubeconfig);
  return {
    kubeconfig,
    kubectl,
    upLog: up.stderr,
    spawnKubectl(args) {
      return spawn(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], { stdio: 'pipe' });
    },
    async run(args, options) {
      const r = await kubectl(args, options);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    },
    stop() {
      const r = clusterScript('down');
      rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

/** Creates a namespace with a unique name from `prefix` and returns its name. */
export async function createNamespace(node: Node, prefix: string, labels: Readonly<Record<string, string>> = {}): Promise<string> {
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await node.run(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }) });
  // the controller-manager gives each namespace its default ServiceAccount; pods wait for it
  const deadline = Date.now() + 30_000;
  while ((await node.kubectl(['get', 'serviceaccount', 'default', '-n', name])).code !== 0) {
    if (Date.now() > deadline) throw new Error(`namespace ${name} got no default ServiceAccount in 30 s (is kube-controller-manager running?)`);
    await sleep(200);
  }
  return name;
}

/** kubectl apply of manifests (objects, or YAML/JSON text) in a namespace. */
export async function apply(node: Node, namespace: string, manifests: string | readonly object[]): Promise<void> {
  const input = typeof manifests === 'string' ? manifests : JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests });
  await node.run(['apply', '-n', namespace, '-f', '-'], { input });
}

/**
 * Waits until every pod matching `selector` in `namespace` is Ready (at least `count` of them).
 * On timeout, throws a message with each pod's phase, container states, events and logs.
 */
export async function waitForPods(node: Node, namespace: string, selector: string, options: { count?: number; timeoutMs?: number; condition?: 'Ready' | 'Succeeded' } = {}): Promise<PodSummary[]> {
  const { count = 1, timeoutMs = 60_000, condition = 'Ready' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = await listPods(node, namespace, selector);
    const done = pods.filter((p) => (condition === 'Ready' ? p.ready : p.phase === 'Succeeded'));
    if (done.length >= count && done.length === pods.length) return pods;
    if (Date.now() > deadline) {
      throw new Error(`pods ${selector} in ${namespace}: not ${condition} after ${timeoutMs / 1000} s (${done.length}/${Math.max(count, pods.length)})\n${await describePods(node, namespace, selector)}`);
    }
    await sleep(250);
  }
}

export interface PodSummary {
  readonly name: string;
  readonly phase: string;
  readonly ready: boolean;
  readonly ip: string | undefined;
}

interface PodJson {
  metadata: { name: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export async function listPods(node: Node, namespace: string, selector: string): Promise<PodSummary[]> {
  const out = await node.run(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'json']);
  return (JSON.parse(out) as { items: PodJson[] }).items.map((p) => ({
    name: p.metadata.name,
    phase: p.status?.phase ?? 'Unknown',
    ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    ip: p.status?.podIP,
  }));
}

/** Everything a person would look at when a pod does not come up: status, events, logs. */
export async function describePods(node: Node, namespace: string, selector: string): Promise<string> {
  const parts: string[] = [];
  const pods = await node.kubectl(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'wide']);
  parts.push(pods.stdout || pods.stderr);
  const names = (await node.kubectl(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'name'])).stdout.split('\n').filter((n) => n !== '');
  for (const name of names) {
    const status = await node.kubectl(['get', name, '-n', namespace, '-o', 'jsonpath={range .status.initContainerStatuses[*]}{.name}: {.state}{"\\n"}{end}{range .status.containerStatuses[*]}{.name}: {.state}{"\\n"}{end}']);
    parts.push(`--- ${name} containers:\n${status.stdout}`);
    const events = await node.kubectl(['get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${name.replace(/^pod\//, '')}`, '--sort-by', '.lastTimestamp']);
    parts.push(`--- ${name} events:\n${events.stdout || events.stderr}`);
    const logs = await node.kubectl(['logs', name, '-n', namespace, '--all-containers', '--prefix', '--tail', '40']);
    parts.push(`--- ${name} logs:\n${logs.stdout}${logs.stderr}`);
  }
  return parts.join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
