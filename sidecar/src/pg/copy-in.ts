/**
 * COPY FROM STDIN as the sidecar follows it. A statement that may start one gets a gate; while
 * the server may be reading copy data it reads copy messages only (it ignores Sync and Flush,
 * and fails the COPY on anything else) until CopyDone or CopyFail. What a frontend message sent
 * meanwhile means depends on whether the COPY started, so the tracker keeps count. Pure.
 */
import { frontendMessage } from './wire.ts';
import type { FrontendMessage } from './frontend.ts';

/** A statement that may start COPY FROM STDIN. */
export interface CopyInGate {
  /** how many COPY FROM STDIN it can start at most (a query may hold several) */
  readonly max: number;
  /** CopyInResponses received for it */
  starts: number;
  /** CopyDone and CopyFail forwarded since it was */
  ends: number;
  /** its answer is complete: it starts no more */
  done: boolean;
}

/** What a frontend message becomes: swallowed (the server ignores it in COPY). */
export const DROP: unique symbol = Symbol('drop');

/** Texts that may hold COPY … FROM STDIN (a substring match: cheap, may over-match, never misses the keyword). */
const MAY_COPY = /copy/gi;

/** How many COPY FROM STDIN a statement text may start at most (0: none). */
export function mayCopy(sql: string): number {
  return sql.match(MAY_COPY)?.length ?? 0;
}

export class CopyInTracker {
  /** the last statement forwarded that may start COPY FROM STDIN, while the server may be in one */
  #gate: CopyInGate | undefined;
  /** the session waits for the server to tell whether a COPY FROM STDIN started */
  waiting = false;

  /** A gate for a statement forwarded that may start up to `max` COPY FROM STDIN (none: undefined). */
  gate(max: number): CopyInGate | undefined {
    if (max <= 0) return undefined;
    const g: CopyInGate = { max, starts: 0, ends: 0, done: false };
    this.#gate = g;
    return g;
  }

  /** Whether the server is in a COPY FROM STDIN the agent has not ended, as far as the sidecar can tell. */
  state(g: CopyInGate): 'none' | 'started' | 'unknown' {
    if (g.done || g.ends >= g.max) {
      if (this.#gate === g) this.#gate = undefined;
      return 'none';
    }
    return g.starts > g.ends ? 'started' : 'unknown';
  }

  /**
   * A frontend message while the server may be reading COPY FROM STDIN data: undefined when it
   * is handled as usual (copy messages always are: the COPY's data, already decided; the server
   * ignores them outside COPY), 'wait' when it is not known yet whether the COPY started, DROP
   * for a Sync or Flush during the COPY (the server ignores them there), or the CopyFail that
   * replaces any other message (PostgreSQL fails the COPY on it and does not run it).
   */
  during(m: FrontendMessage): Buffer | typeof DROP | 'wait' | undefined {
    if (m.type === 'CopyData' || m.type === 'CopyDone' || m.type === 'CopyFail' || m.type === 'Terminate') return undefined;
    const g = this.#gate;
    if (g === undefined) return undefined;
    const state = this.state(g);
    if (state === 'none') return undefined;
    if (state === 'unknown') return 'wait';
    if (m.type === 'Sync' || m.type === 'Flush') return DROP;
    g.ends += 1;
    return frontendMessage('f', Buffer.from(`airlock: a ${m.type} message arrived during COPY FROM STDIN; the COPY is failed and the message is not run\0`, 'utf8'));
  }

  /** A CopyDone or CopyFail forwarded: it ends the COPY in progress, if any. */
  ended(): void {
    if (this.#gate !== undefined) this.#gate.ends += 1;
  }

  /** A CopyInResponse for the statement of `owner` (a gate is made when it has none). */
  started(owner: { gate?: CopyInGate }): void {
    // every statement that may start a COPY has a gate (MAY_COPY never misses); one made here keeps count anyway
    const g = owner.gate ?? (owner.gate = { max: Infinity, starts: 0, ends: 0, done: false });
    this.#gate ??= g;
    g.starts += 1;
  }

  /** The statement of `g` is answered: it starts no COPY any more. */
  static finish(g: CopyInGate | undefined): boolean {
    if (g === undefined || g.done) return false;
    g.done = true;
    return true;
  }

  /**
   * The server told more of a COPY FROM STDIN: true when the messages that waited for it may go
   * on now (the caller resumes them; waiting is cleared).
   */
  changed(): boolean {
    const g = this.#gate;
    if (!this.waiting || (g !== undefined && this.state(g) === 'unknown')) return false;
    this.waiting = false;
    return true;
  }
}
