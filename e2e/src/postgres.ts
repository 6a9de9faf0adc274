/**
 * A real PostgreSQL (Debian's package) for tests: initdb in a private directory, started on a
 * free loopback port as the `postgres` system user when run as root, stopped and removed after.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Postgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** superuser created by initdb */
  readonly user: string;
  readonly password: string;
  readonly database: 'postgres';
  readonly binDir: string;
  /** runs psql against the server as the superuser; never throws on a non-zero exit */
  psql(sql: string, options?: { database?: string }): { code: number; stdout: string; stderr: string };
  /** with `ssl`: the CA that signed the server certificate (PEM) */
  readonly caCert: string | undefined;
  /** stops the server (fast shutdown: sessions get FATAL 57P01) and starts it again on the same port */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  } catch {
    versions = [];
  }
  const v = versions[0];
  if (v === undefined) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (make deps installs them)');
  return join(base, v, 'bin');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

function systemUser(name: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error(`running as root needs the "${name}" system user (Debian's postgresql package creates it)`);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** A CA and a server certificate for 127.0.0.1 / localhost, made with openssl. */
function makeCertificates(dir: string, owner: { uid: number; gid: number } | undefined): { ca: string; cert: string; key: string } {
  const run = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=airlock-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt']);
  chmodSync(join(dir, 'server.key'), 0o600);
  if (owner !== undefined) {
    chownSync(join(dir, 'server.key'), owner.uid, owner.gid);
    chownSync(join(dir, 'server.crt'), owner.uid, owner.gid);
  }
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

export async function startPostgres(options: { authMethod?: 'scram-sha-256' | 'md5' | 'password'; ssl?: boolean } = {}): Promise<Postgres> {
  const binDir = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pg-'));
  const owner = systemUser('postgres');
  const ids = owner === undefined ? {} : { uid: owner.uid, gid: owner.gid };
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, 0o700);
  const user = 'airlock_admin';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`);
  if (owner !== undefined) chownSync(pwfile, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const auth = options.authMethod ?? 'scram-sha-256';
  const init = spawnSync(join(binDir, 'initdb'), ['-D', data, '-U', user, `--pwfile=${pwfile}`, `--auth-host=${auth}`, '--auth-local=trust', '-E', 'UTF8', '--no-sync'], {
    ...ids,
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const certs = options.ssl === true ? makeCertificates(dir, owner) : undefined;
  const sslArgs = certs === undefined ? [] : ['-c', 'ssl=on', '-c', `ssl_cert_file=${certs.cert}`, '-c', `ssl_key_file=${certs.key}`];
  let log = '';
  const launch = (): ChildProcess => {
    const child = spawn(
      join(binDir, 'postgres'),
      ['-D', data, '-c', 'listen_addresses=127.0.0.1', '-c', `port=${port}`, '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', `password_encryption=${auth === 'md5' ? 'md5' : 'scram-sha-256'}`, ...sslArgs],
      { ...ids, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
    );
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
    });
    return child;
  };
  let server = launch();
  const psql = (sql: string, opts: { database?: string } = {}) => {
    const r = spawnSync(join(binDir, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-qAt', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', opts.database ?? 'postgres', '-c', sql], {
      encoding: 'utf8',
      env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
    });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  const waitReady = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`postgres exited: ${log}`);
      const ready = spawnSync(join(binDir, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '1'], { encoding: 'utf8' });
      if (ready.status === 0) break;
      if (Date.now() > deadline) {
        server.kill('SIGKILL');
        throw new Error(`postgres did not accept connections in 30s: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const shutdown = async (): Promise<void> => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGINT'); // fast shutdown
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => { r(false); }, 10_000))]);
      if (!done) server.kill('SIGKILL');
    }
  };
  await waitReady();
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    database: 'postgres',
    binDir,
    psql,
    caCert: certs === undefined ? undefined : readFileSync(certs.ca, 'utf8'),
    async restart() {
      await shutdown();
      server = launch();
      await waitReady();
    },
    async stop() {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
