/**
 * Time as a process sees it: passed by constructor so queues, timers and status functions run on
 * a fake clock in tests.
 */
export interface Clock {
  /** milliseconds since the epoch */
  now(): number;
  /** runs `fn` after `ms`; the returned function cancels it */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => {
      clearTimeout(timer);
    };
  },
};
