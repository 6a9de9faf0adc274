/**
 * What the reconcilers read: the informers' caches, seen through plain functions so the
 * dependents logic is testable with plain values.
 */
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';

export interface ClusterView {
  connection(namespace: string, name: string): AgentConnection | undefined;
  maskingPolicy(namespace: string, name: string): MaskingPolicy | undefined;
  approvalRule(namespace: string, name: string): ApprovalRule | undefined;
  connections(namespace: string): readonly AgentConnection[];
  maskingPolicies(namespace: string): readonly MaskingPolicy[];
  approvalRules(namespace: string): readonly ApprovalRule[];
  /** data keys of the Secrets of a namespace, by name */
  secretKeys(namespace: string): ReadonlyMap<string, readonly string[]>;
}
