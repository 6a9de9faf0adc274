import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { run, type CliIO } from '@airlock/cli';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'node_modules', '.bin');

function capture(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    out: () => out,
    err: () => err,
  };
}

test('the installed airlock runs on the workspace Node 24 even when the shell has another node', () => {
  for (const name of ['airlock', 'kubectl-airlock']) {
    const r = spawnSync(join(bin, name), ['--version'], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^airlock \d+\.\d+\.\d+ \(node v24\.\d+\.\d+\)\n$/);
  }
});

test('npx airlock resolves the workspace bin', () => {
  const r = spawnSync('npx', ['--no-install', 'airlock', '--help'], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `/usr/bin:/bin` } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: airlock <command>/);
});

test('--help lists the commands; no arguments prints help and exits 2', async () => {
  const io = capture();
  assert.equal(await run(['--help'], io), 0);
  assert.match(io.out(), /Commands:\n {2}approvals +List, approve or deny .*\n {2}capture +Install the iptables rules .*\n {2}check +Decide .*\n {2}mask +Mask .*\n {2}operator +Run the operator .*\n {2}sessions +Verify .*\n {2}sidecar +Run the proxy .*\n {2}validate +Validate .*\n {2}webhook +Serve the admission webhooks/);
  const none = capture();
  assert.equal(await run([], none), 2);
  assert.match(none.out(), /Usage:/);
});

test('unknown commands and flags exit 2 with a precise message', async () => {
  const io = capture();
  assert.equal(await run(['frobnicate'], io), 2);
  assert.equal(io.err(), `airlock: unknown command "frobnicate"; run 'airlock --help' for the list\n`);
  const flag = capture();
  assert.equal(await run(['validate', '--bogus'], flag), 2);
  assert.match(flag.err(), /^airlock validate: Unknown option '--bogus'.*see 'airlock validate --help'\n$/);
});

test('validate accepts the examples and rejects an invalid manifest naming file, document and field', async () => {
  const ok = capture();
  assert.equal(await run(['validate', '-f', join(root, 'examples')], ok), 0, ok.err());
  assert.match(ok.out(), /^5 Airlock object\(s\) in 5 file\(s\) are valid\n$/);
  const bad = capture();
  const file = join(root, 'api', 'test', 'invalid', 'port-out-of-range.yaml');
  assert.equal(await run(['validate', '-f', file], bad), 1);
  assert.equal(bad.err(), `${file}:1: AgentConnection/bad: spec.target.port: Invalid value: should be less than or equal to 65535\n1 problem(s) in 1 file(s)\n`);
});

test('validate without -f or with a missing path exits 2', async () => {
  const none = capture();
  assert.equal(await run(['validate'], none), 2);
  assert.match(none.err(), /no manifests given: use -f <file\|dir>/);
  const missing = capture();
  assert.equal(await run(['validate', '-f', '/nonexistent/x.yaml'], missing), 2);
  assert.equal(missing.err(), 'airlock validate: /nonexistent/x.yaml: no such file or directory\n');
});
