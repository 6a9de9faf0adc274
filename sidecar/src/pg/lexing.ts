/**
 * One text, one meaning: when the server's lexing settings are known. They are known (pinned,
 * checked in every ParameterStatus) only at a ReadyForQuery with nothing forwarded after it.
 * `awaitingReady` counts the Queries and Syncs forwarded whose ReadyForQuery has not been read;
 * `batchRan` says a Bind or Execute (which may run user code, e.g. a function calling
 * set_config) was forwarded since the last Sync or Query. A statement text is forwarded in an
 * unknown state only when it reads alike in every state (readsAlike); otherwise it waits for the
 * ReadyForQuery, or is refused when no ReadyForQuery can come before it (same batch). Pure.
 */
import type { Decision } from '@airlock/policy';
import type { FrontendMessage } from './frontend.ts';

/**
 * True when a statement text reads alike whatever the lexing settings: only ASCII (in every
 * client encoding PostgreSQL supports, a byte below 0x80 that is not inside a multi-byte
 * character is that ASCII character, and only bytes from 0x80 start one) and no backslash (the
 * only character standard_conforming_strings and backslash_quote give another meaning).
 */
export function readsAlike(sql: string): boolean {
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c >= 0x80 || c === 0x5c) return false;
  }
  return true;
}

const AFTER_RUN: Decision = {
  decision: 'Block',
  classes: [],
  rules: [],
  message: 'a statement with non-ASCII characters or backslashes cannot follow a Bind or Execute in the same batch: what ran before it may have changed how the server reads text; send Sync first',
};

export class LexingState {
  /** Queries and Syncs forwarded whose ReadyForQuery has not been read */
  awaitingReady = 0;
  /** a Bind or Execute was forwarded since the last Sync or Query */
  batchRan = false;
  /** the session waits for ReadyForQuery before processing the agent's messages */
  waiting = false;

  /**
   * A statement text that must not be forwarded before the ReadyForQuery of what is in flight:
   * the lexing state is unknown, the text does not read alike in every state, and a
   * ReadyForQuery will come (a Query or Sync is in flight and no Bind or Execute since).
   */
  mustWait(m: FrontendMessage): boolean {
    if (m.type !== 'Query' && m.type !== 'Parse') return false;
    return this.awaitingReady > 0 && !this.batchRan && !readsAlike(m.sql);
  }

  /** A text that must be refused: the lexing state is unknown and no ReadyForQuery can come before it. */
  refusal(sql: string): Decision | undefined {
    if (!this.batchRan || readsAlike(sql)) return undefined;
    return AFTER_RUN;
  }

  /** A Query or Sync forwarded: a ReadyForQuery will answer it, and the batch starts anew. */
  forwardedReady(): void {
    this.awaitingReady += 1;
    this.batchRan = false;
  }

  /**
   * A Query or Sync in flight is answered (or skipped): true when none is left and messages
   * waited for it (they may go on now; waiting is cleared).
   */
  answered(): boolean {
    if (this.awaitingReady > 0) this.awaitingReady -= 1;
    if (this.awaitingReady === 0 && this.waiting) {
      this.waiting = false;
      return true;
    }
    return false;
  }
}
