/**
 * The approval step's pure parts, the same for PostgreSQL and SSH: the ticket a held statement or
 * command is asked about, the records of its request and outcome, and the refusal an outcome
 * other than Approved becomes. No I/O (enforcer.ts runs the step).
 */
import type { ApprovalSettings, Decision } from '@airlock/policy';
import type { ApprovalOutcome, ApprovalTicket, PendingApproval, StatementPart } from '../approval/port.ts';
import { SidecarError } from '../errors.ts';

/**
 * What a RequireApproval that names no approval settings asks for (the connection's
 * defaultAction, or a rule without an `approval` block): nobody named, one approver, the
 * ApprovalRule schema's defaults for the rest (required 1, timeout 10m, requireReason false;
 * a rule's own block is defaulted by the schema, ajv useDefaults, before it is compiled).
 */
export const UNSPECIFIED_APPROVAL: ApprovalSettings = {
  approvers: { users: [], groups: [] },
  required: 1,
  timeoutSeconds: 600,
  requireReason: false,
};

/** Who asks: the session's connection and identity. */
export interface Requester {
  readonly protocol: 'postgres' | 'ssh';
  readonly connection: { readonly name: string; readonly namespace: string };
  readonly pod?: string | undefined;
  readonly serviceAccount?: string | undefined;
}

/** A statement or command held for approval. */
export interface HeldCommand {
  /** the session (recording) id */
  readonly session: string;
  /** what reviewers see: the text, masked (one line per statement for a query of several) */
  readonly command: string;
  /** a query's statements, one by one with their classes (PostgreSQL) */
  readonly statements?: readonly StatementPart[] | undefined;
  readonly decision: Decision;
}

export function ticketFor(who: Requester, held: HeldCommand): ApprovalTicket {
  const settings = held.decision.approval ?? UNSPECIFIED_APPROVAL;
  return {
    connection: who.connection.name,
    namespace: who.connection.namespace,
    session: held.session,
    protocol: who.protocol,
    command: held.command,
    ...(held.statements !== undefined ? { statements: held.statements } : {}),
    rules: held.decision.rules,
    message: held.decision.message,
    approvers: settings.approvers,
    required: settings.required,
    timeoutSeconds: settings.timeoutSeconds,
    requireReason: settings.requireReason,
    ...(who.pod !== undefined ? { pod: who.pod } : {}),
    ...(who.serviceAccount !== undefined ? { serviceAccount: who.serviceAccount } : {}),
  };
}

/** Where a record is in the session: `{ statement: id }` (PostgreSQL) or `{ channel: n }` (SSH). */
export type Subject = Readonly<Record<string, number | undefined>>;

export function pendingRecord(subject: Subject, pending: PendingApproval): { type: 'approval' } & Record<string, unknown> {
  return { type: 'approval', ...subject, request: pending.name, phase: 'Pending', expiresAt: pending.expiresAt.toISOString() };
}

export function unavailableRecord(subject: Subject, err: unknown): { type: 'approval' } & Record<string, unknown> {
  return { type: 'approval', ...subject, phase: 'Unavailable', error: err instanceof Error ? err.message : String(err) };
}

/** The outcome's record: every reviewer, the deciding one (the last) and a reason given. */
export function outcomeRecord(subject: Subject, request: string, outcome: ApprovalOutcome): { type: 'approval' } & Record<string, unknown> {
  const last = outcome.decisions[outcome.decisions.length - 1];
  const reason = last?.reason ?? outcome.decisions.map((x) => x.reason).find((x) => x !== undefined);
  return {
    type: 'approval',
    ...subject,
    request,
    phase: outcome.phase,
    reviewers: outcome.decisions.map((x) => x.user),
    ...(last !== undefined ? { reviewer: last.user } : {}),
    ...(reason !== undefined ? { reason } : {}),
    decisions: outcome.decisions,
  };
}

/** The refusal of a request that could not be made (a SidecarError from the backend is kept). */
export function unavailableRefusal(err: unknown, rules: readonly string[]): SidecarError {
  if (err instanceof SidecarError) return err;
  return new SidecarError('ApprovalUnavailable', `the approval request could not be created: ${err instanceof Error ? err.message : String(err)}`, rules);
}

/** The refusal an outcome is, or undefined when it is Approved. */
export function outcomeRefusal(request: string, outcome: ApprovalOutcome, rules: readonly string[]): SidecarError | undefined {
  const last = outcome.decisions[outcome.decisions.length - 1];
  switch (outcome.phase) {
    case 'Approved':
      return undefined;
    case 'Denied':
      return new SidecarError('ApprovalDenied', `denied by ${last?.user ?? 'a reviewer'}${last?.reason !== undefined ? `: ${last.reason}` : ''} (approval request ${request})`, rules);
    case 'Expired':
      return new SidecarError('ApprovalExpired', `nobody decided approval request ${request} before it expired`, rules);
    case 'Withdrawn':
      return new SidecarError('ApprovalDenied', `approval request ${request} was withdrawn: the agent went away`, rules);
  }
}

/** The reviewers who approved, for the agent's message. */
export function approvedBy(outcome: ApprovalOutcome): string[] {
  return outcome.decisions.filter((d) => d.decision === 'approve').map((d) => d.user);
}
