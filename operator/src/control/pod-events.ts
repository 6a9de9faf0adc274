/**
 * Events on agent pods about the control API (a refused token, a connection left out of the
 * bundle), from the controller airlock.dev/operator. The same (pod, reason) is reported at most
 * once per `intervalMs`: a sidecar retrying every few seconds must not flood the namespace.
 * Best effort, like every Event: a failure is logged.
 */
import { randomBytes } from 'node:crypto';
import { EventsV1Event, V1MicroTime, V1ObjectMeta, V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import { REPORTING_CONTROLLER } from '../events.ts';
import type { Kube } from '../kube.ts';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export class PodEvents {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #intervalMs: number;
  readonly #last = new Map<string, number>();

  constructor({ kube, clock, log, instance, intervalMs = 300_000 }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly instance: string; readonly intervalMs?: number }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#instance = instance;
    this.#intervalMs = intervalMs;
  }

  /** records a Warning on the pod unless the same one was recorded within the interval; never throws */
  async warn(pod: PodRef, reason: string, action: string, note: string): Promise<void> {
    const now = this.#clock.now();
    const key = `${pod.namespace}/${pod.name}/${pod.uid}/${reason}/${note}`;
    const last = this.#last.get(key);
    if (last !== undefined && now - last < this.#intervalMs) return;
    this.#last.set(key, now);
    if (this.#last.size > 10_000) {
      for (const [k, at] of this.#last) if (now - at >= this.#intervalMs) this.#last.delete(k);
    }
    const body = Object.assign(new EventsV1Event(), {
      metadata: Object.assign(new V1ObjectMeta(), { name: `${pod.name}.${now.toString(16)}${randomBytes(4).toString('hex')}`, namespace: pod.namespace }),
      eventTime: new V1MicroTime(now),
      type: 'Warning',
      reason,
      action,
      note: note.slice(0, 1024),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#instance.slice(0, 128),
      regarding: Object.assign(new V1ObjectReference(), { apiVersion: 'v1', kind: 'Pod', name: pod.name, namespace: pod.namespace, uid: pod.uid }),
    });
    try {
      await this.#kube.events.createNamespacedEvent({ namespace: pod.namespace, body });
    } catch (err) {
      this.#log.warn('event not recorded', { kind: 'Pod', namespace: pod.namespace, name: pod.name, reason, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
