/** A Prometheus registry of a process's own (no global state), with prom-client's default process metrics. */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function metricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
