/**
 * The agent pods the control API authenticates against, kept lean: only pods that carry the
 * injection webhook's `airlock.dev/injected` annotation (the only ones with a sidecar to ask), and
 * of each only what authentication reads (namespace, name, uid, service account, labels). A
 * cluster's other pods cost nothing but the watch traffic.
 *
 * client-node's ListWatch caches whatever its Watch hands it: a Watch that projects each pod
 * (and turns a pod that is not, or no longer, injected into a deletion) keeps the cache small.
 * SupervisedInformer runs it, so it restarts after an error with exponential backoff.
 */
import { INJECTED_ANNOTATION } from '@airlock/api';
import { ListWatch, V1ObjectMeta, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import { SupervisedInformer, type Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import type { PodRecord } from './auth.ts';

/** a pod as the cache keeps it */
export interface SlimPod extends KubernetesObject {
  readonly metadata: { readonly name: string; readonly namespace: string; readonly uid: string; readonly resourceVersion?: string };
  readonly record: PodRecord;
}

/** what slimPod reads of a pod */
export interface PodLike {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: { readonly serviceAccountName?: string };
}

/** the capture mode and connections the webhook wrote in the injected annotation (JSON); nothing when unreadable */
function injectedOf(text: string | undefined): { capture?: string; connections?: readonly string[] } {
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as { capture?: unknown; connections?: unknown };
    return {
      ...(typeof v.capture === 'string' ? { capture: v.capture } : {}),
      ...(Array.isArray(v.connections) ? { connections: v.connections.filter((c): c is string => typeof c === 'string') } : {}),
    };
  } catch {
    return {};
  }
}

/** the projection, or undefined for a pod without a sidecar; pure */
export function slimPod(pod: PodLike): SlimPod | undefined {
  const meta = pod.metadata;
  if (meta?.annotations?.[INJECTED_ANNOTATION] === undefined) return undefined;
  const injected = injectedOf(meta.annotations[INJECTED_ANNOTATION]);
  const record: PodRecord = {
    namespace: meta.namespace ?? 'default',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    serviceAccount: pod.spec?.serviceAccountName ?? 'default',
    labels: meta.labels ?? {},
    ...injected,
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: record.name, namespace: record.namespace, uid: record.uid, ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }) },
    record,
  };
}

/** hands ListWatch projected pods; a pod that is not injected arrives as a deletion */
class ProjectingWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, apiObj: unknown, watchObj?: unknown) => {
        if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') {
          callback(phase, apiObj, watchObj);
          return;
        }
        const pod = apiObj as PodLike;
        const slim = slimPod(pod);
        if (slim !== undefined) {
          callback(phase, slim, watchObj);
          return;
        }
        // keeps the resourceVersion moving and drops a pod whose annotation went away
        const gone: KubernetesObject = {
          metadata: Object.assign(new V1ObjectMeta(), { name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '', resourceVersion: pod.metadata?.resourceVersion ?? '' }),
        };
        callback('DELETED', gone, watchObj);
      },
      done,
    );
  }
}

export class PodCache {
  readonly name = 'Pod';
  readonly #supervised: SupervisedInformer<SlimPod>;

  constructor({ kube, config, clock, log, onEvent, onRestart }: { readonly kube: Kube; readonly config: KubeConfig; readonly clock: Clock; readonly log: Logger; readonly onEvent: (pod: SlimPod) => void; readonly onRestart?: () => void }) {
    const list = async (): Promise<{ metadata: { resourceVersion?: string }; items: SlimPod[] }> => {
      const pods = await kube.core.listPodForAllNamespaces();
      return {
        metadata: pods.metadata?.resourceVersion === undefined ? {} : { resourceVersion: pods.metadata.resourceVersion },
        items: pods.items.flatMap((p) => slimPod(p) ?? []),
      };
    };
    this.#supervised = new SupervisedInformer<SlimPod>({
      name: this.name,
      informer: new ListWatch<SlimPod>('/api/v1/pods', new ProjectingWatch(config), list, false),
      clock,
      log,
      onEvent: (_event, pod) => {
        onEvent(pod);
      },
      ...(onRestart === undefined ? {} : { onRestart }),
    });
  }

  get synced(): boolean {
    return this.#supervised.synced;
  }

  get(namespace: string, name: string): PodRecord | undefined {
    return this.#supervised.cache.get(name, namespace)?.record;
  }

  get size(): number {
    return this.#supervised.cache.list().length;
  }

  /** the injected pods of a namespace */
  list(namespace: string): readonly PodRecord[] {
    return this.#supervised.cache.list(namespace).map((p) => p.record);
  }

  start(): void {
    this.#supervised.start();
  }

  stop(): Promise<void> {
    return this.#supervised.stop();
  }
}
