/** Which AgentConnections a pod receives, and the opt-in rule. Pure. */
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { NAMESPACE_INJECT_LABEL, POD_INJECT_LABEL, byName, type AgentConnection } from '@airlock/api';
import { selectorMatches } from '@airlock/policy';

/** pod label `true` opts in, `false` opts out; otherwise the namespace label `enabled` decides */
export function optedIn(pod: V1Pod, namespace: V1Namespace): boolean {
  const label = pod.metadata?.labels?.[POD_INJECT_LABEL];
  if (label === 'false') return false;
  if (label === 'true') return true;
  return namespace.metadata?.labels?.[NAMESPACE_INJECT_LABEL] === 'enabled';
}

/** the pod's service account as the API server defaults it */
export function podServiceAccount(pod: V1Pod): string {
  const sa = pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount;
  return sa === undefined || sa === '' ? 'default' : sa;
}

/**
 * spec.agents: the pod matches podSelector (when set) and runs as one of serviceAccounts (when
 * set); one of the two must be set (an empty podSelector selects every pod).
 */
export function selectsPod(connection: AgentConnection, pod: V1Pod): boolean {
  const { podSelector, serviceAccounts } = connection.spec.agents;
  const bySa = serviceAccounts !== undefined && serviceAccounts.length > 0;
  if (podSelector === undefined && !bySa) return false;
  if (podSelector !== undefined && !selectorMatches(podSelector, pod.metadata?.labels ?? {})) return false;
  return !bySa || serviceAccounts.includes(podServiceAccount(pod));
}

/** the live connections of the pod's namespace that select it, by name */
export function selectConnections(connections: readonly AgentConnection[], pod: V1Pod, namespace: string): AgentConnection[] {
  return connections
    .filter((c) => (c.metadata.namespace === undefined || c.metadata.namespace === namespace) && c.metadata.deletionTimestamp === undefined && selectsPod(c, pod))
    .sort(byName);
}

export function connectionName(c: AgentConnection): string {
  return c.metadata.name ?? '';
}
