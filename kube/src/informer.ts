/**
 * An informer that comes back after errors. client-node's informer stops on its first error (a
 * failed list, a watch the server ends with an error) and never restarts by itself
 * (../shared/notes/kubernetes-client.md); this one restarts it with exponential backoff (1 s
 * doubling to 60 s, reset once it has synced again) and says whether it has synced (listed, and
 * watching) since its last error.
 */
import { makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from './clock.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

/** what is watched: a path and its list call (a plain client-node informer), or an informer made by the caller */
export type InformerSource<T extends KubernetesObject> =
  | {
      readonly config: KubeConfig;
      /** the watch path, e.g. /apis/airlock.dev/v1alpha1/agentconnections */
      readonly path: string;
      readonly list: () => Promise<KubernetesListObject<T>>;
    }
  | { readonly informer: Informer<T> & ObjectCache<T> };

export type SupervisedInformerOptions<T extends KubernetesObject> = InformerSource<T> & {
  readonly name: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** every add, update and delete; without it the informer only fills its cache */
  readonly onEvent?: (event: InformerEvent, object: T) => void;
  /** called before each restart after an error (a metric counts them) */
  readonly onRestart?: () => void;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
};

export class SupervisedInformer<T extends KubernetesObject> {
  readonly name: string;
  readonly #informer: Informer<T> & ObjectCache<T>;
  // not the options themselves: onEvent would make a SupervisedInformer<V1Pod> no SupervisedInformer<KubernetesObject>
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onRestart: (() => void) | undefined;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  #synced = false;
  #stopped = true;
  /** bumped by every start and error, so a late start() result cannot mark a failed attempt synced */
  #attempt = 0;
  #backoffMs: number;
  #cancelRestart: (() => void) | undefined;

  constructor(options: SupervisedInformerOptions<T>) {
    this.name = options.name;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#onRestart = options.onRestart;
    this.#initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.#backoffMs = this.#initialBackoffMs;
    this.#informer = 'informer' in options ? options.informer : makeInformer(options.config, options.path, options.list);
    const { onEvent } = options;
    if (onEvent !== undefined) {
      for (const event of ['add', 'update', 'delete'] as const) {
        this.#informer.on(event, (object) => {
          onEvent(event, object);
        });
      }
    }
    this.#informer.on('error', (err: unknown) => {
      this.#failed(err);
    });
  }

  get synced(): boolean {
    return this.#synced;
  }

  get cache(): ObjectCache<T> {
    return this.#informer;
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
        this.#backoffMs = this.#initialBackoffMs;
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
    this.#backoffMs = Math.min(delay * 2, this.#maxBackoffMs);
    this.#log.warn('informer failed; restarting', { informer: this.name, error: err instanceof Error ? err.message : String(err), retryInMs: delay });
    this.#cancelRestart = this.#clock.setTimer(delay, () => {
      this.#cancelRestart = undefined;
      if (this.#stopped) return;
      this.#onRestart?.();
      this.#run();
    });
  }
}
