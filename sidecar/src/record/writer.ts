/**
 * Appends sealed records to a recording file. `append` seals and queues; `flush` hands the
 * queued lines to the operating system in one write. The session calls `flush` before it
 * forwards a statement: write-ahead without an fsync per statement. A write that fails makes
 * the recorder failed for good: with failurePolicy Closed the session refuses everything.
 */
import { closeSync, openSync, writeSync, fsyncSync } from 'node:fs';
import { GENESIS, seal, type RecordBody } from './chain.ts';

// The ISO time of the current millisecond, made once per millisecond (records come in bursts).
let clockMs = -1;
let clockIso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== clockMs) {
    clockMs = ms;
    clockIso = new Date(ms).toISOString();
  }
  return clockIso;
}

export class RecorderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecorderError';
  }
}

export class RecordingWriter {
  readonly path: string;
  #fd: number | undefined;
  #seq = 0;
  #head = GENESIS;
  #pending: string[] = [];
  #failed: Error | undefined;

  constructor(path: string) {
    this.path = path;
    try {
      this.#fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      throw new RecorderError(`cannot create recording ${path}: ${(err as Error).message}`);
    }
  }

  get head(): string {
    return this.#head;
  }

  get records(): number {
    return this.#seq;
  }

  get failed(): Error | undefined {
    return this.#failed;
  }

  /** Seals the record into the chain and queues it; returns its hash. */
  append(body: RecordBody): string {
    if (this.#failed !== undefined) throw new RecorderError(`recorder failed: ${this.#failed.message}`);
    this.#seq += 1;
    const sealed = seal(body, this.#seq, this.#head, 'time' in body ? undefined : isoNow());
    this.#head = sealed.hash;
    this.#pending.push(sealed.line);
    return sealed.hash;
  }

  /** Writes every queued record with one system call. Throws RecorderError when the write fails. */
  flush(): void {
    if (this.#failed !== undefined) throw new RecorderError(`recorder failed: ${this.#failed.message}`);
    if (this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? `${this.#pending[0] ?? ''}\n` : `${this.#pending.join('\n')}\n`;
    this.#pending = [];
    const fd = this.#fd;
    if (fd === undefined) throw new RecorderError('recording is closed');
    try {
      // a string goes to write(2) without a Buffer of ours; a short write (a full disk, a
      // signal) continues from the bytes not written
      const written = writeSync(fd, text);
      if (written < Buffer.byteLength(text)) {
        const data = Buffer.from(text);
        for (let off = written; off < data.length; ) off += writeSync(fd, data, off);
      }
    } catch (err) {
      this.#failed = err as Error;
      throw new RecorderError(`cannot write recording ${this.path}: ${(err as Error).message}`);
    }
  }

  /** Flushes, syncs to disk and closes. */
  close(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    try {
      this.flush();
      fsyncSync(fd);
    } finally {
      closeSync(fd);
      this.#fd = undefined;
    }
  }
}
