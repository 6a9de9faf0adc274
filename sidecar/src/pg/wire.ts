/**
 * Backend message framing and the few backend/frontend message builders the session needs
 * that pg-protocol's serializer does not give as raw bytes. Pure.
 */
import { ProtocolError } from './errors.ts';

/** Largest backend message the proxy accepts from upstream (a huge DataRow). */
export const MAX_BACKEND_MESSAGE = 1024 * 1024 * 1024;

/**
 * Splits a byte stream into whole backend messages (type byte + int32 length). Keeps at most one
 * partial message between pushes.
 */
export class BackendFramer {
  #carry: Buffer | undefined;

  /** Calls `onMessage(type, buf, start, end)` for each whole message; `buf.subarray(start, end)` is the message. */
  push(chunk: Buffer, onMessage: (type: number, buf: Buffer, start: number, end: number) => void): void {
    let buf = chunk;
    if (this.#carry !== undefined) {
      buf = Buffer.concat([this.#carry, chunk]);
      this.#carry = undefined;
    }
    let pos = 0;
    const n = buf.length;
    while (n - pos >= 5) {
      const len = buf.readUInt32BE(pos + 1);
      if (len < 4 || len > MAX_BACKEND_MESSAGE) throw new ProtocolError(`upstream sent a message of length ${len}`);
      const end = pos + 1 + len;
      if (end > n) break;
      onMessage(buf[pos] ?? 0, buf, pos, end);
      pos = end;
    }
    // a copy: the chunk may be a reused read buffer
    if (pos < n) this.#carry = Buffer.from(buf.subarray(pos));
  }

  get pending(): number {
    return this.#carry?.length ?? 0;
  }
}

/** A frontend message with a C-string body, e.g. Query or a SASL response. */
export function frontendMessage(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

export function queryMessage(sql: string): Buffer {
  return frontendMessage('Q', Buffer.from(`${sql}\0`, 'utf8'));
}

/** Parse of `sql` under `name` with no parameter types. */
export function parseMessage(name: string, sql: string): Buffer {
  return frontendMessage('P', Buffer.concat([Buffer.from(`${name}\0${sql}\0`, 'utf8'), Buffer.from([0, 0])]));
}

export function startupMessage(protocolVersion: number, parameters: Readonly<Record<string, string>>): Buffer {
  const body = Buffer.from(`${Object.entries(parameters).map(([k, v]) => `${k}\0${v}\0`).join('')}\0`, 'utf8');
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(protocolVersion, 4);
  body.copy(out, 8);
  return out;
}

export function cancelRequestMessage(processId: number, secretKey: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + secretKey.length);
  out.writeInt32BE(12 + secretKey.length, 0);
  out.writeInt32BE(80877102, 4);
  out.writeInt32BE(processId, 8);
  secretKey.copy(out, 12);
  return out;
}

export interface NoticeFields {
  /** field type byte → value, in wire order */
  readonly fields: readonly (readonly [number, string])[];
}

/** Reads the fields of an ErrorResponse/NoticeResponse (whole message bytes). */
export function readNoticeFields(msg: Buffer): NoticeFields {
  const fields: [number, string][] = [];
  let pos = 5;
  while (pos < msg.length) {
    const code = msg[pos] ?? 0;
    if (code === 0) break;
    const nul = msg.indexOf(0, pos + 1);
    if (nul < 0) throw new ProtocolError('upstream sent an unterminated error field');
    fields.push([code, msg.toString('utf8', pos + 1, nul)]);
    pos = nul + 1;
  }
  return { fields };
}

export function writeNoticeFields(type: 'E' | 'N', f: NoticeFields): Buffer {
  const body = Buffer.from(`${f.fields.map(([c, v]) => `${String.fromCharCode(c)}${v.replace(/\0/g, '')}\0`).join('')}\0`, 'utf8');
  return frontendMessage(type, body);
}

export function noticeField(f: NoticeFields, code: string): string | undefined {
  const c = code.charCodeAt(0);
  return f.fields.find(([k]) => k === c)?.[1];
}
