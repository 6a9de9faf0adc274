/**
 * A real OpenSSH sshd (Debian's package) for tests and benchmarks: its own host key, config
 * and authorized client key in a private directory, listening on a free 127.0.0.1 port in
 * the foreground (-D), stopped and removed afterwards. It never touches the system sshd's
 * configuration or keys. Logs in as the current user (root in CI, allowed by this config
 * with keys only).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './postgres.ts';

export interface Sshd {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly dir: string;
  /** the client private key (OpenSSH format) that sshd accepts */
  readonly clientKey: string;
  readonly clientKeyPath: string;
  /** `SHA256:...` of the host key, as `ssh-keygen -lf` prints it */
  readonly hostKeyFingerprint: string;
  /** sshd's log so far */
  log(): string;
  stop(): Promise<void>;
}

function keygen(path: string, comment: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

export function fingerprintOf(pubKeyPath: string): string {
  const r = spawnSync('ssh-keygen', ['-lf', pubKeyPath], { encoding: 'utf8' });
  const m = /SHA256:[A-Za-z0-9+/]+/.exec(r.stdout);
  if (r.status !== 0 || m === null) throw new Error(`ssh-keygen -lf ${pubKeyPath} failed: ${r.stderr}`);
  return m[0];
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('data', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1000).unref();
  });
}

export interface SshdOptions {
  /** extra sshd_config lines */
  readonly config?: readonly string[];
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-sshd-'));
  chmodSync(dir, 0o700);
  const hostKey = join(dir, 'host_ed25519');
  const clientKeyPath = join(dir, 'client_ed25519');
  keygen(hostKey, 'airlock-test-host');
  keygen(clientKeyPath, 'airlock-test-client');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKeyPath}.pub`));
  chmodSync(join(dir, 'authorized_keys'), 0o600);
  // sshd's privilege separation directory (Debian creates it at boot; a container may lack it)
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const user = userInfo().username;
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'UsePAM no',
    'StrictModes no',
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    'PrintLastLog no',
    'MaxSessions 100',
    'MaxStartups 100:30:200',
    'LogLevel VERBOSE',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    ...(options.config ?? []),
  ];
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, `${config.join('\n')}\n`);
  const check = spawnSync('/usr/sbin/sshd', ['-t', '-f', configPath], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`sshd -t: ${check.stderr}`);
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sshd did not listen in 15s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    dir,
    clientKey: readFileSync(clientKeyPath, 'utf8'),
    clientKeyPath,
    hostKeyFingerprint: fingerprintOf(`${hostKey}.pub`),
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => { r(false); }, 5000))]);
        if (!done) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SshResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** OpenSSH's client options for a loopback sidecar: its host key is generated at start. */
export const SSH_CLIENT_OPTIONS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes'];

/** Runs the OpenSSH client (`ssh -p port ... agent@host args`), optionally feeding stdin. */
export function sshClient(port: number, args: readonly string[], options: { input?: string | Buffer; host?: string; user?: string; timeoutMs?: number } = {}): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', ['-p', String(port), ...SSH_CLIENT_OPTIONS, `${options.user ?? 'agent'}@${options.host ?? '127.0.0.1'}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ssh ${args.join(' ')} did not finish in time; stderr: ${Buffer.concat(err).toString()}`));
    }, options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => undefined);
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
