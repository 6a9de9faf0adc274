import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { HealthServer } from '../src/server.ts';

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
