/**
 * One reconcile: read the latest object from the cache, plan, and when its status changed
 * replace /status (with the cached resourceVersion: a stale write gets a conflict and the key is
 * retried) and record an Event per condition transition.
 */
import type { Logger } from 'winston';
import { GROUP, VERSION } from '@airlock/api';
import type { Clock } from '@airlock/kube';
import { OperatorError } from './errors.ts';
import type { EventRecorder } from './events.ts';
import type { Kube } from './kube.ts';
import { parseKey } from './keys.ts';
import { planReconcile } from './plan.ts';
import type { ClusterView } from './view.ts';

export type ReconcileOutcome = 'deleted' | 'unchanged' | 'updated';

export class Reconciler {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #view: ClusterView;
  readonly #events: EventRecorder;

  constructor({ kube, clock, log, view, events }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly view: ClusterView; readonly events: EventRecorder }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#view = view;
    this.#events = events;
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    const objectKey = parseKey(key);
    const plan = planReconcile(objectKey, this.#view, new Date(this.#clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    if (plan.action === 'none') return plan.why;
    const { object } = plan;
    try {
      await this.#kube.customObjects.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace: objectKey.namespace,
        plural: plan.plural,
        name: objectKey.name,
        body: { ...object, status: plan.status },
      });
    } catch (err) {
      throw new OperatorError('StatusWriteFailed', `status of ${key} not written: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    for (const condition of plan.transitions) {
      this.#log.info('condition changed', { key, kind: objectKey.kind, type: condition.type, status: condition.status, reason: condition.reason, message: condition.message });
      await this.#events.record(object, condition);
    }
    return 'updated';
  }
}
