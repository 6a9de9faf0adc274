/**
 * Errors of the approval and session services, each with a stable code named like the control
 * API's (`operator/src/control/errors.ts`), so the control API maps them one to one:
 * NotFound → 404, InvalidBody → 400, Conflict → 409, Unavailable → 503.
 */
export type ServiceErrorCode =
  | 'NotFound' // no such ApprovalRequest, or not the asking pod's own
  | 'InvalidBody' // an ask or report that cannot be stored (bad name, bad chain head, ...)
  | 'Conflict' // an AgentSession of that name belongs to another pod
  | 'Unavailable'; // the API server refused or could not be reached

export class ServiceError extends Error {
  readonly code: ServiceErrorCode;
  constructor(code: ServiceErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ServiceError';
    this.code = code;
  }
}

/** the HTTP status of an API-server error thrown by @kubernetes/client-node 2.x (ApiException.code), if any */
export function apiStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
