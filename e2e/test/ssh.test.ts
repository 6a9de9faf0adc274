/**
 * The SSH sidecar end to end: a real OpenSSH sshd (e2e/src/sshd.ts), the real `airlock sidecar`
 * (local mode, as a child process), and the OpenSSH client and an ssh2 client as agents.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ssh2, { type ClientChannel, type SFTPWrapper } from 'ssh2';
import { recordingText } from '@airlock/api';
import { freePort } from '../src/postgres.ts';
import { AIRLOCK_BIN, manifestDir, startSidecar, type SidecarProcess } from '../src/sidecar.ts';
import { SSH_CLIENT_OPTIONS, sshClient, startSshd, type Sshd } from '../src/sshd.ts';

const CARD = '4111111111111111';

function connectionManifests(sshd: Sshd, name: string, ssh: Record<string, unknown>): Record<string, string> {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-credentials`, namespace: 'agents' }, stringData: { username: sshd.user, privateKey: sshd.clientKey } };
  const conn = {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'AgentConnection',
    metadata: { name, namespace: 'agents', labels: { env: 'test' } },
    spec: { protocol: 'ssh', target: { host: sshd.host, port: sshd.port }, credentialsSecretRef: { name: `${name}-credentials` }, ssh, agents: { serviceAccounts: ['ops-bot'] }, defaultAction: 'Block' },
  };
  const masking = {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'MaskingPolicy',
    metadata: { name: 'cards', namespace: 'agents' },
    spec: { connectionSelector: { matchLabels: { env: 'test' } }, rules: [{ name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'redact' } }] },
  };
  const rules = {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRule',
    metadata: { name: 'ops', namespace: 'agents' },
    spec: {
      connectionSelector: { matchLabels: { env: 'test' } },
      rules: [
        { name: 'no-rm', match: { ssh: { commands: ['rm -rf *', 'rm -fr *', 'rm -r *'] } }, action: 'Block', message: 'recursive rm is never run by agents' },
        {
          name: 'tools',
          match: { ssh: { commands: ['echo *', 'printf *', 'exit', 'cat', 'cat *', 'ls', 'ls *', 'sh -c *', 'sleep *', 'true', 'false', 'exit *', 'head *', 'wc *', 'kill *', 'whoami', 'seq *', 'stty *', 'sha256sum *'] } },
          action: 'Allow',
        },
        { name: 'touch-needs-review', match: { ssh: { commands: ['touch *'] } }, action: 'RequireApproval', approval: { approvers: { users: ['alice'] }, required: 1, timeout: '60s' } },
      ],
    },
  };
  return { [`${name}.yaml`]: [secret, conn, masking, rules].map((m) => JSON.stringify(m)).join('\n---\n') };
}

let sshd: Sshd;
let sidecar: SidecarProcess;
let recordings: string;
let stateDir: string;
let manifests: string;

before(async () => {
  sshd = await startSshd();
  recordings = mkdtempSync(join(tmpdir(), 'airlock-ssh-rec-'));
  stateDir = mkdtempSync(join(tmpdir(), 'airlock-ssh-state-'));
  manifests = manifestDir(connectionManifests(sshd, 'box', { hostKeyFingerprints: [sshd.hostKeyFingerprint], allowShell: true, allowSftp: true, allowPortForwarding: false }));
  sidecar = await startSidecar({ manifests: [manifests], connection: 'box', recordingsDir: recordings, stateDir });
});

after(async () => {
  await (sidecar as SidecarProcess | undefined)?.stop();
  await (sshd as Sshd | undefined)?.stop();
  rmSync(recordings, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(manifests, { recursive: true, force: true });
});

/** The event logs of connection `box`, oldest first. */
function logs(dir = recordings, connection = 'box'): string[] {
  const d = join(dir, connection);
  if (!existsSync(d)) return [];
  // names sort by second only: order by the session_start record's time
  const started = (p: string): string => {
    const first = readFileSync(p, 'utf8').split('\n')[0] ?? '';
    return /"time":"([^"]+)"/.exec(first)?.[1] ?? '';
  };
  return readdirSync(d)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => join(d, f))
    .map((p) => [started(p), p] as const)
    .sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]))
    .map(([, p]) => p);
}

/** The records so far (a recording still open ends with the zero bytes of its reservation). */
function records(path: string): Record<string, unknown>[] {
  return recordingText(readFileSync(path, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Waits until the newest recording has its session_end (sessions close asynchronously). */
async function lastRecording(dir = recordings, connection = 'box'): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const path = logs(dir, connection).at(-1);
    if (path !== undefined && records(path).at(-1)?.['type'] === 'session_end') return path;
    if (Date.now() > deadline) throw new Error(`no closed recording in ${dir}/${connection}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function airlock(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(AIRLOCK_BIN, args, { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('allowed exec: stdout, stderr and the exit status are relayed', async () => {
  const r = await sshClient(sidecar.port, ['printf "out\\n"; printf "err\\n" >&2; exit 7']);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.code, 7);
  const rec = records(await lastRecording());
  const cmd = rec.find((x) => x['type'] === 'command');
  assert.equal(cmd?.['decision'], 'Allow');
  assert.equal(rec.find((x) => x['type'] === 'exit')?.['status'], 7);
});

test('blocked exec: message on stderr, exit status 126, nothing runs upstream', async () => {
  const marker = join(sshd.dir, 'must-survive');
  writeFileSync(marker, 'x');
  for (const cmd of [`rm -rf ${marker}`, `/bin/rm -rf ${marker}`, `sh -c 'rm -rf ${marker}'`, `'r''m' -rf ${marker}`, 'sh -c \'rm -rf *\'', "'r''m' -rf /"]) {
    const r = await sshClient(sidecar.port, [cmd]);
    assert.equal(r.code, 126, `${cmd}: ${r.stderr}`);
    assert.match(r.stderr, /airlock: recursive rm is never run by agents/, cmd);
    assert.equal(r.stdout, '');
    assert.ok(existsSync(marker), `${cmd} ran`);
    const rec = records(await lastRecording());
    const c = rec.find((x) => x['type'] === 'command');
    assert.equal(c?.['decision'], 'Block', cmd);
    assert.deepEqual(c['rules'], ['ops/no-rm']);
  }
  // and an unlisted program falls to defaultAction Block
  const r = await sshClient(sidecar.port, ['id']);
  assert.equal(r.code, 126);
  assert.match(r.stderr, /defaultAction/);
});

async function pendingApproval(): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = airlock(['approvals', 'list', '-o', 'json', '--state-dir', stateDir]);
    const list = JSON.parse(r.stdout || '[]') as { name: string; status: { phase: string } }[];
    const p = list.find((x) => x.status.phase === 'Pending');
    if (p !== undefined) return p.name;
    if (Date.now() > deadline) throw new Error(`no pending approval: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

test('approval: held with a message on stderr, runs when approved', async () => {
  const target = join(sshd.dir, 'approved-file');
  const run = sshClient(sidecar.port, [`touch ${target}`]);
  const name = await pendingApproval();
  assert.ok(!existsSync(target), 'ran before approval');
  const a = airlock(['approvals', 'approve', name, '--as', 'alice', '--state-dir', stateDir]);
  assert.equal(a.code, 0, a.stderr);
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /waiting for approval/);
  assert.ok(existsSync(target));
  const rec = records(await lastRecording());
  assert.deepEqual(
    rec.filter((x) => x['type'] === 'approval').map((x) => x['phase']),
    ['Pending', 'Approved'],
  );
  assert.equal(rec.find((x) => x['type'] === 'approval' && x['phase'] === 'Approved')?.['reviewer'], 'alice');
});

test('approval: denied gives exit status 126 and the command never runs', async () => {
  const target = join(sshd.dir, 'denied-file');
  const run = sshClient(sidecar.port, [`touch ${target}`]);
  const name = await pendingApproval();
  const d = airlock(['approvals', 'deny', name, '--as', 'alice', '--reason', 'not today', '--state-dir', stateDir]);
  assert.equal(d.code, 0, d.stderr);
  const r = await run;
  assert.equal(r.code, 126);
  assert.match(r.stderr, /denied by alice: not today/);
  assert.ok(!existsSync(target));
});

test('masking: a card number split across chunks and pauses never reaches the agent', async () => {
  const script = `printf 'card 41111'; sleep 0.2; printf '11111'; sleep 0.2; printf '111111 end\\n'; printf 'err 4111111' >&2; sleep 0.2; printf '111111111\\n' >&2; printf 'tail ${CARD}'`;
  const r = await sshClient(sidecar.port, [script]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'card [REDACTED] end\ntail [REDACTED]');
  assert.equal(r.stderr, 'err [REDACTED]\n');
  const path = await lastRecording();
  const cast = path.replace(/\.jsonl$/, '.0.cast');
  // the header's title is the command the agent typed; the events are what it saw
  const shown = readFileSync(cast, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as [number, string, string])[2])
    .join('');
  assert.ok(!/\d{7}/.test(shown), `the cast holds digits of the card: ${shown}`);
  assert.match(shown, /\[REDACTED\]/);
  // asciinema replays it, masked (asciinema wants a terminal: script gives it one)
  const play = spawnSync('script', ['-qec', `asciinema cat ${cast}`, '/dev/null'], { encoding: 'utf8' });
  assert.equal(play.status, 0, play.stderr);
  assert.match(play.stdout, /card \[REDACTED\] end/);
  assert.ok(!play.stdout.includes('4111111'));
  assert.equal(records(path).find((x) => x['type'] === 'exit')?.['masked'], 3);
});

test('recordings verify; an edited or truncated log or cast is detected', async () => {
  const r = await sshClient(sidecar.port, ['printf "line one\\nline two\\n"']);
  assert.equal(r.code, 0);
  const path = await lastRecording();
  const ok = airlock(['sessions', 'verify', path]);
  assert.equal(ok.code, 0, ok.stderr);
  const show = airlock(['sessions', 'show', path]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /command\s+Allow\s+printf/);
  assert.match(show.stdout, /exit\s+channel 0 status 0/);
  const cast = path.replace(/\.jsonl$/, '.0.cast');
  const original = readFileSync(cast);
  writeFileSync(cast, original.toString('utf8').replace('line two', 'line 2!!'));
  const edited = airlock(['sessions', 'verify', path]);
  assert.equal(edited.code, 1);
  assert.match(edited.stderr, /edited/);
  writeFileSync(cast, original.subarray(0, original.length - 5));
  const truncated = airlock(['sessions', 'verify', path]);
  assert.equal(truncated.code, 1);
  assert.match(truncated.stderr, /truncated/);
  writeFileSync(cast, original);
  assert.equal(airlock(['sessions', 'verify', path]).code, 0);
  const log = readFileSync(path, 'utf8');
  writeFileSync(path, log.replace('"decision":"Allow"', '"decision":"Block"'));
  assert.equal(airlock(['sessions', 'verify', path]).code, 1);
  writeFileSync(path, log.split('\n').slice(0, -2).join('\n') + '\n');
  assert.equal(airlock(['sessions', 'verify', path]).code, 1);
  writeFileSync(path, log);
});

/** The OpenSSH client, with stdout as bytes. */
function sshBytes(port: number, command: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', ['-p', String(port), ...SSH_CLIENT_OPTIONS, 'agent@127.0.0.1', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
  });
}

test('binary output: refused by default with a message on stderr, never altered; with binaryOutput Pass, byte for byte', async () => {
  const data = randomBytes(6 * 1024 * 1024);
  const file = join(sshd.dir, 'random.bin');
  writeFileSync(file, data);
  const refused = await sshBytes(sidecar.port, `cat ${file}`);
  assert.equal(refused.code, 126);
  assert.match(refused.stderr, /airlock: the command's output is not text \((a NUL byte at byte \d+|bytes that are not UTF-8 text from byte \d+ on)\); binary output cannot be masked, so the command was stopped \(spec\.ssh\.binaryOutput is Refuse\)/);
  assert.ok(data.subarray(0, refused.stdout.length).equals(refused.stdout), 'what was relayed is the file as it is');
  const path = await lastRecording();
  assert.equal(records(path).find((x) => x['type'] === 'exit')?.['refused'], 'NotPermitted');
  assert.equal(airlock(['sessions', 'verify', path]).code, 0);
  // text with a NUL byte is binary too
  const nul = await sshBytes(sidecar.port, `printf 'a\\000b\\n'`);
  assert.equal(nul.code, 126);
  assert.match(nul.stderr, /a NUL byte at byte 1/);

  const dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-rec-'));
  const m = manifestDir(connectionManifests(sshd, 'binary', { hostKeyFingerprints: [sshd.hostKeyFingerprint], binaryOutput: 'Pass' }));
  const sc = await startSidecar({ manifests: [m], connection: 'binary', recordingsDir: dir, stateDir });
  try {
    const passed = await sshBytes(sc.port, `cat ${file}`);
    assert.equal(passed.code, 0, passed.stderr);
    assert.equal(passed.stdout.length, data.length);
    assert.equal(createHash('sha256').update(passed.stdout).digest('hex'), createHash('sha256').update(data).digest('hex'));
    // text is still masked until the first binary byte
    const mixed = await sshBytes(sc.port, `printf 'card ${CARD}\n'; head -c 100000 ${file}`);
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.ok(mixed.stdout.subarray(0, 16).equals(Buffer.from('card [REDACTED]\n')));
    assert.ok(mixed.stdout.subarray(16).equals(data.subarray(0, 100000)));
    const rec = await lastRecording(dir, 'binary');
    assert.equal(airlock(['sessions', 'verify', rec]).code, 0);
  } finally {
    await sc.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(m, { recursive: true, force: true });
    rmSync(file, { force: true });
  }
});

test('a 1 MB single-line output arrives whole, its secrets masked', async () => {
  const words: string[] = [];
  for (let i = 0, n = 0; n < 1024 * 1024; i++) {
    const w = i % 1000 === 999 ? CARD : `w${i}`;
    words.push(w);
    n += w.length + 1;
  }
  const line = words.join(' ');
  const file = join(sshd.dir, 'one-line.txt');
  writeFileSync(file, `${line}\n`);
  try {
    const r = await sshBytes(sidecar.port, `cat ${file}`);
    assert.equal(r.code, 0, r.stderr);
    const want = `${line.replaceAll(CARD, '[REDACTED]')}\n`;
    assert.equal(r.stdout.length, Buffer.byteLength(want));
    assert.ok(r.stdout.equals(Buffer.from(want)), 'the masked line, whole');
    assert.ok(!r.stdout.includes('4111111'));
    const path = await lastRecording();
    assert.equal(records(path).find((x) => x['type'] === 'exit')?.['masked'], words.filter((w) => w === CARD).length);
  } finally {
    rmSync(file, { force: true });
  }
});

test('sessions verify on a cast verifies it through its session log, or names the log to verify', async () => {
  const r = await sshClient(sidecar.port, ['printf "cast me\\n"']);
  assert.equal(r.code, 0, r.stderr);
  const path = await lastRecording();
  const cast = path.replace(/\.jsonl$/, '.0.cast');
  const ok = airlock(['sessions', 'verify', cast]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /is a terminal cast: verifying its session log .*\.jsonl and every cast it names/);
  assert.match(ok.stdout, /intact, \d+ records, chain head sha256:/);
  const original = readFileSync(cast);
  writeFileSync(cast, original.toString('utf8').replace('cast me', 'cast ME'));
  const edited = airlock(['sessions', 'verify', cast]);
  assert.equal(edited.code, 1);
  assert.match(edited.stderr, /edited/);
  writeFileSync(cast, original);
  // a cast without its log: the message says which log verifies it
  const alone = join(mkdtempSync(join(tmpdir(), 'airlock-cast-')), '20261204T000000Z-abcdef01.3.cast');
  writeFileSync(alone, original);
  const lost = airlock(['sessions', 'verify', alone]);
  assert.equal(lost.code, 2);
  assert.match(lost.stderr, /is a terminal cast: it is verified through the session log that holds its checkpoints \(.*20261204T000000Z-abcdef01\.jsonl\), which is not there; verify that log/);
  assert.doesNotMatch(lost.stderr, /sequence number/);
});

function ssh2Connect(port: number): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => {
      resolve(c);
    });
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port, username: 'agent', readyTimeout: 10_000 });
  });
}

/** Collects a channel's output until `pattern` appears in stdout or stderr. */
function waitFor(ch: ClientChannel, seen: { out: string; err: string }, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (pattern.test(seen.out) || pattern.test(seen.err)) {
        clearInterval(timer);
        clearTimeout(limit);
        resolve();
      }
    };
    const timer = setInterval(check, 20);
    const limit = setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`${what}: ${String(pattern)} not seen; stdout=${JSON.stringify(seen.out)} stderr=${JSON.stringify(seen.err)}`));
    }, 10_000);
    check();
  });
}

test('shell with a pty: each line decided on Enter, rebuilt from the keystrokes', async () => {
  const c = await ssh2Connect(sidecar.port);
  const ch = await new Promise<ClientChannel>((resolve, reject) => {
    c.shell({ term: 'xterm', cols: 80, rows: 24 }, (err, stream) => {
      if (err !== undefined) reject(err);
      else resolve(stream);
    });
  });
  const seen = { out: '', err: '' };
  ch.on('data', (d: Buffer) => (seen.out += d.toString()));
  ch.stderr.on('data', (d: Buffer) => (seen.err += d.toString()));
  const exited = new Promise<number | null>((resolve) => ch.once('exit', (code: number | null) => { resolve(code); }));
  ch.write('echo shell-ok\r');
  await waitFor(ch, seen, /\rshell-ok\r\n/, 'allowed line');
  const victim = join(sshd.dir, 'shell-victim');
  writeFileSync(victim, 'x');
  seen.err = '';
  ch.write(`echo harmless\x15rm -rf ${victim}\r`);
  await waitFor(ch, seen, /recursive rm is never run by agents/, 'ctrl-u then rm');
  seen.err = '';
  ch.write(`rm -rf ${victim}\x17\x17\x17echo fine-after-ctrl-w\r`);
  await waitFor(ch, seen, /\rfine-after-ctrl-w\r\n/, 'ctrl-w');
  ch.write(`rm -rf /tm\x1b[D\x1b[D\x1b[Dx\x1b[C\x1b[C\x1b[C${victim.slice(3)}\x7f\x7f\r`);
  await waitFor(ch, seen, /recursive rm is never run by agents/, 'arrows and backspace');
  seen.err = '';
  ch.write('ech\t hi\r');
  await waitFor(ch, seen, /could not be rebuilt from the keystrokes \(tab completion\)/, 'tab');
  ch.setWindow(30, 100, 0, 0);
  await new Promise((r) => setTimeout(r, 200));
  ch.write('stty size\r');
  await waitFor(ch, seen, /\r30 100\r\n/, 'window change');
  ch.write('exit\r');
  assert.equal(await exited, 0);
  c.end();
  assert.ok(existsSync(victim), 'the blocked rm ran');
  const rec = records(await lastRecording());
  const commands = rec.filter((x) => x['type'] === 'command').map((x) => [x['command'], x['decision']]);
  assert.deepEqual(commands, [
    ['echo shell-ok', 'Allow'],
    [`rm -rf ${victim}`, 'Block'],
    ['echo fine-after-ctrl-w', 'Allow'],
    [`rm -rf x${victim.slice(0, -2)}`, 'Block'],
    ['ech hi', 'Block'],
    ['stty size', 'Allow'],
    ['exit', 'Allow'],
  ]);
  assert.equal(airlock(['sessions', 'verify', await lastRecording()]).code, 0);
});

test('sftp: operations are proxied and recorded with paths and byte counts', async () => {
  const c = await ssh2Connect(sidecar.port);
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
    c.sftp((err, s) => {
      if (err !== undefined) reject(err);
      else resolve(s);
    });
  });
  const a = join(sshd.dir, 'sftp-a.txt');
  const b = join(sshd.dir, 'sftp-b.txt');
  const data = Buffer.alloc(100_000, 'x');
  await new Promise<void>((resolve, reject) => {
    sftp.writeFile(a, data, (err) => {
      if (err !== undefined && err !== null) reject(err);
      else resolve();
    });
  });
  const back = await new Promise<Buffer>((resolve, reject) => {
    sftp.readFile(a, (err, d) => {
      if (err !== undefined) reject(err);
      else resolve(d);
    });
  });
  assert.ok(back.equals(data));
  await new Promise<void>((resolve, reject) => {
    sftp.rename(a, b, (err) => {
      if (err !== undefined && err !== null) reject(err);
      else resolve();
    });
  });
  const list = await new Promise<string[]>((resolve, reject) => {
    sftp.readdir(sshd.dir, (err, l) => {
      if (err !== undefined) reject(err);
      else resolve(l.map((e) => e.filename));
    });
  });
  assert.ok(list.includes('sftp-b.txt'));
  await new Promise<void>((resolve, reject) => {
    sftp.unlink(b, (err) => {
      if (err !== undefined && err !== null) reject(err);
      else resolve();
    });
  });
  assert.ok(!existsSync(b));
  c.end();
  const path = await lastRecording();
  const ops = records(path)
    .filter((x) => x['type'] === 'sftp')
    .map((x) => [x['op'], x['path'], x['bytes'] ?? x['to'] ?? x['flags'] ?? null]);
  assert.deepEqual(ops, [
    ['start', undefined, null],
    ['open', a, 'write,create,truncate'],
    ['write', a, 100_000],
    ['close', a, null],
    ['open', a, 'read'],
    ['read', a, 100_000],
    ['close', a, null],
    ['rename', a, b],
    ['remove', b, null],
  ]);
  assert.equal(airlock(['sessions', 'verify', path]).code, 0);
});

test('port forwarding, agent forwarding and X11 are refused and recorded', async () => {
  const c = await ssh2Connect(sidecar.port);
  const err = await new Promise<Error | undefined>((resolve) => {
    c.forwardOut('127.0.0.1', 40000, '127.0.0.1', sshd.port, (e) => {
      resolve(e);
    });
  });
  assert.ok(err !== undefined, 'the local forward was opened');
  const remote = await new Promise<Error | undefined>((resolve) => {
    c.forwardIn('127.0.0.1', 0, (e) => {
      resolve(e);
    });
  });
  assert.ok(remote !== undefined, 'the remote forward was set up');
  // X11 on an exec: refused, the command still runs
  const x11 = await new Promise<string>((resolve) => {
    c.exec('echo x11-less', { x11: true }, (e, ch) => {
      if (e !== undefined) {
        resolve(`error: ${e.message}`);
        return;
      }
      let out = '';
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.on('close', () => {
        resolve(out);
      });
    });
  });
  assert.ok(x11 === 'x11-less\n' || x11.startsWith('error'), x11);
  c.end();
  // OpenSSH's -R: the remote forward is refused, the session itself still works
  const r = await sshClient(sidecar.port, ['-o', 'ExitOnForwardFailure=no', '-R', `0:127.0.0.1:${sshd.port}`, 'echo', 'still-usable']);
  assert.equal(r.stdout, 'still-usable\n', r.stderr);
  const all = logs().slice(-2).flatMap(records);
  const refusals = all.filter((x) => x['type'] === 'refusal').map((x) => x['what']);
  assert.ok(refusals.includes('local port forward'), JSON.stringify(refusals));
  assert.ok(refusals.includes('remote port forward'), JSON.stringify(refusals));
  assert.ok(refusals.includes('x11 forwarding'), JSON.stringify(refusals));
});

test('a host key that is not pinned: refused with a clear message, and recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-rec-'));
  const m = manifestDir(connectionManifests(sshd, 'wrongkey', { hostKeyFingerprints: [`SHA256:${'A'.repeat(43)}`] }));
  const sc = await startSidecar({ manifests: [m], connection: 'wrongkey', recordingsDir: dir, stateDir });
  try {
    const r = await sshClient(sc.port, ['echo', 'hi']);
    assert.equal(r.code, 126);
    assert.match(r.stderr, new RegExp(`airlock: the host key of 127\\.0\\.0\\.1:${sshd.port} \\(${sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}\\) is not pinned`));
    assert.equal(r.stdout, '');
    const path = await lastRecording(dir, 'wrongkey');
    const refusal = records(path).find((x) => x['type'] === 'refusal');
    assert.equal(refusal?.['what'], 'host key');
    assert.equal(airlock(['sessions', 'verify', path]).code, 0);
  } finally {
    await sc.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(m, { recursive: true, force: true });
  }
});

test('an unreachable upstream: the exec fails with 126 and says where it could not connect, recorded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-rec-'));
  const closed = await freePort(); // nothing listens there
  const m = manifestDir(connectionManifests({ ...sshd, port: closed }, 'nowhere', { hostKeyFingerprints: [sshd.hostKeyFingerprint] }));
  const sc = await startSidecar({ manifests: [m], connection: 'nowhere', recordingsDir: dir, stateDir });
  try {
    const r = await sshClient(sc.port, ['echo', 'hi']);
    assert.equal(r.code, 126);
    assert.match(r.stderr, new RegExp(`airlock: cannot reach 127\\.0\\.0\\.1:${String(closed)}: connect ECONNREFUSED`));
    assert.equal(r.stdout, '');
    const path = await lastRecording(dir, 'nowhere');
    const refusal = records(path).find((x) => x['type'] === 'refusal');
    assert.ok(refusal !== undefined, 'a refusal record');
    assert.equal(refusal['what'], 'upstream');
    assert.equal(refusal['code'], 'UpstreamUnavailable');
    assert.equal(airlock(['sessions', 'verify', path]).code, 0);
  } finally {
    await sc.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(m, { recursive: true, force: true });
  }
});

test('robustness: the upstream dropping mid-transfer ends the session cleanly, recorded', async () => {
  // the remote command streams output, then kills its own sshd session process
  const r = await sshClient(sidecar.port, ['seq 1 200000; kill -9 $PPID']);
  assert.notEqual(r.code, 0);
  assert.ok(r.stdout.startsWith('1\n2\n3\n'));
  const path = await lastRecording();
  const rec = records(path);
  assert.equal(rec.at(-1)?.['type'], 'session_end');
  assert.equal(airlock(['sessions', 'verify', path]).code, 0);
  // what the agent got is what the cast holds
  const shown = readFileSync(path.replace(/\.jsonl$/, '.0.cast'), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as [number, string, string])[2])
    .join('');
  assert.ok(shown.startsWith(r.stdout), 'the agent got output the cast does not hold');
  // the sidecar keeps serving
  assert.equal((await sshClient(sidecar.port, ['echo', 'next'])).stdout, 'next\n');
});

test('robustness: the agent disconnecting mid-approval withdraws the request and closes the recording', async () => {
  const target = join(sshd.dir, 'withdrawn-file');
  const child = spawn('ssh', ['-p', String(sidecar.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'agent@127.0.0.1', `touch ${target}`], { stdio: 'ignore' });
  const name = await pendingApproval();
  child.kill('SIGKILL');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const shown = airlock(['approvals', 'show', name, '--state-dir', stateDir]);
    if (/Phase:\s+Withdrawn/.test(shown.stdout)) break;
    if (Date.now() > deadline) throw new Error(`not withdrawn: ${shown.stdout}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const path = await lastRecording();
  const rec = records(path);
  assert.deepEqual(
    rec.filter((x) => x['type'] === 'approval').map((x) => x['phase']),
    ['Pending', 'Withdrawn'],
  );
  assert.equal(airlock(['sessions', 'verify', path]).code, 0);
  assert.ok(!existsSync(target));
  // approving it now changes nothing
  assert.equal(airlock(['approvals', 'approve', name, '--as', 'alice', '--state-dir', stateDir]).code, 1);
  await new Promise((res) => setTimeout(res, 300));
  assert.ok(!existsSync(target));
});

test('robustness: garbage on the agent socket ends that connection only', async () => {
  const before = logs().length;
  await new Promise<void>((resolve, reject) => {
    const s = connect(sidecar.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.resume();
    s.once('connect', () => {
      s.write(Buffer.from('SSH-2.0-garbage\r\n'));
      s.write(Buffer.alloc(5000, 0xff));
    });
    s.once('close', () => {
      resolve();
    });
    setTimeout(() => {
      reject(new Error('the sidecar did not close a garbage connection'));
    }, 10_000).unref();
  });
  await new Promise<void>((resolve) => {
    const s = connect(sidecar.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.resume();
    s.once('connect', () => s.end(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    s.once('close', () => {
      resolve();
    });
  });
  const r = await sshClient(sidecar.port, ['echo', 'alive']);
  assert.equal(r.stdout, 'alive\n');
  assert.ok(logs().length > before);
  for (const p of logs().slice(before)) {
    const v = airlock(['sessions', 'verify', p]);
    assert.equal(v.code, 0, `${p}: ${v.stderr}`);
  }
  assert.equal(sidecar.child.exitCode, null);
});
