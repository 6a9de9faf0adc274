/**
 * Pod injection (mutating, Pod CREATE): the pure planInjection of ./inject/ with the pod's
 * namespace and that namespace's AgentConnections, read from informer caches by the caller.
 * Fails closed: while the caches have not synced, or without the sidecar's settings, an opted-in
 * pod is refused with a message saying why (a pod that is not opted in is let through untouched).
 */
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { AgentConnection } from '@airlock/api';
import { SIDECAR_CONTAINER } from '@airlock/api';
import { denyMessage, ephemeralContainerViolations, injectedContainersChanged, optedIn, planInjection, type InjectionSettings } from './inject/index.ts';
import { allow, deny, type AdmissionRequest, type AdmissionVerdict } from './admission.ts';

export interface PodAdmissionContext {
  /** the pod's namespace (from the cache, or read live on a cache miss) */
  readonly namespace: V1Namespace;
  /** the AgentConnections of the pod's namespace; undefined while the cache has not synced */
  readonly connections: readonly AgentConnection[] | undefined;
  /** undefined when the settings cannot be built (e.g. the control CA file is unreadable) */
  readonly settings: InjectionSettings | undefined;
  /** why the settings are missing, for the message */
  readonly settingsProblem?: string;
  /** per connection, the other ports its target's endpoints listen on (capture/backends.ts) */
  readonly backendPorts?: ReadonlyMap<string, readonly number[]>;
}

function injected(pod: V1Pod | undefined): boolean {
  return (pod?.spec?.initContainers ?? []).some((c) => c.name === SIDECAR_CONTAINER);
}

/**
 * After creation (Pod UPDATE, and pods/ephemeralcontainers for `kubectl debug`): an injected
 * pod's Airlock containers stay exactly as injected (an image swap would run anything as the
 * sidecar's UID), and debug containers obey the same no-bypass rules as the pod's own.
 */
function podUpdateAdmission(request: AdmissionRequest, context: PodAdmissionContext): AdmissionVerdict {
  const pod = request.object as V1Pod | undefined;
  const old = request.oldObject as V1Pod | undefined;
  if (pod === undefined || old === undefined) return deny('the admission request carries no object and old object', 400, 'BadRequest');
  if (!injected(old) && !optedIn(old, context.namespace)) return allow();
  if (request.subResource === 'ephemeralcontainers') {
    if (context.connections === undefined) {
      return deny("Airlock's webhook has not synced its caches of AgentConnections yet; a debug container cannot be checked: retry in a few seconds", 503, 'ServiceUnavailable');
    }
    const violations = ephemeralContainerViolations(pod, context.connections);
    return violations.length === 0 ? allow() : deny(denyMessage(violations));
  }
  if (request.subResource !== undefined) return allow();
  const changed = injectedContainersChanged(old, pod);
  return changed.length === 0 ? allow() : deny(denyMessage(changed));
}

export function injectPodAdmission(request: AdmissionRequest, context: PodAdmissionContext): AdmissionVerdict {
  if (request.operation === 'UPDATE') return podUpdateAdmission(request, context);
  if (request.operation !== 'CREATE' || request.subResource !== undefined) return allow();
  if (request.object === undefined) return deny('the admission request carries no object', 400, 'BadRequest');
  // the namespace the pod is created in is the namespace passed (planInjection falls back to it)
  const pod = request.object as V1Pod;
  if (!optedIn(pod, context.namespace)) return allow();
  if (context.connections === undefined) {
    return deny("Airlock's webhook has not synced its caches of AgentConnections yet; the pod is opted in to Airlock and cannot be admitted without its sidecar: retry in a few seconds", 503, 'ServiceUnavailable');
  }
  if (context.settings === undefined) {
    return deny(`Airlock's webhook cannot inject the sidecar: ${context.settingsProblem ?? 'its settings are incomplete'}`, 503, 'ServiceUnavailable');
  }
  const result = planInjection({ pod, namespace: context.namespace, connections: context.connections, settings: context.settings, ...(context.backendPorts !== undefined ? { backendPorts: context.backendPorts } : {}) });
  switch (result.kind) {
    case 'skip':
      return allow();
    case 'deny':
      return deny(result.message);
    case 'patch':
      return { allowed: true, patch: result.patch, warnings: result.warnings };
    default:
      return deny('the injection plan is of an unknown kind', 500, 'InternalError');
  }
}
