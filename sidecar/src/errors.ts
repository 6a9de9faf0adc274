/**
 * Errors of the sidecar, each with a stable code. `replies.ts` maps them to what the agent sees
 * (a PostgreSQL ErrorResponse, an SSH exit status and stderr) in one place.
 */
export type SidecarErrorCode =
  | 'ConfigInvalid' // the manifests do not describe a usable connection (missing Secret keys, wrong protocol)
  | 'PolicyUnavailable' // no compiled policy bundle: fail closed
  | 'Blocked' // a rule (or defaultAction) blocked the statement or command
  | 'ApprovalDenied' // a reviewer denied the held statement or command
  | 'ApprovalExpired' // nobody decided before the rule's timeout
  | 'ApprovalUnavailable' // the approval backend could not take the request: fail closed
  | 'RecorderFailed' // the recording could not be written (failurePolicy Closed)
  | 'UpstreamUnavailable' // the target could not be reached or dropped the connection
  | 'UpstreamAuthFailed' // the target refused Airlock's credentials
  | 'UpstreamTls' // TLS to the target failed (handshake, certificate)
  | 'HostKeyMismatch' // the SSH server's host key is not pinned
  | 'NotPermitted' // a channel type or feature the connection does not allow (shell, sftp, forwarding)
  | 'ProtocolViolation'; // malformed or oversized input from the agent

export class SidecarError extends Error {
  readonly code: SidecarErrorCode;
  /** rule ids behind a policy refusal */
  readonly rules: readonly string[];
  constructor(code: SidecarErrorCode, message: string, rules: readonly string[] = []) {
    super(message);
    this.name = 'SidecarError';
    this.code = code;
    this.rules = rules;
  }
}
