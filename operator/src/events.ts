/**
 * Kubernetes Events (events.k8s.io/v1) for condition transitions, reported by the controller
 * `airlock.dev/operator`. An event that cannot be written is logged and dropped: events are
 * best effort, status is the record.
 */
import { EventsV1Event, V1MicroTime, V1ObjectMeta, V1ObjectReference } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Condition } from './conditions.ts';
import type { Kube } from './kube.ts';

export const REPORTING_CONTROLLER = 'airlock.dev/operator';

export interface Regarding {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly resourceVersion?: string };
}

/** the Event for one transition; pure */
export function transitionEvent(regarding: Regarding, condition: Condition, now: number, instance: string): EventsV1Event {
  const name = regarding.metadata.name ?? '';
  const namespace = regarding.metadata.namespace ?? 'default';
  // the client's model classes, filled in: its serializer writes eventTime with microseconds (V1MicroTime)
  return Object.assign(new EventsV1Event(), {
    metadata: Object.assign(new V1ObjectMeta(), { name: `${name}.${now.toString(16)}${randomBytes(4).toString('hex')}`, namespace }),
    eventTime: new V1MicroTime(now),
    type: condition.status === 'True' ? 'Normal' : 'Warning',
    reason: condition.reason,
    action: `Set${condition.type}`,
    note: `${condition.type} is ${condition.status}: ${condition.message}`.slice(0, 1024),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: instance.slice(0, 128),
    regarding: Object.assign(new V1ObjectReference(), {
      apiVersion: regarding.apiVersion,
      kind: regarding.kind,
      name,
      namespace,
      ...(regarding.metadata.uid === undefined ? {} : { uid: regarding.metadata.uid }),
    }),
  });
}

export class EventRecorder {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #instance: string;

  constructor({ kube, clock, log, instance }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly instance: string }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#instance = instance;
  }

  async record(regarding: Regarding, condition: Condition): Promise<void> {
    const body = transitionEvent(regarding, condition, this.#clock.now(), this.#instance);
    try {
      await this.#kube.events.createNamespacedEvent({ namespace: body.metadata?.namespace ?? 'default', body });
    } catch (err) {
      this.#log.warn('event not recorded', { kind: regarding.kind, name: regarding.metadata.name, reason: condition.reason, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
