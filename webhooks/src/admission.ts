/**
 * AdmissionReview v1: parsing a request body into a typed request (a precise error for anything
 * malformed) and building the response review. Pure.
 */
import type { Operation } from 'fast-json-patch';
import { WebhookError } from './errors.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly resource: GroupVersionResource;
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation: AdmissionOperation;
  readonly userInfo: UserInfo;
  readonly object?: Readonly<Record<string, unknown>>;
  readonly oldObject?: Readonly<Record<string, unknown>>;
  readonly dryRun: boolean;
}

/** what a handler decides; `uid` and the review envelope are added by reviewResponse */
export type AdmissionVerdict =
  | { readonly allowed: true; readonly patch?: readonly Operation[]; readonly warnings?: readonly string[] }
  | { readonly allowed: false; readonly code: number; readonly reason: string; readonly message: string; readonly warnings?: readonly string[] };

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly reason: string; readonly message: string };
  readonly patchType?: 'JSONPatch';
  readonly patch?: string;
  readonly warnings?: readonly string[];
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

const OPERATIONS: readonly string[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

function isObj(v: unknown): v is Readonly<Record<string, unknown>> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function bad(message: string): WebhookError {
  return new WebhookError('InvalidReview', message);
}

function requiredString(o: Readonly<Record<string, unknown>>, key: string, at: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw bad(`${at}.${key}: Required value: a non-empty string`);
  return v;
}

function optionalString(o: Readonly<Record<string, unknown>>, key: string, at: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${at}.${key}: Invalid value: must be a string`);
  return v;
}

function gvk(o: unknown, at: string): GroupVersionKind {
  if (!isObj(o)) throw bad(`${at}: Required value: an object`);
  return { group: optionalString(o, 'group', at) ?? '', version: requiredString(o, 'version', at), kind: requiredString(o, 'kind', at) };
}

function gvr(o: unknown, at: string): GroupVersionResource {
  if (!isObj(o)) throw bad(`${at}: Required value: an object`);
  return { group: optionalString(o, 'group', at) ?? '', version: requiredString(o, 'version', at), resource: requiredString(o, 'resource', at) };
}

function userInfo(o: unknown): UserInfo {
  if (!isObj(o)) throw bad('request.userInfo: Required value: an object');
  const groups = o['groups'] ?? [];
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) throw bad('request.userInfo.groups: Invalid value: must be a list of strings');
  const username = o['username'];
  if (typeof username !== 'string') throw bad('request.userInfo.username: Required value: a string');
  const uid = optionalString(o, 'uid', 'request.userInfo');
  const extra = o['extra'];
  return { username, groups, ...(uid === undefined ? {} : { uid }), ...(isObj(extra) ? { extra: extra as Readonly<Record<string, readonly string[]>> } : {}) };
}

function embedded(o: Readonly<Record<string, unknown>>, key: string): Readonly<Record<string, unknown>> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw bad(`request.${key}: Invalid value: must be an object`);
  return v;
}

/** Parses a request body (already JSON-decoded) as an AdmissionReview v1 request; throws WebhookError('InvalidReview') naming the field. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObj(body)) throw bad('body: Invalid value: an AdmissionReview object is expected');
  if (body['apiVersion'] !== ADMISSION_API_VERSION) throw bad(`apiVersion: Unsupported value: ${JSON.stringify(body['apiVersion'])}: only ${ADMISSION_API_VERSION} is served`);
  if (body['kind'] !== 'AdmissionReview') throw bad(`kind: Unsupported value: ${JSON.stringify(body['kind'])}: must be AdmissionReview`);
  const r = body['request'];
  if (!isObj(r)) throw bad('request: Required value: an object');
  const uid = requiredString(r, 'uid', 'request');
  const operation = requiredString(r, 'operation', 'request');
  if (!OPERATIONS.includes(operation)) throw bad(`request.operation: Unsupported value: ${JSON.stringify(operation)}`);
  const dryRun = r['dryRun'] ?? false;
  if (typeof dryRun !== 'boolean') throw bad('request.dryRun: Invalid value: must be a boolean');
  const subResource = optionalString(r, 'subResource', 'request');
  const name = optionalString(r, 'name', 'request');
  const namespace = optionalString(r, 'namespace', 'request');
  const object = embedded(r, 'object');
  const oldObject = embedded(r, 'oldObject');
  return {
    uid,
    kind: gvk(r['kind'], 'request.kind'),
    resource: gvr(r['resource'], 'request.resource'),
    ...(subResource === undefined || subResource === '' ? {} : { subResource }),
    ...(name === undefined || name === '' ? {} : { name }),
    ...(namespace === undefined || namespace === '' ? {} : { namespace }),
    operation: operation as AdmissionOperation,
    userInfo: userInfo(r['userInfo']),
    ...(object === undefined ? {} : { object }),
    ...(oldObject === undefined ? {} : { oldObject }),
    dryRun,
  };
}

/** The AdmissionReview the API server expects back: uid echoed, a JSON patch base64-encoded. */
export function reviewResponse(uid: string, verdict: AdmissionVerdict): AdmissionReviewResponse {
  const warnings = verdict.warnings !== undefined && verdict.warnings.length > 0 ? { warnings: verdict.warnings } : {};
  if (!verdict.allowed) {
    return {
      apiVersion: ADMISSION_API_VERSION,
      kind: 'AdmissionReview',
      response: { uid, allowed: false, status: { code: verdict.code, reason: verdict.reason, message: verdict.message }, ...warnings },
    };
  }
  const patch = verdict.patch !== undefined && verdict.patch.length > 0 ? { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(verdict.patch), 'utf8').toString('base64') } : {};
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, allowed: true, ...patch, ...warnings } };
}

export const allow = (warnings?: readonly string[]): AdmissionVerdict => ({ allowed: true, ...(warnings === undefined ? {} : { warnings }) });

export function deny(message: string, code = 403, reason = 'Forbidden', warnings?: readonly string[]): AdmissionVerdict {
  return { allowed: false, code, reason, message, ...(warnings === undefined ? {} : { warnings }) };
}

/** escapes one JSON-pointer segment (RFC 6901): `airlock.dev/decision` → `airlock.dev~1decision` */
export function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
