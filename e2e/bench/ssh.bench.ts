/**
 * `make bench-ssh`: OpenSSH directly against a real sshd vs the same through `airlock sidecar`,
 * in one run: 1 GiB through `cat` (download: remote `cat file`; upload: local file into remote
 * `cat > /dev/null`), keystroke echo latency in a pty, session setup time. Prints the figures
 * and ratios and writes bench/ssh.json. The sidecar runs with a masking policy (credit-card,
 * email and key detectors) and records every session, as in production.
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
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import ssh2, { type ClientChannel, type Connection, type PseudoTtyOptions } from 'ssh2';
import { compileMasker, type MaskRuleSpec } from '@airlock/policy';
import { AsciicastWriter } from '@airlock/sidecar';
import { OutputDecoder, encodeOutput } from '../../sidecar/src/ssh/codec.ts';
import { CIPHERS } from '../../sidecar/src/ssh/algorithms.ts';
import { coalesceWrites } from '../../sidecar/src/ssh/socket.ts';
import { manifestDir, startSidecar } from '../src/sidecar.ts';
import { SSH_CLIENT_OPTIONS, startSshd, type Sshd } from '../src/sshd.ts';

const GIB = 1024 * 1024 * 1024;
const SIZE = Number(process.env['AIRLOCK_BENCH_SSH_BYTES'] ?? GIB);
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
  for (let i = 0; lines.join('').length < 1024 * 1024; i++) lines.push(`2026-11-23T10:${String(i % 60).padStart(2, '0')}:00Z INFO worker-${i % 17} processed order ${100000 + i} in ${i % 97} ms status=ok\n`);
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
  listener.listen(0, '127.0.0.1', () => {
    const addr = listener.address();
    console.log(`listening ${typeof addr === 'object' && addr !== null ? addr.port : 0}`);
  });
}

async function startRelay(sshd: Sshd): Promise<{ port: number; pid: number; stop(): void }> {
  const cfg: RelayConfig = { upstreamPort: sshd.port, user: sshd.user, clientKeyPath: sshd.clientKeyPath, hostKeyPath: join(sshd.dir, 'host_ed25519') };
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--relay', JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => { reject(new Error(`the relay exited with ${String(code)}`)); });
  });
  return { port, pid: child.pid ?? 0, stop: () => child.kill() };
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
function stages(file: string, dir: string): { codecMBps: number; maskerMBps: number; castMBps: number } {
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
  let n = 0;
  const castMBps = rate(STAGE_BYTES, () => {
    const path = join(dir, `stage-${String(n++)}.cast`);
    const w = new AsciicastWriter(path, { width: 80, height: 24, timestamp: 0 });
    for (const t of texts) w.output(t);
    w.close();
    rmSync(path);
  });
  return { codecMBps, maskerMBps, castMBps };
}

const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;

async function bench(): Promise<void> {
  const sshd = await startSshd();
  const work = mkdtempSync(join(tmpdir(), 'airlock-bench-ssh-'));
  const recordings = join(work, 'recordings');
  const file = join(work, 'data.log');
  makeFile(file, SIZE);
  const dir = manifestDir(manifests(sshd));
  const sidecar = await startSidecar({ manifests: [dir], connection: 'bench', recordingsDir: recordings, stateDir: join(work, 'state'), namespace: 'bench' });
  const relay = await startRelay(sshd);
  try {
    const direct: Target = { port: sshd.port, direct: true };
    const bare: Target = { port: relay.port, direct: true, pid: relay.pid };
    const via: Target = { port: sidecar.port, direct: false, pid: sidecar.pid };
    console.log(`SSH bench: ${(SIZE / GIB).toFixed(2)} GiB through cat, ${ECHOES} echoes, ${SETUPS} setups; cipher ${CIPHER}; ${cpus().length} CPUs`);
    const tDirect = await throughput(direct, sshd, file);
    const tRelay = await throughput(bare, sshd, file);
    const tVia = await throughput(via, sshd, file);
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
      cipher: CIPHER,
      bytes: SIZE,
      download: { directMBps: tDirect.download.MBps, sidecarMBps: tVia.download.MBps, ratio: ratio(tVia.download.MBps, tDirect.download.MBps) },
      upload: { directMBps: tDirect.upload.MBps, sidecarMBps: tVia.upload.MBps, ratio: ratio(tVia.upload.MBps, tDirect.upload.MBps) },
      echoMicros: { direct: eDirect, sidecar: eVia, addedP50: eVia.p50 - eDirect.p50, addedP99: eVia.p99 - eDirect.p99 },
      setupMillis: { direct: sDirect, sidecar: sVia, added: Math.round((sVia - sDirect) * 10) / 10 },
      targets: { throughputRatio: 0.7, addedEchoP50Micros: 100, addedEchoP99Micros: 1000, addedSetupMillis: 50 },
      // where the cost comes from (same run)
      relay: {
        downloadMBps: tRelay.download.MBps,
        uploadMBps: tRelay.upload.MBps,
        downloadRatio: ratio(tRelay.download.MBps, tDirect.download.MBps),
        uploadRatio: ratio(tRelay.upload.MBps, tDirect.upload.MBps),
        echoMicros: { ...eRelay, addedP50: eRelay.p50 - eDirect.p50, addedP99: eRelay.p99 - eDirect.p99 },
        setupMillis: sRelay,
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
      stagesMBPerCpuSecond: { codec: st.codecMBps, masker: st.maskerMBps, cast: st.castMBps },
    };
    const met = {
      download: result.download.ratio >= 0.7,
      upload: result.upload.ratio >= 0.7,
      echoP50: result.echoMicros.addedP50 <= 100,
      echoP99: result.echoMicros.addedP99 <= 1000,
      setup: result.setupMillis.added <= 50,
    };
    const ok = (m: boolean): string => (m ? 'met' : 'MISSED');
    console.log(`download  direct ${tDirect.download.MBps} MB/s  sidecar ${tVia.download.MBps} MB/s  ratio ${result.download.ratio}  (target >= 0.7: ${ok(met.download)})`);
    console.log(`upload    direct ${tDirect.upload.MBps} MB/s  sidecar ${tVia.upload.MBps} MB/s  ratio ${result.upload.ratio}  (target >= 0.7: ${ok(met.upload)})`);
    console.log(`echo      direct p50 ${eDirect.p50} µs p99 ${eDirect.p99} µs  sidecar p50 ${eVia.p50} µs p99 ${eVia.p99} µs  added p50 ${result.echoMicros.addedP50} µs (<= 100: ${ok(met.echoP50)}) p99 ${result.echoMicros.addedP99} µs (<= 1000: ${ok(met.echoP99)})`);
    console.log(`setup     direct ${sDirect} ms  sidecar ${sVia} ms  added ${result.setupMillis.added} ms  (<= 50: ${ok(met.setup)})`);
    console.log('where the cost comes from:');
    console.log(`  bare ssh2 relay: download ${tRelay.download.MBps} MB/s (${result.relay.downloadRatio} of direct), upload ${tRelay.upload.MBps} MB/s (${result.relay.uploadRatio}); echo added p50 ${result.relay.echoMicros.addedP50} µs p99 ${result.relay.echoMicros.addedP99} µs; setup ${sRelay} ms`);
    const cpu = (x: Transfer): string => `${String(x.machineNsPerByte)} ns/B${x.proxyNsPerByte !== undefined ? ` (proxy process ${String(x.proxyNsPerByte)})` : ''}`;
    console.log(`  CPU of the machine per byte, download: direct ${cpu(tDirect.download)}, relay ${cpu(tRelay.download)}, sidecar ${cpu(tVia.download)}`);
    console.log(`  CPU of the machine per byte, upload:   direct ${cpu(tDirect.upload)}, relay ${cpu(tRelay.upload)}, sidecar ${cpu(tVia.upload)}`);
    const needed = Math.round(((cpus().length * 1e9) / (0.7 * tDirect.download.MBps * 1e6)) * 10) / 10;
    console.log(`  70% of direct download needs <= ${String(needed)} ns/B of machine CPU (${String(cpus().length)} cores at ${String(Math.round(0.7 * tDirect.download.MBps))} MB/s), whatever runs in parallel`);
    const ns = (mbps: number): string => `${String(mbps)} MB/CPU-s (${(1000 / mbps).toFixed(1)} ns/B)`;
    console.log(`  output stages alone: codec ${ns(st.codecMBps)}, masker ${ns(st.maskerMBps)}, asciicast ${ns(st.castMBps)}`);
    writeFileSync(new URL('../../bench/ssh.json', import.meta.url), `${JSON.stringify({ ...result, met }, null, 2)}\n`);
    console.log('wrote bench/ssh.json');
  } finally {
    relay.stop();
    await sidecar.stop();
    await sshd.stop();
    rmSync(work, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--relay') runRelay(JSON.parse(process.argv[3] ?? '{}') as RelayConfig);
else await bench();
