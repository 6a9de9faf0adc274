/**
 * The recording of one SSH session: the hash-chained event log (`<base>.jsonl`) and one
 * asciicast per exec/shell channel (`<base>.<channel>.cast`), chained into the log by `cast`
 * checkpoint records (byte length and SHA-256 of the cast so far; `final` at channel end).
 *
 * failurePolicy Closed: a recorder that cannot write makes every later command refused
 * (`record` throws RecorderError). Open: the failure is logged once and the session goes on
 * unrecorded.
 */
import { basename } from 'node:path';
import { AsciicastWriter, type CastHeader } from '../record/asciicast.ts';
import { sessionFiles } from '../record/files.ts';
import { RecorderError, RecordingWriter } from '../record/writer.ts';
import type { RecordBody } from '@airlock/api';
import type { Logger } from '../log.ts';

/** Output bytes after which a live cast gets a checkpoint record. */
const CHECKPOINT_BYTES = 4 * 1024 * 1024;

export class SessionRecorder {
  readonly id: string;
  readonly path: string | undefined;
  readonly #base: string | undefined;
  readonly #closed: boolean;
  readonly #log: Logger;
  #writer: RecordingWriter | undefined;
  #error: RecorderError | undefined;
  #warned = false;
  #ended = false;
  /** closed casts still being synced to disk */
  readonly #syncing = new Set<Promise<void>>();

  constructor(recordingsDir: string, connection: string, failurePolicy: 'Closed' | 'Open', log: Logger) {
    this.#closed = failurePolicy === 'Closed';
    this.#log = log;
    let id = `unrecorded-${Date.now().toString(36)}`;
    let base: string | undefined;
    try {
      const files = sessionFiles(recordingsDir, connection);
      id = files.id;
      base = files.base;
      this.#writer = new RecordingWriter(`${files.base}.jsonl`);
    } catch (err) {
      this.#error = err instanceof RecorderError ? err : new RecorderError((err as Error).message);
    }
    this.id = id;
    this.#base = base;
    this.path = this.#writer?.path;
  }

  get head(): string | undefined {
    return this.#writer?.head;
  }

  /** records in the chain so far */
  get records(): number {
    return this.#writer?.records ?? 0;
  }

  #fail(err: unknown): void {
    this.#error = err instanceof RecorderError ? err : new RecorderError((err as Error).message);
    if (!this.#warned) {
      this.#warned = true;
      this.#log.error('recording failed', { session: this.id, error: this.#error.message, failurePolicy: this.#closed ? 'Closed' : 'Open' });
    }
  }

  /** Throws when the recorder failed and failurePolicy is Closed. */
  check(): void {
    if (this.#error !== undefined && this.#closed) throw this.#error;
  }

  /**
   * Appends a record; with `flush`, hands it to the operating system before returning
   * (write-ahead). Throws RecorderError under failurePolicy Closed when it cannot.
   */
  record(body: RecordBody, flush = false): void {
    if (this.#ended) return;
    const w = this.#writer;
    if (w !== undefined && this.#error === undefined) {
      try {
        w.append(body);
        if (flush) w.flush();
      } catch (err) {
        this.#fail(err);
      }
    } else if (this.#error !== undefined) this.#fail(this.#error);
    this.check();
  }

  /** Best effort: a record that must not throw (refusals, ends). */
  note(body: RecordBody, flush = false): void {
    try {
      this.record(body, flush);
    } catch {
      // already logged by #fail
    }
  }

  /** A cast for a channel, or undefined when recording failed (and failurePolicy is Open). */
  openCast(channel: number, header: CastHeader): ChannelCast | undefined {
    this.check();
    if (this.#base === undefined || this.#error !== undefined) return undefined;
    try {
      const writer = new AsciicastWriter(`${this.#base}.${channel}.cast`, header);
      this.record({ type: 'cast', channel, file: basename(writer.path), bytes: writer.bytes, sha256: writer.digest(), final: false }, true);
      return new ChannelCast(this, channel, writer);
    } catch (err) {
      this.#fail(err);
      this.check();
      return undefined;
    }
  }

  /** Resolves when every cast closed so far is synced to disk: the session ends after that. */
  async settled(): Promise<void> {
    while (this.#syncing.size > 0) await Promise.all([...this.#syncing]);
  }

  /** @internal used by ChannelCast */
  syncing(done: Promise<void>): void {
    this.#syncing.add(done);
    void done.then(() => this.#syncing.delete(done));
  }

  /** Records `body` as the last record and closes the log (idempotent). */
  end(body: RecordBody): void {
    if (this.#ended) return;
    this.note(body);
    this.#ended = true;
    try {
      this.#writer?.close();
    } catch (err) {
      this.#fail(err);
    }
  }

  /** @internal used by ChannelCast */
  failed(err: unknown): void {
    this.#fail(err);
  }
}

/** One channel's asciicast, checkpointed into the session's event log. */
export class ChannelCast {
  readonly #rec: SessionRecorder;
  readonly #channel: number;
  readonly #writer: AsciicastWriter;
  #lastCheckpoint = 0;
  #closed = false;

  constructor(rec: SessionRecorder, channel: number, writer: AsciicastWriter) {
    this.#rec = rec;
    this.#channel = channel;
    this.#writer = writer;
  }

  /** Records output before it is sent; throws RecorderError under failurePolicy Closed. */
  output(text: string): void {
    if (this.#closed) return;
    try {
      this.#writer.output(text);
    } catch (err) {
      this.#rec.failed(err);
      this.#rec.check();
      return;
    }
    if (this.#writer.bytes - this.#lastCheckpoint >= CHECKPOINT_BYTES) this.checkpoint();
  }

  resize(cols: number, rows: number): void {
    if (this.#closed) return;
    try {
      this.#writer.resize(cols, rows);
    } catch (err) {
      this.#rec.failed(err);
    }
  }

  /** Chains the cast's current length and hash into the event log. */
  checkpoint(flush = false): void {
    if (this.#closed) return;
    const cp = this.#writer.checkpoint(false);
    this.#lastCheckpoint = cp.bytes;
    this.#rec.note({ type: 'cast', channel: this.#channel, file: basename(this.#writer.path), bytes: cp.bytes, sha256: cp.sha256, final: false }, flush);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const cp = this.#writer.close();
    this.#rec.syncing(this.#writer.synced);
    this.#rec.note({ type: 'cast', channel: this.#channel, file: basename(this.#writer.path), bytes: cp.bytes, sha256: cp.sha256, final: true }, true);
  }
}
