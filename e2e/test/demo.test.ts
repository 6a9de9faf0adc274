/**
 * The whole story on the real node: `make demo`'s script (hack/demo/demo.sh) must hold every
 * step — Helm install, the sidecar injected, masked SELECT through the Service name, DROP blocked,
 * INSERT approved with kubectl annotate, SSH masked and blocked (126), sessions verified against
 * their anchor, a live policy edit — and then Airlock must hold under faults: a direct connection
 * to the database pod's IP, an agent looking for credentials, the operator gone, the webhook gone,
 * a full recordings volume, a Helm upgrade under admission load, and a Helm uninstall.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, controlPlaneBinaries } from '../src/controlplane.ts';
import { imageRef, NODE_DIR, sleep, startNode, type Node } from '../src/node.ts';
import { until as untilHolds } from '../src/wait.ts';

const VOLUME = join(NODE_DIR, 'volumes', 'airlock-sessions');
const DB = 'host=orders-db.databases.svc.cluster.local dbname=orders user=planner';

/** the chart's selector labels of a component's pods */
function componentSelector(deployment: 'airlock-operator' | 'airlock-webhook'): string {
  return `app.kubernetes.io/name=airlock,app.kubernetes.io/component=${deployment.slice('airlock-'.length)}`;
}

interface Run { readonly code: number; readonly output: string }

function runScript(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('bash', [...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    const timer = setTimeout(() => { child.kill('SIGTERM'); }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

const until = <T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> => untilHolds(what, get, ok, { timeoutMs, intervalMs: 500 });

describe('make demo, and the story under faults, on the real node', { timeout: 1_500_000 }, () => {
  let node: Node;
  /** kubectl exec in the agent container; never throws (the exit code is part of what is checked) */
  const agent = async (args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> => {
    const r = await node.kubectl(['exec', '-n', 'agents', 'deploy/planner', '-c', 'agent', '--', ...args], { timeoutMs });
    return { code: r.code, out: r.stdout + r.stderr };
  };
  const psql = (...sql: string[]): Promise<{ code: number; out: string }> =>
    agent(['psql', '-X', '-v', 'VERBOSITY=verbose', DB, ...sql.flatMap((s) => ['-c', s])]);
  const sessionCount = async (): Promise<number> => (await node.run(['get', 'agentsessions', '-n', 'agents', '-o', 'name'])).split('\n').filter((l) => l !== '').length;
  const scale = async (deployment: 'airlock-operator' | 'airlock-webhook', replicas: number): Promise<void> => {
    await node.run(['-n', 'airlock-system', 'scale', `deployment/${deployment}`, `--replicas=${replicas}`]);
    if (replicas === 0) {
      await until(`${deployment} to have no pods`, () => node.run(['-n', 'airlock-system', 'get', 'pods', '-l', componentSelector(deployment), '-o', 'name']), (out) => out.trim() === '', 90_000);
    } else {
      await node.run(['-n', 'airlock-system', 'rollout', 'status', `deployment/${deployment}`, '--timeout=120s'], { timeoutMs: 130_000 });
    }
  };

  before(() => {
    node = startNode();
  });
  after(() => {
    const r = node.stop();
    assert.equal(r.code, 0, r.stderr);
  });

  test('make demo: every step of the story holds', async () => {
    const r = await runScript([join(ROOT, 'hack', 'demo', 'demo.sh')], { KUBECONFIG: node.kubeconfig }, 600_000);
    assert.equal(r.code, 0, `the demo failed:\n${r.output}`);
    assert.doesNotMatch(r.output, /DEMO FAILED/);
    for (const step of ['0. Install', '1. The sidecar is injected', '2. A SELECT', '3. DROP TABLE', '4. An INSERT is held', '5. SSH', '6. Sessions', '7. A policy edited']) {
      assert.match(r.output, new RegExp(`== ${step.replace(/[.]/g, '\\.')}`), `step "${step}" did not run`);
    }
    assert.ok((r.output.match(/✓/g) ?? []).length >= 35, `fewer checks held than the story has:\n${r.output}`);
    assert.match(r.output, /The demo held, step by step, in \d+ s\./);
    const memory = /Memory of the node with Airlock installed and the demo running: (\d+) MiB/.exec(r.output);
    assert.ok(memory !== null, 'the demo prints the node\'s memory');
    console.log(`# demo: ${/The demo held, step by step, in (\d+) s/.exec(r.output)?.[1] ?? '?'} s; ${memory[0]}`);
  });

  test('the agent connecting straight to the database pod\'s IP is still proxied: masked, decided, recorded', async () => {
    const ip = await node.run(['get', 'pods', '-n', 'databases', '-l', 'app=orders-db', '-o', 'jsonpath={.items[0].status.podIP}']);
    assert.match(ip, /^10\.244\.0\.\d+$/);
    const before = await sessionCount();
    const r = await agent(['psql', '-X', '-v', 'VERBOSITY=verbose', `host=${ip} dbname=orders user=anyone`, '-At', '-c', 'SELECT email, card_number FROM customers WHERE id = 1', '-c', 'DROP TABLE customers']);
    assert.doesNotMatch(r.out, /ada@example\.com|4539 1488 0343 6467/);
    assert.match(r.out, /^hmac:[0-9a-f]{16}\|\*+6467$/m);
    assert.match(r.out, /ERROR: +42501: airlock: destructive statements are not allowed on production/);
    await until('the session to be indexed', sessionCount, (n) => n > before);
    // the SSH server's pod listens on its Service's targetPort (2222, not 22): refused from the agent
    const sshIp = await node.run(['get', 'pods', '-n', 'ops', '-l', 'app=bastion', '-o', 'jsonpath={.items[0].status.podIP}']);
    const nc = await agent(['sh', '-c', `nc -w 3 ${sshIp} 2222 </dev/null; echo "exit=$?"`]);
    assert.doesNotMatch(nc.out, /SSH-2\.0/, `the agent reached the SSH server's pod directly:\n${nc.out}`);
    assert.match(nc.out, /Connection refused/);
    assert.match(nc.out, /exit=1/);
  });

  test('nothing in the agent container yields a credential: environment, files, processes, tokens', async () => {
    const password = (await node.run(['get', 'secret', 'orders-db-credentials', '-n', 'agents', '-o', 'jsonpath={.data.password}']));
    const secret = Buffer.from(password, 'base64').toString();
    assert.ok(secret.length >= 16);
    const r = await agent(['sh', '-c', [
      'echo "== env"; env',
      'echo "== processes"; for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done',
      'echo "== environ"; cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"',
      'echo "== files"; grep -rl -e "PRIVATE KEY" -e "$0" /etc /home /tmp /var /run /opt 2>/dev/null; echo "== tokens"; ls /var/run/secrets /var/run/secrets/airlock.dev 2>&1; ls /var/lib/airlock 2>&1',
    ].join('; '), secret]);
    // the script's own text holds the section markers too: a section starts at the marker's last occurrence
    const at = r.out.lastIndexOf('== tokens\n');
    assert.ok(at > 0, r.out);
    const head = r.out.slice(0, at);
    const tokens = r.out.slice(at);
    // the secret is passed as $0 of sh -c: the grep's own command line holds it, so look only at what is not that process
    const lines = head.split('\n').filter((l) => !l.includes('grep -rl') && !l.startsWith('sh -c '));
    assert.equal(lines.filter((l) => l.includes(secret)).length, 0, `the database password is visible in the agent container:\n${r.out}`);
    assert.doesNotMatch(head.slice(head.lastIndexOf('== files\n')), /\//, `files with a key or the password:\n${r.out}`);
    assert.doesNotMatch(head, /airlock sidecar|sidecar --cluster/, 'the sidecar\'s processes are visible from the agent container');
    assert.match(tokens, /No such file or directory[\s\S]*No such file or directory/);
  });

  test('the operator gone: sessions keep being enforced with the last policy; their reports arrive once it is back', async () => {
    await scale('airlock-operator', 0);
    const before = await sessionCount();
    const r = await psql('SELECT card_number FROM customers WHERE id = 2', 'DROP TABLE customers', 'SELECT count(*) FROM customers');
    assert.match(r.out, /\*+4444/);
    assert.doesNotMatch(r.out, /5555 5555 5555 4444/);
    assert.match(r.out, /42501: airlock: destructive statements are not allowed on production/);
    assert.match(r.out, /^ +4$/m);
    await sleep(2000);
    assert.equal(await sessionCount(), before, 'a report was indexed while no operator ran');
    await scale('airlock-operator', 2);
    await until('the buffered session report to be indexed', sessionCount, (n) => n > before, 120_000);
  });

  test('the webhook gone: a new agent pod is refused, never admitted without the sidecar', async () => {
    await scale('airlock-webhook', 0);
    try {
      const r = await node.kubectl(['run', 'stray-agent', '-n', 'agents', '--image', imageRef('test-agent'), '--image-pull-policy=Never', '--labels=app=planner', '--overrides={"spec":{"serviceAccountName":"planner"}}']);
      assert.notEqual(r.code, 0, `a pod was admitted while the webhook was down:\n${r.stdout}`);
      assert.match(r.stderr, /failed calling webhook "[a-z.]*airlock\.dev"/);
      assert.equal((await node.kubectl(['get', 'pod', 'stray-agent', '-n', 'agents'])).code, 1);
    } finally {
      await scale('airlock-webhook', 2);
    }
    // back: the same pod is admitted with the sidecar
    const r = await node.kubectl(['run', 'stray-agent', '-n', 'agents', '--image', imageRef('test-agent'), '--image-pull-policy=Never', '--labels=app=planner', '--overrides={"spec":{"serviceAccountName":"planner"}}']);
    assert.equal(r.code, 0, r.stderr);
    const init = await node.run(['get', 'pod', 'stray-agent', '-n', 'agents', '-o', 'jsonpath={.spec.initContainers[*].name}']);
    assert.match(init, /airlock-proxy/);
    await node.run(['delete', 'pod', 'stray-agent', '-n', 'agents', '--wait=false']);
  });

  test('the recordings volume full: statements are refused with a clear error and never reach the database', async () => {
    const marker = `marker_${Math.random().toString(36).slice(2, 10)}`;
    const fill = join(VOLUME, 'fill');
    const dd = await runScript(['-c', `dd if=/dev/zero of=${fill} bs=1M count=128 2>&1; df -m ${VOLUME} | tail -1`], {}, 60_000);
    assert.match(dd.output, /No space left on device/, dd.output);
    try {
      const r = await psql(`SELECT '${marker}' AS m`);
      assert.doesNotMatch(r.out, new RegExp(`^ +${marker}$`, 'm'), `the statement ran with a full recordings volume:\n${r.out}`);
      assert.match(r.out, /record/i, `no clear message about the recording:\n${r.out}`);
      console.log(`# recordings volume full: ${r.out.split('\n').filter((l) => /ERROR|FATAL|psql:/.test(l)).join(' | ')}`);
      const logs = await node.run(['logs', '-n', 'databases', 'deploy/orders-db']);
      assert.doesNotMatch(logs, new RegExp(marker), 'the statement reached the database unrecorded');
    } finally {
      rmSync(fill, { force: true });
    }
    const again = await psql(`SELECT '${marker}_after' AS m`);
    assert.match(again.out, new RegExp(`^ +${marker}_after$`, 'm'), again.out);
  });

  test('an agent pod in explicit capture marks the connection bypassable (TrafficCaptured=False) until the connection declares what prevents direct traffic', async () => {
    const condition = async (): Promise<{ status?: string; reason?: string; message?: string } | undefined> => {
      const out = await node.run(['get', 'agentconnection', 'orders-db', '-n', 'agents', '-o', 'json']);
      return (JSON.parse(out) as { status?: { conditions?: { type: string; status?: string; reason?: string; message?: string }[] } }).status?.conditions?.find((c) => c.type === 'TrafficCaptured');
    };
    const first = await until('TrafficCaptured on orders-db', condition, (c) => c !== undefined);
    assert.equal(first?.status, 'True');
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'explicit-agent', namespace: 'agents', labels: { app: 'planner' }, annotations: { 'airlock.dev/capture': 'explicit' } }, spec: { serviceAccountName: 'planner', automountServiceAccountToken: false, containers: [{ name: 'agent', image: imageRef('test-agent'), imagePullPolicy: 'Never' }] } };
    await node.run(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    try {
      const env = await node.run(['get', 'pod', 'explicit-agent', '-n', 'agents', '-o', 'jsonpath={.spec.containers[0].env[*].name}']);
      assert.match(env, /PGHOST/);
      const bypass = await until('TrafficCaptured=False', condition, (c) => c?.status === 'False');
      assert.equal(bypass?.reason, 'Bypassable');
      assert.match(bypass.message ?? '', /explicit-agent uses explicit capture/);
      await node.run(['annotate', 'agentconnection', 'orders-db', '-n', 'agents', 'airlock.dev/bypass-prevented-by=NetworkPolicy agents/db-egress']);
      const declared = await until('TrafficCaptured=True (declared)', condition, (c) => c?.reason === 'DeclaredEnforcement');
      assert.match(declared?.message ?? '', /NetworkPolicy agents\/db-egress/);
      await node.run(['annotate', 'agentconnection', 'orders-db', '-n', 'agents', 'airlock.dev/bypass-prevented-by-']);
    } finally {
      await node.run(['delete', 'pod', 'explicit-agent', '-n', 'agents', '--wait=false']);
    }
    assert.equal((await until('TrafficCaptured=True once the pod is gone', condition, (c) => c?.reason === 'TransparentCapture'))?.status, 'True');
  });

  test('helm upgrade with a changed value rolls both Deployments without a failed admission', async () => {
    const bin = controlPlaneBinaries();
    const helmEnv = { KUBECONFIG: node.kubeconfig, HELM_CACHE_HOME: join(NODE_DIR, 'demo', 'helm', 'cache'), HELM_CONFIG_HOME: join(NODE_DIR, 'demo', 'helm', 'config'), HELM_DATA_HOME: join(NODE_DIR, 'demo', 'helm', 'data') };
    const podsBefore = await node.run(['get', 'pods', '-n', 'airlock-system', '-o', 'jsonpath={.items[*].metadata.name}']);
    let failures: string[] = [];
    let admissions = 0;
    const stop = new AbortController();
    const load = (async () => {
      while (!stop.signal.aborted) {
        // a server-side dry run goes through the injection webhook like a real pod creation
        const r = await node.kubectl(['run', `load-${admissions}`, '-n', 'agents', '--dry-run=server', '--image', imageRef('test-agent'), '--labels=app=planner', '--overrides={"spec":{"serviceAccountName":"planner"}}', '-o', 'jsonpath={.spec.initContainers[*].name}']);
        admissions += 1;
        if (r.code !== 0 || !r.stdout.includes('airlock-proxy')) failures = [...failures, `${r.code}: ${r.stdout} ${r.stderr}`];
        await sleep(100);
      }
    })();
    const upgrade = await runScript(['-c', `"${join(bin, 'helm')}" upgrade airlock "${join(ROOT, 'charts', 'airlock')}" -n airlock-system --reuse-values --set operator.logLevel=debug --set webhook.logLevel=debug --wait --timeout 240s --hide-notes`], helmEnv, 300_000);
    // every pod of before is replaced (the old ones take their termination grace to go), under load all along
    const old = podsBefore.split(' ');
    const podsAfter = await until('the old pods to be replaced', () => node.run(['get', 'pods', '-n', 'airlock-system', '-o', 'jsonpath={.items[*].metadata.name}']), (now) => now.split(' ').every((p) => !old.includes(p)), 120_000);
    await sleep(2000);
    stop.abort();
    await load;
    assert.equal(upgrade.code, 0, upgrade.output);
    assert.equal(podsAfter.split(' ').length, 4, podsAfter);
    assert.ok(admissions >= 20, `only ${admissions} admissions during the upgrade`);
    assert.deepEqual(failures, [], `${failures.length} of ${admissions} admissions failed during the upgrade`);
  });

  test('helm uninstall: agent pods keep running with their last policy; the CRDs, sessions and recordings stay', async () => {
    const bin = controlPlaneBinaries();
    const helmEnv = { KUBECONFIG: node.kubeconfig, HELM_CACHE_HOME: join(NODE_DIR, 'demo', 'helm', 'cache'), HELM_CONFIG_HOME: join(NODE_DIR, 'demo', 'helm', 'config'), HELM_DATA_HOME: join(NODE_DIR, 'demo', 'helm', 'data') };
    const sessions = await sessionCount();
    const r = await runScript(['-c', `"${join(bin, 'helm')}" uninstall airlock -n airlock-system --wait --timeout 120s`], helmEnv, 180_000);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /release "airlock" uninstalled/);
    await until('Airlock\'s pods to be gone', () => node.run(['get', 'pods', '-n', 'airlock-system', '-o', 'name']), (out) => out.trim() === '', 120_000);
    // the agent's pod and its sidecar run on, enforcing the policy they last received
    const phase = await node.run(['get', 'pods', '-n', 'agents', '-l', 'app=planner', '-o', 'jsonpath={.items[*].status.phase}']);
    assert.match(phase, /^Running/);
    const q = await psql('SELECT email FROM customers WHERE id = 1', 'DROP TABLE customers');
    assert.match(q.out, /hmac:[0-9a-f]{16}/);
    assert.match(q.out, /42501: airlock: destructive statements are not allowed on production/);
    // what it leaves: the CRDs with every object, and the recordings on the volume
    assert.match(await node.run(['get', 'crd', 'agentsessions.airlock.dev', '-o', 'name']), /agentsessions\.airlock\.dev/);
    assert.ok((await sessionCount()) >= sessions);
    const pods = readdirSync(join(VOLUME, 'agents'));
    assert.ok(pods.length >= 1, 'the recordings are gone from the volume');
  });
});
