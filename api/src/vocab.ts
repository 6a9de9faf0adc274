/** Closed vocabularies shared by the schemas and the policy engine. */

export const PROTOCOLS = ['postgres', 'ssh'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const ACTIONS = ['Allow', 'Block', 'RequireApproval'] as const;
export type Action = (typeof ACTIONS)[number];

export const SQL_CLASSES = [
  'read',
  'session',
  'write',
  'destructive',
  'ddl',
  'privilege',
  'admin',
  'export',
  'opaque',
] as const;
export type SqlClass = (typeof SQL_CLASSES)[number];

export const DETECTORS = [
  'email',
  'credit_card',
  'iban',
  'us_ssn',
  'phone',
  'ip_address',
  'jwt',
  'aws_access_key',
  'github_token',
  'slack_token',
  'private_key',
  'url_credentials',
  'bearer_token',
] as const;
export type Detector = (typeof DETECTORS)[number];

export const MASK_ACTIONS = ['redact', 'partial', 'hash', 'null'] as const;
export type MaskAction = (typeof MASK_ACTIONS)[number];

export const TLS_MODES = ['disable', 'require', 'verify-full'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const RECORDING_FAILURE_POLICIES = ['Closed', 'Open'] as const;

export const APPROVAL_PHASES = ['Pending', 'Approved', 'Denied', 'Expired'] as const;
export type ApprovalPhase = (typeof APPROVAL_PHASES)[number];

export const DECISIONS = ['approve', 'deny'] as const;
