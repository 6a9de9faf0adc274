/**
 * Appends sealed records to a recording file. `append` seals and queues; `flush` hands the
 * queued lines to the operating system. The session calls `flush` before it forwards a
 * statement: write-ahead without an fsync per statement. A flush that fails makes the recorder
 * failed for good: with failurePolicy Closed the session refuses everything.
 *
 * Where the native addon is built, the file is written through a shared memory mapping
 * (@airlock/native openMappedFile): a flush copies the lines into the page cache, which the
 * kernel owns and writes back even if the process dies right after, so a record is handed to
 * the operating system without a system call per flush. Space is reserved ahead (a full disk
 * fails the flush, as a failed write(2) would); until the recording is closed the file ends
 * with zero bytes, which readers ignore (see chain.ts). Without the addon each flush is one
 * write(2).
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { openMappedFile } from '@airlock/native';
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

/** Where flushed text goes: the mapped file, or write(2) on a descriptor. */
interface Sink {
  write(text: string): void;
  close(): void;
}

function descriptorSink(path: string): Sink {
  const fd = openSync(path, 'wx', 0o600);
  return {
    write(text) {
      // a string goes to write(2) without a Buffer of ours; a short write (a full disk, a
      // signal) continues from the bytes not written
      const written = writeSync(fd, text);
      if (written < Buffer.byteLength(text)) {
        const data = Buffer.from(text);
        for (let off = written; off < data.length; ) off += writeSync(fd, data, off);
      }
    },
    close() {
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
  };
}

export interface RecordingWriterOptions {
  /** write through a shared mapping when the addon is built (default true); false: write(2) */
  readonly mapped?: boolean;
}

export class RecordingWriter {
  readonly path: string;
  #sink: Sink | undefined;
  #seq = 0;
  #head = GENESIS;
  #pending: string[] = [];
  #failed: Error | undefined;

  constructor(path: string, options: RecordingWriterOptions = {}) {
    this.path = path;
    try {
      const mapped = options.mapped !== false ? openMappedFile(path) : undefined;
      this.#sink =
        mapped === undefined
          ? descriptorSink(path)
          : {
              write: (text) => {
                mapped.append(text);
              },
              close: () => {
                mapped.close();
              },
            };
    } catch (err) {
      const message = (err as Error).message;
      throw new RecorderError(message.startsWith('cannot create recording') ? message : `cannot create recording ${path}: ${message}`);
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

  /** Hands every queued record to the operating system at once. Throws RecorderError when that fails. */
  flush(): void {
    if (this.#failed !== undefined) throw new RecorderError(`recorder failed: ${this.#failed.message}`);
    if (this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? `${this.#pending[0] ?? ''}\n` : `${this.#pending.join('\n')}\n`;
    this.#pending = [];
    const sink = this.#sink;
    if (sink === undefined) throw new RecorderError('recording is closed');
    try {
      sink.write(text);
    } catch (err) {
      this.#failed = err as Error;
      throw new RecorderError(`cannot write recording ${this.path}: ${(err as Error).message}`);
    }
  }

  /** Flushes, syncs to disk and closes. */
  close(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    try {
      this.flush();
    } finally {
      this.#sink = undefined;
      sink.close();
    }
  }
}
