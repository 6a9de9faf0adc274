/**
 * The work queue of keys, after client-go's: a key queued several times before a worker takes it
 * is processed once; a key added while a worker processes it is processed again after `done`,
 * never by two workers at once; failed keys come back after a per-key backoff; `shutDown` stops
 * accepting keys and lets the workers drain what is queued. Timers come from the injected clock.
 */
import type { Clock } from '@airlock/kube';
import { RateLimiter } from './rate-limiter.ts';

export class WorkQueue {
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  /** keys ready for a worker, in order */
  readonly #ready: string[] = [];
  /** keys that need processing (queued, or to be requeued when their processing ends) */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  /** keys waiting for their delay: when they are due and how to cancel the timer */
  readonly #delayed = new Map<string, { readonly at: number; readonly cancel: () => void }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #drainedListeners: (() => void)[] = [];
  #shuttingDown = false;

  constructor({ clock, limiter = new RateLimiter() }: { readonly clock: Clock; readonly limiter?: RateLimiter }) {
    this.#clock = clock;
    this.#limiter = limiter;
  }

  /** queues `key` now (ignored after shutDown) */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    this.#enqueue(key);
  }

  /** queues `key` after `ms`; an earlier pending delay of the same key wins */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      pending.cancel();
    }
    const cancel = this.#clock.setTimer(ms, () => {
      this.#delayed.delete(key);
      this.add(key);
    });
    this.#delayed.set(key, { at, cancel });
  }

  /** queues `key` again after its backoff (it failed) */
  addRateLimited(key: string): void {
    this.addAfter(key, this.#limiter.when(key, this.#clock.now()));
  }

  /** `key` succeeded: its backoff starts over */
  forget(key: string): void {
    this.#limiter.forget(key);
  }

  /** how many times `key` failed in a row */
  failures(key: string): number {
    return this.#limiter.failures(key);
  }

  /** the next key to process, or undefined once shut down and drained */
  get(): Promise<string | undefined> {
    const key = this.#ready.shift();
    if (key !== undefined) return Promise.resolve(this.#start(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  /** the worker finished `key`; if it was added meanwhile, it is queued again */
  done(key: string): void {
    this.#processing.delete(key);
    // added while it was processed (also before a shutdown began): it is still owed a run
    if (this.#dirty.has(key)) this.#enqueue(key);
    this.#notifyIfDrained();
  }

  /** keys ready for a worker */
  get length(): number {
    return this.#ready.length;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Stops accepting keys, drops delayed ones, lets workers take what is queued (or, with
   * `drain: false`, drops that too: keys being processed still finish); resolves when nothing is
   * queued or being processed. Idle workers get undefined.
   */
  shutDown({ drain = true }: { readonly drain?: boolean } = {}): Promise<void> {
    this.#shuttingDown = true;
    if (!drain) {
      this.#ready.length = 0;
      this.#dirty.clear();
    }
    for (const { cancel } of this.#delayed.values()) cancel();
    this.#delayed.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    return new Promise((resolve) => {
      this.#drainedListeners.push(resolve);
      this.#notifyIfDrained();
    });
  }

  #start(key: string): string {
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }

  #enqueue(key: string): void {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) this.#ready.push(key);
    else waiter(this.#start(key));
  }

  #notifyIfDrained(): void {
    if (!this.#shuttingDown || this.#ready.length > 0 || this.#processing.size > 0) return;
    for (const listener of this.#drainedListeners.splice(0)) listener();
  }
}
