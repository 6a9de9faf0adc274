/**
 * What an AgentConnection's status says about its sessions and approvals: counters over the
 * AgentSessions that still exist (retention bounds them), the newest few, and the requests still
 * pending. Pure.
 */
import { byName, compareCodeUnits, type AgentSession, type ApprovalRequest } from '@airlock/api';
import { CONNECTION_LABEL } from '../approvals/request.ts';

export const RECENT_SESSIONS = 5;

export interface SessionSummary {
  readonly name: string;
  readonly pod?: string;
  readonly startTime?: string;
  readonly endTime?: string;
  readonly statements: number;
  readonly blocked: number;
}

export interface ConnectionActivity {
  readonly sessions: { readonly total: number; readonly active: number; readonly blocked: number };
  readonly recentSessions: readonly SessionSummary[];
  readonly pendingApprovals: number;
}

function connectionOf(object: { readonly metadata: { readonly labels?: Record<string, string> } }, fromStatus: string | undefined): string | undefined {
  return fromStatus ?? object.metadata.labels?.[CONNECTION_LABEL];
}

export function connectionActivity(connection: string, sessions: readonly AgentSession[], requests: readonly ApprovalRequest[]): ConnectionActivity {
  const own = sessions.filter((s) => s.metadata.deletionTimestamp === undefined && connectionOf(s, s.status?.connection) === connection);
  const newestFirst = [...own].sort((a, b) => {
    const ta = a.status?.startTime ?? a.metadata.creationTimestamp ?? '';
    const tb = b.status?.startTime ?? b.metadata.creationTimestamp ?? '';
    return compareCodeUnits(tb, ta) || byName(b, a);
  });
  const pendingApprovals = requests.filter(
    (r) => r.metadata.deletionTimestamp === undefined && r.spec.connection === connection && (r.status?.phase ?? 'Pending') === 'Pending',
  ).length;
  return {
    sessions: {
      total: own.length,
      active: own.filter((s) => s.status?.endTime === undefined).length,
      blocked: own.reduce((sum, s) => sum + (s.status?.counts?.blocked ?? 0), 0),
    },
    recentSessions: newestFirst.slice(0, RECENT_SESSIONS).map((s) => ({
      name: s.metadata.name ?? '',
      ...(s.status?.pod === undefined ? {} : { pod: s.status.pod }),
      ...(s.status?.startTime === undefined ? {} : { startTime: s.status.startTime }),
      ...(s.status?.endTime === undefined ? {} : { endTime: s.status.endTime }),
      statements: s.status?.counts?.statements ?? 0,
      blocked: s.status?.counts?.blocked ?? 0,
    })),
    pendingApprovals,
  };
}
