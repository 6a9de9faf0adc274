import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter } from 'prom-client';
import { metricsRegistry } from '../src/metrics.ts';

test("a registry of its own with prom-client's default process metrics", async () => {
  const registry = metricsRegistry();
  const text = await registry.metrics();
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.match(registry.contentType, /^text\/plain/);
});

test('two registries share nothing: the same metric name registers in each, counts stay apart', async () => {
  const a = metricsRegistry();
  const b = metricsRegistry();
  const inA = new Counter({ name: 'airlock_kube_test_total', help: 'test', registers: [a] });
  const inB = new Counter({ name: 'airlock_kube_test_total', help: 'test', registers: [b] });
  inA.inc(2);
  inB.inc(5);
  assert.match(await a.metrics(), /^airlock_kube_test_total 2$/m);
  assert.match(await b.metrics(), /^airlock_kube_test_total 5$/m);
});
