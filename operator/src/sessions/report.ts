/**
 * AgentSession objects from session reports. Pure: validation of a report, the status it leads
 * to, and whether it is news (reports are ordered by `seq`; the last applied seq is kept in an
 * annotation of the AgentSession).
 */
import { API_VERSION, type AgentSession, type PodIdentity, type SessionReport } from '@airlock/api';
import { ServiceError } from '../approvals/errors.ts';
import { CONNECTION_LABEL, labelValue, POD_LABEL, POD_UID_ANNOTATION } from '../approvals/request.ts';

/** the seq of the last report applied to the AgentSession's status */
export const SEQ_ANNOTATION = 'airlock.dev/report-seq';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CHAIN_HEAD = /^sha256:[a-f0-9]{64}$/;
const COUNTS = ['statements', 'rows', 'maskedValues', 'blocked', 'approvals'] as const;

export interface SessionStatus {
  readonly pod: string;
  readonly serviceAccount: string;
  readonly connection: string;
  readonly protocol: 'postgres' | 'ssh';
  readonly startTime: string;
  readonly endTime?: string;
  readonly counts: { readonly statements: number; readonly rows: number; readonly maskedValues: number; readonly blocked: number; readonly approvals: number };
  readonly recording: { readonly claimName?: string; readonly path: string; readonly chainHead?: string; readonly records: number };
}

function rfc3339(text: string, field: string): string {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(ms)) throw new ServiceError('InvalidBody', `${field} "${text}" is not an RFC 3339 time`);
  return new Date(ms).toISOString();
}

/**
 * The AgentSession name of a session id. Recording ids are `<UTC stamp>-<hex>` with upper-case
 * `T` and `Z` (sidecar/src/record/files.ts); object names are lower case.
 */
export function agentSessionName(session: string): string {
  return session.toLowerCase();
}

/** throws ServiceError InvalidBody naming the field */
export function validateReport(report: SessionReport): void {
  const fail = (message: string): never => {
    throw new ServiceError('InvalidBody', message);
  };
  const name = agentSessionName(report.session);
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253) fail(`session "${report.session}" is not an object name`);
  if (!DNS_SUBDOMAIN.test(report.connection) || report.connection.length > 253) fail(`connection "${report.connection}" is not an object name`);
  if (!(['postgres', 'ssh'] as readonly string[]).includes(report.protocol)) fail('protocol must be postgres or ssh');
  if (!Number.isSafeInteger(report.seq) || report.seq < 0) fail('seq must be a non-negative integer');
  if (!['start', 'progress', 'end'].includes(report.type)) fail('type must be start, progress or end');
  rfc3339(report.startTime, 'startTime');
  if (report.endTime !== undefined) rfc3339(report.endTime, 'endTime');
  for (const c of COUNTS) {
    const n = report.counts[c];
    if (!Number.isSafeInteger(n) || n < 0) fail(`counts.${c} must be a non-negative integer`);
  }
  const { recording } = report;
  if (typeof recording.path !== 'string') fail('recording.path must be a string');
  if (!Number.isSafeInteger(recording.records) || recording.records < 0) fail('recording.records must be a non-negative integer');
  if (recording.chainHead !== undefined && !CHAIN_HEAD.test(recording.chainHead)) fail('recording.chainHead must be sha256:<64 hex>');
  if (recording.claimName !== undefined && !DNS_SUBDOMAIN.test(recording.claimName)) fail(`recording.claimName "${recording.claimName}" is not an object name`);
}

export function sessionStatus(pod: PodIdentity, report: SessionReport): SessionStatus {
  const { recording } = report;
  return {
    pod: pod.name,
    serviceAccount: pod.serviceAccount,
    connection: report.connection,
    protocol: report.protocol,
    startTime: rfc3339(report.startTime, 'startTime'),
    ...(report.endTime === undefined ? {} : { endTime: rfc3339(report.endTime, 'endTime') }),
    counts: { statements: report.counts.statements, rows: report.counts.rows, maskedValues: report.counts.maskedValues, blocked: report.counts.blocked, approvals: report.counts.approvals },
    recording: {
      ...(recording.claimName === undefined ? {} : { claimName: recording.claimName }),
      path: recording.path,
      ...(recording.chainHead === undefined ? {} : { chainHead: recording.chainHead }),
      records: recording.records,
    },
  };
}

/** the AgentSession created for a session's first report (status is written separately) */
export function sessionObject(pod: PodIdentity, report: SessionReport): AgentSession {
  const labels: Record<string, string> = {};
  const connection = labelValue(report.connection);
  const podName = labelValue(pod.name);
  if (connection !== undefined) labels[CONNECTION_LABEL] = connection;
  if (podName !== undefined) labels[POD_LABEL] = podName;
  return {
    apiVersion: API_VERSION,
    kind: 'AgentSession',
    metadata: { name: agentSessionName(report.session), namespace: pod.namespace, labels, annotations: { [POD_UID_ANNOTATION]: pod.uid } },
  };
}

/** the last applied seq, -1 when none */
export function appliedSeq(session: AgentSession): number {
  const text = session.metadata.annotations?.[SEQ_ANNOTATION];
  const n = text === undefined ? Number.NaN : Number(text);
  return Number.isSafeInteger(n) ? n : -1;
}

/** whether an existing AgentSession is the pod's own */
export function sessionOwnedBy(session: AgentSession, pod: PodIdentity): boolean {
  const uid = session.metadata.annotations?.[POD_UID_ANNOTATION];
  if (uid !== undefined) return uid === pod.uid;
  const statusPod = (session.status)?.pod;
  return statusPod === undefined || statusPod === pod.name;
}
