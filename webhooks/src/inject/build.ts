/** The containers, volumes and env that injection adds to a pod. Pure. */
import type { Operation } from 'fast-json-patch';
import type { V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';
import {
  AGENT_TRUST,
  OBJECT_NAMES,
  CAPTURE_CONTAINER,
  CONTROL_AUDIENCE,
  RECORDINGS_MOUNT,
  SIDECAR_CONTAINER,
  SIDECAR_ENV,
  SIDECAR_GID,
  SIDECAR_HEALTH_PORT,
  SIDECAR_TOKEN_DIR,
  SIDECAR_UID,
  STATE_MOUNT,
  listenPortOf,
  type AgentConnection,
  type CaptureMode,
} from '@airlock/api';
import { captureArgs } from '../capture/plan.ts';
import { connectionName } from './select.ts';

export interface InjectionSettings {
  readonly image: string;
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  readonly controlUrl: string;
  /** PEM */
  readonly controlCa: string;
  readonly resources?: V1ResourceRequirements;
  readonly defaultCapture: CaptureMode;
  /** never inject there */
  readonly airlockNamespace: string;
}

/**
 * Fragments of a pod spec as plain JSON: what goes into the patch (the client's V1* classes are
 * for objects it deserializes, not for building patch values).
 */
export type Json = { readonly [key: string]: unknown };
export interface Container extends Json {
  readonly name: string;
}
export interface Volume extends Json {
  readonly name: string;
}
export interface EnvVar extends Json {
  readonly name: string;
}
type VolumeMount = Json;

export const DEFAULT_SIDECAR_RESOURCES: Json = { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } };
export const CAPTURE_RESOURCES: Json = { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } };
export const TOKEN_VOLUME = 'airlock-token';
export const STATE_VOLUME = 'airlock-state';
export const DEFAULT_RECORDINGS_VOLUME = 'airlock-recordings-default';
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const HEALTH_PATH = '/healthz/ready';
/** the per-pod subdirectory of a shared recordings claim */
export const RECORDINGS_SUBPATH = `$(${SIDECAR_ENV.podNamespace})/$(${SIDECAR_ENV.podName})`;

export interface InjectedParts {
  /** the init containers to put first, in order (capture then sidecar, or the sidecar alone) */
  readonly initContainers: readonly Container[];
  readonly volumes: readonly Volume[];
  /**
   * env for every agent container (explicit capture), in groups set together or not at all (a
   * container that sets PGHOST itself keeps its PGHOST and gets no PGPORT either)
   */
  readonly agentEnv: readonly (readonly EnvVar[])[];
  readonly annotation: string;
  readonly warnings: readonly string[];
}

function fieldEnv(name: string, fieldPath: string): EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/** AIRLOCK_<NAME>_HOST for connection orders-db.v2 → AIRLOCK_ORDERS_DB_V2_HOST */
export function envPrefix(connection: string): string {
  return `AIRLOCK_${connection.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function recordingVolumes(connections: readonly AgentConnection[], warnings: string[]): { volumes: Volume[]; mounts: VolumeMount[] } {
  const claims = [...new Set(connections.map((c) => c.spec.recording?.claimName).filter((n): n is string => n !== undefined))].sort();
  const volumes: Volume[] = [];
  const mounts: VolumeMount[] = [];
  claims.forEach((claimName, i) => {
    const name = `airlock-recordings-${i}`;
    volumes.push({ name, persistentVolumeClaim: { claimName } });
    mounts.push({ name, mountPath: `${RECORDINGS_MOUNT}/${claimName}`, subPathExpr: RECORDINGS_SUBPATH });
  });
  const unclaimed = connections.filter((c) => c.spec.recording?.claimName === undefined).map(connectionName);
  if (unclaimed.length > 0) {
    warnings.push(`AgentConnection ${unclaimed.join(', ')}: no spec.recording.claimName, so sessions are recorded to an emptyDir and lost with the pod`);
    // a claim literally named "default" already sits at <mount>/default: those recordings go there
    if (!claims.includes('default')) {
      volumes.push({ name: DEFAULT_RECORDINGS_VOLUME, emptyDir: {} });
      mounts.push({ name: DEFAULT_RECORDINGS_VOLUME, mountPath: `${RECORDINGS_MOUNT}/default` });
    }
  }
  return { volumes, mounts };
}

function sidecarContainer(settings: InjectionSettings, recordingMounts: readonly VolumeMount[]): Container {
  const probe = (periodSeconds: number, failureThreshold: number): Json => ({ httpGet: { path: HEALTH_PATH, port: SIDECAR_HEALTH_PORT }, periodSeconds, failureThreshold });
  return {
    name: SIDECAR_CONTAINER,
    image: settings.image,
    ...(settings.imagePullPolicy !== undefined ? { imagePullPolicy: settings.imagePullPolicy } : {}),
    args: ['sidecar', '--cluster'],
    restartPolicy: 'Always',
    env: [
      fieldEnv(SIDECAR_ENV.podName, 'metadata.name'),
      fieldEnv(SIDECAR_ENV.podNamespace, 'metadata.namespace'),
      fieldEnv(SIDECAR_ENV.podUid, 'metadata.uid'),
      fieldEnv(SIDECAR_ENV.serviceAccount, 'spec.serviceAccountName'),
      { name: SIDECAR_ENV.controlUrl, value: settings.controlUrl },
      { name: SIDECAR_ENV.controlCa, value: settings.controlCa },
    ],
    startupProbe: probe(1, 120),
    readinessProbe: probe(5, 3),
    resources: settings.resources ?? DEFAULT_SIDECAR_RESOURCES,
    securityContext: {
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_GID,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: TOKEN_VOLUME, mountPath: SIDECAR_TOKEN_DIR, readOnly: true }, { name: STATE_VOLUME, mountPath: STATE_MOUNT }, ...recordingMounts],
  };
}

function captureContainer(settings: InjectionSettings, connections: readonly AgentConnection[], backendPorts: ReadonlyMap<string, readonly number[]>): Container {
  const targets = connections.map((c) => ({ connection: connectionName(c), host: c.spec.target.host, port: c.spec.target.port, listenPort: listenPortOf(c.spec) }));
  const targetPorts = new Set(targets.map((t) => t.port));
  const rejects = targets.flatMap((t) => (backendPorts.get(t.connection) ?? []).filter((p) => !targetPorts.has(p)).map((port) => ({ connection: t.connection, port })));
  return {
    name: CAPTURE_CONTAINER,
    image: settings.image,
    ...(settings.imagePullPolicy !== undefined ? { imagePullPolicy: settings.imagePullPolicy } : {}),
    args: ['capture', ...captureArgs({ sidecarUid: SIDECAR_UID, targets, ...(rejects.length > 0 ? { rejects } : {}) })],
    resources: CAPTURE_RESOURCES,
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

function explicitEnv(connections: readonly AgentConnection[], warnings: string[]): EnvVar[][] {
  const env: EnvVar[][] = [];
  const postgres = connections.filter((c) => c.spec.protocol === 'postgres');
  if (postgres.length === 1 && postgres[0] !== undefined) {
    env.push([{ name: 'PGHOST', value: '127.0.0.1' }, { name: 'PGPORT', value: String(listenPortOf(postgres[0].spec)) }]);
  } else if (postgres.length > 1) {
    warnings.push(`capture explicit: ${postgres.length} postgres connections (${postgres.map(connectionName).join(', ')}), so PGHOST/PGPORT are not set; use each connection's ${envPrefix('<name>')}_HOST and _PORT`);
  }
  const seen = new Map<string, string>();
  for (const c of connections) {
    const prefix = envPrefix(connectionName(c));
    const other = seen.get(prefix);
    if (other !== undefined) {
      warnings.push(`capture explicit: AgentConnection ${connectionName(c)} and ${other} both map to ${prefix}_HOST/_PORT; only ${other}'s are set`);
      continue;
    }
    seen.set(prefix, connectionName(c));
    env.push([{ name: `${prefix}_HOST`, value: '127.0.0.1' }, { name: `${prefix}_PORT`, value: String(listenPortOf(c.spec)) }]);
    if (c.spec.protocol === 'ssh') warnings.push(`capture explicit: ssh AgentConnection ${connectionName(c)}: no ssh config is written; the agent connects with ssh -p $${prefix}_PORT <user>@$${prefix}_HOST`);
  }
  return env;
}

/** the value of INJECTED_ANNOTATION: what was injected (compared on reinvocation) */
export function injectedAnnotation(settings: InjectionSettings, mode: CaptureMode, connections: readonly AgentConnection[]): string {
  return JSON.stringify({ image: settings.image, capture: mode, connections: connections.map(connectionName) });
}

export function buildParts(settings: InjectionSettings, mode: CaptureMode, connections: readonly AgentConnection[], backendPorts: ReadonlyMap<string, readonly number[]> = new Map()): InjectedParts {
  const warnings: string[] = [];
  const recordings = recordingVolumes(connections, warnings);
  const sidecar = sidecarContainer(settings, recordings.mounts);
  const volumes: Volume[] = [
    {
      name: TOKEN_VOLUME,
      projected: { sources: [{ serviceAccountToken: { audience: CONTROL_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } }] },
    },
    { name: STATE_VOLUME, emptyDir: {} },
    ...recordings.volumes,
  ];
  // every agent container (unless it sets it) trusts Airlock's CA for libpq: the file is mounted by agentTrustPatch
  const caEnv: EnvVar[] = [{ name: AGENT_TRUST.caEnv, value: `${AGENT_TRUST.mountPath}/${AGENT_TRUST.caKey}` }];
  if (mode === 'explicit') {
    warnings.unshift(`capture explicit: agent traffic is not captured; ${connections.map(connectionName).join(', ')} ${connections.length === 1 ? 'is' : 'are'} reachable through 127.0.0.1 but bypassable`);
    return { initContainers: [sidecar], volumes, agentEnv: [...explicitEnv(connections, warnings), caEnv], annotation: injectedAnnotation(settings, mode, connections), warnings };
  }
  return { initContainers: [captureContainer(settings, connections, backendPorts), sidecar], volumes, agentEnv: [caEnv], annotation: injectedAnnotation(settings, mode, connections), warnings };
}

/**
 * What the agent containers trust: the ConfigMap OBJECT_NAMES.agentTrustConfigMap (kept by the
 * operator in every namespace with AgentConnections) as the volume AGENT_TRUST.volume, mounted
 * read-only at AGENT_TRUST.mountPath in every container of spec.containers, and, when an ssh
 * connection selects the pod, its ssh_known_hosts at /etc/ssh/ssh_known_hosts (subPath). A
 * container that already mounts something at either path keeps it (warning). The volume is
 * `optional`: a pod created before the operator wrote the ConfigMap starts anyway, without it.
 * The operations apply after injectionPatch's. Pure.
 */
export function agentTrustPatch(pod: V1Pod, connections: readonly AgentConnection[]): { readonly ops: readonly Operation[]; readonly warnings: readonly string[] } {
  const ops: Operation[] = [];
  const warnings: string[] = [];
  if ((pod.spec?.volumes ?? []).some((v) => v.name === AGENT_TRUST.volume)) {
    warnings.push(`spec.volumes: the pod already has a volume named ${AGENT_TRUST.volume}, so Airlock's CA and SSH known_hosts are not mounted into its containers`);
    return { ops, warnings };
  }
  // injectionPatch has created spec.volumes when it was absent
  ops.push({ op: 'add', path: '/spec/volumes/-', value: { name: AGENT_TRUST.volume, configMap: { name: OBJECT_NAMES.agentTrustConfigMap, optional: true } } });
  const ssh = connections.some((c) => c.spec.protocol === 'ssh');
  (pod.spec?.containers ?? []).forEach((c, i) => {
    const taken = new Set((c.volumeMounts ?? []).map((m) => m.mountPath.replace(/\/+$/, '')));
    const mounts: Json[] = [];
    if (taken.has(AGENT_TRUST.mountPath)) warnings.push(`spec.containers[${i}]: already mounts ${AGENT_TRUST.mountPath}, so Airlock's CA is not mounted there`);
    else mounts.push({ name: AGENT_TRUST.volume, mountPath: AGENT_TRUST.mountPath, readOnly: true });
    if (ssh) {
      if (taken.has(AGENT_TRUST.globalKnownHosts) || taken.has('/etc/ssh')) warnings.push(`spec.containers[${i}]: already mounts ${AGENT_TRUST.globalKnownHosts}, so Airlock's SSH known_hosts is not mounted there (it is at ${AGENT_TRUST.mountPath}/${AGENT_TRUST.knownHostsKey})`);
      else mounts.push({ name: AGENT_TRUST.volume, mountPath: AGENT_TRUST.globalKnownHosts, subPath: AGENT_TRUST.knownHostsKey, readOnly: true });
    }
    if (mounts.length === 0) return;
    if (c.volumeMounts === undefined) ops.push({ op: 'add', path: `/spec/containers/${i}/volumeMounts`, value: mounts });
    else for (const m of mounts) ops.push({ op: 'add', path: `/spec/containers/${i}/volumeMounts/-`, value: m });
  });
  return { ops, warnings };
}
