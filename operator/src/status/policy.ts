/**
 * Status of a MaskingPolicy or an ApprovalRule: Ready when every rule compiles, and the
 * connections it selects. Pure: (object, connections of its namespace, now) → status.
 */
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';
import { compileApprovalRule, compileMaskingPolicy, selects, type CompileResult } from '../compile.ts';
import { CONDITION_TYPES, REASONS, settleConditions, type Condition, type DesiredCondition } from '../conditions.ts';

export interface PolicyStatus {
  readonly observedGeneration?: number;
  readonly conditions: readonly Condition[];
  readonly connections: readonly string[];
}

function readiness(kind: string, result: CompileResult): DesiredCondition {
  return result.ok
    ? { type: CONDITION_TYPES.Ready, status: 'True', reason: REASONS.RulesCompiled, message: `Every rule of the ${kind} compiles.` }
    : { type: CONDITION_TYPES.Ready, status: 'False', reason: REASONS.InvalidRule, message: `A rule of the ${kind} does not compile: ${result.message.replace(/\.$/, '')}.` };
}

function policyStatus(
  kind: string,
  object: MaskingPolicy | ApprovalRule,
  result: CompileResult,
  connections: readonly AgentConnection[],
  now: string,
): PolicyStatus {
  const generation = object.metadata.generation;
  return {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions: settleConditions(object.status?.conditions, [readiness(kind, result)], generation, now),
    connections: connections
      .filter((c) => selects(object.spec.connectionSelector, c))
      .map((c) => c.metadata.name ?? '')
      .sort(),
  };
}

export function maskingPolicyStatus(policy: MaskingPolicy, connections: readonly AgentConnection[], now: string): PolicyStatus {
  return policyStatus('MaskingPolicy', policy, compileMaskingPolicy(policy), connections, now);
}

export function approvalRuleStatus(rule: ApprovalRule, connections: readonly AgentConnection[], now: string): PolicyStatus {
  return policyStatus('ApprovalRule', rule, compileApprovalRule(rule), connections, now);
}
