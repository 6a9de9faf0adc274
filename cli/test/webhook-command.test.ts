/** `airlock webhook` option errors: precise messages before anything starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError } from '../src/errors.ts';
import { WEBHOOK_HELP, webhookCommand } from '../src/commands/webhook.ts';

const io = { stdout: { write: () => true }, stderr: { write: () => true } };

async function rejectsWith(args: readonly string[], message: RegExp): Promise<void> {
  await assert.rejects(webhookCommand(args, io), (err: unknown) => err instanceof CliError && err.exitCode === 2 && message.test(err.message));
}

test('--help prints the flags the chart uses', async () => {
  let out = '';
  assert.equal(await webhookCommand(['--help'], { stdout: { write: (s: string) => (out += s) }, stderr: io.stderr }), 0);
  assert.equal(out, WEBHOOK_HELP);
  for (const flag of ['--listen', '--tls-dir', '--metrics-addr', '--sidecar-image', '--sidecar-image-pull-policy', '--control-url', '--control-ca-file', '--approval-key-file', '--airlock-namespace', '--kubeconfig', '--log-level', '--sidecar-resources', '--default-capture']) {
    assert.ok(out.includes(flag), flag);
  }
});

test('missing or malformed options are refused with exit status 2', async () => {
  const base = ['--sidecar-image', 'airlock:1', '--control-url', 'https://op:8443', '--airlock-namespace', 'airlock-system'];
  await rejectsWith(['--control-url', 'https://op:8443'], /--sidecar-image <image> is required/);
  await rejectsWith(['--sidecar-image', 'x'], /--control-url <url> is required/);
  await rejectsWith([...base, '--control-url', 'http://op:8443'], /must be https/);
  await rejectsWith([...base, '--listen', 'nonsense'], /--listen: address "nonsense" is not host:port/);
  await rejectsWith([...base, '--metrics-addr', '1.2.3.4:99999'], /--metrics-addr/);
  await rejectsWith([...base, '--sidecar-image-pull-policy', 'Sometimes'], /must be one of Always, IfNotPresent, Never/);
  await rejectsWith([...base, '--log-level', 'loud'], /--log-level/);
  await rejectsWith([...base, '--kubeconfig', '/nonexistent/kubeconfig'], /cannot load the kubeconfig/);
  await rejectsWith([...base, '--default-capture', 'sometimes'], /--default-capture must be transparent or explicit/);
  await rejectsWith([...base, '--sidecar-resources', '{nope'], /--sidecar-resources is not JSON/);
  await rejectsWith([...base, '--sidecar-resources', '{"requests":{"cpu":true}}'], /requests\.cpu must be a quantity/);
  await rejectsWith([...base, '--sidecar-resources', '{"claims":[]}'], /unknown field "claims"/);
});
