/**
 * The approval port: how a session asks a human about a held statement or command. Local mode
 * uses files under the state directory (local.ts); cluster mode plugs in an ApprovalRequest
 * backend behind the same interface. A backend that cannot take a request throws
 * SidecarError('ApprovalUnavailable'): the session refuses (fail closed).
 */
export interface ApprovalTicket {
  readonly connection: string;
  readonly namespace: string;
  /** the session (recording) id */
  readonly session: string;
  readonly protocol: 'postgres' | 'ssh';
  /** the statement or command line, masked */
  readonly command: string;
  readonly rules: readonly string[];
  readonly message: string;
  readonly approvers: { readonly users: readonly string[]; readonly groups: readonly string[] };
  readonly required: number;
  readonly timeoutSeconds: number;
  readonly requireReason: boolean;
  readonly pod?: string;
  readonly serviceAccount?: string;
  /**
   * a query of several statements, one by one with their classes (a postgres ticket carries
   * them; the local request file keeps them in its spec, cluster mode lists them in the command)
   */
  readonly statements?: readonly StatementPart[];
}

/** one statement of a query, as reviewers and auditors see it */
export interface StatementPart {
  /** the statement's text, masked */
  readonly text: string;
  readonly classes: readonly string[];
}

export type ApprovalPhase = 'Pending' | 'Approved' | 'Denied' | 'Expired' | 'Withdrawn';

export interface ReviewerDecision {
  readonly user: string;
  readonly decision: 'approve' | 'deny';
  readonly reason?: string;
  readonly time: string;
}

export interface ApprovalOutcome {
  readonly phase: Exclude<ApprovalPhase, 'Pending'>;
  readonly decisions: readonly ReviewerDecision[];
}

export interface PendingApproval {
  readonly name: string;
  /** tells the agent where the request is and how a reviewer decides it */
  readonly where: string;
  readonly expiresAt: Date;
  /**
   * Resolves when the request is decided or expires. Aborting the signal (the agent went away)
   * withdraws the request and resolves with phase Withdrawn.
   */
  outcome(signal?: AbortSignal): Promise<ApprovalOutcome>;
}

export interface ApprovalPort {
  request(ticket: ApprovalTicket): Promise<PendingApproval>;
}
