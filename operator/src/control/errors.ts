/**
 * The control API's errors: each has a stable code and the HTTP status it maps to. The one place
 * where they become a reply is `reply.ts`.
 */
export type ControlErrorCode =
  // 400
  | 'InvalidBody' // not JSON, not an object, or a field of the wrong shape (the message names it)
  | 'InvalidQuery' // waitSeconds/revision malformed
  | 'BodyTooLarge' // 413
  // 401: the token itself
  | 'MissingToken'
  | 'InvalidToken' // not a JWT, bad signature, unknown key
  | 'TokenExpired'
  | 'TokenNotYetValid'
  | 'WrongAudience'
  | 'WrongIssuer'
  // 403: the token is authentic, the pod may not have this
  | 'NotPodBound' // no kubernetes.io pod claim (a plain service-account token)
  | 'PodNotFound' // no live pod of that name with a sidecar (deleted, or never injected)
  | 'PodUidMismatch' // a pod of that name exists, but not the one the token was issued for
  | 'ServiceAccountMismatch'
  | 'NotGranted' // no AgentConnection of its namespace grants the pod
  // 404, 409, 503
  | 'NotFound'
  | 'Conflict'
  | 'IssuerUnavailable' // the API server's OIDC discovery or JWKS cannot be read
  | 'NotReady' // caches not synced yet
  | 'Unavailable' // a dependency (approvals, sessions) is not wired
  | 'Internal'; // anything unexpected (logged)

const STATUS: Record<ControlErrorCode, number> = {
  InvalidBody: 400,
  InvalidQuery: 400,
  BodyTooLarge: 413,
  MissingToken: 401,
  InvalidToken: 401,
  TokenExpired: 401,
  TokenNotYetValid: 401,
  WrongAudience: 401,
  WrongIssuer: 401,
  NotPodBound: 403,
  PodNotFound: 403,
  PodUidMismatch: 403,
  ServiceAccountMismatch: 403,
  NotGranted: 403,
  NotFound: 404,
  Conflict: 409,
  IssuerUnavailable: 503,
  NotReady: 503,
  Unavailable: 503,
  Internal: 500,
};

export class ControlFailure extends Error {
  readonly code: ControlErrorCode;
  readonly status: number;
  constructor(code: ControlErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ControlFailure';
    this.code = code;
    this.status = STATUS[code];
  }
}
