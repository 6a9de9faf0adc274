/**
 * The real single-node Kubernetes (hack/cluster): pods run, Deployments roll out, Services and
 * cluster DNS answer, a pod reads the API with its projected token through client-node's in-cluster
 * config, a native sidecar and an iptables redirect work inside a pod, kubectl logs/exec/port-forward
 * work; and cluster-down leaves the machine exactly as it found it, also after a half-started
 * cluster-up, while a second cluster-up and a port in use get clear errors.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../src/controlplane.ts';
import { clusterScript, createNamespace, nodeRunning, describePods, imageRef, NODE_DIR, sleep, startNode, waitForPods, type Node } from '../src/node.ts';

/** What cluster-down must leave exactly as cluster-up found it. */
interface HostState {
  readonly processes: readonly string[];
  readonly mounts: readonly string[];
  readonly netns: readonly string[];
  readonly links: readonly string[];
  readonly routes: readonly string[];
  readonly iptables: string;
  readonly ip6tables: string;
  readonly sysctls: Readonly<Record<string, string>>;
  readonly cgroups: readonly string[];
  readonly paths: readonly string[];
}

function sh(cmd: string, args: readonly string[]): string {
  return spawnSync(cmd, args, { encoding: 'utf8' }).stdout;
}

function hostState(): HostState {
  const ours = (cmdline: string): boolean => cmdline.includes(NODE_DIR) || /(^|\/)(kubelet|kube-proxy|coredns|containerd-shim-runc-v2|pause)( |$)/.test(cmdline);
  const processes = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      } catch {
        return '';
      }
    })
    .filter((c) => c !== '' && ours(c))
    .sort();
  const counters = (dump: string): string =>
    dump
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/, ''))
      .join('\n');
  const sysctls: Record<string, string> = {};
  for (const key of ['net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables', 'net/ipv4/conf/all/route_localnet', 'vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes']) {
    sysctls[key] = readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  }
  const cgroups = readdirSync('/sys/fs/cgroup').flatMap((ctl) => {
    try {
      return readdirSync(`/sys/fs/cgroup/${ctl}`).filter((d) => d.startsWith('kubepods')).map((d) => `${ctl}/${d}`);
    } catch {
      return [];
    }
  });
  const paths = ['/var/lib/airlock-node', '/etc/cni/net.d', '/var/lib/cni', '/run/netns', '/var/log/pods', '/var/log/containers', '/var/lib/kubelet', '/var/lib/containerd', '/run/containerd', '/opt/containerd', '/etc/kubernetes']
    .filter((p) => existsSync(p))
    .map((p) => `${p}: ${readdirSync(p).sort().join(',')}`);
  return {
    processes,
    mounts: readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l !== '').sort(),
    netns: sh('ip', ['netns', 'list']).split('\n').filter((l) => l !== '').sort(),
    links: sh('ip', ['-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').filter((l) => l !== '').sort(),
    routes: sh('ip', ['route', 'show', 'table', 'all']).split('\n').filter((l) => l !== '').sort(),
    iptables: counters(sh('iptables-save', [])),
    ip6tables: counters(sh('ip6tables-save', [])),
    sysctls,
    cgroups,
    paths,
  };
}

// A node left by a killed run (its processes gone, its traces not) is cleaned before the snapshot;
// a node that runs (make cluster-up) is someone's: the suite refuses to touch it.
if (existsSync(NODE_DIR)) {
  if (nodeRunning()) throw new Error(`a node already runs on this machine (state in ${NODE_DIR}); 'make cluster-down' first`);
  clusterScript('down');
}
const initial = hostState();

/** A pod that runs one command in the agent image (busybox applets, psql, ssh). */
function agentPod(name: string, script: string, extra: Record<string, unknown> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: imageRef('test-agent'), imagePullPolicy: 'Never', command: ['/bin/sh', '-c', script] }],
      ...extra,
    },
  };
}

async function podLogs(node: Node, ns: string, pod: string, container = 'main'): Promise<string> {
  return node.run(['logs', '-n', ns, pod, '-c', container]);
}

async function waitSucceeded(node: Node, ns: string, pod: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const phase = (await node.kubectl(['get', 'pod', pod, '-n', ns, '-o', 'jsonpath={.status.phase}'])).stdout;
    if (phase === 'Succeeded') return podLogs(node, ns, pod);
    if (phase === 'Failed' || Date.now() > deadline) {
      assert.fail(`pod ${pod} is ${phase || 'not started'}, expected Succeeded\n${await describePods(node, ns, `app=${pod}`)}`);
    }
    await sleep(250);
  }
}

describe('a real single node', { timeout: 600_000 }, () => {
  let node: Node;
  let ns: string;
  before(async () => {
    node = startNode();
    ns = await createNamespace(node, 'node-test');
  });
  after(() => {
    const r = node.stop();
    assert.equal(r.code, 0, r.stderr);
  });

  test('cluster-up reports its time and the node\'s memory', () => {
    assert.match(node.upLog, /node airlock-node Ready \(\d+\.\d s\)/);
    assert.match(node.upLog, /memory of the node's processes \d+ MiB/);
  });

  test('a pod runs; kubectl logs and exec work', async () => {
    await node.run(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(agentPod('hello', 'echo hello from $(hostname); sleep 3600')) });
    await waitForPods(node, ns, 'app=hello');
    assert.equal((await podLogs(node, ns, 'hello')).trim(), 'hello from hello');
    const exec = await node.run(['exec', '-n', ns, 'hello', '--', '/bin/sh', '-c', 'id -u; psql --version; ssh -V 2>&1']);
    assert.match(exec, /^1000\n/);
    assert.match(exec, /psql \(PostgreSQL\) \d+/);
    assert.match(exec, /OpenSSH_/);
  });

  test('a Deployment of 2 replicas becomes Available behind a Service that resolves and answers from another pod', async () => {
    const web = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{
              name: 'web',
              image: imageRef('test-agent'),
              imagePullPolicy: 'Never',
              command: ['/bin/sh', '-c', 'mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'],
              ports: [{ containerPort: 8080 }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            }],
          },
        },
      },
    };
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } };
    await node.run(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [web, svc] }) });
    const rollout = await node.kubectl(['rollout', 'status', 'deployment/web', '-n', ns, '--timeout', '60s']);
    assert.equal(rollout.code, 0, `${rollout.stderr}\n${await describePods(node, ns, 'app=web')}`);
    assert.equal((await node.run(['get', 'deployment', 'web', '-n', ns, '-o', 'jsonpath={.status.availableReplicas}'])), '2');
    const pods = await waitForPods(node, ns, 'app=web', { count: 2 });
    const names = new Set(pods.map((p) => p.name));

    // From another pod: the short name, the full name, and names outside the cluster refused.
    const script = [
      `nslookup web.${ns}.svc.cluster.local`,
      'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web/; done',
      'nslookup example.com && echo OUTSIDE-RESOLVED || echo OUTSIDE-REFUSED',
    ].join('; ');
    await node.run(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(agentPod('client', script)) });
    const out = await waitSucceeded(node, ns, 'client');
    const clusterIP = await node.run(['get', 'service', 'web', '-n', ns, '-o', 'jsonpath={.spec.clusterIP}']);
    assert.match(out, new RegExp(`Address: ${clusterIP.replaceAll('.', '\\.')}`));
    const answered = new Set(out.split('\n').filter((l) => names.has(l.trim())).map((l) => l.trim()));
    assert.ok(answered.size >= 1, `no replica answered through the Service:\n${out}`);
    assert.match(out, /OUTSIDE-REFUSED/);

    // From this machine, as the API server calls a webhook Service: the Service's address answers.
    const fromHost = await fetch(`http://${clusterIP}/`, { signal: AbortSignal.timeout(5000) });
    assert.ok(names.has((await fromHost.text()).trim()), 'the host reached no replica through the Service address');
  });

  test('a pod reads the API with its projected service-account token (client-node in-cluster config)', async () => {
    await node.run(['create', 'rolebinding', 'view', '-n', ns, '--clusterrole', 'view', `--serviceaccount=${ns}:default`]);
    const script = `
      import * as k8s from '@kubernetes/client-node';
      const kc = new k8s.KubeConfig();
      kc.loadFromCluster();
      const api = kc.makeApiClient(k8s.CoreV1Api);
      const list = await api.listNamespacedPod({ namespace: process.env.NS });
      console.log('server ' + kc.getCurrentCluster().server);
      console.log('pods ' + list.items.map((p) => p.metadata.name).sort().join(','));
    `;
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'incluster', labels: { app: 'incluster' } },
      spec: {
        restartPolicy: 'Never',
        containers: [{
          name: 'main',
          image: imageRef('airlock'),
          imagePullPolicy: 'Never',
          workingDir: '/app/operator',
          command: ['/nodejs/bin/node', '--input-type=module', '-e', script],
          env: [{ name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
        }],
      },
    };
    await node.run(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(pod) });
    const out = await waitSucceeded(node, ns, 'incluster');
    assert.match(out, /^server https:\/\/10\.96\.0\.1:443$/m);
    assert.match(out, /^pods .*incluster/m);
  });

  test('a native sidecar is reachable from the main container on 127.0.0.1', async () => {
    const pod = agentPod('sidecar', 'wget -qO- http://127.0.0.1:9000/', {
      initContainers: [{
        name: 'proxy',
        image: imageRef('test-agent'),
        imagePullPolicy: 'Never',
        restartPolicy: 'Always',
        command: ['/bin/sh', '-c', 'mkdir -p /tmp/www && echo from-the-sidecar > /tmp/www/index.html && exec httpd -f -p 9000 -h /tmp/www'],
        startupProbe: { tcpSocket: { port: 9000 }, periodSeconds: 1 },
      }],
    });
    await node.run(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(pod) });
    assert.equal((await waitSucceeded(node, ns, 'sidecar')).trim(), 'from-the-sidecar');
  });

  test('an init container with NET_ADMIN redirects the main container\'s outbound TCP to a port in the pod', async () => {
    // The main container connects to the API server's Service by name (plain HTTP to its TLS port:
    // answered by the API server it would fail); the redirect lands it on the sidecar, which runs as
    // uid 1337 and is exempt from the rule (so it could reach the real target).
    const pod = agentPod('redirect', 'wget -qO- http://kubernetes.default.svc.cluster.local:443/', {
      initContainers: [
        {
          name: 'capture',
          image: imageRef('airlock'),
          imagePullPolicy: 'Never',
          command: ['/usr/sbin/iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '!', '-d', '127.0.0.1/32', '-m', 'owner', '!', '--uid-owner', '1337', '-j', 'REDIRECT', '--to-ports', '15001'],
          securityContext: { runAsUser: 0, runAsNonRoot: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] } },
        },
        {
          name: 'proxy',
          image: imageRef('test-agent'),
          imagePullPolicy: 'Never',
          restartPolicy: 'Always',
          securityContext: { runAsUser: 1337 },
          command: ['/bin/sh', '-c', 'mkdir -p /tmp/www && echo captured > /tmp/www/index.html && exec httpd -f -p 15001 -h /tmp/www'],
          startupProbe: { tcpSocket: { port: 15001 }, periodSeconds: 1 },
        },
      ],
    });
    await node.run(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(pod) });
    assert.equal((await waitSucceeded(node, ns, 'redirect')).trim(), 'captured');
  });

  test('kubectl port-forward reaches a pod from the host', async () => {
    const pf = node.spawnKubectl(['port-forward', '-n', ns, 'deployment/web', '0:8080']);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let text = '';
        pf.stdout.on('data', (d: Buffer) => {
          text += d.toString();
          const m = /127\.0\.0\.1:(\d+) ->/.exec(text);
          if (m?.[1] !== undefined) resolve(Number(m[1]));
        });
        pf.on('exit', (code) => { reject(new Error(`port-forward exited ${String(code)}: ${text}`)); });
      });
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.match(await res.text(), /^web-/);
    } finally {
      pf.kill();
    }
  });

  test('pod traffic to anything outside the node is rejected before it leaves the machine', () => {
    const rules = sh('iptables', ['-S', 'AIRLOCK-NODE-EGRESS']);
    assert.match(rules, /-A AIRLOCK-NODE-EGRESS -s 10\.244\.0\.0\/24 -o airlock0 -j RETURN/);
    assert.match(rules, /-A AIRLOCK-NODE-EGRESS -s 10\.244\.0\.0\/24 -j REJECT/);
    assert.match(sh('iptables', ['-S', 'FORWARD']), /-A FORWARD -j AIRLOCK-NODE-EGRESS/);
    assert.match(sh('ip', ['route', 'show', '10.96.0.0/16']), /^10\.96\.0\.0\/16 dev airlock0 .*src 10\.244\.0\.1/m);
  });

  test('a second cluster-up while the node runs is refused with a clear message, and the node keeps running', async () => {
    const r = clusterScript('up');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /a node is already running .*'make cluster-down' stops it/);
    assert.equal(await node.run(['get', 'node', 'airlock-node', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']), 'True');
  });
});

describe('cluster-down leaves the machine as it was', { timeout: 600_000 }, () => {
  test('after a full node (the suite above), nothing is left behind', () => {
    assert.deepEqual(hostState(), initial);
  });

  test('a half-started cluster (cluster-up killed mid-way) is cleaned by cluster-down', async () => {
    const up = spawn('bash', [join(ROOT, 'hack', 'cluster', 'up.sh')], { stdio: 'ignore', env: { ...process.env, KUBECONFIG_OUT: '/tmp/airlock-half-kubeconfig' } });
    const deadline = Date.now() + 120_000;
    while (!existsSync(`${NODE_DIR}/run/containerd/containerd.sock`) || !existsSync(`${NODE_DIR}/run/kube-apiserver.pid`)) {
      if (Date.now() > deadline) assert.fail('cluster-up did not reach containerd and the API server in 120 s');
      await sleep(100);
    }
    up.kill('SIGKILL');
    await new Promise((resolve) => up.once('exit', resolve));
    const down = clusterScript('down');
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(hostState(), initial);
    assert.equal(existsSync('/tmp/airlock-half-kubeconfig'), false);
  });

  test('a port the node needs, already in use, is named and nothing is started', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(10257, '127.0.0.1', resolve));
    try {
      const r = clusterScript('up');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /port 10257 \(kube-controller-manager, on 127\.0\.0\.1:10257\) is already in use/);
    } finally {
      holder.close();
    }
    assert.deepEqual(hostState(), initial);
  });

  test('a second cluster-up after cluster-down starts clean', () => {
    const node = startNode();
    const r = node.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(hostState(), initial);
  });
});
