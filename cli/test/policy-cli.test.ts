import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type CliIO } from '@airlock/cli';

const root = join(import.meta.dirname, '..', '..');
const examples = join(root, 'examples');

async function cli(args: readonly string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } };
  const code = await run(args, io, Readable.from([stdin]));
  return { code, out, err };
}

function lines(out: string): unknown[] {
  return out.trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

test('check reads JSON Lines and answers one line each', async () => {
  const input = ['{"sql": "SELECT * FROM orders"}', '{"sql": "DROP TABLE orders"}', '', '{"sql": "INSERT INTO orders VALUES (1)"}'].join('\n');
  const r = await cli(['check', '-f', examples, '--connection', 'orders-db', '--service-account', 'planner'], input);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(lines(r.out), [
    { decision: 'Allow', classes: ['read'], rules: [], message: '' },
    { decision: 'Block', classes: ['ddl', 'destructive'], rules: ['prod-guardrails/never-destroy'], message: 'destructive statements are not allowed on production' },
    { decision: 'RequireApproval', classes: ['write'], rules: ['prod-guardrails/writes-need-review'], message: 'statement requires approval by rule prod-guardrails/writes-need-review' },
  ]);
});

test('check --sql and --ssh answer one and exit 0 whatever the decision', async () => {
  const sql = await cli(['check', '-f', examples, '-c', 'orders-db', '--service-account', 'planner', '--sql', 'TRUNCATE orders']);
  assert.equal(sql.code, 0);
  assert.equal((lines(sql.out)[0] as { decision: string }).decision, 'Block');
  const ssh = await cli(['check', '-f', examples, '-c', 'bastion', '--ssh', "bash -c 'rm -rf /'"]);
  assert.equal(ssh.code, 0);
  assert.deepEqual(lines(ssh.out)[0], { decision: 'Block', classes: [], rules: ['ops-shell/dangerous-shell'], message: 'this command is never run by agents on production' });
});

test('check: bad input, unknown connection and bad manifests exit 2 with a clear message', async () => {
  const bad = await cli(['check', '-f', examples, '-c', 'orders-db'], '{"sql": "SELECT 1"}\nnot json\n');
  assert.equal(bad.code, 2);
  assert.equal(lines(bad.out).length, 1, 'lines before the bad one are answered');
  assert.match(bad.err, /^airlock check: stdin:2: invalid JSON: /);
  const shape = await cli(['check', '-f', examples, '-c', 'orders-db'], '{"query": "SELECT 1"}\n');
  assert.equal(shape.code, 2);
  assert.match(shape.err, /stdin:1: expected \{"sql": "\.\.\."\} or \{"ssh": "\.\.\."\}/);
  const missing = await cli(['check', '-f', examples, '-c', 'nope', '--sql', 'SELECT 1']);
  assert.equal(missing.code, 2);
  assert.equal(missing.err, 'airlock check: AgentConnection "nope" not found in the manifests\n');
  const noConn = await cli(['check', '-f', examples, '--sql', 'SELECT 1']);
  assert.equal(noConn.code, 2);
  assert.match(noConn.err, /--connection <name> is required/);
  const invalid = await cli(['check', '-f', join(root, 'api', 'test', 'invalid', 'bad-protocol.yaml'), '-c', 'bad', '--sql', 'SELECT 1']);
  assert.equal(invalid.code, 2);
  assert.match(invalid.err, /invalid manifests:\n {2}.*bad-protocol\.yaml:1: AgentConnection\/bad: spec\.protocol: Unsupported value/);
});

test('check: a bad RE2 pattern is an error at load time naming the rule', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-'));
  writeFileSync(
    join(dir, 'p.yaml'),
    `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: db, namespace: a }
spec:
  protocol: postgres
  target: { host: h, port: 5432, database: d }
  credentialsSecretRef: { name: c }
  agents: { serviceAccounts: [x] }
---
apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: m, namespace: a }
spec:
  connectionSelector: {}
  rules:
    - name: backref
      match: { pattern: "(a)\\\\1" }
      action: { type: redact }
`,
  );
  const r = await cli(['check', '-f', dir, '-c', 'db', '--sql', 'SELECT 1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^airlock check: .*m\/backref/);
});

test('mask masks column values and text', async () => {
  const input = [
    '{"column": "public.customers.email", "value": "alice@example.com"}',
    '{"column": "public.orders.note", "value": "card 4111 1111 1111 1111"}',
    '{"column": "hr.employees.salary", "value": "120000"}',
    '{"column": "public.orders.note", "value": "nothing here"}',
    '{"text": "id EMP-123456 key AKIAIOSFODNN7EXAMPLE"}',
  ].join('\n');
  const r = await cli(['mask', '-f', examples, '-c', 'orders-db'], input);
  assert.equal(r.code, 0, r.err);
  const [email, card, salary, plain, text] = lines(r.out) as [{ value: string }, { value: string }, { value: null }, { value: string }, { text: string }];
  assert.match(email.value, /^hmac:[0-9a-f]{16}$/);
  assert.equal(card.value, 'card ***************1111'.replace('***************', card.value.slice(5, -4)));
  assert.ok(!card.value.includes('4111 1111 1111'), card.value);
  assert.ok(card.value.endsWith('1111'));
  assert.equal(salary.value, null);
  assert.equal(plain.value, 'nothing here');
  assert.ok(!text.text.includes('EMP-123456') && !text.text.includes('AKIAIOSFODNN7EXAMPLE'), text.text);
});

test('the installed binary runs check from a shell pipeline', () => {
  const r = spawnSync(join(root, 'node_modules', '.bin', 'airlock'), ['check', '-f', examples, '-c', 'orders-db', '--service-account', 'planner'], {
    input: '{"sql": "/**/DrOp/**/TABLE orders"}\n',
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /"decision":"Block"/);
});
