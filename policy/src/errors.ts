/**
 * Errors of the policy engine. Each has a stable code; the sidecar and CLI map codes to wire
 * replies and exit statuses in one place.
 */
export type PolicyErrorCode =
  | 'InvalidPattern' // a user RE2 pattern does not compile
  | 'InvalidGlob' // a column/table/command glob is malformed
  | 'InvalidManifest' // a manifest fails schema validation
  | 'ConnectionNotFound' // no AgentConnection of that name/namespace
  | 'SecretNotFound' // a referenced Secret is missing
  | 'InvalidInput'; // malformed input to check/mask

export class PolicyError extends Error {
  readonly code: PolicyErrorCode;
  constructor(code: PolicyErrorCode, message: string) {
    super(message);
    this.name = 'PolicyError';
    this.code = code;
  }
}
