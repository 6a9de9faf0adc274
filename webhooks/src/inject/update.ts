/**
 * After creation a pod changes in two ways that could reopen a bypass: an UPDATE may change
 * container images (the sidecar's included), and the `ephemeralcontainers` subresource adds
 * debug containers. Checks for both, for the webhook to run on those requests. Pure.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { CAPTURE_CONTAINER, SIDECAR_CONTAINER, type AgentConnection } from '@airlock/api';
import { EPHEMERAL_ONLY, NONE, bypassViolations, type Violation } from './bypass.ts';
import { connectionName } from './select.ts';

const OURS: ReadonlySet<string> = new Set([SIDECAR_CONTAINER, CAPTURE_CONTAINER]);

/** Pod UPDATE: Airlock's containers must stay exactly as they were (an image swap would run anything as the sidecar's UID) */
export function injectedContainersChanged(oldPod: V1Pod, newPod: V1Pod): Violation[] {
  const out: Violation[] = [];
  const before = new Map((oldPod.spec?.initContainers ?? []).filter((c) => OURS.has(c.name)).map((c) => [c.name, JSON.stringify(c)]));
  (newPod.spec?.initContainers ?? []).forEach((c, i) => {
    if (OURS.has(c.name) && before.has(c.name) && before.get(c.name) !== JSON.stringify(c)) {
      out.push({ path: `spec.initContainers[${i}]`, message: `${c.name} is Airlock's container and may not be changed after injection` });
    }
  });
  return out;
}

/**
 * pods/ephemeralcontainers UPDATE: the added debug containers obey the same rules as the pod's
 * own (no NET_ADMIN/NET_RAW/ALL, not privileged, not the sidecar's UID/GID, no target among
 * Airlock's containers, no credentials Secret, none of Airlock's volumes).
 */
export function ephemeralContainerViolations(pod: V1Pod, connections: readonly AgentConnection[]): Violation[] {
  const credentials = new Map<string, string>();
  for (const c of connections) if (!credentials.has(c.spec.credentialsSecretRef.name)) credentials.set(c.spec.credentialsSecretRef.name, connectionName(c));
  return bypassViolations(pod, credentials, NONE, EPHEMERAL_ONLY);
}
