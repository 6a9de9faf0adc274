/**
 * The RFC 6902 patch that adds the injected parts to a pod, written as the operations a reader
 * expects (inserts at the front of initContainers, appends to volumes and env), each valid
 * against the pod as submitted. Pure.
 */
import type { Operation } from 'fast-json-patch';
import type { V1Pod } from '@kubernetes/client-node';
import { INJECTED_ANNOTATION } from '@airlock/api';
import type { InjectedParts } from './build.ts';

/** RFC 6901 escaping of one path segment */
export function pointerSegment(text: string): string {
  return text.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function injectionPatch(pod: V1Pod, parts: InjectedParts): Operation[] {
  const ops: Operation[] = [];
  const spec = pod.spec;
  if (spec?.initContainers === undefined) {
    ops.push({ op: 'add', path: '/spec/initContainers', value: [...parts.initContainers] });
  } else {
    // each insert at index 0, last first: they end up first, in order, before the pod's own
    for (const c of [...parts.initContainers].reverse()) ops.push({ op: 'add', path: '/spec/initContainers/0', value: c });
  }
  if (spec?.volumes === undefined) ops.push({ op: 'add', path: '/spec/volumes', value: [...parts.volumes] });
  else for (const v of parts.volumes) ops.push({ op: 'add', path: '/spec/volumes/-', value: v });
  if (parts.agentEnv.length > 0) {
    (spec?.containers ?? []).forEach((c, i) => {
      const present = new Set((c.env ?? []).map((e) => e.name));
      const add = parts.agentEnv.filter((group) => !group.some((e) => present.has(e.name))).flat();
      if (add.length === 0) return;
      if (c.env === undefined) ops.push({ op: 'add', path: `/spec/containers/${i}/env`, value: add });
      else for (const e of add) ops.push({ op: 'add', path: `/spec/containers/${i}/env/-`, value: e });
    });
  }
  if (pod.metadata?.annotations === undefined) ops.push({ op: 'add', path: '/metadata/annotations', value: { [INJECTED_ANNOTATION]: parts.annotation } });
  else ops.push({ op: 'add', path: `/metadata/annotations/${pointerSegment(INJECTED_ANNOTATION)}`, value: parts.annotation });
  return ops;
}

/** agent containers whose own env already sets a variable of a group explicit capture would set */
export function envConflicts(pod: V1Pod, parts: InjectedParts): string[] {
  return (pod.spec?.containers ?? []).flatMap((c, i) => {
    const own = new Set((c.env ?? []).map((e) => e.name));
    return parts.agentEnv.filter((group) => group.some((e) => own.has(e.name))).map((group) => `spec.containers[${i}].env ${group.map((e) => e.name).join('/')}`);
  });
}
