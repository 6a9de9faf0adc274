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
import { openMappedFile, type MappedFile } from '@airlock/native';
import { GENESIS, bodyJson, sealJson, type RecordBody } from '@airlock/api';

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

/**
 * Where records go. The mapped file seals and copies each record into the page cache as it is
 * appended (one native call: already handed to the OS, nothing to flush); the descriptor queues
 * records sealed in JavaScript and writes them at flush, with one write(2).
 */
interface Sink {
  /** seals and stores (or queues) the record (`json`: its body's JSON text); returns its hash */
  append(json: string, seq: number, prev: string, time: string | undefined): string;
  flush(): void;
  close(): void;
}

function descriptorSink(path: string): Sink {
  const fd = openSync(path, 'wx', 0o600);
  let pending: string[] = [];
  return {
    append(json, seq, prev, time) {
      const sealed = sealJson(json, seq, prev, time);
      pending.push(sealed.line);
      return sealed.hash;
    },
    flush() {
      if (pending.length === 0) return;
      const text = pending.length === 1 ? `${pending[0] ?? ''}\n` : `${pending.join('\n')}\n`;
      pending = [];
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

function mappedSink(file: MappedFile): Sink {
  return {
    append: (json, seq, prev, time) => file.appendRecord(seq, time, json, prev),
    flush: () => undefined,
    close: () => {
      file.close();
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
  #failed: Error | undefined;

  constructor(path: string, options: RecordingWriterOptions = {}) {
    this.path = path;
    try {
      const mapped = options.mapped !== false ? openMappedFile(path) : undefined;
      this.#sink = mapped === undefined ? descriptorSink(path) : mappedSink(mapped);
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

  /**
   * Seals the record into the chain and stores it (mapped file: in the page cache already) or
   * queues it (write(2): until flush); returns its hash. A failure to store it makes the
   * recorder failed: `flush` then throws, and so does every later append.
   */
  append(body: RecordBody): string {
    return this.appendJson(bodyJson(body), 'time' in body);
  }

  /**
   * append() of a body already serialised: `json` is the JSON text of an object that has no
   * seq, prev or hash field (the hot paths write theirs by hand); `hasTime`: it has a time field.
   */
  appendJson(json: string, hasTime = false): string {
    if (this.#failed !== undefined) throw new RecorderError(`recorder failed: ${this.#failed.message}`);
    const sink = this.#sink;
    if (sink === undefined) {
      this.#failed = new Error('recording is closed');
      return this.#head;
    }
    try {
      this.#head = sink.append(json, this.#seq + 1, this.#head, hasTime ? undefined : isoNow());
      this.#seq += 1;
    } catch (err) {
      this.#failed = err as Error;
    }
    return this.#head;
  }

  /** Hands every record appended so far to the operating system. Throws RecorderError when that fails. */
  flush(): void {
    if (this.#failed !== undefined) throw new RecorderError(`cannot write recording ${this.path}: ${this.#failed.message}`);
    const sink = this.#sink;
    if (sink === undefined) throw new RecorderError('recording is closed');
    try {
      sink.flush();
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
