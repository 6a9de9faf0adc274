/**
 * Long-poll wake-ups: a bundle request waiting for a change sleeps on its namespace; any informer
 * event touching that namespace (a connection, a policy, a Secret, a pod) wakes every sleeper
 * there, which then recomputes its bundle and answers only if the revision moved.
 */
import type { Clock } from '@airlock/kube';

export class NamespaceSignals {
  readonly #clock: Clock;
  readonly #sleepers = new Map<string, Set<() => void>>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** how many requests sleep right now (all namespaces) */
  get sleeping(): number {
    let n = 0;
    for (const set of this.#sleepers.values()) n += set.size;
    return n;
  }

  /** resolves on the next wake of `namespace`, after `ms`, or when `signal` aborts, whichever comes first */
  sleep(namespace: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || ms <= 0) {
        resolve();
        return;
      }
      let set = this.#sleepers.get(namespace);
      if (set === undefined) {
        set = new Set();
        this.#sleepers.set(namespace, set);
      }
      const sleepers = set;
      const done = (): void => {
        cancelTimer();
        signal.removeEventListener('abort', done);
        sleepers.delete(done);
        if (sleepers.size === 0 && this.#sleepers.get(namespace) === sleepers) this.#sleepers.delete(namespace);
        resolve();
      };
      const cancelTimer = this.#clock.setTimer(ms, done);
      signal.addEventListener('abort', done, { once: true });
      sleepers.add(done);
    });
  }

  wake(namespace: string): void {
    const set = this.#sleepers.get(namespace);
    if (set === undefined) return;
    for (const done of [...set]) done();
  }

  wakeAll(): void {
    for (const namespace of [...this.#sleepers.keys()]) this.wake(namespace);
  }
}
