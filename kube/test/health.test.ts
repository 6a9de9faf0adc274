import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { HealthServer } from '../src/health.ts';

describe('HealthServer (real HTTP on loopback)', () => {
  test('/healthz, /readyz following the probe, /metrics from the registry, 404 and 405', async () => {
    let waiting: string[] = ['informer Secret'];
    const registry = new Registry();
    new Counter({ name: 'airlock_test_total', help: 'test', registers: [registry] }).inc(3);
    const server = new HealthServer({ probe: { notReady: () => waiting }, registry });
    const { port } = await server.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    try {
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const notReady = await fetch(`${base}/readyz`);
      assert.equal(notReady.status, 503);
      assert.equal(await notReady.text(), 'not ready: informer Secret\n');
      waiting = [];
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const metrics = await fetch(`${base}/metrics`);
      assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(await metrics.text(), /^airlock_test_total 3$/m);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
      assert.equal((await fetch(`${base}/healthz`, { method: 'POST' })).status, 405);
    } finally {
      await server.close();
    }
  });
});

describe('HealthServer details', () => {
  test('HEAD and query strings are served; a registry that fails gives 500 with its message', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'airlock_test_broken',
      help: 'test',
      registers: [registry],
      collect() {
        throw new Error('collector broke');
      },
    });
    const server = new HealthServer({ probe: { notReady: () => [] }, registry });
    const { port } = await server.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    try {
      const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      assert.equal((await fetch(`${base}/readyz?verbose=1`)).status, 200);
      const put = await fetch(`${base}/metrics`, { method: 'PUT' });
      assert.equal(put.status, 405);
      assert.equal(put.headers.get('allow'), 'GET, HEAD');
      const broken = await fetch(`${base}/metrics`);
      assert.equal(broken.status, 500);
      assert.equal(await broken.text(), 'collector broke\n');
    } finally {
      await server.close();
    }
  });

  test('close() returns promptly with a keep-alive connection open, and is harmless before listen()', async () => {
    const idle = new HealthServer({ probe: { notReady: () => [] }, registry: new Registry() });
    await idle.close();
    const server = new HealthServer({ probe: { notReady: () => [] }, registry: new Registry() });
    const { port } = await server.listen('127.0.0.1', 0);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n');
    await once(socket, 'data');
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 1000);
    socket.destroy();
  });

  test('listen() rejects when the port is taken', async () => {
    const first = new HealthServer({ probe: { notReady: () => [] }, registry: new Registry() });
    const { port } = await first.listen('127.0.0.1', 0);
    const second = new HealthServer({ probe: { notReady: () => [] }, registry: new Registry() });
    try {
      await assert.rejects(second.listen('127.0.0.1', port), { code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
  });
});
