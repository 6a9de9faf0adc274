/**
 * ApprovalRequest objects as Airlock writes and reads them. Pure: the body created for an ask,
 * the state a sidecar is told, the command a reviewer runs, and the notification text.
 */
import { API_VERSION, DECISION_ANNOTATION, REASON_ANNOTATION, type ApprovalAsk, type ApprovalRequest, type ApprovalState, type PodIdentity } from '@airlock/api';

/** labels on ApprovalRequests (and AgentSessions): select by connection, pod or session */
export const CONNECTION_LABEL = 'airlock.dev/connection';
export const POD_LABEL = 'airlock.dev/pod';
export const SESSION_LABEL = 'airlock.dev/session';
/** the uid of the pod that asked: a later pod of the same name cannot read or withdraw the request */
export const POD_UID_ANNOTATION = 'airlock.dev/pod-uid';
/** the rule's message, shown to reviewers (the spec has no field for it) */
export const MESSAGE_ANNOTATION = 'airlock.dev/message';

export type ApprovalPhase = 'Pending' | 'Approved' | 'Denied' | 'Expired';

export interface ApprovalDecisionStatus {
  readonly user: string;
  readonly groups?: readonly string[];
  readonly decision: 'approve' | 'deny';
  readonly reason?: string;
  readonly time: string;
}

/** the status as Airlock writes it (the generated type spells conditions as tuples) */
export interface ApprovalRequestStatus {
  readonly observedGeneration?: number;
  readonly phase?: ApprovalPhase;
  readonly decisions?: readonly ApprovalDecisionStatus[];
  readonly conditions?: readonly {
    readonly type: string;
    readonly status: 'True' | 'False' | 'Unknown';
    readonly observedGeneration?: number;
    readonly lastTransitionTime: string;
    readonly reason: string;
    readonly message: string;
  }[];
}

export function statusOf(request: ApprovalRequest): ApprovalRequestStatus {
  return (request.status ?? {});
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** a label value when `text` is one, else undefined (pod names may be longer than 63) */
export function labelValue(text: string | undefined): string | undefined {
  return text !== undefined && text.length <= 63 && LABEL_VALUE.test(text) ? text : undefined;
}

/** RFC 3339 in whole seconds, rounded up (an expiry is never earlier than asked) */
export function rfc3339Ceil(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 3339 in whole seconds, rounded down (for transition times) */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** what the ApprovalRequest of `ask` looks like before the API server names it */
export function approvalRequestBody(pod: PodIdentity, ask: ApprovalAsk, nowMs: number, owner?: { readonly name: string; readonly uid: string }): ApprovalRequest {
  const labels: Record<string, string> = {};
  for (const [key, value] of [[CONNECTION_LABEL, ask.connection], [POD_LABEL, pod.name], [SESSION_LABEL, ask.session.toLowerCase()]] as const) {
    const v = labelValue(value);
    if (v !== undefined) labels[key] = v;
  }
  const prefix = `${ask.connection.slice(0, 40).replace(/[.-]+$/, '')}-`;
  return {
    apiVersion: API_VERSION,
    kind: 'ApprovalRequest',
    metadata: {
      generateName: prefix,
      namespace: pod.namespace,
      labels,
      annotations: { [POD_UID_ANNOTATION]: pod.uid, ...(ask.message === '' ? {} : { [MESSAGE_ANNOTATION]: ask.message.slice(0, 4096) }) },
      ...(owner === undefined
        ? {}
        : { ownerReferences: [{ apiVersion: API_VERSION, kind: 'AgentSession', name: owner.name, uid: owner.uid, blockOwnerDeletion: false }] }),
    },
    spec: {
      connection: ask.connection,
      protocol: ask.protocol,
      requester: { pod: pod.name, serviceAccount: pod.serviceAccount, ...(ask.session === '' ? {} : { session: ask.session.toLowerCase() }) },
      command: ask.command,
      classes: [...new Set(ask.classes)] as NonNullable<ApprovalRequest['spec']['classes']>,
      rule: { approvalRule: ask.rule.approvalRule, name: ask.rule.name },
      approvers: { users: [...new Set(ask.approvers.users)], groups: [...new Set(ask.approvers.groups)] },
      required: ask.required,
      requireReason: ask.requireReason,
      expiresAt: rfc3339Ceil(nowMs + ask.timeoutSeconds * 1000),
    },
  };
}

/** whether `request` is the one `pod` asked for */
export function ownedBy(request: ApprovalRequest, pod: PodIdentity): boolean {
  if ((request.metadata.namespace ?? '') !== pod.namespace || request.spec.requester.pod !== pod.name) return false;
  const uid = request.metadata.annotations?.[POD_UID_ANNOTATION];
  return uid === undefined || uid === pod.uid;
}

/** what the sidecar is told: Pending until the status says otherwise */
export function approvalState(request: ApprovalRequest): ApprovalState {
  const status = statusOf(request);
  return {
    name: request.metadata.name ?? '',
    phase: status.phase ?? 'Pending',
    decisions: (status.decisions ?? []).map((d) => ({ user: d.user, decision: d.decision, ...(d.reason === undefined ? {} : { reason: d.reason }), time: d.time })),
  };
}

/** the command a reviewer runs */
export function annotateCommand(namespace: string, name: string, decision: 'approve' | 'deny' = 'approve'): string {
  return `kubectl annotate approvalrequest ${name} -n ${namespace} ${DECISION_ANNOTATION}=${decision}`;
}

/** the notification text (Slack and Teams incoming webhooks take `{"text": ...}`) */
export function notificationText(request: ApprovalRequest, message: string | undefined): string {
  const name = request.metadata.name ?? '';
  const namespace = request.metadata.namespace ?? 'default';
  const { spec } = request;
  const users = spec.approvers.users ?? [];
  const groups = spec.approvers.groups ?? [];
  const who = [
    users.length > 0 ? `users ${users.join(', ')}` : undefined,
    groups.length > 0 ? `groups ${groups.join(', ')}` : undefined,
  ].filter((s) => s !== undefined).join('; ');
  const reason = spec.requireReason === true ? ` ${REASON_ANNOTATION}="<why>"` : '';
  return [
    `Airlock: approval needed for ${spec.protocol} ${namespace}/${spec.connection} (pod ${spec.requester.pod}, rule ${spec.rule.approvalRule}/${spec.rule.name}).`,
    ...(message === undefined || message === '' ? [] : [message]),
    `Command: ${spec.command.length > 500 ? `${spec.command.slice(0, 500)}…` : spec.command}`,
    `Approvers: ${who || 'none listed'}; ${spec.required} required; expires ${spec.expiresAt}.`,
    `Approve: ${annotateCommand(namespace, name)}${reason}`,
    `Deny:    ${annotateCommand(namespace, name, 'deny')}${reason}`,
  ].join('\n');
}
