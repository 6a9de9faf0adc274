/**
 * Reviewing an approval request: who may decide, what a decision does to the request's phase,
 * and the signature that binds a recorded decision to one request. Pure (node:crypto only);
 * used by the approval-identity webhook, the operator's reconcile of ApprovalRequests and local
 * approvals, so that every path refuses exactly the same decisions.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { RecordedDecision } from '@airlock/api';

export interface ReviewRequest {
  readonly phase: 'Pending' | 'Approved' | 'Denied' | 'Expired' | 'Withdrawn';
  readonly approvers: { readonly users: readonly string[]; readonly groups: readonly string[] };
  readonly required: number;
  readonly requireReason: boolean;
  /** "<namespace>/<name>" of the agent pod's service account (a bare name means the request's namespace) */
  readonly requesterServiceAccount?: string;
  /** the request's namespace */
  readonly namespace: string;
  readonly expiresAt: Date;
  readonly decisions: readonly { readonly user: string; readonly decision: 'approve' | 'deny' }[];
}

export interface Reviewer {
  readonly user: string;
  readonly groups: readonly string[];
}

export type ReviewRefusal = 'NotPending' | 'Expired' | 'NotApprover' | 'SelfApproval' | 'ReasonRequired' | 'AlreadyDecided' | 'InvalidDecision';

export type ReviewVerdict =
  | { readonly ok: true; readonly phase: 'Pending' | 'Approved' | 'Denied' }
  | { readonly ok: false; readonly code: ReviewRefusal; readonly message: string };

/** the API server's user name of a service account */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/** the requester's service account as an API-server user name, or undefined when unknown */
export function requesterUser(request: Pick<ReviewRequest, 'requesterServiceAccount' | 'namespace'>): string | undefined {
  const sa = request.requesterServiceAccount;
  if (sa === undefined || sa === '') return undefined;
  const slash = sa.indexOf('/');
  return slash < 0 ? serviceAccountUser(request.namespace, sa) : serviceAccountUser(sa.slice(0, slash), sa.slice(slash + 1));
}

/** whether the reviewer is listed among the approvers, by user name or by any of its groups */
export function isApprover(approvers: ReviewRequest['approvers'], reviewer: Reviewer): boolean {
  return approvers.users.includes(reviewer.user) || reviewer.groups.some((g) => approvers.groups.includes(g));
}

const refuse = (code: ReviewRefusal, message: string): ReviewVerdict => ({ ok: false, code, message });

/**
 * Whether `reviewer` may record `decision` on `request` at `now`, and the phase it leads to.
 * Checks, in order: the decision word, the request still Pending, not expired, not the
 * requester's own service account, an approver, not already decided by this user, a reason when
 * required. A deny by any approver denies; `required` distinct approvals approve.
 */
export function reviewDecision(request: ReviewRequest, reviewer: Reviewer, decision: string, reason: string | undefined, now: Date): ReviewVerdict {
  if (decision !== 'approve' && decision !== 'deny') {
    return refuse('InvalidDecision', `decision must be "approve" or "deny", not ${JSON.stringify(decision)}`);
  }
  if (request.phase !== 'Pending') return refuse('NotPending', `the request is already ${request.phase}`);
  if (now.getTime() >= request.expiresAt.getTime()) {
    return refuse('Expired', `the request expired at ${request.expiresAt.toISOString()}`);
  }
  const self = requesterUser(request);
  if (self !== undefined && reviewer.user === self) {
    return refuse('SelfApproval', `${reviewer.user} is the service account of the agent that asked; it cannot decide its own request`);
  }
  if (!isApprover(request.approvers, reviewer)) {
    return refuse('NotApprover', `${reviewer.user} is not an approver of this request (users: ${request.approvers.users.join(', ') || 'none'}; groups: ${request.approvers.groups.join(', ') || 'none'})`);
  }
  if (request.decisions.some((d) => d.user === reviewer.user)) {
    return refuse('AlreadyDecided', `${reviewer.user} has already decided this request`);
  }
  if (request.requireReason && (reason === undefined || reason.trim() === '')) {
    return refuse('ReasonRequired', 'this request requires a reason');
  }
  const after = phaseOf({ ...request, decisions: [...request.decisions, { user: reviewer.user, decision }] }, now);
  // not expired (checked above), so phaseOf is one of the three
  return { ok: true, phase: after === 'Expired' ? 'Pending' : after };
}

/**
 * The phase the recorded decisions lead to: any deny → Denied; `required` distinct approving
 * users → Approved; otherwise Expired once `now` reaches expiresAt, else Pending.
 */
export function phaseOf(request: Omit<ReviewRequest, 'phase'>, now: Date): 'Pending' | 'Approved' | 'Denied' | 'Expired' {
  if (request.decisions.some((d) => d.decision === 'deny')) return 'Denied';
  const approving = new Set(request.decisions.filter((d) => d.decision === 'approve').map((d) => d.user));
  if (approving.size >= Math.max(1, request.required)) return 'Approved';
  if (now.getTime() >= request.expiresAt.getTime()) return 'Expired';
  return 'Pending';
}

export interface RequestRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** canonical JSON (sorted keys, no whitespace) of what a signature covers */
function signedPayload(ref: RequestRef, d: Omit<RecordedDecision, 'signature'>): string {
  const payload: Record<string, unknown> = {
    decision: d.decision,
    groups: [...d.groups],
    ...(d.reason === undefined ? {} : { reason: d.reason }),
    request: `${ref.namespace}/${ref.name}`,
    time: d.time,
    uid: ref.uid,
    user: d.user,
  };
  return JSON.stringify(payload);
}

/** HMAC-SHA256 over the canonical JSON of { request: "<ns>/<name>", uid, user, groups, decision, reason, time }, base64url */
export function signDecision(key: Uint8Array, ref: RequestRef, d: Omit<RecordedDecision, 'signature'>): string {
  return createHmac('sha256', key).update(signedPayload(ref, d), 'utf8').digest('base64url');
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Whether `d` carries a valid signature for the request `ref`. Defensive about shape: the entry
 * usually comes from parsed annotation JSON, so anything malformed is simply not verified.
 */
export function verifyDecision(key: Uint8Array, ref: RequestRef, d: RecordedDecision): boolean {
  const raw: unknown = d;
  if (typeof raw !== 'object' || raw === null) return false;
  const r = raw as Record<string, unknown>;
  if (typeof r['user'] !== 'string' || !isStringArray(r['groups']) || typeof r['time'] !== 'string' || typeof r['signature'] !== 'string') return false;
  if (r['decision'] !== 'approve' && r['decision'] !== 'deny') return false;
  if (r['reason'] !== undefined && typeof r['reason'] !== 'string') return false;
  if (key.length === 0) return false;
  // compare the text (not decoded bytes: base64url's unused trailing bits would let variants pass)
  const expected = Buffer.from(signDecision(key, ref, d), 'utf8');
  const given = Buffer.from(d.signature, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
