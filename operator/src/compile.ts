/**
 * The policy engine's compilers, as the operator uses them to judge objects: the same code the
 * sidecar and `airlock check` run (compileMasker, compileBundle), so a policy the operator calls
 * Ready is one the sidecar loads. Pure.
 */
import { API_VERSION, byName, type AgentConnection, type ApprovalRule, type MaskingPolicy, type Manifest } from '@airlock/api';
import { PolicyError, compileBundle, compileMasker, selectorMatches } from '@airlock/policy';

export type CompileResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

export type BundleResult =
  | { readonly ok: true; readonly digest: string }
  | { readonly ok: false; readonly message: string };

/**
 * The operator only compiles to judge: the key of the `hash` action changes what `hash` outputs,
 * never the bundle's digest (a sha256 over the connection's spec and the selected policies'
 * names and specs), so the sidecar, which derives its key from the credentials Secret, computes
 * the same digest from the same objects.
 */
const JUDGING_HASH_KEY = new Uint8Array(32);

/**
 * Results remembered by the text of their input, the oldest forgotten first past `limit`.
 * Compiling is pure, so objects with the same content share one result: the same policy judged
 * for each of the 1,000 connections it selects, or again on every reconcile, compiles once.
 * Only verdicts and digests are kept, never compiled matchers (RE2 objects).
 */
export class Remembered<V> {
  readonly #limit: number;
  readonly #values = new Map<string, V>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  get(key: string, compute: () => V): V {
    const known = this.#values.get(key);
    if (known !== undefined) return known;
    const value = compute();
    this.#values.set(key, value);
    if (this.#values.size > this.#limit) {
      const oldest = this.#values.keys().next();
      if (oldest.done !== true) this.#values.delete(oldest.value);
    }
    return value;
  }

  get size(): number {
    return this.#values.size;
  }
}

const maskingVerdicts = new Remembered<CompileResult>(4096);
const ruleVerdicts = new Remembered<CompileResult>(4096);
const bundleVerdicts = new Remembered<BundleResult>(8192);

function failure(err: unknown): { readonly ok: false; readonly message: string } {
  if (err instanceof PolicyError) return { ok: false, message: err.message };
  throw err;
}

function manifest(object: AgentConnection | MaskingPolicy | ApprovalRule): Manifest {
  return {
    source: 'cluster',
    document: 1,
    apiVersion: object.apiVersion,
    kind: object.kind,
    name: object.metadata.name ?? '',
    namespace: object.metadata.namespace,
    object: object as unknown as Readonly<Record<string, unknown>>,
  };
}

/** whether a MaskingPolicy's rules compile (remembered by the rules' text: messages name rules, not the policy) */
export function compileMaskingPolicy(policy: MaskingPolicy): CompileResult {
  return maskingVerdicts.get(JSON.stringify(policy.spec.rules), () => {
    try {
      compileMasker(policy.spec.rules, JUDGING_HASH_KEY);
      return { ok: true };
    } catch (err) {
      return failure(err);
    }
  });
}

/**
 * An ApprovalRule compiles on its own as part of a bundle for a stand-in connection that it
 * selects, with the agent identity set to one of its subjects so that every rule, Allow rules
 * included, is compiled.
 */
export function compileApprovalRule(rule: ApprovalRule): CompileResult {
  // the selector is replaced below; messages name the rule ("<name>/<rule>")
  const judged = { ...rule.spec, connectionSelector: undefined };
  return ruleVerdicts.get(JSON.stringify([rule.metadata.name, rule.metadata.namespace, judged]), () => compileApprovalRuleNow(rule));
}

function compileApprovalRuleNow(rule: ApprovalRule): CompileResult {
  const namespace = rule.metadata.namespace ?? 'default';
  const standIn: AgentConnection = {
    apiVersion: API_VERSION,
    kind: 'AgentConnection',
    metadata: { name: 'airlock-operator-stand-in', namespace },
    spec: {
      protocol: 'postgres',
      target: { host: 'stand-in', port: 5432, database: 'stand-in' },
      credentialsSecretRef: { name: 'stand-in' },
      agents: { serviceAccounts: ['stand-in'] },
    },
  };
  const selectingAll: ApprovalRule = { ...rule, spec: { ...rule.spec, connectionSelector: {} } };
  const serviceAccount = rule.spec.subjects?.serviceAccounts?.[0];
  try {
    compileBundle([manifest(standIn), manifest(selectingAll)], {
      connection: 'airlock-operator-stand-in',
      namespace,
      hashKey: JUDGING_HASH_KEY,
      ...(serviceAccount === undefined ? {} : { serviceAccount }),
    });
    return { ok: true };
  } catch (err) {
    return failure(err);
  }
}

export function selects(selector: MaskingPolicy['spec']['connectionSelector'] | ApprovalRule['spec']['connectionSelector'], connection: AgentConnection): boolean {
  return selectorMatches(selector, connection.metadata.labels ?? {});
}

/** the bundle the sidecars of `connection` would enforce (unknown agent identity: the strictest) */
export function compileConnectionBundle(connection: AgentConnection, maskingPolicies: readonly MaskingPolicy[], approvalRules: readonly ApprovalRule[]): BundleResult {
  // everything compileBundle reads: the connection (its labels select), the policies' names and specs
  const key = JSON.stringify([
    connection.metadata.name,
    connection.metadata.namespace,
    connection.metadata.labels,
    connection.spec,
    maskingPolicies.map((p) => [p.metadata.name, p.metadata.namespace, p.spec]),
    approvalRules.map((r) => [r.metadata.name, r.metadata.namespace, r.spec]),
  ]);
  return bundleVerdicts.get(key, () => compileConnectionBundleNow(connection, maskingPolicies, approvalRules));
}

function compileConnectionBundleNow(connection: AgentConnection, maskingPolicies: readonly MaskingPolicy[], approvalRules: readonly ApprovalRule[]): BundleResult {
  try {
    const bundle = compileBundle([connection, ...maskingPolicies, ...approvalRules].map(manifest), {
      connection: connection.metadata.name ?? '',
      namespace: connection.metadata.namespace ?? 'default',
      hashKey: JUDGING_HASH_KEY,
    });
    return { ok: true, digest: bundle.digest };
  } catch (err) {
    return failure(err);
  }
}

/**
 * What PolicyCompiled judges for a connection: each selecting policy on its own (so the message
 * names the one that fails), then their bundle. The policies are the selecting ones, sorted by name.
 */
export function judgeConnectionPolicies(connection: AgentConnection, maskingPolicies: readonly MaskingPolicy[], approvalRules: readonly ApprovalRule[]): BundleResult {
  for (const policy of maskingPolicies) {
    const result = compileMaskingPolicy(policy);
    if (!result.ok) return { ok: false, message: `MaskingPolicy "${policy.metadata.name ?? ''}" does not compile: ${result.message}` };
  }
  for (const rule of approvalRules) {
    const result = compileApprovalRule(rule);
    if (!result.ok) return { ok: false, message: `ApprovalRule "${rule.metadata.name ?? ''}" does not compile: ${result.message}` };
  }
  const bundle = compileConnectionBundle(connection, maskingPolicies, approvalRules);
  return bundle.ok ? bundle : { ok: false, message: `the policy bundle does not compile: ${bundle.message}` };
}

/** the MaskingPolicies and ApprovalRules of the connection's namespace that select it, sorted by name */
export function selectingPolicies(
  connection: AgentConnection,
  maskingPolicies: readonly MaskingPolicy[],
  approvalRules: readonly ApprovalRule[],
): { readonly maskingPolicies: MaskingPolicy[]; readonly approvalRules: ApprovalRule[] } {
  return {
    maskingPolicies: maskingPolicies.filter((p) => selects(p.spec.connectionSelector, connection)).sort(byName),
    approvalRules: approvalRules.filter((r) => selects(r.spec.connectionSelector, connection)).sort(byName),
  };
}
