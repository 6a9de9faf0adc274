/**
 * Whether a pod already carries exactly what injection would add (a reinvocation, or a pod
 * created from an injected pod's spec). The API server defaults fields after a mutating webhook
 * patches, so the pod's copy may hold more than injection wrote, but only fields the API server
 * defaults: anything else (a command, a mount, a capability) makes it not Airlock's. Pure.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { INJECTED_ANNOTATION } from '@airlock/api';
import { NONE, RESERVED_VOLUME_PREFIX, type OwnParts } from './bypass.ts';
import type { InjectedParts } from './build.ts';

/** fields the API server fills in on containers, probes, env and volumes */
const DEFAULTED: ReadonlySet<string> = new Set([
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
  'timeoutSeconds',
  'periodSeconds',
  'successThreshold',
  'failureThreshold',
  'scheme',
  'apiVersion',
  'defaultMode',
]);
/** compared loosely: quantities come back in canonical form (0.1 → 100m); they cannot open a bypass */
const ANY_VALUE: ReadonlySet<string> = new Set(['resources']);

function isObject(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `actual` holds everything `desired` does, plus at most defaulted fields */
export function conforms(desired: unknown, actual: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => conforms(d, actual[i]));
  if (isObject(desired)) {
    if (!isObject(actual)) return false;
    for (const [k, v] of Object.entries(desired)) {
      if (v === undefined) continue;
      if (ANY_VALUE.has(k)) {
        if (actual[k] === undefined) return false;
        continue;
      }
      if (!conforms(v, actual[k])) return false;
    }
    return Object.keys(actual).every((k) => Object.hasOwn(desired, k) || DEFAULTED.has(k) || actual[k] === undefined);
  }
  return desired === actual;
}

/** the pod's Airlock parts when they are exactly what `parts` describes; NONE otherwise */
export function verifiedOwnParts(pod: V1Pod, parts: InjectedParts): { readonly injected: boolean; readonly own: OwnParts } {
  if (pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== parts.annotation) return { injected: false, own: NONE };
  const inits = pod.spec?.initContainers ?? [];
  if (!parts.initContainers.every((d, i) => conforms(d, inits[i]))) return { injected: false, own: NONE };
  const volumes = (pod.spec?.volumes ?? []).filter((v) => v.name.startsWith(RESERVED_VOLUME_PREFIX));
  if (volumes.length !== parts.volumes.length || !parts.volumes.every((d) => conforms(d, volumes.find((v) => v.name === d.name)))) return { injected: false, own: NONE };
  return {
    injected: true,
    own: { containers: new Set(parts.initContainers.map((_, i) => `spec.initContainers[${i}]`)), volumes: new Set(parts.volumes.map((v) => v.name)) },
  };
}
