/**
 * Opens an authenticated connection to the upstream PostgreSQL: TCP, TLS per the connection's
 * mode, the startup packet with Airlock's user and database, and SCRAM-SHA-256 / MD5 / cleartext
 * authentication with the Secret's password. Returns the socket paused, with every byte the
 * server sent after AuthenticationOk (ParameterStatus, BackendKeyData, ReadyForQuery, …).
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { UpstreamConfig } from '../config.ts';
import { SidecarError } from '../errors.ts';
import { ScramClient, md5Password } from './scram.ts';
import { BackendFramer, frontendMessage, noticeField, readNoticeFields, startupMessage } from './wire.ts';

export interface UpstreamConnection {
  readonly socket: Socket | TLSSocket;
  readonly processId: number;
  readonly secretKey: Buffer;
  /** raw messages after AuthenticationOk, up to and including the first ReadyForQuery, plus anything after */
  readonly greeting: Buffer;
  /**
   * Where the bytes the server sends go from now on (instead of 'data' events). With
   * `reuseReadBuffer`, a chunk is valid only during the call: the next read overwrites it (copy
   * what you keep, and keep the socket paused while a write of it is still queued).
   */
  read(onChunk: (chunk: Buffer) => void): void;
}

export interface ConnectOptions {
  readonly protocolVersion?: number;
  /** startup parameters passed through from the agent (already filtered) */
  readonly parameters?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /**
   * Plain TCP only: read into one buffer of this connection's, reused for every read (no
   * allocation and no stream machinery per read; see UpstreamConnection.read).
   */
  readonly reuseReadBuffer?: boolean;
}

/** Size of a connection's reused read buffer (what libuv reads at most at once anyway). */
const READ_BUFFER = 64 * 1024;

function where(c: UpstreamConfig): string {
  return `${c.host}:${c.port}/${c.database ?? ''}`;
}

/** A TCP connection; with `onChunk`, its reads go there from one reused buffer (no 'data' events). */
function tcp(c: UpstreamConfig, timeoutMs: number, onChunk?: (chunk: Buffer) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s =
      onChunk === undefined
        ? netConnect({ host: c.host, port: c.port, noDelay: true })
        : netConnect({
            host: c.host,
            port: c.port,
            noDelay: true,
            onread: {
              buffer: Buffer.allocUnsafe(READ_BUFFER),
              callback: (n: number, buf: Uint8Array) => {
                onChunk(Buffer.from(buf.buffer, buf.byteOffset, n));
                return true; // false would pause the socket
              },
            },
          });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new SidecarError('UpstreamUnavailable', `cannot reach ${where(c)}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(new SidecarError('UpstreamUnavailable', `cannot reach ${where(c)}: ${err.message}`));
    });
  });
}

function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length >= n) {
        cleanup();
        if (got.length > n) s.unshift(got.subarray(n));
        resolve(got.subarray(0, n));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('connection closed'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onError);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
  });
}

async function startTls(c: UpstreamConfig, raw: Socket): Promise<TLSSocket> {
  const req = Buffer.alloc(8);
  req.writeInt32BE(8, 0);
  req.writeInt32BE(80877103, 4);
  raw.write(req);
  let answer: Buffer;
  try {
    answer = await readBytes(raw, 1);
  } catch (err) {
    raw.destroy();
    throw new SidecarError('UpstreamTls', `TLS to ${where(c)} failed: ${(err as Error).message}`);
  }
  if (answer[0] !== 0x53) {
    raw.destroy();
    throw new SidecarError('UpstreamTls', `${where(c)} does not accept TLS, and the connection's tls.mode is ${c.tls.mode}`);
  }
  const verify = c.tls.mode === 'verify-full';
  const name = c.tls.serverName ?? c.host;
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: raw,
      rejectUnauthorized: verify,
      ...(c.tls.ca !== undefined ? { ca: c.tls.ca } : {}),
      ...(isIP(name) === 0 ? { servername: name } : {}),
      checkServerIdentity: (_host, cert) => (verify ? checkServerIdentity(name, cert) : undefined),
    });
    s.once('secureConnect', () => {
      s.removeAllListeners('error');
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err: Error) => {
      raw.destroy();
      reject(new SidecarError('UpstreamTls', `TLS to ${where(c)} failed (${c.tls.mode}): ${err.message}`));
    });
  });
}

/** Parses one whole backend message with pg-protocol (on a copy: its parser compacts the buffers it is given). */
function parseOne(parser: Parser, msg: Buffer): BackendMessage {
  let out: BackendMessage | undefined;
  parser.parse(Buffer.from(msg), (m) => {
    out = m;
  });
  if (out === undefined) throw new SidecarError('UpstreamUnavailable', 'upstream sent an unreadable message during login');
  return out;
}

export async function connectUpstream(c: UpstreamConfig, options: ConnectOptions = {}): Promise<UpstreamConnection> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  // every read goes to `reader`: the login's handler first, then whoever calls read()
  let reader: (chunk: Buffer) => void = () => undefined;
  const reuse = options.reuseReadBuffer === true && c.tls.mode === 'disable';
  const raw = await tcp(
    c,
    timeoutMs,
    reuse
      ? (chunk) => {
          reader(chunk);
        }
      : undefined,
  );
  const socket: Socket | TLSSocket = c.tls.mode === 'disable' ? raw : await startTls(c, raw);
  const user = c.credentials.username;
  const password = c.credentials.password ?? '';
  socket.write(startupMessage(options.protocolVersion ?? 196608, { ...options.parameters, user, database: c.database ?? user }));

  return new Promise<UpstreamConnection>((resolve, reject) => {
    const framer = new BackendFramer();
    const parser = new Parser();
    let scram: ScramClient | undefined;
    let authenticated = false;
    let processId = 0;
    let secretKey = Buffer.alloc(0);
    const greeting: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      fail(new SidecarError('UpstreamUnavailable', `login to ${where(c)} did not complete in ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      if (reuse) reader = () => undefined;
      else socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
    };
    const fail = (err: SidecarError): void => {
      if (settled) return;
      finish();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => {
      fail(new SidecarError('UpstreamUnavailable', `connection to ${where(c)} failed during login: ${err.message}`));
    };
    const onClose = (): void => {
      fail(new SidecarError('UpstreamUnavailable', `${where(c)} closed the connection during login`));
    };
    const onMessage = (type: number, buf: Buffer, start: number, end: number): void => {
      if (settled) return;
      const msg = buf.subarray(start, end);
      if (authenticated) {
        greeting.push(Buffer.from(msg));
        if (type === 0x4b /* K */ && msg.length >= 13) {
          processId = msg.readInt32BE(5);
          secretKey = Buffer.from(msg.subarray(9));
        }
        if (type === 0x5a /* Z */) {
          finish();
          const read = (onChunk: (chunk: Buffer) => void): void => {
            if (reuse) reader = onChunk;
            else socket.on('data', onChunk);
          };
          resolve({ socket, processId, secretKey, greeting: Buffer.concat(greeting), read });
        }
        if (type === 0x45 /* E */) {
          const f = readNoticeFields(msg);
          fail(new SidecarError('UpstreamUnavailable', `${where(c)} refused the session: ${noticeField(f, 'M') ?? 'error'}`));
        }
        return;
      }
      if (type === 0x45 /* E */) {
        const f = readNoticeFields(msg);
        const code = noticeField(f, 'C') ?? '';
        const text = noticeField(f, 'M') ?? 'login failed';
        const err = code.startsWith('28') ? 'UpstreamAuthFailed' : 'UpstreamUnavailable';
        fail(new SidecarError(err, `upstream login as "${user}" to ${where(c)} failed: ${text.split(password).join('***')} (SQLSTATE ${code})`));
        return;
      }
      if (type === 0x76 /* v NegotiateProtocolVersion */) {
        greeting.push(Buffer.from(msg));
        return;
      }
      if (type === 0x4e /* N */) return;
      if (type !== 0x52 /* R */) {
        fail(new SidecarError('UpstreamUnavailable', `${where(c)} sent "${String.fromCharCode(type)}" during login`));
        return;
      }
      const m = parseOne(parser, msg);
      try {
        switch (m.name) {
          case 'authenticationOk':
            authenticated = true;
            return;
          case 'authenticationCleartextPassword':
            socket.write(frontendMessage('p', Buffer.from(`${password}\0`, 'utf8')));
            return;
          case 'authenticationMD5Password': {
            const salt = (m as unknown as { salt: Buffer }).salt;
            socket.write(frontendMessage('p', Buffer.from(`${md5Password(user, password, salt)}\0`, 'utf8')));
            return;
          }
          case 'authenticationSASL': {
            const mechanisms = (m as unknown as { mechanisms: string[] }).mechanisms;
            if (!mechanisms.includes('SCRAM-SHA-256')) {
              fail(new SidecarError('UpstreamAuthFailed', `${where(c)} offers SASL ${mechanisms.join(', ')}; Airlock speaks SCRAM-SHA-256`));
              return;
            }
            scram = new ScramClient(password);
            const first = Buffer.from(scram.clientFirst(), 'utf8');
            const mech = Buffer.from('SCRAM-SHA-256\0', 'utf8');
            const len = Buffer.alloc(4);
            len.writeInt32BE(first.length, 0);
            socket.write(frontendMessage('p', Buffer.concat([mech, len, first])));
            return;
          }
          case 'authenticationSASLContinue': {
            if (scram === undefined) throw new Error('SASLContinue before SASL');
            const data = (m as unknown as { data: string }).data;
            socket.write(frontendMessage('p', Buffer.from(scram.clientFinal(data), 'utf8')));
            return;
          }
          case 'authenticationSASLFinal': {
            if (scram === undefined) throw new Error('SASLFinal before SASL');
            scram.verify((m as unknown as { data: string }).data);
            return;
          }
          default:
            fail(new SidecarError('UpstreamAuthFailed', `${where(c)} asks for an authentication method Airlock does not support (${m.name})`));
        }
      } catch (err) {
        fail(new SidecarError('UpstreamAuthFailed', `upstream login as "${user}" to ${where(c)} failed: ${(err as Error).message}`));
      }
    };
    const onData = (d: Buffer): void => {
      try {
        framer.push(d, onMessage);
      } catch (err) {
        fail(new SidecarError('UpstreamUnavailable', `${where(c)}: ${(err as Error).message}`));
      }
    };
    if (reuse) reader = onData;
    else socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/** Sends a CancelRequest for `processId/secretKey` on a fresh connection (TLS as configured). */
export async function sendCancel(c: UpstreamConfig, message: Buffer): Promise<void> {
  const raw = await tcp(c, 5000);
  const socket: Socket | TLSSocket = c.tls.mode === 'disable' ? raw : await startTls(c, raw);
  await new Promise<void>((resolve) => {
    socket.end(message, () => {
      resolve();
    });
  });
  socket.destroy();
}
