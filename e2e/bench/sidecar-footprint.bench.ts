/**
 * The sidecar's footprint (issue 17): the time from spawn to its PostgreSQL and SSH listeners
 * accepting a TCP connection, and its resident memory idle after start-up, in local mode
 * (`airlock sidecar -f examples/ --connection …`, the example policies), side by side with the
 * floor any Node.js process has on the same machine in the same run:
 *
 * - `floor: node -e listen`: a bare `node -e` that opens a TCP listener (time to accept, RSS);
 * - `floor: node empty.mjs`: node running an empty ESM file (time from spawn to exit);
 * - `sidecar pg` / `sidecar ssh`: the launcher (cli/bin/airlock) with Node's compile cache warm,
 *   as every start after the first on one machine;
 * - `sidecar pg, cold cache`: a fresh, empty NODE_COMPILE_CACHE each round, as the first start
 *   on a machine: the start strips TypeScript and restarts itself from the cache
 *   (cli/src/restart.ts);
 * - `pod: …` (when run as root): the sidecar started as the airlock image starts it in a pod —
 *   the image's Node flags and environment, an unprivileged user, nothing it can write but its
 *   volumes — with the compile cache the image ships (`image cache`: the modules already
 *   stripped, read-only; see hack/images/compile-cache.ts), or with none (`no cache`: what the
 *   image did before it shipped one, its cache under a /tmp the read-only root does not have).
 *
 * Targets run interleaved, ROUNDS times (AIRLOCK_BENCH_ROUNDS, default 7); medians are compared.
 * Time to accept: a TCP connect is tried every millisecond from the spawn on; the CPU time the
 * process had used by then (every thread: /proc/<pid>/task/<tid>/schedstat) is recorded too: on a
 * loaded machine wall time mostly measures the wait for a core. Idle RSS: VmRSS, and RssAnon (the
 * private part), IDLE_MS after the listener first accepted (AIRLOCK_BENCH_IDLE_MS, default
 * 2000). Prints the medians and ratios; writes bench/sidecar-footprint.json (every round's
 * figures included).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localImageCache } from '../../hack/images/compile-cache.ts';
import { AIRLOCK_ENV, AIRLOCK_NODE_FLAGS } from '../../hack/images/entrypoint.ts';
import { freePort } from '../src/postgres.ts';
import { AIRLOCK_BIN } from '../src/sidecar.ts';

const ROUNDS = Number(process.env['AIRLOCK_BENCH_ROUNDS'] ?? 7);
const IDLE_MS = Number(process.env['AIRLOCK_BENCH_IDLE_MS'] ?? 2000);
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const OUT = fileURLToPath(new URL('../../bench/sidecar-footprint.json', import.meta.url));
const MiB = 1048576;
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'cli', 'src', 'main.ts');
/** the unprivileged user the pod targets run as */
const POD_UID = 65534;
const asRoot = process.getuid?.() === 0;

interface Sample {
  /** ms from spawn to the first accepted TCP connection (or to exit, for the empty ESM file) */
  readonly startMs: number;
  /** CPU time of the process (every thread alive then) when it first accepted: far less noisy than the wall time on a loaded machine */
  readonly cpuMs: number | undefined;
  /** VmRSS IDLE_MS after start-up, bytes (undefined for a process that exits) */
  readonly idleRss: number | undefined;
  /** RssAnon then: the private memory (heap, stacks, JIT code), bytes; the rest of VmRSS is pages of
   * files (the node binary's ~50 MiB of text, shared libraries), which every pod on a node running
   * the same image shares through the page cache */
  readonly idleAnon: number | undefined;
}

interface Target {
  readonly name: string;
  run(scratch: string): Promise<Sample>;
}

/** VmRSS and RssAnon of `pid`, bytes (0 when it is gone) */
function rssOf(pid: number): { readonly rss: number; readonly anon: number } {
  let status = '';
  try {
    status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  } catch {
    return { rss: 0, anon: 0 };
  }
  const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
}

/** CPU time so far of every live thread of `pid` (sum of /proc/<pid>/task/<tid>/schedstat's run time), ms. */
function cpuMsOf(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${String(pid)}/task`)) {
      ns += Number(readFileSync(`/proc/${String(pid)}/task/${tid}/schedstat`, 'utf8').split(' ')[0] ?? 0);
    }
    return ns / 1e6;
  } catch {
    return undefined;
  }
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => { r(); }));
}

/** Spawns, waits for `port` to accept, waits IDLE_MS, reads VmRSS, stops the process (SIGTERM, SIGKILL after 10 s). */
async function listener(command: string, args: readonly string[], port: number, env: NodeJS.ProcessEnv): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} ${args.join(' ')} exited (${String(child.exitCode ?? child.signalCode)}) before listening:\n${stderr}`);
      if (await tryConnect(port)) break;
      if (performance.now() - t0 > 30_000) throw new Error(`${command}: nothing accepts on ${String(port)} after 30 s:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    const startMs = performance.now() - t0;
    const cpuMs = cpuMsOf(child.pid ?? 0);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const { rss, anon } = rssOf(child.pid ?? 0);
    return { startMs, cpuMs, idleRss: rss, idleAnon: anon };
  } finally {
    const done = exited(child);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(timer);
  }
}

function sidecarTarget(name: string, connection: string, coldCache: boolean): Target {
  return {
    name,
    async run(scratch) {
      const port = await freePort();
      const env: NodeJS.ProcessEnv = { ...process.env };
      if (coldCache) env['NODE_COMPILE_CACHE'] = mkdtempSync(join(scratch, 'compile-cache-'));
      const args = ['sidecar', '-f', EXAMPLES, '--connection', connection, '--namespace', 'agents', '--recordings-dir', join(scratch, 'recordings'), '--state-dir', join(scratch, 'state'), '--listen', `127.0.0.1:${String(port)}`];
      return listener(AIRLOCK_BIN, args, port, env);
    },
  };
}

/** the sidecar as the image starts it in a pod, with the image's compile cache at `cacheDir` or none: see the header */
function podTarget(name: string, connection: string, cacheDir: string | undefined): Target {
  return {
    name,
    async run(scratch) {
      const port = await freePort();
      const writable = mkdtempSync(join(scratch, 'pod-'));
      chmodSync(writable, 0o777);
      // the image's environment: its cache, or (before it shipped one) a place the read-only root does not have
      const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '', ...AIRLOCK_ENV, NODE_COMPILE_CACHE: cacheDir ?? '/airlock-compile-cache' /* not writable by POD_UID */ };
      const args = [`--reuid=${String(POD_UID)}`, `--regid=${String(POD_UID)}`, '--clear-groups', process.execPath, ...AIRLOCK_NODE_FLAGS, MAIN, 'sidecar', '-f', EXAMPLES, '--connection', connection, '--namespace', 'agents', '--recordings-dir', join(writable, 'recordings'), '--state-dir', join(writable, 'state'), '--listen', `127.0.0.1:${String(port)}`];
      return listener('setpriv', args, port, env);
    },
  };
}

/** every target; the pod targets when `podCacheDir` (the image's compile cache) is given */
function allTargets(podCacheDir: string | undefined): readonly Target[] {
  return [
    {
      name: 'floor: node -e listen',
      async run() {
        const port = await freePort();
        return listener(process.execPath, ['-e', `require('node:net').createServer(() => {}).listen(${String(port)}, '127.0.0.1')`], port, process.env);
      },
    },
    {
      name: 'floor: node empty.mjs',
      async run(scratch) {
        const file = join(scratch, 'empty.mjs');
        writeFileSync(file, '');
        const t0 = performance.now();
        const child = spawn(process.execPath, [file], { stdio: 'ignore' });
        await exited(child);
        return { startMs: performance.now() - t0, cpuMs: undefined, idleRss: undefined, idleAnon: undefined };
      },
    },
    sidecarTarget('sidecar pg', 'orders-db', false),
    sidecarTarget('sidecar ssh', 'bastion', false),
    sidecarTarget('sidecar pg, cold cache', 'orders-db', true),
    ...(podCacheDir !== undefined ? [podTarget('pod: sidecar pg, image cache', 'orders-db', podCacheDir), podTarget('pod: sidecar ssh, image cache', 'bastion', podCacheDir), podTarget('pod: sidecar pg, no cache', 'orders-db', undefined)] : []),
  ];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'airlock-footprint-'));
  chmodSync(scratch, 0o755); // the pod targets' user reaches its directories in it
  const podCache = asRoot ? localImageCache({ root: REPO, node: process.execPath, flags: AIRLOCK_NODE_FLAGS, uid: POD_UID }) : undefined;
  const TARGETS = allTargets(podCache?.dir);
  const runs = new Map<string, Sample[]>(TARGETS.map((t) => [t.name, []]));
  if (!asRoot) console.log('not root: the pod targets (an unprivileged user, a read-only compile cache) are left out');
  try {
    // one start of each sidecar first, not counted: fills the compile cache after a source change
    for (const t of TARGETS) if (t.name.startsWith('sidecar') && !t.name.includes('cold')) await t.run(scratch);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of TARGETS) {
        const s = await t.run(scratch);
        runs.get(t.name)?.push(s);
        console.log(`round ${String(round)} ${t.name.padEnd(30)} ${s.startMs.toFixed(0).padStart(5)} ms${s.cpuMs !== undefined ? ` (cpu ${s.cpuMs.toFixed(0).padStart(4)} ms)` : ''}${s.idleRss !== undefined ? `  ${(s.idleRss / MiB).toFixed(1)} MiB (anon ${((s.idleAnon ?? 0) / MiB).toFixed(1)})` : ''}`);
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    podCache?.remove();
  }
  const summary: Record<string, { startMs: number; cpuMs: number | undefined; idleRssMiB: number | undefined; idleAnonMiB: number | undefined }> = {};
  for (const [name, samples] of runs) {
    const rss = samples.flatMap((s) => (s.idleRss !== undefined ? [s.idleRss] : []));
    const anon = samples.flatMap((s) => (s.idleAnon !== undefined ? [s.idleAnon] : []));
    const cpu = samples.flatMap((s) => (s.cpuMs !== undefined ? [s.cpuMs] : []));
    summary[name] = { startMs: median(samples.map((s) => s.startMs)), cpuMs: cpu.length > 0 ? median(cpu) : undefined, idleRssMiB: rss.length > 0 ? median(rss) / MiB : undefined, idleAnonMiB: anon.length > 0 ? median(anon) / MiB : undefined };
  }
  const floor = summary['floor: node -e listen'];
  const empty = summary['floor: node empty.mjs'];
  console.log(`\nmedians of ${String(ROUNDS)} interleaved rounds (idle RSS ${String(IDLE_MS)} ms after the first accepted connection; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}):`);
  for (const [name, s] of Object.entries(summary)) {
    const vsFloor = floor !== undefined && !name.startsWith('floor') ? `  ${(s.startMs / floor.startMs).toFixed(2)}x the listen floor, +${(s.startMs - (empty?.startMs ?? 0)).toFixed(0)} ms over an empty node` : '';
    const cpu = s.cpuMs !== undefined ? `  cpu ${s.cpuMs.toFixed(0)} ms${floor?.cpuMs !== undefined && !name.startsWith('floor') ? ` (${(s.cpuMs / floor.cpuMs).toFixed(2)}x the listen floor's)` : ''}` : '';
    const rss = s.idleRssMiB !== undefined ? `  RSS ${s.idleRssMiB.toFixed(1)} MiB${floor?.idleRssMiB !== undefined && !name.startsWith('floor') ? ` (floor +${(s.idleRssMiB - floor.idleRssMiB).toFixed(1)})` : ''}, of it private ${(s.idleAnonMiB ?? NaN).toFixed(1)} MiB` : '';
    console.log(`  ${name.padEnd(30)} ${s.startMs.toFixed(0).padStart(5)} ms${vsFloor}${cpu}${rss}`);
  }
  // what a new pod gets when the pod targets ran, the local launcher's warm start otherwise
  const pod = asRoot ? 'pod: ' : '';
  const cache = asRoot ? ', image cache' : '';
  const pg = summary[`${pod}sidecar pg${cache}`];
  const ssh = summary[`${pod}sidecar ssh${cache}`];
  const worst = Math.max(pg?.startMs ?? NaN, ssh?.startMs ?? NaN);
  const worstCpu = Math.max(pg?.cpuMs ?? NaN, ssh?.cpuMs ?? NaN);
  const worstRss = Math.max(pg?.idleRssMiB ?? NaN, ssh?.idleRssMiB ?? NaN);
  const worstAnon = Math.max(pg?.idleAnonMiB ?? NaN, ssh?.idleAnonMiB ?? NaN);
  const targets = {
    coldStartMs: { target: 300, value: worst, met: worst <= 300, cpuMs: worstCpu, of: asRoot ? 'a pod (image cache)' : 'the local launcher (warm cache)' },
    idleRssMiB: { target: 64, value: worstRss, met: worstRss <= 64, privateMiB: worstAnon },
  };
  console.log(`\ntargets (${targets.coldStartMs.of}): start to listening ${worst.toFixed(0)} ms, ${worstCpu.toFixed(0)} ms of CPU (≤ 300: ${targets.coldStartMs.met ? 'met' : 'missed'}), idle RSS ${worstRss.toFixed(1)} MiB (≤ 64: ${targets.idleRssMiB.met ? 'met' : 'missed'}; private ${worstAnon.toFixed(1)} MiB)`);
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    loadavg: loadavg(),
    rounds: ROUNDS,
    idleMs: IDLE_MS,
    summary,
    runs: Object.fromEntries([...runs].map(([k, v]) => [k, v.map((s) => ({ startMs: s.startMs, cpuMs: s.cpuMs, idleRssMiB: s.idleRss !== undefined ? s.idleRss / MiB : undefined, idleAnonMiB: s.idleAnon !== undefined ? s.idleAnon / MiB : undefined }))])),
    targets,
  };
  writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${OUT}`);
}

await main();
