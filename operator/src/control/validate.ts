/**
 * Checks of the small JSON bodies sidecars send (ApprovalAsk, SessionReport) and of query
 * parameters: a 400 naming the first field that is wrong. Pure.
 */
import { MAX_WAIT_SECONDS, type ApprovalAsk, type SessionReport } from '@airlock/api';
import { ControlFailure } from './errors.ts';

type Json = Record<string, unknown>;

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** session ids become AgentSession names lowercased */
const SESSION = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function fail(field: string, what: string): never {
  throw new ControlFailure('InvalidBody', `${field}: ${what}`);
}

function object(value: unknown, field: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(field, 'must be an object');
  return value as Json;
}

function onlyKeys(value: Json, field: string, allowed: readonly string[]): void {
  const extra = Object.keys(value).find((k) => !allowed.includes(k));
  if (extra !== undefined) fail(field === '' ? extra : `${field}.${extra}`, 'unknown field');
}

function string(value: Json, key: string, field: string, options: { readonly max?: number; readonly pattern?: RegExp; readonly optional?: boolean } = {}): string | undefined {
  const v = value[key];
  const where = field === '' ? key : `${field}.${key}`;
  if (v === undefined && options.optional === true) return undefined;
  if (typeof v !== 'string') fail(where, 'must be a string');
  if (v.length > (options.max ?? 4096)) fail(where, `longer than ${options.max ?? 4096} characters`);
  if (options.pattern !== undefined && !options.pattern.test(v)) fail(where, `"${v.slice(0, 80)}" is not valid`);
  return v;
}

function count(value: Json, key: string, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = value[key];
  const where = field === '' ? key : `${field}.${key}`;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(where, `must be an integer from ${min} to ${max}`);
  return v;
}

function strings(value: Json, key: string, field: string, max = 256): string[] {
  const v = value[key];
  const where = field === '' ? key : `${field}.${key}`;
  if (!Array.isArray(v) || v.length > max) fail(where, `must be an array of at most ${max} strings`);
  v.forEach((s, i) => {
    if (typeof s !== 'string' || s.length > 256) fail(`${where}[${i}]`, 'must be a string of at most 256 characters');
  });
  return v as string[];
}

function protocol(value: Json): 'postgres' | 'ssh' {
  const v = value['protocol'];
  if (v !== 'postgres' && v !== 'ssh') fail('protocol', 'must be "postgres" or "ssh"');
  return v;
}

export function parseApprovalAsk(body: unknown): ApprovalAsk {
  const v = object(body, 'body');
  onlyKeys(v, '', ['connection', 'session', 'protocol', 'command', 'classes', 'rule', 'approvers', 'required', 'requireReason', 'timeoutSeconds', 'message']);
  const rule = object(v['rule'], 'rule');
  onlyKeys(rule, 'rule', ['approvalRule', 'name']);
  const approvers = object(v['approvers'], 'approvers');
  onlyKeys(approvers, 'approvers', ['users', 'groups']);
  const requireReason = v['requireReason'];
  if (typeof requireReason !== 'boolean') fail('requireReason', 'must be a boolean');
  const ask: ApprovalAsk = {
    connection: string(v, 'connection', '', { max: 253, pattern: NAME }) ?? '',
    session: string(v, 'session', '', { max: 253, pattern: SESSION }) ?? '',
    protocol: protocol(v),
    command: string(v, 'command', '', { max: 64 * 1024 }) ?? '',
    classes: strings(v, 'classes', ''),
    rule: { approvalRule: string(rule, 'approvalRule', 'rule', { max: 253, pattern: NAME }) ?? '', name: string(rule, 'name', 'rule', { max: 253 }) ?? '' },
    approvers: { users: strings(approvers, 'users', 'approvers'), groups: strings(approvers, 'groups', 'approvers') },
    required: count(v, 'required', '', 1, 100),
    requireReason,
    timeoutSeconds: count(v, 'timeoutSeconds', '', 1, 7 * 24 * 3600),
    message: string(v, 'message', '', { max: 4096 }) ?? '',
  };
  if (ask.approvers.users.length + ask.approvers.groups.length === 0) fail('approvers', 'must name at least one user or group');
  return ask;
}

export function parseSessionReport(body: unknown): SessionReport {
  const v = object(body, 'body');
  onlyKeys(v, '', ['session', 'connection', 'protocol', 'seq', 'type', 'startTime', 'endTime', 'counts', 'recording']);
  const type = v['type'];
  if (type !== 'start' && type !== 'progress' && type !== 'end') fail('type', 'must be "start", "progress" or "end"');
  const counts = object(v['counts'], 'counts');
  onlyKeys(counts, 'counts', ['statements', 'rows', 'maskedValues', 'blocked', 'approvals']);
  const recording = object(v['recording'], 'recording');
  onlyKeys(recording, 'recording', ['claimName', 'path', 'chainHead', 'records']);
  const endTime = string(v, 'endTime', '', { pattern: RFC3339, optional: true });
  if (type === 'end' && endTime === undefined) fail('endTime', 'is required when type is "end"');
  const claimName = string(recording, 'claimName', 'recording', { max: 253, pattern: NAME, optional: true });
  const chainHead = string(recording, 'chainHead', 'recording', { max: 256, optional: true });
  return {
    session: string(v, 'session', '', { max: 253, pattern: SESSION }) ?? '',
    connection: string(v, 'connection', '', { max: 253, pattern: NAME }) ?? '',
    protocol: protocol(v),
    seq: count(v, 'seq', ''),
    type,
    startTime: string(v, 'startTime', '', { pattern: RFC3339 }) ?? '',
    ...(endTime === undefined ? {} : { endTime }),
    counts: {
      statements: count(counts, 'statements', 'counts'),
      rows: count(counts, 'rows', 'counts'),
      maskedValues: count(counts, 'maskedValues', 'counts'),
      blocked: count(counts, 'blocked', 'counts'),
      approvals: count(counts, 'approvals', 'counts'),
    },
    recording: {
      ...(claimName === undefined ? {} : { claimName }),
      path: string(recording, 'path', 'recording', { max: 4096 }) ?? '',
      ...(chainHead === undefined ? {} : { chainHead }),
      records: count(recording, 'records', 'recording'),
    },
  };
}

/** `waitSeconds` of a query: absent → 0; an integer 0..MAX_WAIT_SECONDS */
export function parseWaitSeconds(value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value) || Number(value) > MAX_WAIT_SECONDS) {
    throw new ControlFailure('InvalidQuery', `waitSeconds must be an integer from 0 to ${MAX_WAIT_SECONDS}`);
  }
  return Number(value);
}

export function parseRevision(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 128) throw new ControlFailure('InvalidQuery', 'revision must be the revision of an earlier bundle');
  return value;
}

export function parseApprovalName(value: string): string {
  if (!NAME.test(value) || value.length > 253) throw new ControlFailure('InvalidQuery', `"${value.slice(0, 80)}" is not an ApprovalRequest name`);
  return value;
}
