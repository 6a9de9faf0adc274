/**
 * When a key that failed may be retried: per-key exponential backoff (base · 2^failures, capped),
 * combined with a token bucket that caps the overall retry rate (the slower of the two wins, as
 * in client-go's default controller rate limiter). Pure: time is an argument.
 */
export interface RateLimiterOptions {
  /** delay of the first retry */
  readonly baseDelayMs: number;
  /** longest delay of one key */
  readonly maxDelayMs: number;
  /** retries per second, overall */
  readonly qps: number;
  /** retries allowed at once before qps applies */
  readonly burst: number;
}

export const DEFAULT_RATE_LIMITER: RateLimiterOptions = { baseDelayMs: 5, maxDelayMs: 1000 * 1000, qps: 10, burst: 100 };

export class RateLimiter {
  readonly #options: RateLimiterOptions;
  readonly #failures = new Map<string, number>();
  #tokens: number;
  #refilledAt: number | undefined;

  constructor(options: RateLimiterOptions = DEFAULT_RATE_LIMITER) {
    this.#options = options;
    this.#tokens = options.burst;
  }

  /** the delay before `key` is retried, counting this failure */
  when(key: string, now: number): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const exponential = Math.min(this.#options.baseDelayMs * 2 ** failures, this.#options.maxDelayMs);
    return Math.max(exponential, this.#reserve(now));
  }

  /** the key succeeded: its next failure starts from the base delay again */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** takes one token, going into debt when there is none; returns how long the debt takes to repay */
  #reserve(now: number): number {
    const { qps, burst } = this.#options;
    const elapsed = this.#refilledAt === undefined ? 0 : Math.max(0, now - this.#refilledAt);
    this.#refilledAt = now;
    this.#tokens = Math.min(burst, this.#tokens + (elapsed * qps) / 1000) - 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / qps);
  }
}
