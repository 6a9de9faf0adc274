/**
 * What one reconcile should do, decided from the cache alone: the object's new status, or
 * nothing (deleted, or status already up to date). Pure.
 */
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';
import { sameJson } from './canonical.ts';
import { notableTransitions, type Condition } from './conditions.ts';
import type { ObjectKey } from './keys.ts';
import { agentConnectionStatus } from './status/connection.ts';
import { approvalRuleStatus, maskingPolicyStatus } from './status/policy.ts';
import type { ClusterView } from './view.ts';

export const PLURALS = { AgentConnection: 'agentconnections', MaskingPolicy: 'maskingpolicies', ApprovalRule: 'approvalrules' } as const;

export type ReconcilePlan =
  | { readonly action: 'none'; readonly why: 'deleted' | 'unchanged' }
  | {
      readonly action: 'write';
      readonly object: AgentConnection | MaskingPolicy | ApprovalRule;
      readonly plural: string;
      readonly status: object;
      /** conditions whose status changed notably (notableTransitions): each gets an Event */
      readonly transitions: readonly Condition[];
    };

function planFor(object: AgentConnection | MaskingPolicy | ApprovalRule, status: { readonly conditions: readonly Condition[] }, plural: string): ReconcilePlan {
  if (sameJson(object.status ?? {}, status)) return { action: 'none', why: 'unchanged' };
  return { action: 'write', object, plural, status, transitions: notableTransitions(object.status?.conditions, status.conditions) };
}

export function planReconcile(key: ObjectKey, view: ClusterView, now: string): ReconcilePlan {
  const { namespace, name } = key;
  switch (key.kind) {
    case 'AgentConnection': {
      const connection = view.connection(namespace, name);
      if (connection === undefined) return { action: 'none', why: 'deleted' };
      const sessions = view.agentSessions?.(namespace);
      const approvalRequests = view.approvalRequests?.(namespace);
      const inputs = {
        maskingPolicies: view.maskingPolicies(namespace),
        approvalRules: view.approvalRules(namespace),
        secretKeys: view.secretKeys(namespace),
        ...(sessions === undefined ? {} : { sessions }),
        ...(approvalRequests === undefined ? {} : { approvalRequests }),
        ...(view.credentialReaders === undefined ? {} : { credentialReaders: { readers: view.credentialReaders(namespace, connection.spec.credentialsSecretRef.name) } }),
        ...(view.injectedPods === undefined ? {} : { injectedPods: view.injectedPods(namespace).filter((p) => (p.connections ?? []).includes(name)) }),
      };
      return planFor(connection, agentConnectionStatus(connection, inputs, now), PLURALS.AgentConnection);
    }
    case 'MaskingPolicy': {
      const policy = view.maskingPolicy(namespace, name);
      if (policy === undefined) return { action: 'none', why: 'deleted' };
      return planFor(policy, maskingPolicyStatus(policy, view.connections(namespace), now), PLURALS.MaskingPolicy);
    }
    case 'ApprovalRule': {
      const rule = view.approvalRule(namespace, name);
      if (rule === undefined) return { action: 'none', why: 'deleted' };
      return planFor(rule, approvalRuleStatus(rule, view.connections(namespace), now), PLURALS.ApprovalRule);
    }
  }
}
