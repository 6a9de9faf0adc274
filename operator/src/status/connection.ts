/**
 * Status of an AgentConnection. Pure: (connection, the policies and Secret keys of its
 * namespace, now) → status.
 *
 * - CredentialsResolved: spec.credentialsSecretRef (and spec.target.tls.caSecretRef) name
 *   Secrets that exist with the keys the protocol needs.
 * - PolicyCompiled: every MaskingPolicy and ApprovalRule selecting the connection compiles, and
 *   so does their bundle; status.policies carries its digest.
 * - Ready: both of the above.
 *
 * - sessions, recentSessions, pendingApprovals: from the namespace's AgentSessions and
 *   ApprovalRequests when the caller passes them (sessions/summary.ts); kept as they were when not.
 */
import { byName, type AgentConnection, type AgentSession, type ApprovalRequest, type ApprovalRule, type MaskingPolicy } from '@airlock/api';
import { compileApprovalRule, compileConnectionBundle, compileMaskingPolicy, selects } from '../compile.ts';
import { connectionActivity, type SessionSummary } from '../sessions/summary.ts';
import { CONDITION_TYPES, REASONS, readyCondition, settleConditions, type Condition, type DesiredCondition } from '../conditions.ts';

type ConnectionStatusFields = NonNullable<AgentConnection['status']>;

export interface ConnectionStatus extends Omit<ConnectionStatusFields, 'conditions' | 'policies' | 'recentSessions'> {
  readonly recentSessions?: readonly Partial<SessionSummary>[];
  readonly observedGeneration?: number;
  readonly conditions: readonly Condition[];
  readonly policies: { readonly maskingPolicies: readonly string[]; readonly approvalRules: readonly string[]; readonly bundleDigest?: string };
}

export interface ConnectionInputs {
  readonly maskingPolicies: readonly MaskingPolicy[];
  readonly approvalRules: readonly ApprovalRule[];
  /** data keys of the Secrets of the connection's namespace, by Secret name */
  readonly secretKeys: ReadonlyMap<string, readonly string[]>;
  /** the AgentSessions of the connection's namespace (any connection); omitted: counters kept as they were */
  readonly sessions?: readonly AgentSession[];
  /** the ApprovalRequests of the connection's namespace (any connection); omitted: pendingApprovals kept */
  readonly approvalRequests?: readonly ApprovalRequest[];
  /**
   * The ServiceAccounts of the namespace that can read the credentials Secret (readers undefined:
   * not known yet). Omitted: not checked, and the CredentialsIsolated condition is not reported.
   */
  readonly credentialReaders?: { readonly readers: readonly { readonly serviceAccount: string; readonly verbs: readonly string[] }[] | undefined };
  /** the injected pods whose sidecar serves this connection; omitted: pods not watched, TrafficCaptured not reported */
  readonly injectedPods?: readonly { readonly name: string; readonly capture?: string }[];
}

/** AgentConnection annotation: what, outside Airlock, stops agents in explicit capture mode from reaching the target directly */
export const ENFORCEMENT_ANNOTATION = 'airlock.dev/bypass-prevented-by';

interface KeyNeed {
  readonly field: string;
  readonly secret: string;
  /** each entry: one key, or alternatives of which one must be present */
  readonly keys: readonly (readonly string[])[];
}

/** what the sidecar reads from Secrets for this connection */
export function keyNeeds(connection: AgentConnection): KeyNeed[] {
  const spec = connection.spec;
  const credentials: KeyNeed = {
    field: 'spec.credentialsSecretRef',
    secret: spec.credentialsSecretRef.name,
    keys: spec.protocol === 'ssh' ? [['username'], ['privateKey', 'password']] : [['username'], ['password']],
  };
  const ca = spec.target.tls?.mode === 'verify-full' ? spec.target.tls.caSecretRef : undefined;
  return ca === undefined ? [credentials] : [credentials, { field: 'spec.target.tls.caSecretRef', secret: ca.name, keys: [[ca.key ?? 'ca.crt']] }];
}

function quoteAll(keys: readonly string[]): string {
  return keys.map((k) => `"${k}"`).join(' or ');
}

export function credentialsCondition(connection: AgentConnection, secretKeys: ReadonlyMap<string, readonly string[]>): DesiredCondition {
  const namespace = connection.metadata.namespace ?? 'default';
  const type = CONDITION_TYPES.CredentialsResolved;
  const needs = keyNeeds(connection);
  for (const need of needs) {
    const present = secretKeys.get(need.secret);
    if (present === undefined) {
      return { type, status: 'False', reason: REASONS.SecretNotFound, message: `Secret "${need.secret}" named by ${need.field} does not exist in namespace "${namespace}".` };
    }
    const missing = need.keys.find((alternatives) => !alternatives.some((k) => present.includes(k)));
    if (missing !== undefined) {
      return {
        type,
        status: 'False',
        reason: REASONS.SecretKeyMissing,
        message: `Secret "${need.secret}" named by ${need.field} has no key ${quoteAll(missing)}, which protocol ${connection.spec.protocol} needs.`,
      };
    }
  }
  const names = needs.map((n) => `"${n.secret}"`).join(' and ');
  return { type, status: 'True', reason: REASONS.SecretResolved, message: `Secret ${names} holds the keys protocol ${connection.spec.protocol} needs.` };
}

/** CredentialsIsolated: whether any ServiceAccount of the namespace can read the credentials Secret itself */
export function credentialsIsolatedCondition(connection: AgentConnection, readers: readonly { readonly serviceAccount: string; readonly verbs: readonly string[] }[] | undefined): DesiredCondition {
  const type = CONDITION_TYPES.CredentialsIsolated;
  const namespace = connection.metadata.namespace ?? 'default';
  const secret = connection.spec.credentialsSecretRef.name;
  if (readers === undefined) {
    return { type, status: 'Unknown', reason: REASONS.AccessNotChecked, message: `Not yet checked whether ServiceAccounts of namespace "${namespace}" can read Secret "${secret}".` };
  }
  if (readers.length === 0) {
    return { type, status: 'True', reason: REASONS.NoServiceAccountReads, message: `No ServiceAccount of namespace "${namespace}" can read Secret "${secret}": only Airlock reads the credentials.` };
  }
  const who = readers.map((r) => `"${r.serviceAccount}" (${r.verbs.join(', ')})`).join(', ');
  return {
    type,
    status: 'False',
    reason: REASONS.ServiceAccountsCanRead,
    message: `ServiceAccount${readers.length === 1 ? '' : 's'} ${who} of namespace "${namespace}" can read Secret "${secret}": a pod running as ${readers.length === 1 ? 'it' : 'one of them'} could read the credentials itself and bypass the sidecar. Remove that access (RBAC).`,
  };
}

/**
 * TrafficCaptured: whether the agents of the pods using this connection can only reach its target
 * through the sidecar. Transparent capture makes it so; explicit capture (env vars pointing at
 * 127.0.0.1, for namespaces whose Pod Security forbids NET_ADMIN) does not, unless the connection
 * declares what does (ENFORCEMENT_ANNOTATION, e.g. a NetworkPolicy).
 */
export function trafficCapturedCondition(connection: AgentConnection, pods: readonly { readonly name: string; readonly capture?: string }[]): DesiredCondition {
  const type = CONDITION_TYPES.TrafficCaptured;
  const explicit = pods.filter((p) => p.capture !== 'transparent').map((p) => p.name).sort();
  if (explicit.length === 0) {
    return { type, status: 'True', reason: REASONS.TransparentCapture, message: pods.length === 0 ? 'No injected pod uses this connection yet; pods injected with transparent capture reach the target only through the sidecar.' : `All ${String(pods.length)} injected pod${pods.length === 1 ? '' : 's'} using this connection capture transparently: their agents reach the target only through the sidecar.` };
  }
  const shown = explicit.length > 5 ? `${explicit.slice(0, 5).join(', ')} and ${String(explicit.length - 5)} more` : explicit.join(', ');
  const declared = connection.metadata.annotations?.[ENFORCEMENT_ANNOTATION]?.trim();
  if (declared !== undefined && declared !== '') {
    return { type, status: 'True', reason: REASONS.DeclaredEnforcement, message: `Pod${explicit.length === 1 ? '' : 's'} ${shown} use${explicit.length === 1 ? 's' : ''} explicit capture; direct traffic to ${connection.spec.target.host}:${String(connection.spec.target.port)} is declared prevented by: ${declared}.` };
  }
  return {
    type,
    status: 'False',
    reason: REASONS.Bypassable,
    message: `Pod${explicit.length === 1 ? '' : 's'} ${shown} use${explicit.length === 1 ? 's' : ''} explicit capture (airlock.dev/capture: explicit): ${explicit.length === 1 ? 'its agent' : 'their agents'} could connect to ${connection.spec.target.host}:${String(connection.spec.target.port)} directly, bypassing the sidecar. Use transparent capture, or block that traffic (a NetworkPolicy) and say so in the annotation ${ENFORCEMENT_ANNOTATION}.`,
  };
}

function sentence(text: string): string {
  return text.endsWith('.') ? text : `${text}.`;
}

function policyCondition(
  connection: AgentConnection,
  maskingPolicies: readonly MaskingPolicy[],
  approvalRules: readonly ApprovalRule[],
): { readonly condition: DesiredCondition; readonly digest: string | undefined } {
  const type = CONDITION_TYPES.PolicyCompiled;
  for (const policy of maskingPolicies) {
    const result = compileMaskingPolicy(policy);
    if (!result.ok) {
      return { condition: { type, status: 'False', reason: REASONS.InvalidPolicy, message: sentence(`MaskingPolicy "${policy.metadata.name ?? ''}" does not compile: ${result.message}`) }, digest: undefined };
    }
  }
  for (const rule of approvalRules) {
    const result = compileApprovalRule(rule);
    if (!result.ok) {
      return { condition: { type, status: 'False', reason: REASONS.InvalidPolicy, message: sentence(`ApprovalRule "${rule.metadata.name ?? ''}" does not compile: ${result.message}`) }, digest: undefined };
    }
  }
  const bundle = compileConnectionBundle(connection, maskingPolicies, approvalRules);
  if (!bundle.ok) return { condition: { type, status: 'False', reason: REASONS.InvalidPolicy, message: sentence(`The policy bundle does not compile: ${bundle.message}`) }, digest: undefined };
  const count = maskingPolicies.length + approvalRules.length;
  return {
    condition: { type, status: 'True', reason: REASONS.BundleCompiled, message: `The bundle of ${count} selecting ${count === 1 ? 'policy' : 'policies'} compiles to ${bundle.digest}.` },
    digest: bundle.digest,
  };
}

export function agentConnectionStatus(connection: AgentConnection, inputs: ConnectionInputs, now: string): ConnectionStatus {
  const maskingPolicies = inputs.maskingPolicies.filter((p) => selects(p.spec.connectionSelector, connection)).sort(byName);
  const approvalRules = inputs.approvalRules.filter((r) => selects(r.spec.connectionSelector, connection)).sort(byName);
  const credentials = credentialsCondition(connection, inputs.secretKeys);
  const policy = policyCondition(connection, maskingPolicies, approvalRules);
  const ready = readyCondition(
    [
      { condition: credentials, notReady: REASONS.CredentialsNotResolved },
      { condition: policy.condition, notReady: REASONS.PolicyNotCompiled },
    ],
    { reason: REASONS.ConnectionReady, message: 'Credentials are resolved and the policy bundle compiles.' },
  );
  const generation = connection.metadata.generation;
  const { conditions: previous, ...others } = connection.status ?? {};
  const name = connection.metadata.name ?? '';
  const activity = inputs.sessions === undefined && inputs.approvalRequests === undefined ? undefined : connectionActivity(name, inputs.sessions ?? [], inputs.approvalRequests ?? []);
  return {
    ...others,
    ...(activity === undefined || inputs.sessions === undefined ? {} : { sessions: activity.sessions, recentSessions: activity.recentSessions }),
    ...(activity === undefined || inputs.approvalRequests === undefined ? {} : { pendingApprovals: activity.pendingApprovals }),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions: settleConditions(
      previous,
      [
        ready,
        credentials,
        policy.condition,
        ...(inputs.credentialReaders === undefined ? [] : [credentialsIsolatedCondition(connection, inputs.credentialReaders.readers)]),
        ...(inputs.injectedPods === undefined ? [] : [trafficCapturedCondition(connection, inputs.injectedPods)]),
      ],
      generation,
      now,
    ),
    policies: {
      maskingPolicies: maskingPolicies.map((p) => p.metadata.name ?? ''),
      approvalRules: approvalRules.map((r) => r.metadata.name ?? ''),
      ...(policy.digest === undefined ? {} : { bundleDigest: policy.digest }),
    },
  };
}
