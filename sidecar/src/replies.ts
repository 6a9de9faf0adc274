/**
 * The one place where errors become what the agent sees. PostgreSQL: an ErrorResponse with a
 * SQLSTATE (policy refusals are 42501 insufficient_privilege, so clients treat them like a
 * permission error and the session goes on). SSH: exit status 126 ("cannot execute") with the
 * message on stderr.
 */
import { RecorderError } from './record/writer.ts';
import { ProtocolError } from './pg/errors.ts';
import { SidecarError, type SidecarErrorCode } from './errors.ts';

export interface PgReply {
  readonly sqlState: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** false: the connection is closed after the reply */
  readonly sessionContinues: boolean;
}

const PG_STATES: Readonly<Record<SidecarErrorCode, string>> = {
  ConfigInvalid: '08006',
  PolicyUnavailable: '42501',
  Blocked: '42501',
  ApprovalDenied: '42501',
  ApprovalExpired: '42501',
  ApprovalUnavailable: '42501',
  RecorderFailed: '42501',
  UpstreamUnavailable: '08006',
  UpstreamAuthFailed: '28000',
  UpstreamTls: '08006',
  HostKeyMismatch: '08006',
  NotPermitted: '42501',
  ProtocolViolation: '08P01',
};

const CONTINUES: ReadonlySet<SidecarErrorCode> = new Set([
  'PolicyUnavailable',
  'Blocked',
  'ApprovalDenied',
  'ApprovalExpired',
  'ApprovalUnavailable',
  'RecorderFailed',
  'NotPermitted',
]);

export function pgReply(err: unknown): PgReply {
  if (err instanceof SidecarError) {
    return {
      sqlState: PG_STATES[err.code],
      message: `airlock: ${err.message}`,
      ...(err.rules.length > 0 ? { detail: `rules: ${err.rules.join(', ')}` } : {}),
      sessionContinues: CONTINUES.has(err.code),
    };
  }
  if (err instanceof ProtocolError) return { sqlState: err.sqlState, message: `airlock: ${err.message}`, sessionContinues: false };
  if (err instanceof RecorderError) return { sqlState: '42501', message: `airlock: refused: ${err.message} (recording failurePolicy is Closed)`, sessionContinues: true };
  return { sqlState: 'XX000', message: `airlock: internal error: ${err instanceof Error ? err.message : String(err)}`, sessionContinues: false };
}

/** Exit status of a refused SSH exec: 126, the shell's "found but cannot execute". */
export const SSH_REFUSED_STATUS = 126;

export interface SshReply {
  readonly exitStatus: number;
  readonly stderr: string;
}

export function sshReply(err: unknown): SshReply {
  if (err instanceof SidecarError) return { exitStatus: SSH_REFUSED_STATUS, stderr: `airlock: ${err.message}\n` };
  if (err instanceof RecorderError) return { exitStatus: SSH_REFUSED_STATUS, stderr: `airlock: refused: ${err.message} (recording failurePolicy is Closed)\n` };
  return { exitStatus: SSH_REFUSED_STATUS, stderr: `airlock: internal error: ${err instanceof Error ? err.message : String(err)}\n` };
}
