/**
 * Approval identity (mutating, ApprovalRequest CREATE/UPDATE). A reviewer decides with
 * `kubectl annotate approvalrequest <name> airlock.dev/decision=approve [airlock.dev/reason=...]`;
 * this handler takes the reviewer from the admission request's userInfo (never from any text),
 * checks the decision with policy's reviewDecision against the request's spec and the decisions
 * already recorded on the OLD object, and answers with a JSON patch that appends a signed
 * RecordedDecision to DECISIONS_ANNOTATION and removes the decision and reason annotations.
 * Any other change to DECISIONS_ANNOTATION is refused, so recorded decisions are immutable.
 * Pure: (request, key, now) → verdict.
 */
import type { Operation } from 'fast-json-patch';
import { DECISION_ANNOTATION, DECISIONS_ANNOTATION, REASON_ANNOTATION, type RecordedDecision } from '@airlock/api';
import { phaseOf, reviewDecision, signDecision, type ReviewRequest } from '@airlock/policy';
import { allow, deny, pointerSegment, type AdmissionRequest, type AdmissionVerdict } from './admission.ts';

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function annotationsOf(object: Obj | undefined): Readonly<Record<string, unknown>> {
  const meta = object?.['metadata'];
  const annotations = isObj(meta) ? meta['annotations'] : undefined;
  return isObj(annotations) ? annotations : {};
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

const PHASES: readonly ReviewRequest['phase'][] = ['Pending', 'Approved', 'Denied', 'Expired', 'Withdrawn'];

/** the recorded decisions of an annotation value: undefined when absent, an error message when unreadable */
export function parseRecordedDecisions(text: unknown): readonly RecordedDecision[] | string | undefined {
  if (text === undefined) return undefined;
  if (typeof text !== 'string') return `${DECISIONS_ANNOTATION} is not a string`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return `${DECISIONS_ANNOTATION} is not JSON`;
  }
  if (!Array.isArray(parsed)) return `${DECISIONS_ANNOTATION} is not a JSON array`;
  for (const d of parsed) {
    if (!isObj(d) || typeof d['user'] !== 'string' || (d['decision'] !== 'approve' && d['decision'] !== 'deny')) return `${DECISIONS_ANNOTATION} holds an entry that is not a recorded decision`;
  }
  return parsed as RecordedDecision[];
}

const FORGED = `${DECISIONS_ANNOTATION} is written only by Airlock's approval webhook: decide with kubectl annotate approvalrequest <name> ${DECISION_ANNOTATION}=approve (or deny)`;

/** the request as reviewDecision sees it, from the stored object's spec and status */
export function reviewRequestOf(object: Obj, namespace: string, decisions: readonly RecordedDecision[], now: Date): ReviewRequest | string {
  const spec = object['spec'];
  if (!isObj(spec)) return 'the ApprovalRequest has no spec';
  const approvers = isObj(spec['approvers']) ? spec['approvers'] : {};
  const expires = typeof spec['expiresAt'] === 'string' ? new Date(spec['expiresAt']) : undefined;
  if (expires === undefined || Number.isNaN(expires.getTime())) return 'the ApprovalRequest has no valid spec.expiresAt';
  const requester = isObj(spec['requester']) ? spec['requester'] : {};
  const sa = requester['serviceAccount'];
  const status = isObj(object['status']) ? object['status'] : {};
  const stored = PHASES.find((p) => p === status['phase']) ?? 'Pending';
  const request: Omit<ReviewRequest, 'phase'> = {
    approvers: { users: strings(approvers['users']), groups: strings(approvers['groups']) },
    required: typeof spec['required'] === 'number' ? spec['required'] : 1,
    requireReason: spec['requireReason'] === true,
    ...(typeof sa === 'string' && sa !== '' ? { requesterServiceAccount: `${namespace}/${sa}` } : {}),
    namespace,
    expiresAt: expires,
    decisions: decisions.map((d) => ({ user: d.user, decision: d.decision })),
  };
  // the recorded decisions may already decide it before the operator has written status
  const derived = phaseOf(request, now);
  const phase = stored !== 'Pending' ? stored : derived === 'Approved' || derived === 'Denied' ? derived : 'Pending';
  return { ...request, phase };
}

/**
 * The verdict on one ApprovalRequest admission. `key` is the HMAC key of recorded decisions
 * (undefined when it cannot be read: decisions are then refused, fail closed).
 */
export function reviewApprovalAdmission(request: AdmissionRequest, key: Uint8Array | undefined, now: Date): AdmissionVerdict {
  const object = request.object;
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow();
  if (request.subResource !== undefined) return allow();
  if (object === undefined) return deny('the admission request carries no object', 400, 'BadRequest');
  const annotations = annotationsOf(object);
  if (request.operation === 'CREATE') {
    if (DECISIONS_ANNOTATION in annotations) return deny(`metadata.annotations[${DECISIONS_ANNOTATION}]: Forbidden: a new ApprovalRequest carries no recorded decisions; ${FORGED}`);
    if (DECISION_ANNOTATION in annotations || REASON_ANNOTATION in annotations) {
      return deny(`metadata.annotations[${DECISION_ANNOTATION}]: Forbidden: a decision is made on an existing ApprovalRequest with kubectl annotate, not at creation`);
    }
    return allow();
  }
  const old = request.oldObject;
  if (old === undefined) return deny('the admission request carries no oldObject', 400, 'BadRequest');
  const oldAnnotations = annotationsOf(old);
  if (annotations[DECISIONS_ANNOTATION] !== oldAnnotations[DECISIONS_ANNOTATION]) return deny(`metadata.annotations[${DECISIONS_ANNOTATION}]: Forbidden: ${FORGED}`);
  const decision = annotations[DECISION_ANNOTATION];
  const reasonValue = annotations[REASON_ANNOTATION];
  if (decision === undefined) {
    if (reasonValue !== undefined && reasonValue !== oldAnnotations[REASON_ANNOTATION]) {
      return deny(`metadata.annotations[${REASON_ANNOTATION}]: Forbidden: set the reason together with ${DECISION_ANNOTATION} in one kubectl annotate`);
    }
    return allow();
  }
  if (typeof decision !== 'string' || (reasonValue !== undefined && typeof reasonValue !== 'string')) return deny('decision and reason annotations must be strings', 400, 'BadRequest');
  const recorded = parseRecordedDecisions(oldAnnotations[DECISIONS_ANNOTATION]) ?? [];
  if (typeof recorded === 'string') return deny(`the recorded decisions cannot be read (${recorded}); no decision can be added`, 409, 'Conflict');
  const namespace = request.namespace ?? (isObj(old['metadata']) && typeof old['metadata']['namespace'] === 'string' ? old['metadata']['namespace'] : 'default');
  const name = request.name ?? (isObj(old['metadata']) && typeof old['metadata']['name'] === 'string' ? old['metadata']['name'] : '');
  const uid = isObj(old['metadata']) && typeof old['metadata']['uid'] === 'string' ? old['metadata']['uid'] : '';
  const review = reviewRequestOf(old, namespace, recorded, now);
  if (typeof review === 'string') return deny(review, 400, 'BadRequest');
  const reason = typeof reasonValue === 'string' && reasonValue.trim() !== '' ? reasonValue : undefined;
  const reviewer = { user: request.userInfo.username, groups: request.userInfo.groups };
  const verdict = reviewDecision(review, reviewer, decision, reason, now);
  if (!verdict.ok) return deny(`${verdict.code}: ${verdict.message}`);
  if (key === undefined || key.length === 0) return deny('the approval signing key is not available to the webhook; no decision can be recorded now (retry later)', 503, 'ServiceUnavailable');
  const entry: Omit<RecordedDecision, 'signature'> = {
    user: reviewer.user,
    groups: [...reviewer.groups],
    decision: decision as RecordedDecision['decision'],
    ...(reason === undefined ? {} : { reason }),
    time: now.toISOString(),
  };
  const signed: RecordedDecision = { ...entry, signature: signDecision(key, { namespace, name, uid }, entry) };
  const path = (k: string): string => `/metadata/annotations/${pointerSegment(k)}`;
  const patch: Operation[] = [
    { op: 'remove', path: path(DECISION_ANNOTATION) },
    ...(reasonValue === undefined ? [] : [{ op: 'remove' as const, path: path(REASON_ANNOTATION) }]),
    { op: 'add', path: path(DECISIONS_ANNOTATION), value: JSON.stringify([...recorded, signed]) },
  ];
  return { allowed: true, patch, warnings: [`decision recorded: ${reviewer.user} ${decision === 'approve' ? 'approved' : 'denied'} (phase now ${verdict.phase})`] };
}
