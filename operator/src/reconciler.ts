/**
 * One reconcile: read the latest object from the cache, plan, and when its status changed
 * replace /status (with the cached resourceVersion: a stale write gets a conflict and the key is
 * retried) and hand an Event per notable condition transition to the recorder, which writes it
 * in the background.
 *
 * Write-through: the object the API server returned for our own status write stands in for the
 * cached one while the informer has not delivered it yet (the cached resourceVersion is still
 * the one we wrote over). Without it, a key reconciled again soon after its write (its Secret
 * arrived, a policy selected it) would plan from the stale object and fail with a conflict.
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
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';

type Reconciled = AgentConnection | MaskingPolicy | ApprovalRule;

/** our last status write of a key: the resourceVersion it replaced and the object the server returned */
interface Written {
  readonly before: string | undefined;
  readonly after: Reconciled;
}

/** past this many remembered writes, the ones the cache has caught up with are forgotten */
const WRITTEN_SWEEP = 256;

export type ReconcileOutcome = 'deleted' | 'unchanged' | 'updated';

export class Reconciler {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #view: ClusterView;
  readonly #events: EventRecorder;
  readonly #written = new Map<string, Written>();

  constructor({ kube, clock, log, view, events }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly view: ClusterView; readonly events: EventRecorder }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#view = view;
    this.#events = events;
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    const objectKey = parseKey(key);
    const plan = planReconcile(objectKey, this.#overlay(key), new Date(this.#clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    if (plan.action === 'none') return plan.why;
    const { object } = plan;
    let written: unknown;
    try {
      written = await this.#kube.customObjects.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace: objectKey.namespace,
        plural: plan.plural,
        name: objectKey.name,
        body: { ...object, status: plan.status },
      });
    } catch (err) {
      this.#written.delete(key);
      throw new OperatorError('StatusWriteFailed', `status of ${key} not written: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#remember(key, object.metadata.resourceVersion, written);
    for (const condition of plan.transitions) {
      this.#log.info('condition changed', { key, kind: objectKey.kind, type: condition.type, status: condition.status, reason: condition.reason, message: condition.message });
      void this.#events.record(object, condition);
    }
    return 'updated';
  }

  /** the cache, except that the object of `key` is our own last write while the cache still holds what it replaced */
  #overlay(key: string): ClusterView {
    const written = this.#written.get(key);
    if (written === undefined) return this.#view;
    const { namespace, name } = parseKey(key);
    const pick = <T extends Reconciled>(cached: T | undefined): T | undefined => {
      if (cached !== undefined && cached.metadata.uid === written.after.metadata.uid && cached.metadata.resourceVersion === written.before) return written.after as T;
      this.#written.delete(key);
      return cached;
    };
    const view = this.#view;
    return {
      ...view,
      connection: (ns, n) => (ns === namespace && n === name ? pick(view.connection(ns, n)) : view.connection(ns, n)),
      maskingPolicy: (ns, n) => (ns === namespace && n === name ? pick(view.maskingPolicy(ns, n)) : view.maskingPolicy(ns, n)),
      approvalRule: (ns, n) => (ns === namespace && n === name ? pick(view.approvalRule(ns, n)) : view.approvalRule(ns, n)),
      connections: (ns) => view.connections(ns),
      maskingPolicies: (ns) => view.maskingPolicies(ns),
      approvalRules: (ns) => view.approvalRules(ns),
      secretKeys: (ns) => view.secretKeys(ns),
    };
  }

  #remember(key: string, before: string | undefined, written: unknown): void {
    const after = written as Reconciled | undefined;
    if (after?.metadata === undefined || after.metadata.resourceVersion === undefined) return;
    this.#written.set(key, { before, after });
    if (this.#written.size <= WRITTEN_SWEEP) return;
    // forget the writes the cache has caught up with (or that a newer change replaced)
    for (const [k, w] of this.#written) {
      const { kind, namespace, name } = parseKey(k);
      const cached = kind === 'AgentConnection' ? this.#view.connection(namespace, name) : kind === 'MaskingPolicy' ? this.#view.maskingPolicy(namespace, name) : this.#view.approvalRule(namespace, name);
      if (cached?.metadata.resourceVersion !== w.before) this.#written.delete(k);
    }
  }
}
