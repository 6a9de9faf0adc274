/**
 * The reply queue: what the sidecar expects the server to answer, one entry per frontend
 * message forwarded, in order. Backend messages are matched to the head entry, which gives a
 * result its row plan (for masking), its record and its refusal. Pure.
 */
import type { QueryLineage, StatementLineage } from '@airlock/policy';
import type { Enforcement } from '../proxy.ts';
import type { CopyFormat } from './copy.ts';
import type { CopyInGate } from './copy-in.ts';
import type { Described } from './described.ts';
import type { Portal, Prepared } from './prepared.ts';
import type { RowPlan } from './rows.ts';

/** What a statement's `result` record is made of, counted as its answer arrives. */
export interface StatementRecord {
  readonly id: number;
  rows: number;
  masked: number;
  tags: string[];
  error: string | undefined;
  rules: Set<string> | undefined;
}

/** A COPY … TO STDOUT whose rows column rules apply to: its format and its columns' plan. */
export interface CopyState {
  readonly format: CopyFormat;
  readonly header: boolean;
  headerSeen: boolean;
  plan: RowPlan | undefined;
  /** what the COPY's columns derive from (masking follows it) */
  readonly lineage?: StatementLineage | undefined;
}

export type Expect =
  | { readonly k: 'query'; readonly rec: StatementRecord | undefined; readonly refusal: Buffer | undefined; plan: RowPlan | undefined; fields: Described | undefined; failed: boolean; readonly copy?: CopyState; readonly pol: Enforcement | undefined; readonly lineage?: QueryLineage | undefined; results?: number; gate?: CopyInGate }
  /** the description of a COPY … TO STDOUT's columns, asked just before it (Parse, Describe, Close, Sync; every answer swallowed) */
  | { readonly k: 'probe'; readonly copy: CopyState }
  /** `set`: what this Parse made the name stand for (undefined: nothing); `previous`: what it stood for before */
  | { readonly k: 'parse'; readonly refusal: Buffer | undefined; readonly name: string | undefined; readonly previous: Prepared | undefined; readonly set?: Prepared | undefined }
  | { readonly k: 'bind'; readonly name?: string; readonly portal?: Portal; readonly previous?: Portal | undefined }
  /** `of`: the statement or portal described, as it was when the Describe was sent (names are reused) */
  | { readonly k: 'describe'; readonly of: { fields?: Described | null; describing?: boolean } | undefined; readonly swallow: boolean }
  | { readonly k: 'execute'; readonly rec: StatementRecord | undefined; readonly refusal: Buffer | undefined; readonly portal: Portal | undefined; plan: RowPlan | undefined; readonly pol: Enforcement | undefined; gate?: CopyInGate }
  | { readonly k: 'close' }
  | { readonly k: 'sync' };

/** A statement's answer: the entries results (rows, tags, errors) belong to. */
export type ResultExpect = Extract<Expect, { k: 'query' } | { k: 'execute' }>;

/** Entries answered before the queue's storage is compacted. */
const COMPACT_AFTER = 1024;

export class ReplyQueue {
  readonly #expects: Expect[] = [];
  #head = 0;

  push(e: Expect): void {
    this.#expects.push(e);
  }

  /** the entry the next backend message answers */
  current(): Expect | undefined {
    return this.#expects[this.#head];
  }

  /** Takes the head entry (it is answered); storage is compacted now and then. */
  pop(): Expect | undefined {
    const e = this.#expects[this.#head];
    if (e === undefined) return undefined;
    this.#head += 1;
    if (this.#head > COMPACT_AFTER && this.#head * 2 > this.#expects.length) {
      this.#expects.splice(0, this.#head);
      this.#head = 0;
    }
    return e;
  }

  /** Puts back the entry just taken (an error answering a Sync: its ReadyForQuery still follows). */
  unpop(): void {
    if (this.#head > 0) this.#head -= 1;
  }
}
