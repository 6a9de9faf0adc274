/**
 * The state the PostgreSQL message pipeline keeps for one session, shared by its two
 * directions (frontend-flow.ts: what the agent sends; backend-flow.ts: what the server
 * answers): the reply queue, what protocol names stand for, the lexing and COPY FROM STDIN
 * trackers, row plans, counters, and the bookkeeping of answered and skipped messages. No
 * sockets, no timers: the shell (session.ts) gives it the hooks below.
 */
import type { PolicyBundle } from '@airlock/policy';
import type { Enforcer } from '../enforce/enforcer.ts';
import type { Enforcement } from '../proxy.ts';
import { CopyInTracker } from './copy-in.ts';
import { DescribedCache } from './described.ts';
import { ReplyQueue, type Expect, type StatementRecord } from './expects.ts';
import { LexingState } from './lexing.ts';
import { RowPlans, masks } from './plans.ts';
import { ProtocolNames } from './prepared.ts';
import { resultJson } from './records.ts';
import { Slab } from './rows.ts';

/** What the pipeline asks of its shell. */
export interface FlowHooks {
  /** appends a record serialised by hand (no seq, prev, hash or time field) */
  recordJson(json: string): void;
  /** what waited (for a ReadyForQuery, for the start of a COPY) may go on: the shell resumes it soon */
  resume(): void;
}

/** Counters of the session (its session_end record and session reports). */
export interface FlowCounts {
  statements: number;
  blocked: number;
  approvals: number;
  rows: number;
  masked: number;
}

export class FlowState {
  readonly enforcer: Enforcer;
  readonly hooks: FlowHooks;
  readonly queue = new ReplyQueue();
  readonly names = new ProtocolNames();
  readonly lex = new LexingState();
  readonly copyIn = new CopyInTracker();
  readonly described = new DescribedCache();
  readonly plans = new RowPlans();
  /** rewritten messages for the agent, built one after the other */
  readonly slab = new Slab();
  readonly counts: FlowCounts = { statements: 0, blocked: 0, approvals: 0, rows: 0, masked: 0 };
  /** an extended-protocol message was forwarded since the last Sync */
  inBatch = false;
  /**
   * The server skips every message up to the next Sync (a message of the batch failed, and every
   * message forwarded before the error was read has been accounted as skipped): what is
   * forwarded until a Sync is skipped too.
   */
  skipUntilSync = false;
  /** the server streams COPY … TO STDOUT data */
  copyOut = false;
  /** a binary COPY TO STDOUT the policy did not stop is being discarded (it cannot be masked) */
  binaryCopyOut = false;
  /** the server sent a FATAL or PANIC error: it closes the connection itself */
  fatalSeen = false;
  /** pinned settings the server has reported (the greeting must report each) */
  readonly pinnedSeen = new Set<string>();

  constructor(enforcer: Enforcer, hooks: FlowHooks) {
    this.enforcer = enforcer;
    this.hooks = hooks;
  }

  /** what new statements are decided with */
  get pol(): Enforcement | undefined {
    return this.enforcer.current;
  }

  get bundle(): PolicyBundle | undefined {
    return this.enforcer.current?.bundle;
  }

  /** results are masked */
  get masking(): boolean {
    return masks(this.enforcer.current?.bundle);
  }

  /** Queues what the server will answer to a message forwarded (skipped at once while the server skips to Sync). */
  expect(e: Expect): void {
    if (this.skipUntilSync) {
      if (e.k !== 'sync') {
        this.skipped(e);
        return;
      }
      this.skipUntilSync = false;
    }
    this.queue.push(e);
  }

  /** Takes the answered head of the reply queue. */
  pop(): Expect | undefined {
    const e = this.queue.pop();
    // answered: it starts no COPY any more
    if (e !== undefined && (e.k === 'query' || e.k === 'execute') && CopyInTracker.finish(e.gate)) this.copyInChanged();
    return e;
  }

  /** The server told more of a COPY FROM STDIN: messages that waited for it go on. */
  copyInChanged(): void {
    if (this.copyIn.changed()) this.hooks.resume();
  }

  /** A Query or Sync in flight is answered (or skipped): when none is left, what waited for the lexing state goes on. */
  answeredReady(): void {
    // the lexing state is known again (every ParameterStatus before this was checked)
    if (this.lex.answered()) this.hooks.resume();
  }

  /**
   * A message PostgreSQL skipped (an earlier message of its batch failed: everything up to Sync
   * is discarded, a Query too): what it would have made is not made, a statement is not run,
   * and no ReadyForQuery answers a skipped Query.
   */
  skipped(x: Expect): void {
    switch (x.k) {
      case 'execute':
      case 'query':
        // no ReadyForQuery answers a skipped Query
        if (x.k === 'query') this.answeredReady();
        this.finishResult(x.rec, 'not run: an earlier message of the batch failed');
        if (CopyInTracker.finish(x.gate)) this.copyInChanged();
        break;
      case 'describe':
        // a Describe the sidecar counted on for a portal's columns gives none: the next Execute asks again
        if (x.of !== undefined && 'describing' in x.of) x.of.describing = false;
        break;
      case 'parse':
        this.names.undoParse(x, true);
        break;
      case 'bind':
        this.names.undoBind(x, true);
        break;
      default:
        break;
    }
  }

  /** Records a statement's result (`skipped`: why it did not run). */
  finishResult(rec: StatementRecord | undefined, skipped?: string): void {
    if (rec === undefined) return;
    this.hooks.recordJson(resultJson(rec.id, rec.rows, rec.masked, rec.rules, rec.tags, skipped ?? rec.error));
  }
}
