/**
 * Parser of the messages a PostgreSQL client sends (the frontend side of protocol 3.0). Pure and
 * bounded: it buffers at most one message, rejects lengths above the limits before buffering
 * them, and never looks past a message's declared length. pg-protocol parses the backend side;
 * nothing maintained parses this side, hence this module.
 */
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './errors.ts';

export const PROTOCOL_3_0 = 196608;
export const PROTOCOL_3_2 = 196610;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

export type FrontendMessage =
  | { readonly type: 'SSLRequest' }
  | { readonly type: 'GSSENCRequest' }
  | { readonly type: 'CancelRequest'; readonly processId: number; readonly secretKey: Buffer }
  | { readonly type: 'StartupMessage'; readonly protocolVersion: number; readonly parameters: Readonly<Record<string, string>> }
  /**
   * `invalidUtf8`: the text's bytes are not UTF-8, so `sql` (decoded with replacement characters)
   * is not what the server would read; the session refuses such a statement.
   */
  | { readonly type: 'Query'; readonly sql: string; readonly invalidUtf8?: true }
  | { readonly type: 'Parse'; readonly name: string; readonly sql: string; readonly paramTypes: readonly number[]; readonly invalidUtf8?: true }
  | {
      readonly type: 'Bind';
      readonly portal: string;
      readonly statement: string;
      readonly paramFormats: readonly number[];
      readonly params: readonly (Buffer | null)[];
      readonly resultFormats: readonly number[];
    }
  | { readonly type: 'Describe'; readonly target: 'S' | 'P'; readonly name: string }
  | { readonly type: 'Execute'; readonly portal: string; readonly maxRows: number }
  | { readonly type: 'Close'; readonly target: 'S' | 'P'; readonly name: string }
  | { readonly type: 'Sync' }
  | { readonly type: 'Flush' }
  | { readonly type: 'Terminate' }
  | { readonly type: 'CopyData'; readonly data: Buffer }
  | { readonly type: 'CopyDone' }
  | { readonly type: 'CopyFail'; readonly message: string }
  | { readonly type: 'PasswordMessage'; readonly data: Buffer }
  | { readonly type: 'FunctionCall' };

/** Each parsed message with the exact bytes it came from, so the proxy can forward them untouched. */
export interface Framed {
  readonly message: FrontendMessage;
  readonly raw: Buffer;
}

export interface FrontendLimits {
  /** largest startup packet (PostgreSQL allows 10000) */
  readonly maxStartup: number;
  /** largest typed message, e.g. a huge Query or CopyData */
  readonly maxMessage: number;
}

export const DEFAULT_LIMITS: FrontendLimits = { maxStartup: 10_000, maxMessage: 64 * 1024 * 1024 };

/** Reads fields of one message body; every read is bounds-checked. */
class Reader {
  #pos = 0;
  readonly #buf: Buffer;
  readonly #what: string;

  constructor(buf: Buffer, what: string) {
    this.#buf = buf;
    this.#what = what;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new ProtocolError(`${this.#what} message is truncated`);
  }

  int16(): number {
    this.#need(2);
    const v = this.#buf.readInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  int32(): number {
    this.#need(4);
    const v = this.#buf.readInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  byte(): number {
    this.#need(1);
    const v = this.#buf.readUInt8(this.#pos);
    this.#pos += 1;
    return v;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolError(`${this.#what} message has a negative length`);
    this.#need(n);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  cstring(): string {
    return this.text().value;
  }

  /** A C string and whether its bytes are valid UTF-8. */
  text(): { value: string; utf8: boolean } {
    const end = this.#buf.indexOf(0, this.#pos);
    if (end < 0) throw new ProtocolError(`${this.#what} message has an unterminated string`);
    const bytes = this.#buf.subarray(this.#pos, end);
    this.#pos = end + 1;
    return { value: bytes.toString('utf8'), utf8: isUtf8(bytes) };
  }

  rest(): Buffer {
    const v = this.#buf.subarray(this.#pos);
    this.#pos = this.#buf.length;
    return v;
  }

  end(): void {
    if (this.#pos !== this.#buf.length) throw new ProtocolError(`${this.#what} message has ${this.#buf.length - this.#pos} trailing bytes`);
  }

  /** A count of items: Int16 on the wire, read unsigned as PostgreSQL does (pq_getmsgint(msg, 2)), 0 to 65535. */
  count(): number {
    this.#need(2);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }
}

function target(byte: number, what: string): 'S' | 'P' {
  if (byte === 0x53) return 'S';
  if (byte === 0x50) return 'P';
  throw new ProtocolError(`${what} message has an invalid target '${String.fromCharCode(byte)}'`);
}

function parseStartup(body: Buffer): FrontendMessage {
  const r = new Reader(body, 'startup');
  const code = r.int32();
  if (code === SSL_REQUEST) {
    r.end();
    return { type: 'SSLRequest' };
  }
  if (code === GSSENC_REQUEST) {
    r.end();
    return { type: 'GSSENCRequest' };
  }
  if (code === CANCEL_REQUEST) {
    const processId = r.int32();
    const secretKey = Buffer.from(r.rest());
    if (secretKey.length < 4 || secretKey.length > 256) throw new ProtocolError('CancelRequest has an invalid secret key length');
    return { type: 'CancelRequest', processId, secretKey };
  }
  if (code >> 16 !== 3) throw new ProtocolError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0 to 3.2`);
  const parameters: Record<string, string> = {};
  for (;;) {
    const key = r.cstring();
    if (key === '') break;
    const value = r.cstring();
    parameters[key] = value; // a repeated parameter: the last one wins, as in PostgreSQL
  }
  r.end();
  if (parameters['user'] === undefined) throw new ProtocolError('no PostgreSQL user name specified in startup packet');
  return { type: 'StartupMessage', protocolVersion: code, parameters };
}

const NAMES: Readonly<Record<number, string>> = {
  0x51: 'Query',
  0x50: 'Parse',
  0x42: 'Bind',
  0x44: 'Describe',
  0x45: 'Execute',
  0x43: 'Close',
  0x53: 'Sync',
  0x48: 'Flush',
  0x58: 'Terminate',
  0x64: 'CopyData',
  0x63: 'CopyDone',
  0x66: 'CopyFail',
  0x70: 'PasswordMessage',
  0x46: 'FunctionCall',
};

function parseTyped(type: number, body: Buffer): FrontendMessage {
  const what = NAMES[type];
  if (what === undefined) throw new ProtocolError(`invalid frontend message type ${type} ('${String.fromCharCode(type)}')`);
  const r = new Reader(body, what);
  let m: FrontendMessage;
  switch (type) {
    case 0x51: {
      const sql = r.text();
      m = sql.utf8 ? { type: 'Query', sql: sql.value } : { type: 'Query', sql: sql.value, invalidUtf8: true };
      break;
    }
    case 0x50: {
      const name = r.cstring();
      const sql = r.text();
      const n = r.count();
      const paramTypes: number[] = [];
      for (let i = 0; i < n; i++) paramTypes.push(r.int32() >>> 0);
      m = sql.utf8 ? { type: 'Parse', name, sql: sql.value, paramTypes } : { type: 'Parse', name, sql: sql.value, paramTypes, invalidUtf8: true };
      break;
    }
    case 0x42: {
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats: number[] = [];
      for (let i = 0, n = r.count(); i < n; i++) paramFormats.push(r.int16());
      const params: (Buffer | null)[] = [];
      for (let i = 0, n = r.count(); i < n; i++) {
        const len = r.int32();
        params.push(len === -1 ? null : r.bytes(len));
      }
      const resultFormats: number[] = [];
      for (let i = 0, n = r.count(); i < n; i++) resultFormats.push(r.int16());
      m = { type: 'Bind', portal, statement, paramFormats, params, resultFormats };
      break;
    }
    case 0x44:
      m = { type: 'Describe', target: target(r.byte(), what), name: r.cstring() };
      break;
    case 0x45:
      m = { type: 'Execute', portal: r.cstring(), maxRows: r.int32() };
      break;
    case 0x43:
      m = { type: 'Close', target: target(r.byte(), what), name: r.cstring() };
      break;
    case 0x53:
      m = { type: 'Sync' };
      break;
    case 0x48:
      m = { type: 'Flush' };
      break;
    case 0x58:
      m = { type: 'Terminate' };
      break;
    case 0x64:
      m = { type: 'CopyData', data: r.rest() };
      break;
    case 0x63:
      m = { type: 'CopyDone' };
      break;
    case 0x66:
      m = { type: 'CopyFail', message: r.cstring() };
      break;
    case 0x70:
      m = { type: 'PasswordMessage', data: r.rest() };
      break;
    default:
      r.rest();
      m = { type: 'FunctionCall' };
  }
  r.end();
  return m;
}

/**
 * Incremental parser: feed bytes as they arrive, get whole messages back. The first message of
 * a connection is untyped (startup, SSL/GSS request, cancel); after an SSL or GSS request is
 * declined the client sends another untyped startup packet.
 */
export class FrontendParser {
  readonly #limits: FrontendLimits;
  #startup = true;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(limits: FrontendLimits = DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /** true until the StartupMessage has been parsed */
  get inStartup(): boolean {
    return this.#startup;
  }

  /** Bytes received and not yet part of a whole message. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): Framed[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Framed[] = [];
    for (;;) {
      const framed = this.#next();
      if (framed === undefined) return out;
      out.push(framed);
    }
  }

  #peek(n: number): Buffer | undefined {
    if (this.#buffered < n) return undefined;
    if ((this.#chunks[0]?.length ?? 0) < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0];
  }

  #take(n: number): Buffer {
    const head = this.#peek(n);
    if (head === undefined) throw new Error('take beyond buffered bytes');
    const raw = head.subarray(0, n);
    if (head.length === n) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#buffered -= n;
    return raw;
  }

  #next(): Framed | undefined {
    if (this.#startup) {
      const head = this.#peek(4);
      if (head === undefined) return undefined;
      const len = head.readInt32BE(0);
      if (len < 8 || len > this.#limits.maxStartup) throw new ProtocolError(`invalid length of startup packet: ${len}`);
      if (this.#peek(len) === undefined) return undefined;
      const raw = this.#take(len);
      const message = parseStartup(raw.subarray(4));
      if (message.type === 'StartupMessage') this.#startup = false;
      return { message, raw };
    }
    const head = this.#peek(5);
    if (head === undefined) return undefined;
    const type = head.readUInt8(0);
    const len = head.readInt32BE(1);
    if (NAMES[type] === undefined) throw new ProtocolError(`invalid frontend message type ${type} ('${String.fromCharCode(type)}')`);
    if (len < 4) throw new ProtocolError(`invalid message length ${len} for ${NAMES[type] ?? '?'}`);
    if (len > this.#limits.maxMessage) throw new ProtocolError(`${NAMES[type] ?? '?'} message of ${len} bytes exceeds the limit of ${this.#limits.maxMessage}`, '54000');
    if (this.#peek(len + 1) === undefined) return undefined;
    const raw = this.#take(len + 1);
    return { message: parseTyped(type, raw.subarray(5)), raw };
  }
}
