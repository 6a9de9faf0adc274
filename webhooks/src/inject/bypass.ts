/**
 * No-bypass admission: what an opted-in pod may not ask for, because it would let an agent
 * container reach a target without the sidecar (rewrite the capture rules, run as the exempt
 * sidecar UID, leave the pod's network namespace, read the sidecar's memory or token, mount a
 * token for Airlock's control API) or read a connection's credentials. Every container list and every volume source is walked the same
 * way, so a new field of a known kind is covered. Pure.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { CAPTURE_CONTAINER, CONTROL_AUDIENCE, SIDECAR_CONTAINER, SIDECAR_GID, SIDECAR_UID } from '@airlock/api';

export interface Violation {
  /** the field, e.g. spec.containers[0].securityContext.capabilities.add[1] */
  readonly path: string;
  readonly message: string;
}

/** the container lists of a pod spec, all checked alike */
export const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;
/** volumes whose name starts with this belong to the sidecar */
export const RESERVED_VOLUME_PREFIX = 'airlock-';
const RESERVED_CONTAINERS: ReadonlySet<string> = new Set([SIDECAR_CONTAINER, CAPTURE_CONTAINER]);
/** capabilities that would let a container rewrite the pod's capture rules or forge packets */
const DENIED_CAPABILITIES: ReadonlySet<string> = new Set(['NET_ADMIN', 'NET_RAW', 'ALL']);
const HOST_NAMESPACES = [
  ['hostNetwork', "runs in the node's network namespace, where the capture rules do not apply"],
  ['hostPID', "sees the node's processes, the sidecar's included"],
  ['hostIPC', "shares the node's IPC namespace"],
  ['shareProcessNamespace', "lets every container see the sidecar's processes (its memory, environment and token)"],
] as const;

type Json = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

/** `CAP_NET_ADMIN`, `net_admin` → `NET_ADMIN` */
export function capabilityName(text: string): string {
  const upper = text.toUpperCase();
  return upper.startsWith('CAP_') ? upper.slice(4) : upper;
}

/** every reference to a Secret by name under `value`: `secretName`, or `name` inside any `*secret*` key */
function secretReferences(value: unknown, path: string, parentKey: string, out: { path: string; name: string }[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      secretReferences(v, `${path}[${i}]`, parentKey, out);
    });
    return;
  }
  if (!isObject(value)) return;
  if (typeof value.secretName === 'string') out.push({ path: `${path}.secretName`, name: value.secretName });
  if (/secret/i.test(parentKey) && typeof value.name === 'string') out.push({ path: `${path}.name`, name: value.name });
  for (const [k, v] of Object.entries(value)) secretReferences(v, `${path}.${k}`, k, out);
}

function credentialViolations(value: unknown, path: string, credentials: ReadonlyMap<string, string>, out: Violation[]): void {
  const refs: { path: string; name: string }[] = [];
  secretReferences(value, path, '', refs);
  for (const r of refs) {
    const connection = credentials.get(r.name);
    if (connection !== undefined) out.push({ path: r.path, message: `Secret ${r.name} holds the credentials of AgentConnection ${connection}; only the Airlock sidecar may read it, never the agent pod` });
  }
}

/**
 * Projected service-account tokens for Airlock's control API anywhere under `value`: with one, an
 * agent container could ask the operator for the pod's bundle, credentials included.
 */
function controlTokenViolations(value: unknown, path: string, out: Violation[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      controlTokenViolations(v, `${path}[${i}]`, out);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'serviceAccountToken' && isObject(v) && v.audience === CONTROL_AUDIENCE) {
      out.push({ path: `${path}.serviceAccountToken.audience`, message: `${CONTROL_AUDIENCE}: a token for Airlock's control API would let the agent fetch the connection's credentials; only the Airlock sidecar gets one` });
    } else {
      controlTokenViolations(v, `${path}.${k}`, out);
    }
  }
}

function securityContextViolations(sc: unknown, path: string, out: Violation[]): void {
  if (!isObject(sc)) return;
  if (sc.privileged === true) out.push({ path: `${path}.privileged`, message: 'true: a privileged container can rewrite the capture rules and reach targets unproxied' });
  if (sc.runAsUser === SIDECAR_UID) out.push({ path: `${path}.runAsUser`, message: `${SIDECAR_UID} is the Airlock sidecar's UID, whose traffic is not captured` });
  if (sc.runAsGroup === SIDECAR_GID) out.push({ path: `${path}.runAsGroup`, message: `${SIDECAR_GID} is the Airlock sidecar's GID` });
  if (sc.fsGroup === SIDECAR_GID) out.push({ path: `${path}.fsGroup`, message: `${SIDECAR_GID} is the Airlock sidecar's GID` });
  list(sc.supplementalGroups).forEach((g, i) => {
    if (g === SIDECAR_GID) out.push({ path: `${path}.supplementalGroups[${i}]`, message: `${SIDECAR_GID} is the Airlock sidecar's GID` });
  });
  const caps = isObject(sc.capabilities) ? sc.capabilities : {};
  list(caps.add).forEach((c, i) => {
    if (typeof c === 'string' && DENIED_CAPABILITIES.has(capabilityName(c))) {
      out.push({ path: `${path}.capabilities.add[${i}]`, message: `${c}: a container with ${capabilityName(c) === 'ALL' ? 'every capability' : capabilityName(c)} can rewrite or sidestep the capture rules and reach targets unproxied` });
    }
  });
}

export interface OwnParts {
  /** paths (spec.initContainers[0]) of the containers Airlock injected, verified */
  readonly containers: ReadonlySet<string>;
  /** names of the volumes Airlock injected, verified */
  readonly volumes: ReadonlySet<string>;
}

export const NONE: OwnParts = { containers: new Set(), volumes: new Set() };

export interface Scope {
  /** pod-level fields: host namespaces, the pod securityContext, volumes */
  readonly podLevel: boolean;
  readonly lists: readonly (typeof CONTAINER_LISTS)[number][];
}
export const WHOLE_POD: Scope = { podLevel: true, lists: CONTAINER_LISTS };
/** what the pods/ephemeralcontainers subresource can change */
export const EPHEMERAL_ONLY: Scope = { podLevel: false, lists: ['ephemeralContainers'] };

function podViolations(spec: Json, credentials: ReadonlyMap<string, string>, own: OwnParts, out: Violation[]): void {
  for (const [field, why] of HOST_NAMESPACES) {
    if (spec[field] === true) out.push({ path: `spec.${field}`, message: `true: the pod ${why}` });
  }
  securityContextViolations(spec.securityContext, 'spec.securityContext', out);
  list(spec.volumes).forEach((v, i) => {
    if (!isObject(v)) return;
    const path = `spec.volumes[${i}]`;
    if (typeof v.name === 'string' && v.name.startsWith(RESERVED_VOLUME_PREFIX) && !own.volumes.has(v.name)) {
      out.push({ path: `${path}.name`, message: `${v.name}: volume names starting with "${RESERVED_VOLUME_PREFIX}" are reserved for the Airlock sidecar` });
    }
    if (!own.volumes.has(String(v.name))) {
      credentialViolations(v, path, credentials, out);
      controlTokenViolations(v, path, out);
    }
  });
}

/**
 * Every no-bypass violation of the pod, Airlock's own injected parts excepted.
 * @param credentials Secret name → the AgentConnection it holds the credentials of
 */
export function bypassViolations(pod: V1Pod, credentials: ReadonlyMap<string, string>, own: OwnParts = NONE, scope: Scope = WHOLE_POD): Violation[] {
  const out: Violation[] = [];
  const spec: Json = isObject(pod.spec) ? pod.spec : {};
  if (scope.podLevel) podViolations(spec, credentials, own, out);
  for (const field of scope.lists) {
    list(spec[field]).forEach((c, i) => {
      const path = `spec.${field}[${i}]`;
      if (!isObject(c) || own.containers.has(path)) return;
      if (typeof c.name === 'string' && RESERVED_CONTAINERS.has(c.name)) {
        // that alone refuses the pod; the rest of a look-alike would only repeat it
        out.push({ path: `${path}.name`, message: `${c.name} is the name of a container Airlock injects, and this one is not Airlock's (or was changed after injection)` });
        return;
      }
      if (typeof c.targetContainerName === 'string' && RESERVED_CONTAINERS.has(c.targetContainerName)) {
        out.push({ path: `${path}.targetContainerName`, message: `${c.targetContainerName}: an ephemeral container may not join the processes of Airlock's containers` });
      }
      securityContextViolations(c.securityContext, `${path}.securityContext`, out);
      for (const mounts of ['volumeMounts', 'volumeDevices'] as const) {
        list(c[mounts]).forEach((m, j) => {
          if (isObject(m) && typeof m.name === 'string' && m.name.startsWith(RESERVED_VOLUME_PREFIX)) {
            out.push({ path: `${path}.${mounts}[${j}].name`, message: `${m.name}: volumes starting with "${RESERVED_VOLUME_PREFIX}" belong to the Airlock sidecar (its token and recordings)` });
          }
        });
      }
      credentialViolations(c.env, `${path}.env`, credentials, out);
      credentialViolations(c.envFrom, `${path}.envFrom`, credentials, out);
    });
  }
  return out;
}

/** the deny message: every violation, each naming its field */
export function denyMessage(violations: readonly Violation[]): string {
  return `Airlock refuses this pod: it would let the agent bypass the Airlock sidecar: ${violations.map((v) => `${v.path}: ${v.message}`).join('; ')}`;
}

/**
 * Containers (other than Airlock's) that could switch to the sidecar's UID: root, or able to
 * become root (allowPrivilegeEscalation not false), with CAP_SETUID not dropped. Not refused (most
 * images run as root by default); reported as an admission warning.
 */
export function setuidCapable(pod: V1Pod, own: OwnParts): string[] {
  const spec: Json = isObject(pod.spec) ? pod.spec : {};
  const podSc = isObject(spec.securityContext) ? spec.securityContext : {};
  const out: string[] = [];
  for (const field of CONTAINER_LISTS) {
    list(spec[field]).forEach((c, i) => {
      const path = `spec.${field}[${i}]`;
      if (!isObject(c) || own.containers.has(path)) return;
      const sc = isObject(c.securityContext) ? c.securityContext : {};
      const uid = sc.runAsUser ?? podSc.runAsUser;
      const nonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
      const mayBeRoot = uid === 0 || (uid === undefined && nonRoot !== true);
      const drop = list(isObject(sc.capabilities) ? sc.capabilities.drop : undefined).map((d) => (typeof d === 'string' ? capabilityName(d) : ''));
      const setuidDropped = drop.includes('ALL') || drop.includes('SETUID');
      if (!setuidDropped && (mayBeRoot || sc.allowPrivilegeEscalation !== false)) out.push(`${path} (${String(c.name)})`);
    });
  }
  return out;
}
