/**
 * What the reconcilers read: the informers' caches, seen through plain functions so the
 * dependents logic is testable with plain values.
 */
import type { AgentConnection, AgentSession, ApprovalRequest, ApprovalRule, MaskingPolicy } from '@airlock/api';

export interface ClusterView {
  connection(namespace: string, name: string): AgentConnection | undefined;
  maskingPolicy(namespace: string, name: string): MaskingPolicy | undefined;
  approvalRule(namespace: string, name: string): ApprovalRule | undefined;
  connections(namespace: string): readonly AgentConnection[];
  maskingPolicies(namespace: string): readonly MaskingPolicy[];
  approvalRules(namespace: string): readonly ApprovalRule[];
  /** data keys of the Secrets of a namespace, by name */
  secretKeys(namespace: string): ReadonlyMap<string, readonly string[]>;
  /** the AgentSessions of a namespace (connection status counters); absent: not watched */
  agentSessions?(namespace: string): readonly AgentSession[];
  /** the ApprovalRequests of a namespace (pending approvals of a connection); absent: not watched */
  approvalRequests?(namespace: string): readonly ApprovalRequest[];
  /** ServiceAccounts of the namespace that can read a Secret, as last checked (SubjectAccessReview); undefined: not known yet; absent: not checked */
  credentialReaders?(namespace: string, secret: string): readonly { readonly serviceAccount: string; readonly verbs: readonly string[] }[] | undefined;
  /** the injected pods of a namespace (capture mode, connections served); absent: pods not watched (no control API) */
  injectedPods?(namespace: string): readonly { readonly name: string; readonly capture?: string; readonly connections?: readonly string[] }[];
}
