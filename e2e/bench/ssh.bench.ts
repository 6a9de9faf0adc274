/**
 * `make bench-ssh`: OpenSSH directly against a real sshd vs the same through `airlock sidecar`,
 * in one run: 1 GiB through `cat` (download: remote `cat file`; upload: local file into remote
 * `cat > /dev/null`), keystroke echo latency in a pty, session setup time. Prints the figures
 * and ratios and writes bench/ssh.json. The sidecar runs with a masking policy (credit-card,
 * email and key detectors) and records every session, as in production.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type ClientChannel } from 'ssh2';
import { manifestDir, startSidecar } from '../src/sidecar.ts';
import { SSH_CLIENT_OPTIONS, startSshd, type Sshd } from '../src/sshd.ts';

const GIB = 1024 * 1024 * 1024;
const SIZE = Number(process.env['AIRLOCK_BENCH_SSH_BYTES'] ?? GIB);
const CIPHER = 'aes128-gcm@openssh.com';
const ECHOES = 2000;
const SETUPS = 20;

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
      spec: { connectionSelector: { matchLabels: { env: 'bench' } }, rules: [{ name: 'secrets', match: { detectors: ['credit_card', 'email', 'aws_access_key', 'private_key'] }, action: { type: 'redact' } }] },
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
  readonly direct: boolean;
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

async function throughput(t: Target, sshd: Sshd, file: string): Promise<{ downloadMBps: number; uploadMBps: number }> {
  const devnull = openSync('/dev/null', 'w');
  let start = performance.now();
  await run([...sshArgs(t, sshd), `cat ${file}`], 'ignore', devnull);
  const down = (SIZE / 1e6) / ((performance.now() - start) / 1000);
  const input = openSync(file, 'r');
  start = performance.now();
  await run([...sshArgs(t, sshd), 'cat > /dev/null'], input, 'ignore');
  const up = (SIZE / 1e6) / ((performance.now() - start) / 1000);
  closeSync(input);
  closeSync(devnull);
  return { downloadMBps: Math.round(down), uploadMBps: Math.round(up) };
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
      host: '127.0.0.1',
      port: t.port,
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

const sshd = await startSshd();
const work = mkdtempSync(join(tmpdir(), 'airlock-bench-ssh-'));
const recordings = join(work, 'recordings');
const file = join(work, 'data.log');
makeFile(file, SIZE);
const dir = manifestDir(manifests(sshd));
const sidecar = await startSidecar({ manifests: [dir], connection: 'bench', recordingsDir: recordings, stateDir: join(work, 'state'), namespace: 'bench' });
try {
  const direct: Target = { port: sshd.port, direct: true };
  const via: Target = { port: sidecar.port, direct: false };
  console.log(`SSH bench: ${(SIZE / GIB).toFixed(2)} GiB through cat, ${ECHOES} echoes, ${SETUPS} setups; cipher ${CIPHER}; ${cpus().length} CPUs`);
  const tDirect = await throughput(direct, sshd, file);
  const tVia = await throughput(via, sshd, file);
  const eDirect = await echo(direct, sshd);
  const eVia = await echo(via, sshd);
  const sDirect = await setup(direct, sshd);
  const sVia = await setup(via, sshd);
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    openssh: spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim(),
    cipher: CIPHER,
    bytes: SIZE,
    download: { directMBps: tDirect.downloadMBps, sidecarMBps: tVia.downloadMBps, ratio: Math.round((tVia.downloadMBps / tDirect.downloadMBps) * 100) / 100 },
    upload: { directMBps: tDirect.uploadMBps, sidecarMBps: tVia.uploadMBps, ratio: Math.round((tVia.uploadMBps / tDirect.uploadMBps) * 100) / 100 },
    echoMicros: { direct: eDirect, sidecar: eVia, addedP50: eVia.p50 - eDirect.p50, addedP99: eVia.p99 - eDirect.p99 },
    setupMillis: { direct: sDirect, sidecar: sVia, added: Math.round((sVia - sDirect) * 10) / 10 },
    targets: { throughputRatio: 0.7, addedEchoP50Micros: 100, addedEchoP99Micros: 1000, addedSetupMillis: 50 },
  };
  const met = {
    download: result.download.ratio >= 0.7,
    upload: result.upload.ratio >= 0.7,
    echoP50: result.echoMicros.addedP50 <= 100,
    echoP99: result.echoMicros.addedP99 <= 1000,
    setup: result.setupMillis.added <= 50,
  };
  console.log(`download  direct ${tDirect.downloadMBps} MB/s  sidecar ${tVia.downloadMBps} MB/s  ratio ${result.download.ratio}  (target >= 0.7: ${met.download ? 'met' : 'MISSED'})`);
  console.log(`upload    direct ${tDirect.uploadMBps} MB/s  sidecar ${tVia.uploadMBps} MB/s  ratio ${result.upload.ratio}  (target >= 0.7: ${met.upload ? 'met' : 'MISSED'})`);
  console.log(`echo      direct p50 ${eDirect.p50} µs p99 ${eDirect.p99} µs  sidecar p50 ${eVia.p50} µs p99 ${eVia.p99} µs  added p50 ${result.echoMicros.addedP50} µs (<= 100: ${met.echoP50 ? 'met' : 'MISSED'}) p99 ${result.echoMicros.addedP99} µs (<= 1000: ${met.echoP99 ? 'met' : 'MISSED'})`);
  console.log(`setup     direct ${sDirect} ms  sidecar ${sVia} ms  added ${result.setupMillis.added} ms  (<= 50: ${met.setup ? 'met' : 'MISSED'})`);
  writeFileSync(new URL('../../bench/ssh.json', import.meta.url), `${JSON.stringify({ ...result, met }, null, 2)}\n`);
  console.log('wrote bench/ssh.json');
} finally {
  await sidecar.stop();
  await sshd.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
