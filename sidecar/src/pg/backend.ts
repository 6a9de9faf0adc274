/**
 * Serializer of the backend messages Airlock itself writes to the agent: refusals, notices,
 * the authentication handshake it terminates, and rewritten DataRows. Pure; the bytes are
 * checked against pg-protocol's parser in the tests.
 */

export interface Notice {
  /** S/V: ERROR, FATAL, NOTICE, WARNING, … */
  readonly severity: string;
  /** C: SQLSTATE, e.g. 42501 insufficient_privilege */
  readonly code: string;
  /** M */
  readonly message: string;
  /** D */
  readonly detail?: string;
  /** H */
  readonly hint?: string;
}

function frame(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

function cstr(s: string): Buffer {
  // A NUL inside a field would cut it short on the client: drop NULs.
  return Buffer.from(`${s.replace(/\0/g, '')}\0`, 'utf8');
}

function fields(n: Notice): Buffer {
  const parts: Buffer[] = [
    Buffer.from('S'),
    cstr(n.severity),
    Buffer.from('V'),
    cstr(n.severity),
    Buffer.from('C'),
    cstr(n.code),
    Buffer.from('M'),
    cstr(n.message),
  ];
  if (n.detail !== undefined) parts.push(Buffer.from('D'), cstr(n.detail));
  if (n.hint !== undefined) parts.push(Buffer.from('H'), cstr(n.hint));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function errorResponse(n: Notice): Buffer {
  return frame('E', fields(n));
}

export function noticeResponse(n: Notice): Buffer {
  return frame('N', fields(n));
}

/** Transaction status: I idle, T in a transaction block, E in a failed transaction block. */
export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return frame('Z', Buffer.from(status, 'latin1'));
}

export function authenticationOk(): Buffer {
  return frame('R', Buffer.from([0, 0, 0, 0]));
}

/** Asks the client for a cleartext password (AuthenticationCleartextPassword). */
export function authenticationCleartext(): Buffer {
  return frame('R', Buffer.from([0, 0, 0, 3]));
}

export function parameterStatus(name: string, value: string): Buffer {
  return frame('S', Buffer.concat([cstr(name), cstr(value)]));
}

export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeInt32BE(processId);
  return frame('K', Buffer.concat([head, secretKey]));
}

/** The single byte that declines an SSLRequest or GSSENCRequest. */
export const DECLINE_ENCRYPTION = Buffer.from('N', 'latin1');

/** A DataRow from column values (null for SQL NULL). */
export function dataRow(values: readonly (Buffer | null)[]): Buffer {
  let size = 2;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  const body = Buffer.allocUnsafe(size);
  body.writeInt16BE(values.length, 0);
  let pos = 2;
  for (const v of values) {
    if (v === null) {
      body.writeInt32BE(-1, pos);
      pos += 4;
    } else {
      body.writeInt32BE(v.length, pos);
      v.copy(body, pos + 4);
      pos += 4 + v.length;
    }
  }
  return frame('D', body);
}

export function commandComplete(tag: string): Buffer {
  return frame('C', cstr(tag));
}

export function emptyQueryResponse(): Buffer {
  return frame('I', Buffer.alloc(0));
}
