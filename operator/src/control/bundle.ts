/**
 * The SidecarBundle of a pod, assembled from the caches. Pure: (pod, what its namespace holds) →
 * bundle, plus the granted connections left out and why.
 *
 * Each connection carries the objects the sidecar compiles exactly as local mode compiles
 * manifests: the AgentConnection, the MaskingPolicies and ApprovalRules that select it, and the
 * Secrets it reads (credentials, and the CA of verify-full). Objects are trimmed to what the
 * sidecar reads (apiVersion, kind, name, namespace, uid, generation, labels, spec / type, data):
 * status, resourceVersion, managedFields and annotations change without changing what is
 * enforced, and would wake every sidecar for nothing.
 *
 * A granted connection whose Secret is missing (or lacks a key) or whose policies do not compile
 * is left out of `connections` and named in `refused` with the reason: the sidecar listens for it
 * and turns every session away with that message. The reason is also in the connection's status
 * (CredentialsResolved, PolicyCompiled), in the operator's log and in an Event on the pod.
 */
import { createHash } from 'node:crypto';
import { listenPortOf, type AgentConnection, type ApprovalRule, type BundleConnection, type KubernetesObjectLike, type MaskingPolicy, type PodIdentity, type RefusedConnection, type SidecarBundle } from '@airlock/api';
import { canonicalJson } from '../canonical.ts';
import { judgeConnectionPolicies, selectingPolicies, type BundleResult } from '../compile.ts';
import { credentialsCondition, keyNeeds } from '../status/connection.ts';

export interface SecretLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly type?: string;
  readonly data?: Readonly<Record<string, string>>;
}

/** what the pod's namespace holds, from the caches */
export interface NamespaceContents {
  /** the connections granting the pod */
  readonly connections: readonly AgentConnection[];
  readonly maskingPolicies: readonly MaskingPolicy[];
  readonly approvalRules: readonly ApprovalRule[];
  secret(name: string): SecretLike | undefined;
}

export interface AssembledBundle {
  readonly bundle: SidecarBundle;
  /** granted connections left out of `connections` (the bundle's `refused`) */
  readonly omitted: readonly RefusedConnection[];
}

/** judging a bundle compiles RE2 patterns: remembered by the input's text */
export type Judge = (connection: AgentConnection, maskingPolicies: readonly MaskingPolicy[], approvalRules: readonly ApprovalRule[]) => BundleResult;

function trimMeta(metadata: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly generation?: number; readonly labels?: Readonly<Record<string, string | undefined>> } | undefined): Record<string, unknown> {
  const m = metadata ?? {};
  return {
    name: m.name,
    namespace: m.namespace,
    ...(m.uid === undefined ? {} : { uid: m.uid }),
    ...(m.generation === undefined ? {} : { generation: m.generation }),
    ...(m.labels === undefined ? {} : { labels: m.labels }),
  };
}

function customObject(kind: string, object: AgentConnection | MaskingPolicy | ApprovalRule): KubernetesObjectLike {
  return { apiVersion: object.apiVersion, kind, metadata: trimMeta(object.metadata), spec: object.spec };
}

function secretObject(secret: SecretLike, namespace: string): KubernetesObjectLike {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: trimMeta({ ...secret.metadata, namespace: secret.metadata?.namespace ?? namespace }),
    ...(secret.type === undefined ? {} : { type: secret.type }),
    data: secret.data ?? {},
  };
}

export function digestOf(value: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex')}`;
}

export function assembleBundle(pod: PodIdentity, contents: NamespaceContents, judge: Judge = judgeConnectionPolicies): AssembledBundle {
  const connections: BundleConnection[] = [];
  const omitted: RefusedConnection[] = [];
  for (const connection of contents.connections) {
    const name = connection.metadata.name ?? '';
    const secretKeys = new Map<string, readonly string[]>();
    const secrets: KubernetesObjectLike[] = [];
    for (const need of keyNeeds(connection)) {
      const secret = contents.secret(need.secret);
      if (secret === undefined || secretKeys.has(need.secret)) continue;
      secretKeys.set(need.secret, Object.keys(secret.data ?? {}));
      secrets.push(secretObject(secret, pod.namespace));
    }
    const credentials = credentialsCondition(connection, secretKeys);
    if (credentials.status !== 'True') {
      omitted.push({ name, protocol: connection.spec.protocol, listenPort: listenPortOf(connection.spec), reason: 'CredentialsNotResolved', message: credentials.message });
      continue;
    }
    const selected = selectingPolicies(connection, contents.maskingPolicies, contents.approvalRules);
    const judged = judge(connection, selected.maskingPolicies, selected.approvalRules);
    if (!judged.ok) {
      omitted.push({ name, protocol: connection.spec.protocol, listenPort: listenPortOf(connection.spec), reason: 'PolicyNotCompiled', message: judged.message });
      continue;
    }
    connections.push({
      name,
      objects: [
        customObject('AgentConnection', connection),
        ...selected.maskingPolicies.map((p) => customObject('MaskingPolicy', p)),
        ...selected.approvalRules.map((r) => customObject('ApprovalRule', r)),
        ...secrets,
      ],
      digest: judged.digest,
    });
  }
  const body = { apiVersion: 'airlock.dev/v1alpha1' as const, kind: 'SidecarBundle' as const, pod, connections, ...(omitted.length > 0 ? { refused: omitted } : {}) };
  return { bundle: { ...body, revision: digestOf(body) }, omitted };
}

/**
 * A Judge that remembers its last results by the text of their input (connection spec and
 * labels, policies' names and specs), so a long-poll that wakes for an unrelated change does not
 * compile RE2 patterns again. Bounded: the oldest entry goes first.
 */
export function memoizedJudge(limit = 2048, judge: Judge = judgeConnectionPolicies): Judge {
  const remembered = new Map<string, BundleResult>();
  return (connection, maskingPolicies, approvalRules) => {
    // JSON.stringify, not canonical: the digest hashes the specs in their key order
    const key = JSON.stringify([
      connection.metadata.name,
      connection.metadata.namespace,
      connection.metadata.labels,
      connection.spec,
      maskingPolicies.map((p) => [p.metadata.name, p.spec]),
      approvalRules.map((r) => [r.metadata.name, r.spec]),
    ]);
    const known = remembered.get(key);
    if (known !== undefined) return known;
    const result = judge(connection, maskingPolicies, approvalRules);
    remembered.set(key, result);
    if (remembered.size > limit) {
      const oldest = remembered.keys().next();
      if (oldest.done !== true) remembered.delete(oldest.value);
    }
    return result;
  };
}
