/**
 * Conditions as the Kubernetes API conventions define them (metav1.Condition). Reasons are a
 * closed set of CamelCase constants; `lastTransitionTime` moves only when a condition's status
 * changes, so recomputing an unchanged status yields the same object.
 */
export const CONDITION_TYPES = { Ready: 'Ready', CredentialsResolved: 'CredentialsResolved', PolicyCompiled: 'PolicyCompiled', CredentialsIsolated: 'CredentialsIsolated', TrafficCaptured: 'TrafficCaptured' } as const;
export type ConditionType = (typeof CONDITION_TYPES)[keyof typeof CONDITION_TYPES];

export const REASONS = {
  /** every rule of the policy compiles */
  RulesCompiled: 'RulesCompiled',
  /** a rule does not compile (bad RE2 pattern, unknown detector, bad glob, bad duration) */
  InvalidRule: 'InvalidRule',
  /** the credentials Secret exists with the keys the protocol needs */
  SecretResolved: 'SecretResolved',
  SecretNotFound: 'SecretNotFound',
  SecretKeyMissing: 'SecretKeyMissing',
  /** the bundle of the policies selecting the connection compiles */
  BundleCompiled: 'BundleCompiled',
  /** a policy selecting the connection does not compile */
  InvalidPolicy: 'InvalidPolicy',
  /** Ready of a connection: every other condition is True */
  ConnectionReady: 'ConnectionReady',
  CredentialsNotResolved: 'CredentialsNotResolved',
  PolicyNotCompiled: 'PolicyNotCompiled',
  /** CredentialsIsolated: no ServiceAccount of the namespace can read the credentials Secret */
  NoServiceAccountReads: 'NoServiceAccountReads',
  /** CredentialsIsolated=False: some can, so an agent running as one could bypass the sidecar */
  ServiceAccountsCanRead: 'ServiceAccountsCanRead',
  /** CredentialsIsolated=Unknown: not checked yet, or the check failed */
  AccessNotChecked: 'AccessNotChecked',
  /** TrafficCaptured: every injected pod that uses the connection captures transparently (or none runs) */
  TransparentCapture: 'TransparentCapture',
  /** TrafficCaptured=False: a pod uses explicit capture, so its agent could dial the target directly */
  Bypassable: 'Bypassable',
  /** TrafficCaptured: pods use explicit capture, and the connection declares what stops direct traffic */
  DeclaredEnforcement: 'DeclaredEnforcement',
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS];

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

/** a condition as a status function computes it, before times are settled */
export interface DesiredCondition {
  readonly type: ConditionType;
  readonly status: ConditionStatus;
  readonly reason: Reason;
  readonly message: string;
}

/**
 * The conditions to write: `desired` in order, each with the generation it was computed from and
 * the previous transition time when its status did not change.
 */
export function settleConditions(
  previous: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  generation: number | undefined,
  now: string,
): Condition[] {
  return desired.map((d) => {
    const before = previous?.find((c) => c.type === d.type);
    return {
      type: d.type,
      status: d.status,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
      lastTransitionTime: before !== undefined && before.status === d.status ? before.lastTransitionTime : now,
      reason: d.reason,
      message: d.message,
    };
  });
}

/** conditions whose status differs from before (or that are new): each gets an Event */
export function transitions(previous: readonly Condition[] | undefined, next: readonly Condition[]): Condition[] {
  return next.filter((c) => previous?.find((p) => p.type === c.type)?.status !== c.status);
}

/**
 * The transitions worth an Event (one Event each): every change of Ready, its first value
 * included (the summary: its reason and message name the cause), and of any other condition
 * whenever it becomes False or stops being False. A detail condition that appears True or
 * Unknown, or goes from Unknown to True, is not news: Ready (or nothing) already says it, and
 * a thousand new healthy objects should not mean thousands of Events.
 */
export function notableTransitions(previous: readonly Condition[] | undefined, next: readonly Condition[]): Condition[] {
  return transitions(previous, next).filter((c) => {
    if (c.type === CONDITION_TYPES.Ready) return true;
    const before = previous?.find((p) => p.type === c.type)?.status;
    return c.status === 'False' || before === 'False';
  });
}

/** the Ready summary over other conditions: the first one not True decides */
export function readyCondition(parts: readonly { readonly condition: DesiredCondition; readonly notReady: Reason }[], ready: { readonly reason: Reason; readonly message: string }): DesiredCondition {
  const failing = parts.find((p) => p.condition.status !== 'True');
  if (failing === undefined) return { type: CONDITION_TYPES.Ready, status: 'True', ...ready };
  return { type: CONDITION_TYPES.Ready, status: failing.condition.status, reason: failing.notReady, message: failing.condition.message };
}
