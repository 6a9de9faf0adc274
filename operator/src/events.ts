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

/** how many Events are written at once, and how many may wait before the oldest is dropped */
export interface EventRecorderLimits {
  readonly concurrency: number;
  readonly maxPending: number;
}

export const DEFAULT_EVENT_LIMITS: EventRecorderLimits = { concurrency: 4, maxPending: 5000 };

/**
 * Writes Events in the background, a few at a time: a reconcile hands its transitions over and
 * goes on (its status write is the record; an Event is one more API round trip it need not wait
 * for). `record` resolves once the Event is written, dropped or failed; it never rejects.
 */
export class EventRecorder {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #limits: EventRecorderLimits;
  /** the Events waiting: their bodies, made when recorded (not the objects they regard: those may be large) */
  readonly #pending: { readonly body: EventsV1Event; readonly settle: () => void }[] = [];
  readonly #idle: (() => void)[] = [];
  #inFlight = 0;
  #dropped = 0;

  constructor({ kube, clock, log, instance, limits = DEFAULT_EVENT_LIMITS }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly instance: string; readonly limits?: EventRecorderLimits }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#instance = instance;
    this.#limits = limits;
  }

  /** queues the Event of one transition (its time is now); resolves when it is written or given up */
  record(regarding: Regarding, condition: Condition): Promise<void> {
    const body = transitionEvent(regarding, condition, this.#clock.now(), this.#instance);
    return new Promise((settle) => {
      this.#pending.push({ body, settle });
      if (this.#pending.length > this.#limits.maxPending) {
        this.#pending.shift()?.settle();
        if (this.#dropped++ % 100 === 0) this.#log.warn('too many Events waiting; dropping the oldest', { dropped: this.#dropped, maxPending: this.#limits.maxPending });
      }
      this.#pump();
    });
  }

  /** Events queued or being written */
  get backlog(): number {
    return this.#pending.length + this.#inFlight;
  }

  /** resolves when every queued Event is written or given up, or after `timeoutMs` */
  drain(timeoutMs = 5000): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.#clock.setTimer(timeoutMs, resolve);
      this.#idle.push(() => {
        cancel();
        resolve();
      });
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#limits.concurrency) {
      const next = this.#pending.shift();
      if (next === undefined) break;
      this.#inFlight++;
      void this.#write(next.body).finally(() => {
        this.#inFlight--;
        next.settle();
        this.#pump();
        if (this.backlog === 0) for (const idle of this.#idle.splice(0)) idle();
      });
    }
  }

  async #write(body: EventsV1Event): Promise<void> {
    try {
      await this.#kube.events.createNamespacedEvent({ namespace: body.metadata?.namespace ?? 'default', body });
    } catch (err) {
      this.#log.warn('event not recorded', { kind: body.regarding?.kind, name: body.regarding?.name, reason: body.reason, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
