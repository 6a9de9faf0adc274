/**
 * Retention of AgentSessions: a session is deleted once it is older than its connection's
 * spec.recording.retention (default 720h), measured from its end (from its start while it has
 * none: a session whose pod vanished never reports an end). Pure plan + a thin delete loop.
 */
import { GROUP, VERSION, type AgentConnection, type AgentSession } from '@airlock/api';
import { parseDuration } from '@airlock/policy';
import { V1DeleteOptions, V1Preconditions } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import { apiStatus, errorText, ServiceError } from '../approvals/errors.ts';
import { MAX_REQUEUE_MS } from '../approvals/plan.ts';
import { AGENT_SESSIONS } from './service.ts';

export const DEFAULT_SESSION_RETENTION = '720h';

export interface RetentionPlan {
  /** sessions past their retention */
  readonly expired: readonly { readonly name: string; readonly uid: string | undefined; readonly connection: string; readonly retention: string }[];
  /** when the next session of the namespace passes its retention, from now (at most an hour) */
  readonly nextInMs: number | undefined;
}

function retentionMs(connection: AgentConnection | undefined): { readonly text: string; readonly ms: number } {
  const text = connection?.spec.recording?.retention ?? DEFAULT_SESSION_RETENTION;
  try {
    return { text, ms: parseDuration(text) * 1000 };
  } catch {
    return { text: DEFAULT_SESSION_RETENTION, ms: parseDuration(DEFAULT_SESSION_RETENTION) * 1000 };
  }
}

/** the sessions of one namespace to delete now, given the namespace's connections */
export function planSessionRetention(sessions: readonly AgentSession[], connections: readonly AgentConnection[], nowMs: number): RetentionPlan {
  const byName = new Map(connections.map((c) => [c.metadata.name ?? '', c]));
  const expired: RetentionPlan['expired'][number][] = [];
  let nextInMs: number | undefined;
  for (const session of sessions) {
    if (session.metadata.deletionTimestamp !== undefined) continue;
    const status = session.status;
    const connection = status?.connection ?? session.metadata.labels?.['airlock.dev/connection'] ?? '';
    const since = Date.parse(status?.endTime ?? status?.startTime ?? session.metadata.creationTimestamp ?? '');
    if (Number.isNaN(since)) continue;
    const retention = retentionMs(byName.get(connection));
    const due = since + retention.ms;
    if (nowMs >= due) expired.push({ name: session.metadata.name ?? '', uid: session.metadata.uid, connection, retention: retention.text });
    else nextInMs = Math.min(nextInMs ?? MAX_REQUEUE_MS, due - nowMs);
  }
  return { expired, nextInMs };
}

export interface SessionRetentionDeps {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
}

/**
 * Deletes the namespace's sessions past their retention (sessions and connections from the
 * informer caches). Returns how many were deleted and when to run again for this namespace.
 */
export async function reconcileSessionRetention(
  deps: SessionRetentionDeps,
  namespace: string,
  sessions: readonly AgentSession[],
  connections: readonly AgentConnection[],
): Promise<{ readonly deleted: number; readonly requeueAfterMs: number | undefined }> {
  const plan = planSessionRetention(sessions, connections, deps.clock.now());
  let deleted = 0;
  for (const s of plan.expired) {
    try {
      await deps.kube.customObjects.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: AGENT_SESSIONS,
        name: s.name,
        body: Object.assign(new V1DeleteOptions(), s.uid === undefined ? {} : { preconditions: Object.assign(new V1Preconditions(), { uid: s.uid }) }),
      });
      deleted++;
      deps.log.info('agent session deleted after its retention', { namespace, session: s.name, connection: s.connection, retention: s.retention });
    } catch (err) {
      if (apiStatus(err) === 404 || apiStatus(err) === 409) continue;
      throw new ServiceError('Unavailable', `agentsession ${namespace}/${s.name} not deleted: ${errorText(err)}`, { cause: err });
    }
  }
  return { deleted, requeueAfterMs: plan.nextInMs };
}
