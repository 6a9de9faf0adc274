/**
 * Which keys an informer event puts in the queue: the object itself, and the objects whose
 * status depends on it. Pure. Selection is judged by the current labels and selectors and by
 * what status last recorded, so an object that stops selecting (or being selected) is
 * reconciled too.
 */
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';
import { selects } from './compile.ts';
import { formatKey, type ReconciledKind } from './keys.ts';
import { keyNeeds } from './status/connection.ts';
import type { ClusterView } from './view.ts';

function key(kind: ReconciledKind, namespace: string, name: string | undefined): string {
  return formatKey({ kind, namespace, name: name ?? '' });
}

function namespaceOf(object: { readonly metadata: { readonly namespace?: string } }): string {
  return object.metadata.namespace ?? 'default';
}

export function keysForPolicy(kind: 'MaskingPolicy' | 'ApprovalRule', policy: MaskingPolicy | ApprovalRule, view: ClusterView): string[] {
  const namespace = namespaceOf(policy);
  const name = policy.metadata.name ?? '';
  const field = kind === 'MaskingPolicy' ? 'maskingPolicies' : 'approvalRules';
  const affected = view
    .connections(namespace)
    .filter((c) => selects(policy.spec.connectionSelector, c) || (c.status?.policies?.[field] ?? []).includes(name))
    .map((c) => key('AgentConnection', namespace, c.metadata.name));
  return [key(kind, namespace, name), ...affected];
}

export function keysForConnection(connection: AgentConnection, view: ClusterView): string[] {
  const namespace = namespaceOf(connection);
  const name = connection.metadata.name ?? '';
  const concerned = (p: MaskingPolicy | ApprovalRule): boolean => selects(p.spec.connectionSelector, connection) || (p.status?.connections ?? []).includes(name);
  return [
    key('AgentConnection', namespace, name),
    ...view.maskingPolicies(namespace).filter(concerned).map((p) => key('MaskingPolicy', namespace, p.metadata.name)),
    ...view.approvalRules(namespace).filter(concerned).map((r) => key('ApprovalRule', namespace, r.metadata.name)),
  ];
}

export function keysForSecret(secret: { readonly metadata?: { readonly name?: string; readonly namespace?: string } }, view: ClusterView): string[] {
  const namespace = secret.metadata?.namespace ?? 'default';
  const name = secret.metadata?.name ?? '';
  return view
    .connections(namespace)
    .filter((c) => keyNeeds(c).some((need) => need.secret === name))
    .map((c) => key('AgentConnection', namespace, c.metadata.name));
}
