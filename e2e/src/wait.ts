/**
 * Waiting in e2e tests: poll until a condition holds, or fail with what was last seen and whatever
 * the test says explains it (the logs of the processes it started).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  /** default 60 s */
  readonly timeoutMs?: number;
  /** between two reads; default 200 ms */
  readonly intervalMs?: number;
  /** a read that throws is tried again (its message becomes the last value) instead of failing */
  readonly retryErrors?: boolean;
  /** appended to the timeout message, e.g. the last lines of the logs */
  readonly context?: () => string;
}

/** reads until `accept` holds and returns that value; on timeout, fails naming `what` and the last value */
export async function until<T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, options: UntilOptions = {}): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 200, retryErrors = false, context } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await read();
      if (accept(value)) return value;
      last = value;
    } catch (err) {
      if (!retryErrors) throw err;
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const more = context?.() ?? '';
      assert.fail(`timed out after ${String(timeoutMs / 1000)} s waiting for ${what}; last: ${JSON.stringify(last)}${more === '' ? '' : `\n${more}`}`);
    }
    await sleep(intervalMs);
  }
}
