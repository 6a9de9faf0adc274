/**
 * Session reports from sidecars → AgentSession objects. The first report of a session creates the
 * object (name = the session id, lower-cased; labels connection and pod); every report whose seq is
 * above the last applied one replaces its status (status subresource) and then records the seq in
 * an annotation. A report delivered twice or late (seq not above) changes nothing. Both writes
 * carry the resourceVersion read, so two replicas racing on one session retry instead of
 * overwriting each other.
 */
import { GROUP, VERSION, type AgentSession, type PodIdentity, type SessionReport } from '@airlock/api';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { EventRecorder } from '../events.ts';
import type { Kube } from '../kube.ts';
import { apiStatus, errorText, ServiceError } from '../approvals/errors.ts';
import { agentSessionName, appliedSeq, SEQ_ANNOTATION, sessionObject, sessionOwnedBy, sessionStatus, validateReport } from './report.ts';

export const AGENT_SESSIONS = 'agentsessions';
const ATTEMPTS = 5;

export interface SessionServiceDeps {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: EventRecorder;
}

export type ReportOutcome = 'applied' | 'stale';

export class SessionService {
  readonly #kube: Kube;
  readonly #log: Logger;

  constructor(deps: SessionServiceDeps) {
    this.#kube = deps.kube;
    this.#log = deps.log;
  }

  /** ServiceError InvalidBody (bad report), Conflict (another pod's session), Unavailable (API server) */
  async report(pod: PodIdentity, report: SessionReport): Promise<void> {
    await this.apply(pod, report);
  }

  /** as report(), saying whether the report changed anything */
  async apply(pod: PodIdentity, report: SessionReport): Promise<ReportOutcome> {
    validateReport(report);
    const name = agentSessionName(report.session);
    const status = sessionStatus(pod, report);
    for (let attempt = 1; ; attempt++) {
      try {
        let session = await this.#get(pod.namespace, name);
        if (session === undefined) session = await this.#create(pod, report);
        if (session === undefined) {
          if (attempt >= ATTEMPTS) throw new ServiceError('Unavailable', `agentsession/${name} could not be created or read`);
          continue; // created by a racing report: read it
        }
        if (!sessionOwnedBy(session, pod)) throw new ServiceError('Conflict', `agentsession/${name} belongs to another pod`);
        if (report.seq <= appliedSeq(session)) {
          this.#log.debug('stale session report ignored', { namespace: pod.namespace, session: name, seq: report.seq, applied: appliedSeq(session) });
          return 'stale';
        }
        const written = (await this.#kube.customObjects.replaceNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          namespace: pod.namespace,
          plural: AGENT_SESSIONS,
          name,
          body: { ...session, status: { ...status, ...((session.status as { conditions?: unknown } | undefined)?.conditions === undefined ? {} : { conditions: (session.status as { conditions?: unknown }).conditions }) } },
        })) as AgentSession;
        // a crash here leaves the seq behind the status: the same report applied again writes the same status
        await this.#kube.customObjects.replaceNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: pod.namespace,
          plural: AGENT_SESSIONS,
          name,
          body: { ...written, metadata: { ...written.metadata, annotations: { ...written.metadata.annotations, [SEQ_ANNOTATION]: String(report.seq) } } },
        });
        if (report.type !== 'progress') this.#log.info(report.type === 'start' ? 'session started' : 'session ended', { namespace: pod.namespace, session: name, pod: pod.name, connection: report.connection, seq: report.seq });
        return 'applied';
      } catch (err) {
        if (err instanceof ServiceError) throw err;
        const code = apiStatus(err);
        if ((code === 409 || code === 404) && attempt < ATTEMPTS) continue; // changed or deleted meanwhile: read again
        throw new ServiceError(code === 422 ? 'InvalidBody' : 'Unavailable', `agentsession/${name} not written: ${errorText(err)}`, { cause: err });
      }
    }
  }

  async #get(namespace: string, name: string): Promise<AgentSession | undefined> {
    try {
      return (await this.#kube.customObjects.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: AGENT_SESSIONS, name })) as AgentSession;
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }

  /** undefined when another report created it first */
  async #create(pod: PodIdentity, report: SessionReport): Promise<AgentSession | undefined> {
    try {
      return (await this.#kube.customObjects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: pod.namespace, plural: AGENT_SESSIONS, body: sessionObject(pod, report) })) as AgentSession;
    } catch (err) {
      if (apiStatus(err) === 409) return undefined;
      throw err;
    }
  }
}
