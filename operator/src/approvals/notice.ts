/**
 * Events that are not condition transitions ("approval needed" on the request and the agent pod,
 * an ignored decision, a session deleted by retention): reported by the same controller as the
 * condition Events, best effort (a failure is logged, never thrown).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { EventsV1Event, V1MicroTime, V1ObjectMeta, V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import { REPORTING_CONTROLLER, type Regarding } from '../events.ts';
import type { Kube } from '../kube.ts';
import { errorText } from './errors.ts';

export interface Notice {
  readonly type: 'Normal' | 'Warning';
  /** CamelCase */
  readonly reason: string;
  /** CamelCase verb */
  readonly action: string;
  readonly note: string;
}

/** pure */
export function noticeEvent(regarding: Regarding, notice: Notice, now: number, instance: string): EventsV1Event {
  const name = regarding.metadata.name ?? '';
  const namespace = regarding.metadata.namespace ?? 'default';
  return Object.assign(new EventsV1Event(), {
    metadata: Object.assign(new V1ObjectMeta(), { name: `${name.slice(0, 200)}.${now.toString(16)}${randomBytes(4).toString('hex')}`, namespace }),
    eventTime: new V1MicroTime(now),
    type: notice.type,
    reason: notice.reason,
    action: notice.action,
    note: notice.note.slice(0, 1024),
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

export class NoticeRecorder {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #instance: string;

  constructor({ kube, clock, log, instance }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly instance?: string }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#instance = instance ?? hostname();
  }

  async record(regarding: Regarding, notice: Notice): Promise<void> {
    const body = noticeEvent(regarding, notice, this.#clock.now(), this.#instance);
    try {
      await this.#kube.events.createNamespacedEvent({ namespace: body.metadata?.namespace ?? 'default', body });
    } catch (err) {
      this.#log.warn('event not recorded', { kind: regarding.kind, name: regarding.metadata.name, reason: notice.reason, error: errorText(err) });
    }
  }
}
