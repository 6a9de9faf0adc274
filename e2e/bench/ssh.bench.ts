/**
 * `make bench-ssh`: OpenSSH directly against a real sshd, a bare ssh2 relay and `airlock sidecar`,
 * in one run, in interleaved rounds (median of each): 1 GiB through `cat` (download: remote
 * `cat file`; upload: local file into remote `cat > /dev/null`), keystroke echo latency in a pty,
 * session setup time. The targets are against the bare ssh2 relay (the floor of any Node.js SSH
 * proxy on the same machine): download and upload sidecar / relay, echo p50 added over the
 * relay. Prints the figures and ratios and writes bench/ssh.json (with the cipher both legs
 * use). The sidecar runs with a masking policy (credit-card, email and key detectors) and
 * records every session, as in production.
 *
 * `--profile <dir>`: only the download, relay and sidecar once each, both with `--cpu-prof` into
 * <dir>; prints each profile's self time per function (the top 25) and writes no JSON.
 *
 * To show where the sidecar's cost comes from, the same run also measures:
 * - a bare ssh2 relay (this file with `--relay`, its own process): the agent-side ssh2 server and
 *   upstream ssh2 client the sidecar is built on, piping bytes with no policy, masking or
 *   recording: what any proxy that terminates SSH in Node.js gets on this machine;
 * - the CPU seconds the sidecar and the relay spend per transfer (from /proc);
 * - in this process, on the same bytes, the CPU cost of each stage of the sidecar's output path
 *   alone: the codec, the streaming masker with the bench policy, the asciicast writer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import ssh2, { type ClientChannel, type Connection, type PseudoTtyOptions } from 'ssh2';
import { compileMasker, type MaskRuleSpec } from '@airlock/policy';
import { AsciicastWriter } from '@airlock/sidecar';
import { OutputDecoder, encodeOutput } from '../../sidecar/src/ssh/codec.ts';
import { createStreamMasker, textGate } from '../../policy/src/mask/stream.ts';
import { CIPHERS } from '../../sidecar/src/ssh/algorithms.ts';
import { coalesceWrites } from '../../sidecar/src/ssh/socket.ts';
import { manifestDir, startSidecar } from '../src/sidecar.ts';
import { SSH_CLIENT_OPTIONS, startSshd, type Sshd } from '../src/sshd.ts';

const GIB = 1024 * 1024 * 1024;
const SIZE = Number(process.env['AIRLOCK_BENCH_SSH_BYTES'] ?? GIB);
/** interleaved rounds of the throughput measurement (direct, relay, sidecar each round) */
const ROUNDS = Number(process.env['AIRLOCK_BENCH_SSH_ROUNDS'] ?? 3);
const CIPHER = 'aes128-gcm@openssh.com';
const ECHOES = 2000;
const SETUPS = 20;
/** bytes of the bench file each in-process stage measurement goes through */
const STAGE_BYTES = Math.min(SIZE, 64 * 1024 * 1024);
/** the chunk size ssh2 delivers output in (its maximum packet payload) */
const CHUNK = 32 * 1024;
const MASK_RULES: MaskRuleSpec[] = [{ name: 'secrets', match: { detectors: ['credit_card', 'email', 'aws_access_key', 'private_key'] }, action: { type: 'redact' } }];

function manifests(sshd: Sshd): Record<string, string> {
  const docs = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bench-credentials', namespace: 'bench' }, stringData: { username: sshd.user, privateKey: sshd.clientKey } },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'bench', namespace: 'bench', labels: { env: 'bench' } },
      spec: { protocol: 'ssh', target: { host: sshd.host, port: sshd.port }, credentialsSecretRef: { name: 'bench-credentials' }, ssh: { hostKeyFingerprints: [sshd.hostKeyFingerprint] }, agents: { serviceAccounts: ['bench'] }, defaultAction: 'Block' },
    },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'MaskingPolicy',
      metadata: { name: 'bench', namespace: 'bench' },
      spec: { connectionSelector: { matchLabels: { env: 'bench' } }, rules: MASK_RULES },
    },
    {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'ApprovalRule',
      metadata: { name: 'bench', namespace: 'bench' },
      spec: { connectionSelector: { matchLabels: { env: 'bench' } }, rules: [{ name: 'tools', match: { ssh: { commands: ['cat', 'cat *', 'true'] } }, action: 'Allow' }] },
    },
  ];
  return { 'bench.yaml': docs.map((d) => JSON.stringify(d)).join('\n---\n') };
}

/** A text file of log-like lines (what agents read), `size` bytes. */
function makeFile(path: string, size: number): void {
  const lines: string[] = [];
  for (let i = 0, length = 0; length < 1024 * 1024; i++) {
    const line = `2026-11-23T10:${String(i % 60).padStart(2, '0')}:00Z INFO worker-${i % 17} processed order ${100000 + i} in ${i % 97} ms status=ok\n`;
    lines.push(line);
    length += line.length;
  }
  const block = Buffer.from(lines.join('')).subarray(0, 1024 * 1024);
  const fd = openSync(path, 'w');
  for (let written = 0; written < size; written += block.length) writeSync(fd, block, 0, Math.min(block.length, size - written));
  closeSync(fd);
}

interface Target {
  readonly port: number;
  /** logs in to sshd itself with the client key (direct, and through the bare relay's upstream) */
  readonly direct: boolean;
  /** the process whose CPU time is measured (relay, sidecar) */
  readonly pid?: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

function sshArgs(t: Target, sshd: Sshd): string[] {
  return ['-p', String(t.port), ...SSH_CLIENT_OPTIONS, '-c', CIPHER, ...(t.direct ? ['-i', sshd.clientKeyPath] : []), `${t.direct ? sshd.user : 'agent'}@127.0.0.1`];
}

function run(args: readonly string[], stdin: number | 'ignore', stdout: number | 'ignore'): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: [stdin, stdout, 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`ssh ${args.join(' ')} exited ${String(code)}: ${err}`));
      else resolve(code);
    });
  });
}

/** CPU seconds the whole machine has been busy (every core, user + system + interrupts), from /proc/stat. */
function machineBusySeconds(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / 100;
}

interface Transfer {
  readonly MBps: number;
  /** CPU the whole machine spent per byte (ssh, sshd, the proxy, the kernel) */
  readonly machineNsPerByte: number;
  /** CPU of the proxy process per byte (relay, sidecar) */
  readonly proxyNsPerByte?: number;
}

const perByte = (seconds: number): number => Math.round((seconds * 1e9 * 10) / SIZE) / 10;

async function transfer(t: Target, args: readonly string[], stdin: number | 'ignore', stdout: number | 'ignore'): Promise<Transfer> {
  const cpu0 = t.pid !== undefined ? cpuSeconds(t.pid) : 0;
  const busy0 = machineBusySeconds();
  const start = performance.now();
  await run(args, stdin, stdout);
  const MBps = Math.round(SIZE / 1e6 / ((performance.now() - start) / 1000));
  const machineNsPerByte = perByte(machineBusySeconds() - busy0);
  if (t.pid === undefined) return { MBps, machineNsPerByte };
  return { MBps, machineNsPerByte, proxyNsPerByte: perByte(cpuSeconds(t.pid) - cpu0) };
}

interface Throughput {
  readonly download: Transfer;
  readonly upload: Transfer;
}

async function throughput(t: Target, sshd: Sshd, file: string): Promise<Throughput> {
  const devnull = openSync('/dev/null', 'w');
  const download = await transfer(t, [...sshArgs(t, sshd), `cat ${file}`], 'ignore', devnull);
  const input = openSync(file, 'r');
  const upload = await transfer(t, [...sshArgs(t, sshd), 'cat > /dev/null'], input, 'ignore');
  closeSync(input);
  closeSync(devnull);
  return { download, upload };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Round trip of one keystroke line through a pty (`cat` in canonical mode echoes it). */
async function echo(t: Target, sshd: Sshd): Promise<{ p50: number; p99: number }> {
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', resolve).once('error', reject);
    c.connect({
      // TCP_NODELAY and one write per packet, as OpenSSH's client does (see sidecar/src/ssh/socket.ts)
      sock: coalesceWrites(connect({ host: '127.0.0.1', port: t.port, noDelay: true })),
      username: t.direct ? sshd.user : 'agent',
      ...(t.direct ? { privateKey: sshd.clientKey } : {}),
      algorithms: { cipher: [CIPHER] },
    });
  });
  const ch = await new Promise<ClientChannel>((resolve, reject) => {
    c.exec('cat', { pty: { term: 'dumb', cols: 80, rows: 24 } }, (err, s) => {
      if (err !== undefined) reject(err);
      else resolve(s);
    });
  });
  let waiting: (() => void) | undefined;
  let buf = '';
  ch.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    // the tty echoes "k\r\n", then cat writes "k\r\n": one round trip per echo line
    if (waiting !== undefined && buf.includes('\n')) {
      buf = buf.slice(buf.indexOf('\n') + 1);
      const w = waiting;
      waiting = undefined;
      w();
    }
  });
  const samples: number[] = [];
  for (let i = 0; i < ECHOES + 50; i++) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      waiting = resolve;
      ch.write('k\r');
    });
    const us = Number(process.hrtime.bigint() - start) / 1000;
    if (i >= 50) samples.push(us);
    // cat's own output line follows the echo: let it arrive before the next keystroke
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (buf.includes('\n')) {
          buf = buf.slice(buf.indexOf('\n') + 1);
          resolve();
        } else setImmediate(check);
      };
      check();
    });
  }
  ch.close();
  c.end();
  samples.sort((a, b) => a - b);
  return { p50: Math.round(percentile(samples, 50)), p99: Math.round(percentile(samples, 99)) };
}

async function setup(t: Target, sshd: Sshd): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SETUPS; i++) {
    const start = performance.now();
    await run([...sshArgs(t, sshd), 'true'], 'ignore', 'ignore');
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return Math.round(percentile(times, 50) * 10) / 10;
}

/** Pipes src into dst with backpressure. */
function pipe(src: Readable, dst: Writable): void {
  src.on('data', (d: Buffer) => {
    if (!dst.write(d)) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
}

interface RelayConfig {
  readonly upstreamPort: number;
  readonly user: string;
  readonly clientKeyPath: string;
  readonly hostKeyPath: string;
}

/**
 * The bare ssh2 relay (`--relay <config JSON>`): what the sidecar is built on (an ssh2 server for
 * the agent, an ssh2 client upstream, the same ciphers, TCP_NODELAY and coalesced writes on both legs) with nothing
 * else: exec and pty requests passed on, bytes piped both ways, the exit status relayed. Prints
 * its port when it listens.
 */
function runRelay(cfg: RelayConfig): void {
  // ssh2 passes no accept callback when the client wants no reply, whatever its types say
  const reply = (fn: (() => void) | undefined): void => {
    fn?.();
  };
  const server = new ssh2.Server({ hostKeys: [readFileSync(cfg.hostKeyPath)], algorithms: { cipher: [...CIPHERS] } }, (conn) => {
    (conn as Connection & { setNoDelay(on: boolean): void }).setNoDelay(true);
    const up = new ssh2.Client();
    const ready = new Promise<boolean>((resolve) => {
      up.once('ready', () => { resolve(true); });
      up.once('error', () => { resolve(false); });
    });
    up.connect({ sock: coalesceWrites(connect({ host: '127.0.0.1', port: cfg.upstreamPort, noDelay: true })), username: cfg.user, privateKey: readFileSync(cfg.clientKeyPath), algorithms: { cipher: [...CIPHERS] } });
    conn.on('authentication', (ctx) => { ctx.accept(); });
    conn.on('session', (accept) => {
      const session = accept();
      let pty: PseudoTtyOptions | undefined;
      session.on('pty', (ok, _no, info) => {
        pty = { term: info.term, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
        reply(ok);
      });
      session.on('exec', (ok, _no, info: { command: string }) => {
        const agent = ok();
        void ready.then((connected) => {
          if (!connected) {
            agent.exit(255);
            agent.end();
            return;
          }
          up.exec(info.command, pty !== undefined ? { pty } : {}, (err, upstream) => {
            if (err !== undefined) {
              agent.exit(255);
              agent.end();
              return;
            }
            let status: number | undefined;
            upstream.on('exit', (code: number | null) => { status = code ?? undefined; });
            pipe(upstream, agent);
            pipe(upstream.stderr, agent.stderr);
            pipe(agent, upstream);
            agent.once('end', () => upstream.end());
            upstream.once('close', () => {
              if (status !== undefined) agent.exit(status);
              agent.end();
            });
          });
        });
      });
    });
    conn.on('close', () => up.end());
    conn.on('error', () => undefined);
  });
  const listener = createServer({ noDelay: true }, (socket) => {
    server.injectSocket(coalesceWrites(socket));
  });
  // a normal exit, so that --cpu-prof writes its profile
  process.once('SIGTERM', () => process.exit(0));
  listener.listen(0, '127.0.0.1', () => {
    const addr = listener.address();
    console.log(`listening ${typeof addr === 'object' && addr !== null ? addr.port : 0}`);
  });
}

async function startRelay(sshd: Sshd, nodeArgs: readonly string[] = []): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const cfg: RelayConfig = { upstreamPort: sshd.port, user: sshd.user, clientKeyPath: sshd.clientKeyPath, hostKeyPath: join(sshd.dir, 'host_ed25519') };
  const child = spawn(process.execPath, [...nodeArgs, fileURLToPath(import.meta.url), '--relay', JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => { reject(new Error(`the relay exited with ${String(code)}`)); });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  return {
    port,
    pid: child.pid ?? 0,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The first `bytes` of the bench file as ssh2 delivers them: chunks of one packet. */
function chunksOf(file: string, bytes: number): Buffer[] {
  const fd = openSync(file, 'r');
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes; at += CHUNK) {
    const b = Buffer.allocUnsafe(Math.min(CHUNK, bytes - at));
    readSync(fd, b, 0, b.length, at);
    chunks.push(b);
  }
  closeSync(fd);
  return chunks;
}

/**
 * Best of 3 passes of fn over `bytes`, in bytes per nanosecond of this thread's CPU time (MB per
 * CPU-second): what the stage costs the sidecar's thread, without the waits for the disk.
 */
function rate(bytes: number, fn: () => void): number {
  let best = Infinity;
  for (let pass = 0; pass < 3; pass++) {
    const start = process.threadCpuUsage();
    fn();
    const used = process.threadCpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return Math.round(bytes / 1e6 / (best / 1000));
}

/**
 * Each stage of the sidecar's output path alone, on the bench file's bytes in packet-sized
 * chunks: the codec (bytes to text and back), the streaming masker with the bench policy, and the
 * asciicast writer (JSON event line, SHA-256, write(2)); in MB per CPU-second of one thread.
 */
function stages(file: string, dir: string): { codecMBps: number; maskerMBps: number; gatedMaskerMBps: number; castMBps: number } {
  const chunks = chunksOf(file, STAGE_BYTES);
  const texts = chunks.map((c) => c.toString('utf8'));
  const masker = compileMasker(MASK_RULES, new Uint8Array(32));
  const codecMBps = rate(STAGE_BYTES, () => {
    const dec = new OutputDecoder();
    for (const c of chunks) encodeOutput(dec.decode(c), dec.escaped);
  });
  const maskerMBps = rate(STAGE_BYTES, () => {
    const stream = masker.stream();
    for (const t of texts) stream.push(t);
    stream.end();
  });
  // the streaming masker with the gate of the bench's detectors (stream.ts textGate): what
  // masker.stream() costs once the masker hands its gate to createStreamMasker
  const gate = textGate({ detectors: MASK_RULES.flatMap((r) => r.match.detectors ?? []), literals: [] });
  const gatedMaskerMBps = rate(STAGE_BYTES, () => {
    const stream = createStreamMasker((t) => masker.maskText(t), '[REDACTED]', {}, undefined, gate);
    for (const t of texts) stream.push(t);
    stream.end();
  });
  let n = 0;
  const castMBps = rate(STAGE_BYTES, () => {
    const path = join(dir, `stage-${String(n++)}.cast`);
    const w = new AsciicastWriter(path, { width: 80, height: 24, timestamp: 0 });
    for (const t of texts) w.output(t);
    w.close();
    rmSync(path);
  });
  return { codecMBps, maskerMBps, gatedMaskerMBps, castMBps };
}

const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** The median transfer of several rounds (each figure's own median). */
function medianTransfer(xs: readonly Transfer[]): Transfer {
  const m = (f: (x: Transfer) => number | undefined): number => Math.round(median(xs.map((x) => f(x) ?? NaN)) * 10) / 10;
  const proxy = xs[0]?.proxyNsPerByte !== undefined ? { proxyNsPerByte: m((x) => x.proxyNsPerByte) } : {};
  return { MBps: Math.round(median(xs.map((x) => x.MBps))), machineNsPerByte: m((x) => x.machineNsPerByte), ...proxy };
}

function medianThroughput(xs: readonly Throughput[]): Throughput {
  return { download: medianTransfer(xs.map((x) => x.download)), upload: medianTransfer(xs.map((x) => x.upload)) };
}

interface Setup {
  readonly sshd: Sshd;
  readonly work: string;
  readonly file: string;
  readonly dir: string;
  readonly sidecar: Awaited<ReturnType<typeof startSidecar>>;
  readonly relay: Awaited<ReturnType<typeof startRelay>>;
}

async function start(profileDir?: string): Promise<Setup> {
  const sshd = await startSshd();
  const work = mkdtempSync(join(tmpdir(), 'airlock-bench-ssh-'));
  const file = join(work, 'data.log');
  makeFile(file, SIZE);
  const dir = manifestDir(manifests(sshd));
  const prof = profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const sidecar = await startSidecar({
    manifests: [dir],
    connection: 'bench',
    recordingsDir: join(work, 'recordings'),
    stateDir: join(work, 'state'),
    namespace: 'bench',
    ...(profileDir !== undefined ? { env: { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} ${prof.join(' ')}`.trim() } } : {}),
  });
  const relay = await startRelay(sshd, prof);
  return { sshd, work, file, dir, sidecar, relay };
}

async function stop(s: Setup): Promise<void> {
  await s.relay.stop();
  await s.sidecar.stop();
  await s.sshd.stop();
  rmSync(s.work, { recursive: true, force: true });
  rmSync(s.dir, { recursive: true, force: true });
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

/** Self time per function of a .cpuprofile, as lines of the top `n`. */
function profileSummary(path: string, n = 25): string[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id)?.callFrame;
    const key = f === undefined ? '?' : `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${String(f.lineNumber + 1)}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
}

/** `--profile <dir>`: one download through the relay and through the sidecar, both profiled. */
async function profile(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const s = await start(dir);
  try {
    const bare: Target = { port: s.relay.port, direct: true, pid: s.relay.pid };
    const via: Target = { port: s.sidecar.port, direct: false, pid: s.sidecar.pid };
    const devnull = openSync('/dev/null', 'w');
    const r = await transfer(bare, [...sshArgs(bare, s.sshd), `cat ${s.file}`], 'ignore', devnull);
    const v = await transfer(via, [...sshArgs(via, s.sshd), `cat ${s.file}`], 'ignore', devnull);
    closeSync(devnull);
    console.log(`download: relay ${r.MBps} MB/s (process ${String(r.proxyNsPerByte)} ns/B), sidecar ${v.MBps} MB/s (process ${String(v.proxyNsPerByte)} ns/B), ratio ${ratio(v.MBps, r.MBps)}`);
  } finally {
    await stop(s);
  }
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    console.log(`\n${join(dir, f)} (self time):`);
    for (const line of profileSummary(join(dir, f))) console.log(line);
  }
}

async function bench(): Promise<void> {
  const s = await start();
  const { sshd, file, work } = s;
  try {
    const direct: Target = { port: sshd.port, direct: true };
    const bare: Target = { port: s.relay.port, direct: true, pid: s.relay.pid };
    const via: Target = { port: s.sidecar.port, direct: false, pid: s.sidecar.pid };
    console.log(`SSH bench: ${(SIZE / GIB).toFixed(2)} GiB through cat, ${ROUNDS} interleaved rounds, ${ECHOES} echoes, ${SETUPS} setups; cipher ${CIPHER} on both legs; ${cpus().length} CPUs`);
    const rounds: { direct: Throughput; relay: Throughput; sidecar: Throughput }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const round = { direct: await throughput(direct, sshd, file), relay: await throughput(bare, sshd, file), sidecar: await throughput(via, sshd, file) };
      console.log(`  round ${String(i + 1)}: download direct ${round.direct.download.MBps} relay ${round.relay.download.MBps} sidecar ${round.sidecar.download.MBps} MB/s; upload direct ${round.direct.upload.MBps} relay ${round.relay.upload.MBps} sidecar ${round.sidecar.upload.MBps} MB/s`);
      rounds.push(round);
    }
    const tDirect = medianThroughput(rounds.map((r) => r.direct));
    const tRelay = medianThroughput(rounds.map((r) => r.relay));
    const tVia = medianThroughput(rounds.map((r) => r.sidecar));
    const downloadRatios = rounds.map((r) => ratio(r.sidecar.download.MBps, r.relay.download.MBps));
    const uploadRatios = rounds.map((r) => ratio(r.sidecar.upload.MBps, r.relay.upload.MBps));
    const eDirect = await echo(direct, sshd);
    const eRelay = await echo(bare, sshd);
    const eVia = await echo(via, sshd);
    const sDirect = await setup(direct, sshd);
    const sRelay = await setup(bare, sshd);
    const sVia = await setup(via, sshd);
    const st = stages(file, work);
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      openssh: spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim(),
      // the cipher of the client's leg; the relay and the sidecar use ssh2 with the same list (sidecar/src/ssh/algorithms.ts) on both legs and negotiate it upstream too
      cipher: CIPHER,
      proxyCiphers: [...CIPHERS],
      bytes: SIZE,
      rounds: ROUNDS,
      // the targets: against the bare ssh2 relay, medians of interleaved rounds
      download: { relayMBps: tRelay.download.MBps, sidecarMBps: tVia.download.MBps, ratio: median(downloadRatios), roundRatios: downloadRatios, directMBps: tDirect.download.MBps, directRatio: ratio(tVia.download.MBps, tDirect.download.MBps) },
      upload: { relayMBps: tRelay.upload.MBps, sidecarMBps: tVia.upload.MBps, ratio: median(uploadRatios), roundRatios: uploadRatios, directMBps: tDirect.upload.MBps, directRatio: ratio(tVia.upload.MBps, tDirect.upload.MBps) },
      echoMicros: { direct: eDirect, relay: eRelay, sidecar: eVia, addedP50: eVia.p50 - eRelay.p50, addedP99: eVia.p99 - eRelay.p99, addedP50OverDirect: eVia.p50 - eDirect.p50 },
      setupMillis: { direct: sDirect, relay: sRelay, sidecar: sVia, added: Math.round((sVia - sRelay) * 10) / 10 },
      targets: { downloadRatio: 0.6, addedEchoP50Micros: 50 },
      relay: {
        downloadRatio: ratio(tRelay.download.MBps, tDirect.download.MBps),
        uploadRatio: ratio(tRelay.upload.MBps, tDirect.upload.MBps),
      },
      // CPU per byte moved: of the whole machine (both cores: ssh, sshd, the proxy, the kernel)
      // and of the proxy process alone
      cpuNsPerByte: {
        machine: {
          direct: { download: tDirect.download.machineNsPerByte, upload: tDirect.upload.machineNsPerByte },
          relay: { download: tRelay.download.machineNsPerByte, upload: tRelay.upload.machineNsPerByte },
          sidecar: { download: tVia.download.machineNsPerByte, upload: tVia.upload.machineNsPerByte },
        },
        relayProcess: { download: tRelay.download.proxyNsPerByte, upload: tRelay.upload.proxyNsPerByte },
        sidecarProcess: { download: tVia.download.proxyNsPerByte, upload: tVia.upload.proxyNsPerByte },
      },
      stagesMBPerCpuSecond: { codec: st.codecMBps, masker: st.maskerMBps, maskerWithGate: st.gatedMaskerMBps, cast: st.castMBps },
    };
    const met = {
      download: result.download.ratio >= 0.6,
      echoP50: result.echoMicros.addedP50 <= 50,
    };
    const ok = (m: boolean): string => (m ? 'met' : 'MISSED');
    console.log(`download  relay ${tRelay.download.MBps} MB/s  sidecar ${tVia.download.MBps} MB/s  ratio ${result.download.ratio} (rounds ${downloadRatios.join(', ')}; target >= 0.6: ${ok(met.download)})  direct ${tDirect.download.MBps} MB/s`);
    console.log(`upload    relay ${tRelay.upload.MBps} MB/s  sidecar ${tVia.upload.MBps} MB/s  ratio ${result.upload.ratio} (rounds ${uploadRatios.join(', ')})  direct ${tDirect.upload.MBps} MB/s`);
    console.log(`echo      direct p50 ${eDirect.p50} µs p99 ${eDirect.p99} µs  relay p50 ${eRelay.p50} µs p99 ${eRelay.p99} µs  sidecar p50 ${eVia.p50} µs p99 ${eVia.p99} µs  added over the relay p50 ${result.echoMicros.addedP50} µs (<= 50: ${ok(met.echoP50)}) p99 ${result.echoMicros.addedP99} µs`);
    console.log(`setup     direct ${sDirect} ms  relay ${sRelay} ms  sidecar ${sVia} ms  added over the relay ${result.setupMillis.added} ms`);
    console.log('where the cost comes from:');
    const cpu = (x: Transfer): string => `${String(x.machineNsPerByte)} ns/B${x.proxyNsPerByte !== undefined ? ` (proxy process ${String(x.proxyNsPerByte)})` : ''}`;
    console.log(`  CPU of the machine per byte, download: direct ${cpu(tDirect.download)}, relay ${cpu(tRelay.download)}, sidecar ${cpu(tVia.download)}`);
    console.log(`  CPU of the machine per byte, upload:   direct ${cpu(tDirect.upload)}, relay ${cpu(tRelay.upload)}, sidecar ${cpu(tVia.upload)}`);
    const ns = (mbps: number): string => `${String(mbps)} MB/CPU-s (${(1000 / mbps).toFixed(1)} ns/B)`;
    console.log(`  output stages alone: codec ${ns(st.codecMBps)}, masker ${ns(st.maskerMBps)} (with the stream gate ${ns(st.gatedMaskerMBps)}), asciicast ${ns(st.castMBps)}`);
    writeFileSync(new URL('../../bench/ssh.json', import.meta.url), `${JSON.stringify({ ...result, met }, null, 2)}\n`);
    console.log('wrote bench/ssh.json');
  } finally {
    await stop(s);
  }
}

if (process.argv[2] === '--relay') runRelay(JSON.parse(process.argv[3] ?? '{}') as RelayConfig);
else if (process.argv[2] === '--profile') await profile(process.argv[3] ?? join(tmpdir(), 'airlock-ssh-prof'));
else await bench();
