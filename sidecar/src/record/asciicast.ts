/**
 * Terminal recordings in asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/), the
 * format `asciinema play` replays: a JSON header line, then one JSON array per event
 * `[seconds, "o", text]` (output, as the agent saw it: masked) or `[seconds, "r", "COLSxROWS"]`
 * (resize). The writer keeps the file's byte length and a running SHA-256 so the session's
 * hash-chained event log can carry checkpoints of it (`cast` records): an edit or a truncation
 * of the .cast then breaks verification. `castLine`/`verifyCast` are pure.
 */
import { createHash, type Hash } from 'node:crypto';
import { close, fsync, openSync, writeSync } from 'node:fs';
import type { CastCheckpoint } from '@airlock/api';
import { RecorderError } from './writer.ts';

export interface CastHeader {
  readonly width: number;
  readonly height: number;
  /** unix seconds */
  readonly timestamp: number;
  readonly title?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** The header line (without newline). */
export function castHeaderLine(h: CastHeader): string {
  return JSON.stringify({
    version: 2,
    width: h.width,
    height: h.height,
    timestamp: h.timestamp,
    ...(h.title !== undefined ? { title: h.title } : {}),
    ...(h.env !== undefined ? { env: h.env } : {}),
  });
}

/**
 * One event line (without newline). Text is made well-formed (lone surrogates, i.e. bytes
 * that were not UTF-8, become U+FFFD): players decode the file as UTF-8.
 */
export function castEventLine(seconds: number, code: EventCode, data: string): string {
  return `${eventHead(seconds, code)}${eventJson(data)}]`;
}

type EventCode = 'o' | 'i' | 'r' | 'm';

/** `[seconds, "code", ` of an event line. */
function eventHead(seconds: number, code: EventCode): string {
  return `[${(Math.round(seconds * 1e6) / 1e6).toString()}, "${code}", `;
}

/** The event's text as a JSON string, made well-formed first (a string that is, the common case, is not copied). */
function eventJson(data: string): string {
  return JSON.stringify(data.isWellFormed() ? data : data.toWellFormed());
}

/**
 * Event lines are encoded into one buffer reused by every writer of the process (writes are
 * synchronous), then hashed and written from it: no Buffer per event, which at bulk rates is
 * garbage the collector would otherwise chase. An event line is written in its parts (head, JSON
 * text, `]` and newline) rather than concatenated first: no string the size of the output is made
 * and flattened per event. Lines too long for it get a buffer of their own.
 */
const SHARED_MAX = 1024 * 1024;
let shared = Buffer.allocUnsafe(64 * 1024);

/** The shared buffer when it can hold `need` bytes (grown up to SHARED_MAX), else undefined. */
function scratch(need: number): Buffer | undefined {
  if (need > SHARED_MAX) return undefined;
  if (shared.length < need) shared = Buffer.allocUnsafe(Math.min(SHARED_MAX, Math.max(need, shared.length * 2)));
  return shared;
}

function encodeLine(text: string): Buffer {
  // at most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units)
  const buf = scratch(text.length * 3);
  return buf === undefined ? Buffer.from(text, 'utf8') : buf.subarray(0, buf.write(text, 0, 'utf8'));
}

/** The bytes of `${head}${json}]\n` (head is ASCII). */
function encodeEvent(head: string, json: string): Buffer {
  const buf = scratch(head.length + json.length * 3 + 2);
  if (buf === undefined) return Buffer.from(`${head}${json}]\n`, 'utf8');
  let n = buf.write(head, 0, 'latin1');
  n += buf.write(json, n, 'utf8');
  buf[n++] = 0x5d; // ]
  buf[n++] = 0x0a;
  return buf.subarray(0, n);
}

export class AsciicastWriter {
  readonly path: string;
  readonly #start: number;
  readonly #now: () => number;
  readonly #hash: Hash = createHash('sha256');
  #fd: number | undefined;
  #bytes = 0;
  #failed: Error | undefined;
  #synced: Promise<void> = Promise.resolve();

  /** `now` is in milliseconds (monotonic); event times are relative to construction. */
  constructor(path: string, header: CastHeader, now: () => number = () => performance.now()) {
    this.path = path;
    this.#now = now;
    this.#start = now();
    try {
      this.#fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      throw new RecorderError(`cannot create recording ${path}: ${(err as Error).message}`);
    }
    this.#write(`${castHeaderLine(header)}\n`);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get failed(): Error | undefined {
    return this.#failed;
  }

  /** `sha256:` hex of everything written so far. */
  digest(): string {
    return `sha256:${this.#hash.copy().digest('hex')}`;
  }

  checkpoint(final = false): CastCheckpoint {
    return { bytes: this.#bytes, sha256: this.digest(), final };
  }

  #write(text: string): void {
    this.#writeBytes(this.#open(), encodeLine(text));
  }

  #event(code: EventCode, data: string): void {
    const fd = this.#open();
    this.#writeBytes(fd, encodeEvent(eventHead(this.#seconds(), code), eventJson(data)));
  }

  /** The descriptor to write to; throws when the writer failed or is closed. */
  #open(): number {
    if (this.#failed !== undefined) throw new RecorderError(`recorder failed: ${this.#failed.message}`);
    const fd = this.#fd;
    if (fd === undefined) throw new RecorderError(`recording ${this.path} is closed`);
    return fd;
  }

  #writeBytes(fd: number, data: Buffer): void {
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off);
    } catch (err) {
      this.#failed = err as Error;
      throw new RecorderError(`cannot write recording ${this.path}: ${(err as Error).message}`);
    }
    this.#hash.update(data);
    this.#bytes += data.length;
  }

  #seconds(): number {
    return (this.#now() - this.#start) / 1000;
  }

  /** Records output as the agent sees it. Throws RecorderError when the write fails. */
  output(text: string): void {
    if (text !== '') this.#event('o', text);
  }

  resize(cols: number, rows: number): void {
    this.#event('r', `${cols}x${rows}`);
  }

  /**
   * Ends the cast and returns its final checkpoint (everything is written already). The file is
   * synced to disk and closed in the background, so the agent does not wait for the disk (an
   * fsync of a large cast takes a good part of a second); `synced` resolves when that is done.
   */
  close(): CastCheckpoint {
    const fd = this.#fd;
    if (fd !== undefined) {
      this.#fd = undefined;
      // a failed fsync changes nothing the checkpoint could say: the data is written
      this.#synced = new Promise((resolve) => {
        fsync(fd, () => {
          close(fd, () => {
            resolve();
          });
        });
      });
    }
    return this.checkpoint(true);
  }

  /** Resolves once a closed cast is synced to disk and its descriptor closed. */
  get synced(): Promise<void> {
    return this.#synced;
  }
}
