/**
 * What one reconcile of an ApprovalRequest should do. Pure: (request, approval key, now,
 * retention) → the status to write, the decision entries ignored (and why), whether to delete
 * the request, and when to look again.
 *
 * Status comes only from the entries of DECISIONS_ANNOTATION whose signature verifies with the
 * approval key, re-checked in order with reviewDecision at the time each was recorded: an entry
 * that would have been refused (not an approver, self-approval, a duplicate, after the request
 * was decided or expired, ...) is ignored. A decided phase never changes again.
 */
import { DECISIONS_ANNOTATION, type ApprovalRequest, type RecordedDecision } from '@airlock/api';
import { reviewDecision, verifyDecision } from '@airlock/policy';
import { sameJson } from '../canonical.ts';
import { transitions, type Condition } from '../conditions.ts';
import { rfc3339, statusOf, type ApprovalDecisionStatus, type ApprovalPhase, type ApprovalRequestStatus } from './request.ts';

export const APPROVAL_CONDITIONS = { Ready: 'Ready', Decided: 'Decided' } as const;
export const APPROVAL_REASONS = {
  /** Ready: decisions are checked against the approval key */
  DecisionsVerified: 'DecisionsVerified',
  /** Ready: the approval key Secret cannot be read, so no decision counts */
  ApprovalKeyUnavailable: 'ApprovalKeyUnavailable',
  /** Decided=False */
  AwaitingDecision: 'AwaitingDecision',
  Approved: 'Approved',
  Denied: 'Denied',
  Expired: 'Expired',
} as const;

export interface IgnoredDecision {
  /** index in the annotation's array */
  readonly index: number;
  readonly user: string;
  readonly code: 'Malformed' | 'BadSignature' | 'NotPending' | 'Expired' | 'NotApprover' | 'SelfApproval' | 'ReasonRequired' | 'AlreadyDecided' | 'InvalidDecision';
  readonly message: string;
  /** identifies the entry across reconciles (its signature, or the index when it has none) */
  readonly id: string;
}

export interface ApprovalPlan {
  readonly status: ApprovalRequestStatus;
  /** the status differs from the stored one */
  readonly write: boolean;
  readonly phase: ApprovalPhase;
  /** the phase before, when it changed */
  readonly previousPhase: ApprovalPhase | undefined;
  /** conditions whose status changed: each gets an Event */
  readonly transitions: readonly Condition[];
  readonly ignored: readonly IgnoredDecision[];
  /** decided for longer than the retention: delete it */
  readonly collect: boolean;
  /** when to reconcile again (expiry, or end of retention), from now */
  readonly requeueAfterMs: number | undefined;
}

export interface ApprovalPlanInput {
  readonly request: ApprovalRequest;
  /** the HMAC key of recorded decisions; undefined when the Secret cannot be read */
  readonly key: Uint8Array | undefined;
  readonly nowMs: number;
  /** how long decided requests are kept */
  readonly retentionMs: number;
}

const TERMINAL: readonly ApprovalPhase[] = ['Approved', 'Denied', 'Expired'];

/** longest requeue asked for: timers beyond 2^31-1 ms fire at once in Node, and the resync covers the rest */
export const MAX_REQUEUE_MS = 3600_000;

/** the annotation's entries; undefined when it is not a JSON array */
export function parseDecisions(text: string | undefined): unknown[] | undefined {
  if (text === undefined || text === '') return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function userOf(entry: unknown): string {
  if (typeof entry === 'object' && entry !== null && typeof (entry as { user?: unknown }).user === 'string') return (entry as { user: string }).user;
  return '';
}

function idOf(entry: unknown, index: number): string {
  if (typeof entry === 'object' && entry !== null && typeof (entry as { signature?: unknown }).signature === 'string') return (entry as { signature: string }).signature;
  return `#${index}`;
}

/** the verified, admissible decisions in order, and the entries ignored */
export function admittedDecisions(request: ApprovalRequest, key: Uint8Array | undefined): { readonly decisions: ApprovalDecisionStatus[]; readonly ignored: IgnoredDecision[]; readonly phase: 'Pending' | 'Approved' | 'Denied' } {
  const entries = parseDecisions(request.metadata.annotations?.[DECISIONS_ANNOTATION]);
  const ignored: IgnoredDecision[] = [];
  const decisions: ApprovalDecisionStatus[] = [];
  let phase: 'Pending' | 'Approved' | 'Denied' = 'Pending';
  if (entries === undefined) {
    return { decisions, ignored: [{ index: -1, user: '', code: 'Malformed', message: `annotation ${DECISIONS_ANNOTATION} is not a JSON array`, id: 'annotation' }], phase };
  }
  if (key === undefined) return { decisions, ignored, phase };
  const ref = { namespace: request.metadata.namespace ?? 'default', name: request.metadata.name ?? '', uid: request.metadata.uid ?? '' };
  const { spec } = request;
  entries.forEach((entry, index) => {
    const user = userOf(entry);
    const id = idOf(entry, index);
    if (!verifyDecision(key, ref, entry as RecordedDecision)) {
      ignored.push({ index, user, code: 'BadSignature', message: `decision #${index + 1}${user === '' ? '' : ` by ${user}`} is not signed by Airlock's approval webhook for this request`, id });
      return;
    }
    const d = entry as RecordedDecision;
    const time = Date.parse(d.time);
    if (Number.isNaN(time)) {
      ignored.push({ index, user, code: 'Malformed', message: `decision #${index + 1} by ${user} has no valid time`, id });
      return;
    }
    const verdict = reviewDecision(
      {
        phase,
        approvers: { users: spec.approvers.users ?? [], groups: spec.approvers.groups ?? [] },
        required: spec.required,
        requireReason: spec.requireReason ?? false,
        ...(spec.requester.serviceAccount === undefined ? {} : { requesterServiceAccount: spec.requester.serviceAccount }),
        namespace: ref.namespace,
        expiresAt: new Date(spec.expiresAt),
        decisions,
      },
      { user: d.user, groups: d.groups },
      d.decision,
      d.reason,
      new Date(time),
    );
    if (!verdict.ok) {
      ignored.push({ index, user, code: verdict.code, message: `decision #${index + 1} by ${user} ignored: ${verdict.message}`, id });
      return;
    }
    phase = verdict.phase;
    decisions.push({ user: d.user, groups: [...d.groups], decision: d.decision, ...(d.reason === undefined ? {} : { reason: d.reason.slice(0, 1024) }), time: rfc3339(time) });
  });
  return { decisions, ignored, phase };
}

interface DesiredCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

function settle(previous: ApprovalRequestStatus['conditions'], desired: readonly DesiredCondition[], generation: number | undefined, now: string): Condition[] {
  return desired.map((d) => {
    const before = previous?.find((c) => c.type === d.type);
    return {
      ...d,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
      lastTransitionTime: before !== undefined && before.status === d.status ? before.lastTransitionTime : now,
    };
  });
}

function decidedCondition(phase: ApprovalPhase, decisions: readonly ApprovalDecisionStatus[], request: ApprovalRequest): DesiredCondition {
  const type = APPROVAL_CONDITIONS.Decided;
  const approvers = [...new Set(decisions.filter((d) => d.decision === 'approve').map((d) => d.user))];
  switch (phase) {
    case 'Pending':
      return { type, status: 'False', reason: APPROVAL_REASONS.AwaitingDecision, message: `${approvers.length} of ${request.spec.required} required approvals; expires at ${request.spec.expiresAt}.` };
    case 'Approved':
      return { type, status: 'True', reason: APPROVAL_REASONS.Approved, message: `Approved by ${approvers.join(', ')}.` };
    case 'Denied': {
      const deny = decisions.find((d) => d.decision === 'deny');
      return { type, status: 'True', reason: APPROVAL_REASONS.Denied, message: `Denied by ${deny?.user ?? 'a reviewer'}${deny?.reason === undefined ? '' : `: ${deny.reason}`}.` };
    }
    case 'Expired':
      return { type, status: 'True', reason: APPROVAL_REASONS.Expired, message: `No decision before ${request.spec.expiresAt} (${approvers.length} of ${request.spec.required} approvals).` };
  }
}

export function planApprovalRequest({ request, key, nowMs, retentionMs }: ApprovalPlanInput): ApprovalPlan {
  const previous = statusOf(request);
  const previousPhase = previous.phase;
  const admitted = admittedDecisions(request, key);
  const expiresAtMs = Date.parse(request.spec.expiresAt);
  let phase: ApprovalPhase;
  let decisions: readonly ApprovalDecisionStatus[] = admitted.decisions;
  if (previousPhase !== undefined && TERMINAL.includes(previousPhase)) {
    // decided once, decided for good: the sidecar has acted on it
    phase = previousPhase;
    decisions = previous.decisions ?? admitted.decisions;
  } else if (admitted.phase !== 'Pending') phase = admitted.phase;
  else phase = Number.isNaN(expiresAtMs) || nowMs >= expiresAtMs ? 'Expired' : 'Pending';

  const now = rfc3339(nowMs);
  const generation = request.metadata.generation;
  const ready: DesiredCondition =
    key === undefined
      ? { type: APPROVAL_CONDITIONS.Ready, status: 'False', reason: APPROVAL_REASONS.ApprovalKeyUnavailable, message: 'The approval key Secret cannot be read: no decision can be verified.' }
      : { type: APPROVAL_CONDITIONS.Ready, status: 'True', reason: APPROVAL_REASONS.DecisionsVerified, message: 'Decisions are verified against the approval key.' };
  const conditions = settle(previous.conditions, [ready, decidedCondition(phase, decisions, request)], generation, now);
  const status: ApprovalRequestStatus = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    phase,
    decisions: decisions.slice(0, 32),
    conditions,
  };
  const write = !sameJson(previous, status);

  let collect = false;
  let requeueAfterMs: number | undefined;
  if (phase === 'Pending') {
    requeueAfterMs = Math.min(MAX_REQUEUE_MS, Math.max(0, expiresAtMs - nowMs));
  } else {
    const decidedAt = Date.parse(conditions.find((c) => c.type === APPROVAL_CONDITIONS.Decided)?.lastTransitionTime ?? now);
    const collectAt = decidedAt + retentionMs;
    if (nowMs >= collectAt) collect = true;
    else requeueAfterMs = Math.min(MAX_REQUEUE_MS, collectAt - nowMs);
  }
  return {
    status,
    write,
    phase,
    previousPhase: previousPhase === phase ? undefined : (previousPhase ?? (phase === 'Pending' ? undefined : 'Pending')),
    transitions: transitions(previous.conditions, conditions),
    ignored: admitted.ignored,
    collect,
    requeueAfterMs,
  };
}
