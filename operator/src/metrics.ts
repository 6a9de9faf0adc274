/** The operator's Prometheus metrics, in a registry of its own (no global state). */
import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '@airlock/kube';

export type ReconcileResult = 'success' | 'error';

export class OperatorMetrics {
  readonly registry = metricsRegistry();
  readonly reconciles = new Counter({
    name: 'airlock_operator_reconcile_total',
    help: 'Reconciles by kind and result.',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'airlock_operator_reconcile_duration_seconds',
    help: 'Time one reconcile took, by kind.',
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly statusWrites = new Counter({
    name: 'airlock_operator_status_writes_total',
    help: 'Status updates written to the API server, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly controlRequests = new Counter({
    name: 'airlock_operator_control_requests_total',
    help: 'Control-API requests by route and HTTP status code.',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });
  readonly controlRefusals = new Counter({
    name: 'airlock_operator_control_refusals_total',
    help: 'Control-API requests refused (401/403 and other errors), by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly bundleDuration = new Histogram({
    name: 'airlock_operator_control_bundle_seconds',
    help: 'Time to answer GET /v1/bundle (token verification and assembly), long-poll waiting excluded.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly longPolls = new Gauge({
    name: 'airlock_operator_control_long_polls',
    help: 'Bundle requests waiting for a change right now.',
    registers: [this.registry],
  });
  readonly queueDepth: Gauge;
  readonly informerRestarts = new Counter({
    name: 'airlock_operator_informer_restarts_total',
    help: 'Informer restarts after an error, by informer.',
    labelNames: ['informer'] as const,
    registers: [this.registry],
  });

  constructor(queueDepth: () => number) {
    this.queueDepth = new Gauge({
      name: 'airlock_operator_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers: [this.registry],
      collect() {
        this.set(queueDepth());
      },
    });
  }
}
