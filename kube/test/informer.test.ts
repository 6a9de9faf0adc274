/**
 * SupervisedInformer against a real kube-apiserver + etcd: it lists and watches (from a path and
 * its list call, or from an informer the caller made), reports every event, says when it has
 * synced, and after an error restarts with doubling, capped backoff on the clock it is given,
 * until what it watches exists; stop() cancels a pending restart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { CoreV1Api, CustomObjectsApi, KubeConfig, makeInformer, type KubernetesListObject, type KubernetesObject, type V1ConfigMap } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../e2e/src/controlplane.ts';
import { until } from '../../e2e/src/wait.ts';
import { SupervisedInformer, createJsonLogger, systemClock, type Clock, type InformerEvent } from '../src/index.ts';

const NS = 'kube-informer';
const GROUP = 'kubetest.airlock.dev';

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: gadgets.${GROUP} }
spec:
  group: ${GROUP}
  scope: Namespaced
  names: { plural: gadgets, singular: gadget, kind: Gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;

let cp: ControlPlane;
let config: KubeConfig;
let core: CoreV1Api;

/** a clock whose timers fire only when the test says; it remembers every delay asked for */
class ManualClock implements Clock {
  readonly delays: number[] = [];
  #timers: (() => void)[] = [];

  now(): number {
    return Date.now();
  }

  setTimer(ms: number, fn: () => void): () => void {
    this.delays.push(ms);
    this.#timers.push(fn);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== fn);
    };
  }

  get pending(): number {
    return this.#timers.length;
  }

  fire(): void {
    const [next] = this.#timers.splice(0, 1);
    assert.ok(next !== undefined, 'no timer is pending');
    next();
  }
}

function capture(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createJsonLogger> } {
  const lines: Record<string, unknown>[] = [];
  const log = createJsonLogger(
    'test',
    'debug',
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { lines, log };
}

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const waitFor = <T>(what: string, read: () => T, accept: (v: T) => boolean): Promise<T> => until(what, () => Promise.resolve(read()), accept, { timeoutMs: 30_000, intervalMs: 50 });

before(async () => {
  cp = startControlPlane();
  config = new KubeConfig();
  config.loadFromFile(cp.kubeconfig);
  core = config.makeApiClient(CoreV1Api);
  await ok(['create', 'namespace', NS]);
});

after(() => {
  cp.stop();
});

describe('SupervisedInformer against a real API server', () => {
  test('from a path and its list call: lists, watches, reports add/update/delete and says it has synced', async () => {
    await ok(['create', 'configmap', 'first', '-n', NS, '--from-literal=k=1']);
    const events: [InformerEvent, string][] = [];
    const { lines, log } = capture();
    const informer = new SupervisedInformer<V1ConfigMap>({
      name: 'configmaps',
      config,
      path: `/api/v1/namespaces/${NS}/configmaps`,
      list: () => core.listNamespacedConfigMap({ namespace: NS }),
      clock: systemClock,
      log,
      onEvent: (event, object) => events.push([event, object.metadata?.name ?? '']),
    });
    assert.equal(informer.synced, false);
    assert.equal(informer.name, 'configmaps');
    informer.start();
    try {
      await waitFor('synced', () => informer.synced, (s) => s);
      assert.deepEqual(events.filter(([, n]) => n === 'first'), [['add', 'first']]);
      assert.equal(informer.cache.get('first', NS)?.data?.['k'], '1');
      const synced = lines.find((l) => l['message'] === 'informer synced');
      assert.deepEqual({ ...synced, timestamp: undefined }, { level: 'info', message: 'informer synced', informer: 'configmaps', component: 'test', timestamp: undefined });

      await ok(['create', 'configmap', 'second', '-n', NS]);
      await waitFor('add second', () => events, (e) => e.some(([ev, n]) => ev === 'add' && n === 'second'));
      await ok(['patch', 'configmap', 'first', '-n', NS, '--type=merge', '-p', '{"data":{"k":"2"}}']);
      await waitFor('update first', () => events, (e) => e.some(([ev, n]) => ev === 'update' && n === 'first'));
      assert.equal(informer.cache.get('first', NS)?.data?.['k'], '2');
      await ok(['delete', 'configmap', 'first', '-n', NS]);
      await waitFor('delete first', () => events, (e) => e.some(([ev, n]) => ev === 'delete' && n === 'first'));
      assert.equal(informer.cache.get('first', NS), undefined);
      assert.equal(lines.filter((l) => l['level'] === 'warn').length, 0, JSON.stringify(lines));
    } finally {
      await informer.stop();
    }
    assert.equal(informer.synced, false);
  });

  test('from an informer the caller made (here with a label selector); without onEvent it only fills its cache', async () => {
    await ok(['create', 'configmap', 'labelled', '-n', NS]);
    await ok(['label', 'configmap', 'labelled', '-n', NS, 'team=blue']);
    await ok(['create', 'configmap', 'unlabelled', '-n', NS]);
    const path = `/api/v1/namespaces/${NS}/configmaps`;
    const events: string[] = [];
    const { log } = capture();
    const selected = new SupervisedInformer<V1ConfigMap>({
      name: 'blue',
      informer: makeInformer(config, path, () => core.listNamespacedConfigMap({ namespace: NS, labelSelector: 'team=blue' }), 'team=blue'),
      clock: systemClock,
      log,
      onEvent: (event, object) => events.push(`${event} ${object.metadata?.name ?? ''}`),
    });
    const quiet = new SupervisedInformer<V1ConfigMap>({ name: 'all', config, path, list: () => core.listNamespacedConfigMap({ namespace: NS }), clock: systemClock, log });
    selected.start();
    quiet.start();
    try {
      await waitFor('both synced', () => selected.synced && quiet.synced, (s) => s);
      assert.deepEqual(events, ['add labelled']);
      assert.deepEqual(selected.cache.list(NS).map((c) => c.metadata?.name), ['labelled']);
      assert.ok(quiet.cache.get('unlabelled', NS) !== undefined);
      await ok(['label', 'configmap', 'unlabelled', '-n', NS, 'team=blue']);
      await waitFor('the newly labelled one', () => events, (e) => e.includes('add unlabelled'));
    } finally {
      await selected.stop();
      await quiet.stop();
    }
  });

  test('fails while its resource does not exist, restarts with doubling capped backoff, syncs once it does, and backs off from the start again after', async () => {
    const clock = new ManualClock();
    const { lines, log } = capture();
    const custom = config.makeApiClient(CustomObjectsApi);
    let restarts = 0;
    const events: string[] = [];
    const informer = new SupervisedInformer<KubernetesObject>({
      name: 'gadgets',
      config,
      path: `/apis/${GROUP}/v1/gadgets`,
      list: async () => (await custom.listClusterCustomObject({ group: GROUP, version: 'v1', plural: 'gadgets' })) as KubernetesListObject<KubernetesObject>,
      clock,
      log,
      onEvent: (event, object) => events.push(`${event} ${object.metadata?.name ?? ''}`),
      onRestart: () => restarts++,
      initialBackoffMs: 100,
      maxBackoffMs: 400,
    });
    informer.start();
    try {
      for (let n = 1; n <= 4; n++) {
        await waitFor(`failure ${String(n)}`, () => clock.delays.length, (d) => d >= n);
        assert.equal(informer.synced, false);
        assert.equal(restarts, n - 1);
        assert.equal(clock.pending, 1);
        clock.fire();
      }
      await waitFor('failure 5', () => clock.delays.length, (d) => d >= 5);
      assert.deepEqual(clock.delays, [100, 200, 400, 400, 400]);
      const warn = lines.find((l) => l['level'] === 'warn');
      assert.equal(warn?.['message'], 'informer failed; restarting');
      assert.equal(warn['informer'], 'gadgets');
      assert.equal(warn['retryInMs'], 100);
      assert.equal(typeof warn['error'], 'string');
      assert.notEqual(warn['error'], '');

      await ok(['apply', '-f', '-'], crd);
      await ok(['wait', '--for', 'condition=Established', `crd/gadgets.${GROUP}`, '--timeout', '60s']);
      await ok(['apply', '-f', '-'], `apiVersion: ${GROUP}/v1\nkind: Gadget\nmetadata: { name: g1, namespace: ${NS} }\n`);
      // a CRD just Established may still answer 429 while its watch cache starts: restart until synced
      await until(
        'synced after the CRD exists',
        async () => {
          if (clock.pending > 0) clock.fire();
          await new Promise((resolve) => setTimeout(resolve, 100));
          return informer.synced;
        },
        (s) => s,
        { timeoutMs: 30_000, intervalMs: 10 },
      );
      assert.ok(restarts >= 5);
      assert.deepEqual(events, ['add g1']);
      const failuresBefore = clock.delays.length;

      // the watched resource goes away: the informer fails again, and its backoff starts over
      await ok(['delete', 'crd', `gadgets.${GROUP}`]);
      await waitFor('a failure after the CRD is deleted', () => clock.delays.length, (d) => d > failuresBefore);
      assert.equal(clock.delays[failuresBefore], 100);
      assert.equal(informer.synced, false);

      // stop() with a restart pending cancels it
      assert.equal(clock.pending, 1);
      await informer.stop();
      assert.equal(clock.pending, 0);
      assert.equal(informer.synced, false);
    } finally {
      await informer.stop();
    }
  });

  test('stop() cancels a pending restart; start() by hand runs at once and keeps the backoff where it was', async () => {
    const clock = new ManualClock();
    const { log } = capture();
    let restarts = 0;
    const informer = new SupervisedInformer<KubernetesObject>({
      name: 'missing',
      config,
      path: `/apis/${GROUP}/v1/nothings`,
      list: () => Promise.reject(new Error('list refused')),
      clock,
      log,
      onRestart: () => restarts++,
    });
    informer.start();
    await waitFor('the first failure', () => clock.delays.length, (d) => d === 1);
    assert.deepEqual(clock.delays, [1000]);
    await informer.stop();
    assert.equal(clock.pending, 0);
    informer.start();
    await waitFor('a failure after the restart by hand', () => clock.delays.length, (d) => d === 2);
    assert.deepEqual(clock.delays, [1000, 2000]);
    await informer.stop();
    assert.equal(restarts, 0);
  });
});
