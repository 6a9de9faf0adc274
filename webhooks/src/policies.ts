/**
 * Policy validation (validating, AgentConnection / MaskingPolicy / ApprovalRule CREATE and
 * UPDATE): the semantic checks the CRD schema and CEL cannot express, through policy's
 * policyVerdict, the same function `airlock validate` runs in GitOps CI. Errors deny the request
 * (422 Invalid, every problem named by field); warnings are passed to the client. Pure.
 */
import { formatFieldError } from '@airlock/api';
import { JUDGED_KINDS, policyVerdict } from '@airlock/policy';
import { allow, deny, type AdmissionRequest, type AdmissionVerdict } from './admission.ts';

export function validatePolicyAdmission(request: AdmissionRequest): AdmissionVerdict {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow();
  if (request.subResource !== undefined) return allow();
  const kind = request.kind.kind;
  if (request.kind.group !== 'airlock.dev' || !JUDGED_KINDS.includes(kind)) return allow();
  const object = request.object;
  if (object === undefined) return deny('the admission request carries no object', 400, 'BadRequest');
  const verdict = policyVerdict(object);
  const name = request.name ?? '';
  if (verdict.errors.length > 0) {
    return deny(`${kind} ${JSON.stringify(name)} is invalid: ${verdict.errors.map(formatFieldError).join('; ')}`, 422, 'Invalid', verdict.warnings);
  }
  return allow(verdict.warnings);
}
