/** The webhook's Prometheus metrics, in a registry of its own (no global state). */
import { Counter, Histogram } from 'prom-client';
import { metricsRegistry } from '@airlock/kube';

/** the webhook that answered: the last segment of its path */
export type WebhookName = 'pods' | 'approvalrequests' | 'policies';
/** allowed (with or without a patch), denied, or error (a malformed review or a handler failure) */
export type AdmissionResult = 'allowed' | 'patched' | 'denied' | 'error';

export class WebhookMetrics {
  readonly registry = metricsRegistry();
  readonly requests = new Counter({
    name: 'airlock_webhook_admission_requests_total',
    help: 'Admission requests by webhook and result (allowed, patched, denied, error).',
    labelNames: ['webhook', 'result'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'airlock_webhook_admission_duration_seconds',
    help: 'Time from a request body read to its response written, by webhook.',
    labelNames: ['webhook'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly tlsReloads = new Counter({
    name: 'airlock_webhook_tls_reloads_total',
    help: 'Serving certificate loads, by result (loaded, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: 'airlock_webhook_informer_restarts_total',
    help: 'Informer restarts after an error, by informer.',
    labelNames: ['informer'] as const,
    registers: [this.registry],
  });
}
