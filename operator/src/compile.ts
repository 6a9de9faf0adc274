/**
 * The policy engine's compilers, as the operator uses them to judge objects: the same code the
 * sidecar and `airlock check` run (compileMasker, compileBundle), so a policy the operator calls
 * Ready is one the sidecar loads. Pure.
 */
import { API_VERSION, type AgentConnection, type ApprovalRule, type MaskingPolicy, type Manifest } from '@airlock/api';
import { PolicyError, compileBundle, compileMasker, selectorMatches } from '@airlock/policy';

export type CompileResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

export type BundleResult =
  | { readonly ok: true; readonly digest: string }
  | { readonly ok: false; readonly message: string };

/** the operator only compiles to judge: the key of the `hash` action does not matter here */
const JUDGING_HASH_KEY = new Uint8Array(32);

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

export function compileMaskingPolicy(policy: MaskingPolicy): CompileResult {
  try {
    compileMasker(policy.spec.rules, JUDGING_HASH_KEY);
    return { ok: true };
  } catch (err) {
    return failure(err);
  }
}

/**
 * An ApprovalRule compiles on its own as part of a bundle for a stand-in connection that it
 * selects, with the agent identity set to one of its subjects so that every rule, Allow rules
 * included, is compiled.
 */
export function compileApprovalRule(rule: ApprovalRule): CompileResult {
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
