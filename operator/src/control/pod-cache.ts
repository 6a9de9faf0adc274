/**
 * The agent pods the control API authenticates against, kept lean: only pods that carry the
 * injection webhook's `airlock.dev/injected` annotation (the only ones with a sidecar to ask), and
 * of each only what authentication reads (namespace, name, uid, service account, labels). A
 * cluster's other pods cost nothing but the watch traffic.
 *
 * client-node's ListWatch caches whatever its Watch hands it: a Watch that projects each pod
 * (and turns a pod that is not, or no longer, injected into a deletion) keeps the cache small. Like
 * SupervisedInformer, it restarts after an error with exponential backoff.
 */
import { INJECTED_ANNOTATION } from '@airlock/api';
import { ListWatch, V1ObjectMeta, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '../clock.ts';
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
  readonly #informer: ListWatch<SlimPod>;
  readonly #clock: Clock;
  readonly #log: Logger;
  #synced = false;
  #stopped = true;
  #attempt = 0;
  #backoffMs = 1000;
  #cancelRestart: (() => void) | undefined;

  constructor({ kube, config, clock, log, onEvent, onRestart }: { readonly kube: Kube; readonly config: KubeConfig; readonly clock: Clock; readonly log: Logger; readonly onEvent: (pod: SlimPod) => void; readonly onRestart?: () => void }) {
    this.#clock = clock;
    this.#log = log;
    this.#onRestart = onRestart;
    const list = async (): Promise<{ metadata: { resourceVersion?: string }; items: SlimPod[] }> => {
      const pods = await kube.core.listPodForAllNamespaces();
      return {
        metadata: pods.metadata?.resourceVersion === undefined ? {} : { resourceVersion: pods.metadata.resourceVersion },
        items: pods.items.flatMap((p) => slimPod(p) ?? []),
      };
    };
    this.#informer = new ListWatch<SlimPod>('/api/v1/pods', new ProjectingWatch(config), list, false);
    for (const event of ['add', 'update', 'delete'] as const) this.#informer.on(event, onEvent);
    this.#informer.on('error', (err: unknown) => {
      this.#failed(err);
    });
  }

  readonly #onRestart: (() => void) | undefined;

  get synced(): boolean {
    return this.#synced;
  }

  get(namespace: string, name: string): PodRecord | undefined {
    return this.#informer.get(name, namespace)?.record;
  }

  get size(): number {
    return this.#informer.list().length;
  }

  /** the injected pods of a namespace */
  list(namespace: string): readonly PodRecord[] {
    return this.#informer.list(namespace).map((p) => p.record);
  }

  start(): void {
    this.#stopped = false;
    this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#synced = false;
    this.#cancelRestart?.();
    this.#cancelRestart = undefined;
    await this.#informer.stop();
  }

  #run(): void {
    const attempt = ++this.#attempt;
    this.#informer.start().then(
      () => {
        if (attempt !== this.#attempt || this.#stopped) return;
        this.#synced = true;
        this.#backoffMs = 1000;
        this.#log.info('informer synced', { informer: this.name });
      },
      (err: unknown) => {
        if (attempt === this.#attempt) this.#failed(err);
      },
    );
  }

  #failed(err: unknown): void {
    this.#attempt++;
    this.#synced = false;
    if (this.#stopped || this.#cancelRestart !== undefined) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(delay * 2, 60_000);
    this.#log.warn('informer failed; restarting', { informer: this.name, error: err instanceof Error ? err.message : String(err), retryInMs: delay });
    this.#cancelRestart = this.#clock.setTimer(delay, () => {
      this.#cancelRestart = undefined;
      if (this.#stopped) return;
      this.#onRestart?.();
      this.#run();
    });
  }
}
