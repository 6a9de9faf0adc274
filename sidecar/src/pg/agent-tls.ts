/**
 * TLS between the agent and the sidecar. Before a PgSession gets the agent's socket, this looks at
 * the first request: an SSLRequest is answered `S` and the socket upgraded with the certificate the
 * operator issued for the targets' names (signed by Airlock's CA, which the agent trusts through
 * PGSSLROOTCERT), so `sslmode=verify-full` works through the proxy; the session then runs over the
 * TLS socket. A GSSENCRequest is declined here (`N`) and the next request looked at again. Without
 * a certificate (local mode, operator unreachable) the socket is handed over untouched and the
 * session declines TLS as before.
 *
 * Bytes the agent sends after its SSLRequest, before the handshake, are refused (the connection is
 * closed): they could only be an injection into the stream the TLS session is meant to protect.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext, type TLSSocketOptions } from 'node:tls';
import type { Logger } from '../log.ts';
import { DECLINE_ENCRYPTION } from './backend.ts';
import { GSSENC_REQUEST, SSL_REQUEST } from './frontend.ts';

/** the agent-facing certificate, as it is now (renewed in place) */
export interface AgentTlsSource {
  tlsContext(): SecureContext | undefined;
}

/** what the first bytes of a connection ask for; pure */
export type FirstRequest = 'incomplete' | 'ssl' | 'gssenc' | 'other';

export function firstRequest(buf: Buffer): FirstRequest {
  // an SSLRequest / GSSENCRequest is exactly 8 bytes: length 8, then the request code
  const need = Math.min(buf.length, 8);
  const head = Buffer.alloc(8);
  buf.copy(head, 0, 0, need);
  if (need >= 4 && head.readInt32BE(0) !== 8) return 'other';
  if (need < 8) {
    // compare what is there with both codes' prefixes
    const prefixOf = (code: number): boolean => {
      const b = Buffer.alloc(8);
      b.writeInt32BE(8, 0);
      b.writeInt32BE(code, 4);
      return b.subarray(0, need).equals(buf.subarray(0, need));
    };
    return prefixOf(SSL_REQUEST) || prefixOf(GSSENC_REQUEST) ? 'incomplete' : 'other';
  }
  const code = head.readInt32BE(4);
  if (code === SSL_REQUEST) return 'ssl';
  if (code === GSSENC_REQUEST) return 'gssenc';
  return 'other';
}

/** longest time from TCP connect to a decided first request (and TLS handshake) */
export const NEGOTIATION_TIMEOUT_MS = 30_000;

/**
 * Calls `onSocket` with the socket the session should speak over: the TLS socket once its
 * handshake is done, or the plain socket with its first bytes put back. Nothing is called when the
 * agent goes away, times out or breaks the protocol (the socket is destroyed).
 */
export function negotiateAgentTls(socket: Socket, source: AgentTlsSource | undefined, log: Logger, onSocket: (socket: Socket) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  let done = false;
  const timer = setTimeout(() => {
    finish();
    log.info('agent connection closed: no startup request in time');
    socket.destroy();
  }, NEGOTIATION_TIMEOUT_MS);
  timer.unref();
  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', onClose);
  };
  const onError = (): void => {
    finish();
    socket.destroy();
  };
  const onClose = (): void => {
    finish();
  };
  const onData = (chunk: Buffer): void => {
    if (done) return;
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    for (;;) {
      const kind = firstRequest(buffered);
      if (kind === 'incomplete') return;
      if (kind === 'gssenc') {
        socket.write(DECLINE_ENCRYPTION);
        buffered = buffered.subarray(8);
        if (buffered.length === 0) return;
        continue;
      }
      const context = kind === 'ssl' ? source?.tlsContext() : undefined;
      finish();
      if (context === undefined) {
        // the session answers an SSLRequest with N, as without a certificate. The bytes read go
        // back in front once it listens: the flowing stream hands them to its listener at once
        // (or keeps them until it resumes, if it paused)
        onSocket(socket);
        if (buffered.length > 0) socket.unshift(buffered);
        return;
      }
      if (buffered.length > 8) {
        log.warn('agent connection refused: data after its SSLRequest, before the TLS handshake');
        socket.destroy();
        return;
      }
      upgrade(socket, context, log, onSocket);
      return;
    }
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
}

function upgrade(socket: Socket, secureContext: SecureContext, log: Logger, onSocket: (socket: Socket) => void): void {
  // 'S' and the wrap in the same tick (as pg-gateway does): the agent sends its ClientHello only
  // once it has read the S, and nothing is read from the socket before the TLS socket owns it
  socket.write(Buffer.from('S', 'latin1'));
  // high-water mark 1, as the plain socket: the session relies on write() reporting backpressure
  // (node's TLSSocket passes highWaterMark on to its stream; its type does not declare it)
  const options: TLSSocketOptions & { readonly highWaterMark: number } = { isServer: true, secureContext, highWaterMark: 1 };
  const tls = new TLSSocket(socket, options);
  const timer = setTimeout(() => {
    log.info('agent connection closed: TLS handshake not done in time');
    tls.destroy();
  }, NEGOTIATION_TIMEOUT_MS);
  timer.unref();
  const onError = (err: Error): void => {
    clearTimeout(timer);
    log.info('agent TLS handshake failed', { error: err.message });
    tls.destroy();
  };
  tls.once('error', onError);
  tls.once('secure', () => {
    clearTimeout(timer);
    tls.off('error', onError);
    onSocket(tls);
  });
}
