import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startControlPlane, ROOT, type ControlPlane } from '../src/controlplane.ts';
import { invalidCases } from '../../api/test/cases.ts';

let cp: ControlPlane;

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  cp = startControlPlane();
  await ok(['apply', '-f', join(ROOT, 'crds')]);
  await ok(['wait', '--for', 'condition=Established', 'crd', '--all', '--timeout', '60s']);
});

after(() => {
  cp.stop();
});

describe('the API server serves the Airlock API', () => {
  test('the control plane is Kubernetes >= 1.33 with a matching kubectl', async () => {
    const v = JSON.parse(await ok(['version', '-o', 'json'])) as { clientVersion: { minor: string }; serverVersion: { major: string; minor: string } };
    assert.equal(v.serverVersion.major, '1');
    assert.ok(Number.parseInt(v.serverVersion.minor, 10) >= 33, `server minor ${v.serverVersion.minor}`);
    assert.equal(v.clientVersion.minor, v.serverVersion.minor);
  });

  test('all five CRDs are Established', async () => {
    const names = (await ok(['get', 'crd', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}']))
      .trim()
      .split('\n')
      .sort();
    assert.deepEqual(names, [
      'agentconnections.airlock.dev=True',
      'agentsessions.airlock.dev=True',
      'approvalrequests.airlock.dev=True',
      'approvalrules.airlock.dev=True',
      'maskingpolicies.airlock.dev=True',
    ]);
  });

  test('kubectl apply -f examples/ succeeds and kubectl get shows the printer columns', async () => {
    await ok(['apply', '-f', join(ROOT, 'examples')]);
    const conns = await ok(['get', 'agentconnections', '-n', 'agents']);
    const [head, ...rows] = conns.trim().split('\n');
    assert.match(head ?? '', /^NAME\s+PROTOCOL\s+TARGET\s+READY\s+SESSIONS\s+AGE$/);
    assert.ok(rows.some((r) => /^orders-db\s+postgres\s+orders-db\.databases\.svc\.cluster\.local\s/.test(r)), conns);
    assert.ok(rows.some((r) => /^bastion\s+ssh\s+bastion\.ops\.svc\.cluster\.local\s/.test(r)), conns);
    assert.match(await ok(['get', 'mpol', '-n', 'agents']), /^NAME\s+READY\s+AGE\npii\s/);
    assert.match(await ok(['get', 'arule', '-n', 'agents']), /^NAME\s+READY\s+AGE\nops-shell\s+.*\nprod-guardrails\s/);
    assert.match(await ok(['get', 'airlock', '-n', 'agents', '-o', 'name']), /agentconnection\.airlock\.dev\/orders-db/);
  });

  test('defaults are applied by the API server', async () => {
    const spec = JSON.parse(await ok(['get', 'aconn', 'bastion', '-n', 'agents', '-o', 'jsonpath={.spec}'])) as {
      recording: { failurePolicy: string; retention: string };
      ssh: { allowPortForwarding: boolean };
    };
    assert.equal(spec.recording.failurePolicy, 'Closed');
    assert.equal(spec.recording.retention, '720h');
    assert.equal(spec.ssh.allowPortForwarding, false);
  });

  test('ApprovalRequest and AgentSession show their printer columns', async () => {
    const req = `apiVersion: airlock.dev/v1alpha1
kind: ApprovalRequest
metadata: { name: req-1, namespace: agents }
spec:
  connection: orders-db
  protocol: postgres
  requester: { pod: planner-0, serviceAccount: planner }
  command: "DELETE FROM public.orders WHERE id = $1"
  classes: [write]
  rule: { approvalRule: prod-guardrails, name: writes-need-review }
  approvers: { groups: [dba] }
  required: 1
  expiresAt: "2026-11-23T10:00:00Z"
`;
    await ok(['apply', '-f', '-'], req);
    await ok(['patch', 'areq', 'req-1', '-n', 'agents', '--subresource', 'status', '--type', 'merge', '-p', '{"status":{"phase":"Pending"}}']);
    assert.match(await ok(['get', 'approvalrequests', '-n', 'agents']), /^NAME\s+CONNECTION\s+COMMAND\s+PHASE\s+AGE\nreq-1\s+orders-db\s+DELETE FROM public\.orders WHERE id = \$1\s+Pending\s/);

    await ok(['apply', '-f', '-'], 'apiVersion: airlock.dev/v1alpha1\nkind: AgentSession\nmetadata: { name: sess-1, namespace: agents }\n');
    const head = `sha256:${'e'.repeat(64)}`;
    const status = { status: { pod: 'planner-0', connection: 'orders-db', protocol: 'postgres', startTime: '2026-11-23T09:00:00Z', counts: { statements: 12, blocked: 2, maskedValues: 30 }, recording: { path: 'agents/planner-0/orders-db/s.jsonl', records: 40, chainHead: head } } };
    await ok(['patch', 'asess', 'sess-1', '-n', 'agents', '--subresource', 'status', '--type', 'merge', '-p', JSON.stringify(status)]);
    assert.match(await ok(['get', 'agentsessions', '-n', 'agents']), new RegExp(`^NAME\\s+CONNECTION\\s+STATEMENTS\\s+BLOCKED\\s+MASKED\\s+RECORDS\\s+CHAIN HEAD\\s+STARTED\nsess-1\\s+orders-db\\s+12\\s+2\\s+30\\s+40\\s+${head}\\s`));
    assert.match(await ok(['get', 'agentsessions', '-n', 'agents', '-o', 'wide']), /^NAME\s+POD\s+CONNECTION\s+STATEMENTS\s+BLOCKED\s+MASKED\s+RECORDS\s+CHAIN HEAD\s+STARTED\nsess-1\s+planner-0\s+orders-db\s/);
  });

  test('ApprovalRequest.spec is immutable', async () => {
    const r = await cp.kubectl(['patch', 'areq', 'req-1', '-n', 'agents', '--type', 'merge', '-p', '{"spec":{"command":"SELECT 1"}}']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ApprovalRequest "req-1" is invalid: spec: Invalid value: spec is immutable/);
  });

  test('kubectl explain teaches the fields', async () => {
    const out = await ok(['explain', 'agentconnection.spec.target']);
    assert.match(out, /Where the sidecar connects on behalf of the agent/);
    assert.match(out, /host\s+<string> -required-\n\s+DNS name or IP address/);
    assert.match(await ok(['explain', 'approvalrule.spec.rules.action']), /strictest\s+wins/);
  });

  test('status is a subresource: a spec update does not change status', async () => {
    await ok(['patch', 'aconn', 'orders-db', '-n', 'agents', '--type', 'merge', '-p', '{"status":{"pendingApprovals":3}}']);
    assert.equal(await ok(['get', 'aconn', 'orders-db', '-n', 'agents', '-o', 'jsonpath={.status.pendingApprovals}']), '');
  });

  test('impersonation works for tests that act as reviewers', async () => {
    await ok(['create', 'clusterrole', 'airlock-reviewer', '--verb=get,list,patch', '--resource=approvalrequests.airlock.dev']);
    await ok(['create', 'clusterrolebinding', 'airlock-reviewers', '--clusterrole=airlock-reviewer', '--group=reviewers']);
    assert.equal((await ok(['auth', 'can-i', 'patch', 'approvalrequests.airlock.dev', '-n', 'agents', '--as', 'alice', '--as-group', 'reviewers'])).trim(), 'yes');
    const denied = await cp.kubectl(['get', 'secrets', '-n', 'agents', '--as', 'alice', '--as-group', 'reviewers']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden: User "alice" cannot list resource "secrets"/);
  });

  test('service-account tokens are issued and the OIDC discovery and JWKS endpoints answer', async () => {
    await ok(['create', 'serviceaccount', 'planner', '-n', 'agents']);
    const token = (await ok(['create', 'token', 'planner', '-n', 'agents', '--audience', 'airlock'])).trim();
    const [, payload] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as { sub: string; aud: string[] };
    assert.equal(claims.sub, 'system:serviceaccount:agents:planner');
    assert.deepEqual(claims.aud, ['airlock']);
    const disco = JSON.parse(await ok(['get', '--raw', '/.well-known/openid-configuration'])) as { jwks_uri: string };
    assert.match(disco.jwks_uri, /^https:\/\/127\.0\.0\.1:\d+\/openid\/v1\/jwks$/);
    const jwks = JSON.parse(await ok(['get', '--raw', '/openid/v1/jwks'])) as { keys: unknown[] };
    assert.equal(jwks.keys.length, 1);
  });

  test('admission webhooks are enabled', async () => {
    const plugins = await ok(['api-resources', '--api-group', 'admissionregistration.k8s.io', '-o', 'name']);
    assert.match(plugins, /mutatingwebhookconfigurations/);
    assert.match(plugins, /validatingwebhookconfigurations/);
  });

  test('kubectl airlock runs the plugin', () => {
    // kubectl finds plugins on PATH; global flags may not precede a plugin name, so no --kubeconfig.
    const r = spawnSync(join(cp.binDir, 'kubectl'), ['airlock', '--version'], {
      encoding: 'utf8',
      env: { PATH: `${join(ROOT, 'node_modules', '.bin')}:/usr/bin:/bin` },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^airlock \S+ \(node v24\./);
  });
});

describe('the API server rejects invalid manifests naming the field', () => {
  for (const c of invalidCases()) {
    test(c.name, async () => {
      const r = await cp.kubectl(['apply', '-f', c.file]);
      assert.notEqual(r.code, 0, `${c.name} was accepted`);
      assert.ok(r.stderr.includes(c.field), `names ${c.field}:\n${r.stderr}`);
      assert.ok(r.stderr.includes(c.message), `says "${c.message}":\n${r.stderr}`);
    });
  }
});
