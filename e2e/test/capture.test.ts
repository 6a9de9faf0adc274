/**
 * `airlock capture` for real: two network namespaces of the test's own (an "agent pod" and a
 * "target" side joined by a veth pair on 10.213.<n>.0/24 and fd00:a1:<n>::/64), the rules
 * installed in the agent namespace by the real command, and TCP clients run as other UIDs.
 * Proves: any UID but the sidecar's lands on the sidecar's listener; the sidecar's UID reaches
 * the real target; on a shared port each host goes to its own listener and an unknown address is
 * refused; IPv6 to a target port is refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIDECAR_UID } from '@airlock/api';
import { ROOT } from '../src/controlplane.ts';

const N = 100 + (process.pid % 150);
const AGENT_NS = `airlock-cap-agent-${process.pid}`;
const TARGET_NS = `airlock-cap-target-${process.pid}`;
const NET = `10.213.${N}`;
const TARGET = `${NET}.1`; // pg on 5432, "a" on 7000
const B_IP = `${NET}.3`; // "b.airlock.test" on 7000
const UNKNOWN = `${NET}.4`; // 7000, captured by no connection
const AGENT_IP = `${NET}.2`;
const V6_TARGET = `fd00:a1:${N.toString(16)}::1`;
const V6_AGENT = `fd00:a1:${N.toString(16)}::2`;
const AGENT_UID = 1000;
const NETNS_DIR = `/etc/netns/${AGENT_NS}`;
let createdNetnsRoot = false;

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (network namespaces, iptables)';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(cmd: string, args: readonly string[]): Promise<Run> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function ok(cmd: string, args: readonly string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** `airlock capture` as the CLI runs it; until the lead registers it in main.ts, the command module directly */
async function airlockCommand(): Promise<readonly string[]> {
  const main = await readFile(join(ROOT, 'cli', 'src', 'main.ts'), 'utf8');
  if (main.includes("'capture'")) return [join(ROOT, 'cli', 'bin', 'airlock'), 'capture'];
  const module = join(ROOT, 'cli', 'src', 'commands', 'capture.ts');
  const errors = join(ROOT, 'cli', 'src', 'errors.ts');
  const script = `const { captureCommand } = await import(${JSON.stringify(module)}); const { CliError } = await import(${JSON.stringify(errors)});
try { process.exitCode = await captureCommand(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr }); }
catch (e) { if (!(e instanceof CliError)) throw e; process.stderr.write('airlock capture: ' + e.message + '\\n'); process.exitCode = e.exitCode; }`;
  return [process.execPath, '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script, '--'];
}

const servers: ChildProcess[] = [];

/** a TCP server in a namespace that answers each connection with `<name> <local address>:<port>` */
async function serve(ns: string, name: string, addresses: readonly [string, number][]): Promise<void> {
  const script = `const net = require('node:net'); const list = JSON.parse(process.argv[1]); let n = 0;
for (const [host, port] of list) net.createServer((s) => s.end(process.argv[2] + ' ' + s.localAddress + ':' + s.localPort + '\\n')).listen(port, host, () => { if (++n === list.length) console.log('listening'); });`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, JSON.stringify(addresses), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(child);
  child.stdout.setEncoding('utf8');
  const [line] = (await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => [`exited ${String(child.exitCode)}`])])) as [string];
  assert.equal(line.trim(), 'listening', `${name} server in ${ns}`);
}

/** connect from the agent namespace as `uid` (from a fixed local address and port if given); the server's answer, or the error code */
async function connectAs(uid: number, host: string, port: number, from: { ns: string; local?: [string, number] } = { ns: AGENT_NS }): Promise<string> {
  const script = `const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 3000, ...(process.argv[3] ? { localAddress: process.argv[4], localPort: Number(process.argv[3]) } : {}) });
let out = ''; s.setEncoding('utf8').on('data', (c) => (out += c)); s.on('end', () => console.log(out.trim())); s.on('timeout', () => { console.log('TIMEOUT'); s.destroy(); }); s.on('error', (e) => console.log(e.code));`;
  const r = await run('ip', ['netns', 'exec', from.ns, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', script, host, String(port), ...(from.local === undefined ? [] : [String(from.local[1]), from.local[0]])]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('airlock capture in a network namespace', { skip }, () => {
  let airlock: readonly string[];
  let installed: Run;
  const redirects = ['--redirect', `pg=${TARGET}:5432:15432`, '--redirect', `a=${TARGET}:7000:17001`, '--redirect', 'b=b.airlock.test:7000:17002'];

  before(async () => {
    airlock = await airlockCommand();
    await ok('ip', ['netns', 'add', AGENT_NS]);
    await ok('ip', ['netns', 'add', TARGET_NS]);
    await ok('ip', ['-n', AGENT_NS, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vt', 'netns', TARGET_NS]);
    for (const [ns, dev, addrs] of [
      [AGENT_NS, 'va', [`${AGENT_IP}/24`]],
      [TARGET_NS, 'vt', [`${TARGET}/24`, `${B_IP}/24`, `${UNKNOWN}/24`]],
    ] as const) {
      for (const a of addrs) await ok('ip', ['-n', ns, 'addr', 'add', a, 'dev', dev]);
      await ok('ip', ['-n', ns, 'addr', 'add', `${ns === AGENT_NS ? V6_AGENT : V6_TARGET}/64`, 'dev', dev, 'nodad']);
      await ok('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      await ok('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts: the host name of connection b
    createdNetnsRoot = (await mkdir('/etc/netns', { recursive: true })) !== undefined;
    await mkdir(NETNS_DIR);
    await writeFile(join(NETNS_DIR, 'hosts'), `127.0.0.1 localhost\n${B_IP} b.airlock.test\n`);
    await serve(TARGET_NS, 'target', [[TARGET, 5432], [TARGET, 7000], [B_IP, 7000], [UNKNOWN, 7000], [V6_TARGET, 5432]]);
    await serve(AGENT_NS, 'sidecar', [['127.0.0.1', 15432], ['127.0.0.1', 17001], ['127.0.0.1', 17002]]);
    await serve(AGENT_NS, 'agent-server', [[AGENT_IP, 6000]]);
    // before capture: the target answers everyone
    assert.equal(await connectAs(AGENT_UID, TARGET, 5432), `target ${TARGET}:5432`);
    installed = await run('ip', ['netns', 'exec', AGENT_NS, ...airlock, '--sidecar-uid', String(SIDECAR_UID), ...redirects]);
  });

  after(async () => {
    for (const s of servers) s.kill('SIGTERM');
    await Promise.all(servers.map(async (s) => (s.exitCode === null && s.signalCode === null ? once(s, 'exit') : undefined)));
    await run('ip', ['netns', 'del', AGENT_NS]);
    await run('ip', ['netns', 'del', TARGET_NS]);
    await rm(NETNS_DIR, { recursive: true, force: true });
    if (createdNetnsRoot) await rmdir('/etc/netns').catch(() => undefined); // only if empty
  });

  test('installs the rules and says what it installed', async () => {
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, new RegExp(`resolved b\\.airlock\\.test: ${B_IP.replaceAll('.', '\\.')}`));
    assert.match(installed.stdout, /installed \(iptables-restore --noflush\)/);
    assert.match(installed.stdout, /installed \(ip6tables-restore --noflush\)/);
    const nat = await ok('ip', ['netns', 'exec', AGENT_NS, 'iptables-save', '-t', 'nat']);
    assert.match(nat, new RegExp(`-A AIRLOCK-OUTPUT -d ${B_IP}/32 -p tcp -m tcp --dport 7000 .*-j REDIRECT --to-ports 17002`));
  });

  test('an agent UID connecting to the target lands on the sidecar listener', async () => {
    assert.equal(await connectAs(AGENT_UID, TARGET, 5432), 'sidecar 127.0.0.1:15432');
    assert.equal(await connectAs(0, TARGET, 5432), 'sidecar 127.0.0.1:15432', 'root is captured too');
    // a port of one connection is captured whatever the address (a Service IP, a pod IP)
    assert.equal(await connectAs(AGENT_UID, UNKNOWN, 5432), 'sidecar 127.0.0.1:15432');
  });

  test("the sidecar's UID reaches the real target", async () => {
    assert.equal(await connectAs(SIDECAR_UID, TARGET, 5432), `target ${TARGET}:5432`);
    assert.equal(await connectAs(SIDECAR_UID, UNKNOWN, 7000), `target ${UNKNOWN}:7000`);
  });

  test('a shared port goes to each connection by address; an unknown address is refused', async () => {
    assert.equal(await connectAs(AGENT_UID, TARGET, 7000), 'sidecar 127.0.0.1:17001');
    assert.equal(await connectAs(AGENT_UID, B_IP, 7000), 'sidecar 127.0.0.1:17002');
    assert.equal(await connectAs(AGENT_UID, UNKNOWN, 7000), 'ECONNREFUSED');
  });

  test('IPv6 to a target port is refused except for the sidecar', async () => {
    assert.equal(await connectAs(AGENT_UID, V6_TARGET, 5432), 'ECONNREFUSED');
    assert.equal(await connectAs(SIDECAR_UID, V6_TARGET, 5432), `target ${V6_TARGET}:5432`);
  });

  test("connections into the pod are answered, even from a client on a target's port", async () => {
    assert.equal(await connectAs(0, AGENT_IP, 6000, { ns: TARGET_NS, local: [B_IP, 5432] }), `agent-server ${AGENT_IP}:6000`);
  });

  test('bad arguments exit 2; without NET_ADMIN the rules are refused with exit 1', async () => {
    const bad = await run('ip', ['netns', 'exec', AGENT_NS, ...airlock, '--sidecar-uid', String(SIDECAR_UID), '--redirect', 'pg=10.0.0.1:5432']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--redirect pg=10\.0\.0\.1:5432: expected <connection>=<host>:<port>:<listenPort>/);
    const unprivileged = await run('ip', ['netns', 'exec', AGENT_NS, 'setpriv', `--reuid=${AGENT_UID}`, `--regid=${AGENT_UID}`, '--clear-groups', ...airlock, '--sidecar-uid', String(SIDECAR_UID), ...redirects.slice(0, 2)]);
    assert.equal(unprivileged.code, 1, unprivileged.stderr);
    assert.match(unprivileged.stderr, /iptables-restore refused the IPv4 rules/);
  });
});
