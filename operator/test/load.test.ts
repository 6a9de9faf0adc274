/**
 * What keeps the operator fast with 1,000 connections: one connection pool for every API call,
 * Events written in the background a few at a time, informer updates that only changed status
 * enqueue nothing, compile verdicts shared by objects with the same content. The API-facing parts
 * run against a real kube-apiserver + etcd.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { createJsonLogger, systemClock } from '@airlock/kube';
import { startControlPlane, type ControlPlane } from '../../e2e/src/controlplane.ts';
import { MeaningfulChanges } from '../src/changes.ts';
import { Remembered, compileApprovalRule, compileConnectionBundle, compileMaskingPolicy } from '../src/compile.ts';
import { EventRecorder } from '../src/events.ts';
import { kubeFromConfig, loadKubeConfig, type Kube } from '../src/kube.ts';
import { approvalRule, connection, maskingPolicy } from './fixtures.ts';

/** sockets this process holds open */
function sockets(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

describe('against a real API server', () => {
  let cp: ControlPlane;
  let kube: Kube;

  before(() => {
    cp = startControlPlane();
    kube = kubeFromConfig(loadKubeConfig(cp.kubeconfig));
  });

  after(() => {
    cp.stop();
  });

  test('every API call goes through one connection pool: 100 calls, not 100 TLS connections', async () => {
    await kube.core.listNamespace();
    const before = sockets();
    for (let i = 0; i < 100; i++) await kube.core.listNamespace();
    await Promise.all(Array.from({ length: 50 }, () => kube.core.listNamespace()));
    const opened = sockets() - before;
    assert.ok(opened <= 4, `${String(opened)} sockets opened for 150 calls`);
    // client-node's own clients open one connection per call (the reason for the pool): the test can fail
    const plain = kube.config.makeApiClient(CoreV1Api);
    const beforePlain = sockets();
    for (let i = 0; i < 20; i++) await plain.listNamespace();
    assert.ok(sockets() - beforePlain >= 10, 'client-node opened fewer connections than expected: is the pool still needed?');
  });

  test('Events are written in the background, at most `concurrency` at once, each record resolving once written', async () => {
    await cp.kubectl(['create', 'namespace', 'load-events']);
    const log = createJsonLogger('test', 'error');
    let inFlight = 0;
    let most = 0;
    const counting: Kube = {
      ...kube,
      events: new Proxy(kube.events, {
        get(target, property, receiver) {
          const value: unknown = Reflect.get(target, property, receiver);
          if (property !== 'createNamespacedEvent' || typeof value !== 'function') return value;
          return async (...args: unknown[]) => {
            inFlight++;
            most = Math.max(most, inFlight);
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            } finally {
              inFlight--;
            }
          };
        },
      }),
    };
    const recorder = new EventRecorder({ kube: counting, clock: systemClock, log, instance: 'test', limits: { concurrency: 3, maxPending: 1000 } });
    const regarding = { apiVersion: 'airlock.dev/v1alpha1', kind: 'AgentConnection', metadata: { name: 'c', namespace: 'load-events', uid: '1' } };
    const written = Array.from({ length: 30 }, (_, i) => recorder.record(regarding, { type: 'Ready', status: 'True', reason: 'ConnectionReady', message: `m${String(i)}`, lastTransitionTime: '2026-12-05T00:00:00Z' }));
    assert.ok(recorder.backlog > 0);
    await Promise.all(written);
    await recorder.drain();
    assert.equal(recorder.backlog, 0);
    assert.ok(most <= 3 && most >= 2, `at most ${String(most)} at once`);
    const listed = await kube.events.listNamespacedEvent({ namespace: 'load-events' });
    assert.equal(listed.items.length, 30);
  });
});

describe('informer updates that matter', () => {
  const base = { metadata: { namespace: 'agents', name: 'orders-db', uid: 'u1', generation: 1, labels: { team: 'a' } } };

  test('an update that changed only status (resourceVersion, managedFields) enqueues nothing; spec, labels and annotations do', () => {
    const changes = new MeaningfulChanges();
    assert.equal(changes.matters('add', base), true);
    assert.equal(changes.matters('update', { ...base, status: { conditions: [] } } as typeof base), false);
    assert.equal(changes.matters('update', { metadata: { ...base.metadata, generation: 2 } }), true);
    assert.equal(changes.matters('update', { metadata: { ...base.metadata, generation: 2, labels: { team: 'b' } } }), true);
    assert.equal(changes.matters('update', { metadata: { ...base.metadata, generation: 2, labels: { team: 'b' }, annotations: { 'airlock.dev/bypass-prevented-by': 'np' } } }), true);
    assert.equal(changes.matters('update', { metadata: { ...base.metadata, generation: 2, labels: { team: 'b' }, annotations: { 'airlock.dev/bypass-prevented-by': 'np' } } }), false);
    assert.equal(changes.matters('delete', base), true);
    assert.equal(changes.size, 0);
    // recreated under the same name: a new uid is a change even with the same generation
    assert.equal(changes.matters('update', base), true);
    assert.equal(changes.matters('update', { metadata: { ...base.metadata, uid: 'u2' } }), true);
  });
});

describe('compile verdicts remembered by content', () => {
  test('Remembered computes once per key and forgets the oldest past its limit', () => {
    const memo = new Remembered<number>(2);
    let computed = 0;
    const get = (key: string): number => memo.get(key, () => ++computed);
    assert.equal(get('a'), 1);
    assert.equal(get('a'), 1);
    assert.equal(get('b'), 2);
    assert.equal(get('c'), 3);
    assert.equal(memo.size, 2);
    assert.equal(get('a'), 4);
  });

  test('objects with the same content share a verdict; a change of content is judged again', () => {
    const good = maskingPolicy('pii', 'EMP-[0-9]{6}');
    const twin = maskingPolicy('pii-copy', 'EMP-[0-9]{6}');
    assert.equal(compileMaskingPolicy(good), compileMaskingPolicy(twin));
    const bad = compileMaskingPolicy(maskingPolicy('pii', '(?<=x)y'));
    assert.ok(!bad.ok);
    assert.match(bad.message, /employee-ids/);
    // an ApprovalRule's verdict does not depend on its selector, and names the rule
    const rule = approvalRule('ops', 'ls');
    assert.equal(compileApprovalRule(rule), compileApprovalRule({ ...rule, spec: { ...rule.spec, connectionSelector: { matchLabels: { other: 'x' } } } }));
    // a bundle's digest follows the connection's spec and the policies' specs
    const orders = connection('orders-db', { data: 'pii' });
    const first = compileConnectionBundle(orders, [good], []);
    assert.ok(first.ok);
    assert.equal(compileConnectionBundle(orders, [good], []), first);
    const moved = compileConnectionBundle({ ...orders, spec: { ...orders.spec, target: { ...orders.spec.target, port: 6543 } } }, [good], []);
    assert.ok(moved.ok);
    assert.notEqual(moved.digest, first.digest);
  });
});
