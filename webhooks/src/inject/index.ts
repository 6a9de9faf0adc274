/**
 * Sidecar injection: from an admitted pod, its namespace and the namespace's AgentConnections,
 * decide to skip, refuse (no-bypass), or patch in the Airlock sidecar (and the capture init
 * container). Pure: the webhook server does the I/O.
 */
import type { Operation } from 'fast-json-patch';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { AGENT_TRUST, CAPTURE_ANNOTATION, COMPONENT_LABEL, COMPONENT_VALUE, SIDECAR_HEALTH_PORT, listenPortOf, type AgentConnection, type CaptureMode } from '@airlock/api';
import { isIPv6 } from '../capture/plan.ts';
import { bypassViolations, denyMessage, setuidCapable, type Violation } from './bypass.ts';
import { agentTrustPatch, buildParts, type InjectionSettings } from './build.ts';
import { verifiedOwnParts } from './conform.ts';
import { envConflicts, injectionPatch } from './patch.ts';
import { connectionName, optedIn, selectConnections } from './select.ts';

export { optedIn } from './select.ts';
export type { InjectionSettings } from './build.ts';
export { bypassViolations, denyMessage, type Violation } from './bypass.ts';
export { ephemeralContainerViolations, injectedContainersChanged } from './update.ts';

export interface InjectionInput {
  /** as in the AdmissionReview (name may be empty: generateName) */
  readonly pod: V1Pod;
  /** labels/annotations of the pod's namespace */
  readonly namespace: V1Namespace;
  /** every AgentConnection of the pod's namespace; the function selects by spec.agents */
  readonly connections: readonly AgentConnection[];
  readonly settings: InjectionSettings;
  /**
   * per AgentConnection name, the other ports where its target's endpoints listen (a Service's
   * targetPort: capture/backends.ts); transparent capture refuses them. Absent: none known.
   */
  readonly backendPorts?: ReadonlyMap<string, readonly number[]>;
}

export type InjectionResult =
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'deny'; readonly message: string }
  | { readonly kind: 'patch'; readonly patch: readonly Operation[]; readonly warnings: readonly string[] };

const MODES: ReadonlySet<string> = new Set<CaptureMode>(['transparent', 'explicit']);

function captureMode(pod: V1Pod, namespace: V1Namespace, settings: InjectionSettings): CaptureMode | Violation {
  const fromPod = pod.metadata?.annotations?.[CAPTURE_ANNOTATION];
  const fromNs = namespace.metadata?.annotations?.[CAPTURE_ANNOTATION];
  const [value, path] = fromPod !== undefined ? [fromPod, `metadata.annotations[${CAPTURE_ANNOTATION}]`] : fromNs !== undefined ? [fromNs, `namespace ${namespace.metadata?.name ?? ''} metadata.annotations[${CAPTURE_ANNOTATION}]`] : [settings.defaultCapture, 'default capture'];
  return MODES.has(value) ? (value as CaptureMode) : { path, message: `"${value}" is not a capture mode (transparent or explicit)` };
}

/** connections the sidecar could not serve together in one pod */
function portConflicts(connections: readonly AgentConnection[]): string[] {
  const out: string[] = [];
  const seen = new Map<number, string>();
  for (const c of connections) {
    const port = listenPortOf(c.spec);
    const other = seen.get(port);
    if (port === SIDECAR_HEALTH_PORT) out.push(`AgentConnection ${connectionName(c)} spec.listenPort: ${port} is the sidecar's health port`);
    else if (other !== undefined) out.push(`AgentConnection ${connectionName(c)} spec.listenPort: ${port} is also the listen port of AgentConnection ${other}, and both select this pod; give one of them another spec.listenPort`);
    seen.set(port, connectionName(c));
  }
  return out;
}

function captureWarnings(connections: readonly AgentConnection[]): string[] {
  const out: string[] = [];
  const targets = new Map<string, string>();
  for (const c of connections) {
    const key = `${c.spec.target.host.toLowerCase()}:${c.spec.target.port}`;
    const other = targets.get(key);
    if (other !== undefined) out.push(`AgentConnection ${connectionName(c)} has the same target as ${other} (${key}): transparent capture sends it to ${other}; the agent reaches ${connectionName(c)} only at 127.0.0.1:${listenPortOf(c.spec)}`);
    else targets.set(key, connectionName(c));
    if (isIPv6(c.spec.target.host)) out.push(`AgentConnection ${connectionName(c)}: target ${c.spec.target.host} is an IPv6 address; the sidecar listens on IPv4 loopback only, so the agent reaches it only at 127.0.0.1:${listenPortOf(c.spec)}`);
  }
  const ports = new Map<number, string[]>();
  for (const c of connections) ports.set(c.spec.target.port, [...(ports.get(c.spec.target.port) ?? []), connectionName(c)]);
  for (const [port, names] of ports) {
    if (names.length > 1) out.push(`AgentConnections ${names.join(', ')} share target port ${port}: they are captured by the addresses their hosts resolve to when the pod starts, and any other address on port ${port} is refused`);
  }
  return out;
}

export function planInjection(input: InjectionInput): InjectionResult {
  const { pod, namespace, settings } = input;
  const ns = pod.metadata?.namespace ?? namespace.metadata?.name ?? '';
  if (ns === settings.airlockNamespace) return { kind: 'skip', reason: `pod in Airlock's own namespace ${ns}` };
  if (pod.metadata?.labels?.[COMPONENT_LABEL] === COMPONENT_VALUE) return { kind: 'skip', reason: `pod labelled ${COMPONENT_LABEL}=${COMPONENT_VALUE} (Airlock's own)` };
  if (!optedIn(pod, namespace)) return { kind: 'skip', reason: 'not opted in (namespace label airlock.dev/inject=enabled or pod label airlock.dev/inject=true)' };
  const selected = selectConnections(input.connections, pod, ns);
  if (selected.length === 0) return { kind: 'skip', reason: `no AgentConnection in namespace ${ns} selects this pod` };
  const mode = captureMode(pod, namespace, settings);
  if (typeof mode !== 'string') return { kind: 'deny', message: `Airlock refuses this pod: ${mode.path}: ${mode.message}` };
  const conflicts = portConflicts(selected);
  if (conflicts.length > 0) return { kind: 'deny', message: `Airlock refuses this pod: its connections cannot share one sidecar: ${conflicts.join('; ')}` };
  const parts = buildParts(settings, mode, selected, input.backendPorts);
  // every connection's Secret, not only the selected ones': an agent pod reads none of them
  const credentials = new Map<string, string>();
  for (const c of input.connections) {
    const secret = c.spec.credentialsSecretRef.name;
    if (!credentials.has(secret)) credentials.set(secret, connectionName(c));
  }
  const { injected, own } = verifiedOwnParts(pod, parts);
  const violations = bypassViolations(pod, credentials, own);
  if (violations.length > 0) return { kind: 'deny', message: denyMessage(violations) };
  if (injected) return { kind: 'skip', reason: 'already injected' };
  const warnings = [...parts.warnings, ...(mode === 'transparent' ? captureWarnings(selected) : [])];
  const conflictsEnv = envConflicts(pod, parts);
  const ownCa = conflictsEnv.filter((e) => e.endsWith(` env ${AGENT_TRUST.caEnv}`));
  const ownExplicit = conflictsEnv.filter((e) => !ownCa.includes(e));
  if (ownExplicit.length > 0) warnings.push(`capture explicit: left as the pod sets them: ${ownExplicit.join(', ')}`);
  if (ownCa.length > 0) warnings.push(`left as the pod sets it, so libpq there does not trust Airlock's CA unless that file includes it: ${ownCa.join(', ')}`);
  const trust = agentTrustPatch(pod, selected);
  warnings.push(...trust.warnings);
  const setuid = setuidCapable(pod, own);
  if (setuid.length > 0) {
    warnings.push(`${setuid.join(', ')}: may run as root with CAP_SETUID, so could switch to the sidecar's UID and leave capture; set runAsNonRoot: true and allowPrivilegeEscalation: false, or drop SETUID`);
  }
  return { kind: 'patch', patch: [...injectionPatch(pod, parts), ...trust.ops], warnings };
}
