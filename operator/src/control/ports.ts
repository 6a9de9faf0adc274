/**
 * What the control API needs of the approvals and sessions services (operator/src/approvals,
 * operator/src/sessions): their methods, as the control API calls them. ApprovalService and
 * SessionService satisfy these structurally.
 */
import type { ApprovalAsk, ApprovalCreated, ApprovalState, PodIdentity, SessionReport } from '@airlock/api';

export interface ApprovalsPort {
  create(pod: PodIdentity, ask: ApprovalAsk): Promise<ApprovalCreated>;
  state(pod: PodIdentity, name: string): Promise<ApprovalState>;
  wait(pod: PodIdentity, name: string, waitMs: number, signal: AbortSignal): Promise<ApprovalState>;
  withdraw(pod: PodIdentity, name: string): Promise<void>;
}

export interface SessionsPort {
  report(pod: PodIdentity, report: SessionReport): Promise<void>;
}
