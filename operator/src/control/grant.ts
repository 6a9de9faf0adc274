/**
 * Which AgentConnections grant a pod (spec.agents): a pod qualifies when it matches podSelector
 * (when set) and runs as one of serviceAccounts (when set). A connection that sets neither (the
 * schema refuses it) grants nobody. Pure.
 */
import { byName, type AgentConnection } from '@airlock/api';
import { selectorMatches } from '@airlock/policy';

export interface PodFacts {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
}

export function grants(connection: AgentConnection, pod: PodFacts): boolean {
  if ((connection.metadata.namespace ?? 'default') !== pod.namespace) return false;
  if (connection.metadata.deletionTimestamp !== undefined) return false;
  const agents = connection.spec.agents as AgentConnection['spec']['agents'] | undefined;
  if (agents === undefined) return false;
  const { podSelector, serviceAccounts } = agents;
  if (podSelector === undefined && serviceAccounts === undefined) return false;
  if (podSelector !== undefined && !selectorMatches(podSelector, pod.labels)) return false;
  if (serviceAccounts !== undefined && !serviceAccounts.includes(pod.serviceAccount)) return false;
  return true;
}

/** the granting connections, sorted by name */
export function grantedConnections(connections: readonly AgentConnection[], pod: PodFacts): AgentConnection[] {
  return connections.filter((c) => grants(c, pod)).sort(byName);
}
