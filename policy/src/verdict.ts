/**
 * The semantic verdict on one Airlock policy object: what the CRD schema and its CEL rules cannot
 * express. The same function answers `airlock validate` (GitOps CI), the validating admission
 * webhook and, through the compilers it calls, the sidecar: RE2 patterns compile, detector ids
 * exist, column/table/function/command globs are well formed, RequireApproval names approvers,
 * label selectors use valid label keys and values. Risky but legal objects get warnings.
 *
 * Pure. The object is expected to have passed schema validation already (the API server checks
 * the schema before validating webhooks run; `airlock validate` does too), but every field is
 * read defensively: a malformed object gets errors, never an exception.
 */
import type { FieldError } from '@airlock/api';
import { PolicyError } from './errors.ts';
import { compileMasker, type MaskRuleSpec } from './mask/masker.ts';
import { compileGlob } from './shell/glob.ts';
import { parseDuration } from './bundle.ts';

/** AgentConnection label saying what its target holds; `pii` makes `defaultAction: Allow` a warning. */
export const DATA_CLASSIFICATION_LABEL = 'airlock.dev/data-classification';
/** values of DATA_CLASSIFICATION_LABEL that mean personal or otherwise sensitive data */
export const SENSITIVE_CLASSIFICATIONS: readonly string[] = ['pii', 'phi', 'pci', 'sensitive', 'confidential', 'restricted'];

export interface PolicyVerdict {
  /** problems that make the object unusable; empty when it is valid */
  readonly errors: readonly FieldError[];
  /** legal but risky: admission warnings, `airlock validate` prints them */
  readonly warnings: readonly string[];
}

/** kinds this verdict judges; other kinds get an empty verdict */
export const JUDGED_KINDS: readonly string[] = ['AgentConnection', 'MaskingPolicy', 'ApprovalRule'];

/** the key of the `hash` action does not matter to judge a pattern */
const JUDGING_HASH_KEY = new Uint8Array(32);

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function objAt(o: unknown, key: string): Obj | undefined {
  if (!isObj(o)) return undefined;
  const v = o[key];
  return isObj(v) ? v : undefined;
}

function listAt(o: unknown, key: string): readonly unknown[] | undefined {
  if (!isObj(o)) return undefined;
  const v = o[key];
  return Array.isArray(v) ? v : undefined;
}

function strAt(o: unknown, key: string): string | undefined {
  if (!isObj(o)) return undefined;
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

function strings(list: readonly unknown[] | undefined): string[] {
  return (list ?? []).filter((x): x is string => typeof x === 'string');
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ── label selectors ──────────────────────────────────────────────────────────────────────

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** why `key` is not a valid label key, or undefined when it is (Kubernetes' qualified name) */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `prefix part must be a lowercase DNS subdomain of at most 253 characters`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `name part must be 1-63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  }
  return undefined;
}

/** why `value` is not a valid label value, or undefined when it is */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) return `must be at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  return undefined;
}

function selectorErrors(selector: unknown, field: string, out: FieldError[]): void {
  if (!isObj(selector)) return;
  const labels = objAt(selector, 'matchLabels') ?? {};
  for (const [key, value] of Object.entries(labels)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) out.push({ field: `${field}.matchLabels`, message: `Invalid value: ${JSON.stringify(key)}: ${keyProblem}` });
    const valueProblem = typeof value === 'string' ? labelValueProblem(value) : 'must be a string';
    if (valueProblem !== undefined) out.push({ field: `${field}.matchLabels.${key}`, message: `Invalid value: ${JSON.stringify(value)}: ${valueProblem}` });
  }
  (listAt(selector, 'matchExpressions') ?? []).forEach((e, i) => {
    const key = strAt(e, 'key');
    const at = `${field}.matchExpressions[${i}]`;
    if (key !== undefined) {
      const keyProblem = labelKeyProblem(key);
      if (keyProblem !== undefined) out.push({ field: `${at}.key`, message: `Invalid value: ${JSON.stringify(key)}: ${keyProblem}` });
    }
    strings(listAt(e, 'values')).forEach((v, j) => {
      const problem = labelValueProblem(v);
      if (problem !== undefined) out.push({ field: `${at}.values[${j}]`, message: `Invalid value: ${JSON.stringify(v)}: ${problem}` });
    });
  });
}

function selectsEverything(selector: unknown): boolean {
  return isObj(selector) && Object.keys(objAt(selector, 'matchLabels') ?? {}).length === 0 && (listAt(selector, 'matchExpressions') ?? []).length === 0;
}

// ── kinds ────────────────────────────────────────────────────────────────────────────────

function maskingPolicyVerdict(spec: Obj | undefined, errors: FieldError[], warnings: string[]): void {
  selectorErrors(spec?.['connectionSelector'], 'spec.connectionSelector', errors);
  if (selectsEverything(spec?.['connectionSelector'])) warnings.push('spec.connectionSelector is empty: the policy applies to every AgentConnection of the namespace');
  (listAt(spec, 'rules') ?? []).forEach((rule, i) => {
    const at = `spec.rules[${i}]`;
    const match = objAt(rule, 'match');
    // the compiler the sidecar runs, one rule at a time, so that the error names the rule's field
    try {
      compileMasker([rule as MaskRuleSpec], JUDGING_HASH_KEY);
    } catch (err) {
      if (!(err instanceof PolicyError)) {
        errors.push({ field: at, message: `Invalid value: ${message(err)}` });
        return;
      }
      const field =
        err.code === 'InvalidPattern' ? `${at}.match.pattern` : err.code === 'InvalidGlob' ? `${at}.match.columns` : /detector/.test(err.message) ? `${at}.match.detectors` : /action|keep/.test(err.message) ? `${at}.action` : `${at}.match`;
      errors.push({ field, message: `Invalid value: ${err.message}` });
      return;
    }
    for (const g of strings(listAt(match, 'columns'))) {
      if (g.split('.').every((p) => p === '*')) warnings.push(`${at}.match.columns: ${JSON.stringify(g)} masks every column of every result`);
    }
  });
}

function globErrors(list: readonly unknown[] | undefined, field: string, errors: FieldError[]): void {
  strings(list).forEach((g, j) => {
    try {
      compileGlob(g);
    } catch (err) {
      errors.push({ field: `${field}[${j}]`, message: `Invalid value: ${message(err)}` });
    }
  });
}

function approvalRuleVerdict(spec: Obj | undefined, errors: FieldError[], warnings: string[]): void {
  selectorErrors(spec?.['connectionSelector'], 'spec.connectionSelector', errors);
  (listAt(spec, 'rules') ?? []).forEach((rule, i) => {
    const at = `spec.rules[${i}]`;
    const name = strAt(rule, 'name') ?? String(i);
    const action = strAt(rule, 'action');
    const sql = objAt(objAt(rule, 'match'), 'sql');
    const ssh = objAt(objAt(rule, 'match'), 'ssh');
    globErrors(listAt(sql, 'tables'), `${at}.match.sql.tables`, errors);
    globErrors(listAt(sql, 'functions'), `${at}.match.sql.functions`, errors);
    globErrors(listAt(ssh, 'commands'), `${at}.match.ssh.commands`, errors);
    const approval = objAt(rule, 'approval');
    if (action === 'RequireApproval') {
      const approvers = objAt(approval, 'approvers');
      const users = strings(listAt(approvers, 'users')).filter((u) => u.trim() !== '');
      const groups = strings(listAt(approvers, 'groups')).filter((g) => g.trim() !== '');
      if (users.length + groups.length === 0) errors.push({ field: `${at}.approval.approvers`, message: 'Required value: RequireApproval needs at least one approver (users or groups)' });
      for (const u of users) {
        if (u.startsWith('system:serviceaccount:') && u.split(':').length !== 4) errors.push({ field: `${at}.approval.approvers.users`, message: `Invalid value: ${JSON.stringify(u)}: a service account user is system:serviceaccount:<namespace>:<name>` });
      }
      const timeout = strAt(approval, 'timeout');
      if (timeout !== undefined) {
        try {
          if (parseDuration(timeout) <= 0) errors.push({ field: `${at}.approval.timeout`, message: `Invalid value: ${JSON.stringify(timeout)}: must be longer than 0s` });
        } catch (err) {
          errors.push({ field: `${at}.approval.timeout`, message: `Invalid value: ${message(err)}` });
        }
      }
      const required = approval?.['required'];
      if (typeof required === 'number' && groups.length === 0 && required > users.length) {
        errors.push({ field: `${at}.approval.required`, message: `Invalid value: ${required}: only ${users.length} approver(s) are listed and no group, so the request could never be approved` });
      }
    } else if (approval !== undefined) {
      errors.push({ field: `${at}.approval`, message: 'Forbidden: approval is only allowed when action is RequireApproval' });
    }
    if (sql !== undefined && (listAt(sql, 'tables') !== undefined || listAt(sql, 'functions') !== undefined)) {
      const what = listAt(sql, 'tables') !== undefined ? 'tables' : 'functions';
      if (action === 'Allow') {
        warnings.push(`rule "${name}" (${at}) allows only some ${what}: statements whose tables cannot be known (DO, CALL, EXECUTE, unknown functions) never match it and fall through to other rules or the connection's defaultAction`);
      } else {
        warnings.push(`rule "${name}" (${at}) is restricted to ${what}, but statements whose tables cannot be known (DO, CALL, EXECUTE, unknown functions) match it anyway and get ${action ?? 'its action'}`);
      }
    }
  });
}

function agentConnectionVerdict(object: Obj, spec: Obj | undefined, errors: FieldError[], warnings: string[]): void {
  const agents = objAt(spec, 'agents');
  selectorErrors(agents?.['podSelector'], 'spec.agents.podSelector', errors);
  if (selectsEverything(agents?.['podSelector']) && strings(listAt(agents, 'serviceAccounts')).length === 0) {
    warnings.push('spec.agents.podSelector is empty and no serviceAccounts are listed: every opted-in pod of the namespace receives this connection');
  }
  const labels = objAt(objAt(object, 'metadata'), 'labels') ?? {};
  const classification = labels[DATA_CLASSIFICATION_LABEL];
  if (strAt(spec, 'defaultAction') === 'Allow' && typeof classification === 'string' && SENSITIVE_CLASSIFICATIONS.includes(classification.toLowerCase())) {
    warnings.push(`spec.defaultAction is Allow on a connection labelled ${DATA_CLASSIFICATION_LABEL}=${classification}: every statement no ApprovalRule matches is forwarded; Block (the default) fails closed`);
  }
}

/**
 * The verdict on one object (AgentConnection, MaskingPolicy or ApprovalRule; any other kind gets
 * an empty verdict). Never throws.
 */
export function policyVerdict(object: unknown): PolicyVerdict {
  const errors: FieldError[] = [];
  const warnings: string[] = [];
  if (!isObj(object)) return { errors: [{ field: '', message: 'Invalid value: an object is expected' }], warnings };
  const spec = objAt(object, 'spec');
  switch (object['kind']) {
    case 'MaskingPolicy':
      maskingPolicyVerdict(spec, errors, warnings);
      break;
    case 'ApprovalRule':
      approvalRuleVerdict(spec, errors, warnings);
      break;
    case 'AgentConnection':
      agentConnectionVerdict(object, spec, errors, warnings);
      break;
    default:
      break;
  }
  return { errors, warnings };
}
