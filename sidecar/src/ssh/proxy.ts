/**
 * The SSH proxy: an ssh2 server on loopback for the agent, one session (session.ts) per
 * connection. The policy's bash parser is loaded before it listens. Its host key is, in cluster
 * mode, the namespace's Airlock SSH host key from the operator (pinned for the targets' names by
 * the known_hosts the agent containers get), so `StrictHostKeyChecking=yes` works through the
 * proxy; otherwise (local mode, or no key from the operator yet) one generated at start. ssh2
 * cannot present OpenSSH host certificates, hence a pinned key rather than a certificate.
 */
import { createServer } from 'node:net';
import ssh2 from 'ssh2';
import { loadShellParser } from '@airlock/policy';
import type { ProxyOptions, RunningProxy } from '../proxy.ts';
import { CIPHERS } from './algorithms.ts';
import { startSession, type SessionHandle } from './session.ts';
import { coalesceWrites } from './socket.ts';

/** Longest time the agent may take from TCP connect to authenticated. */
const HANDSHAKE_TIMEOUT_MS = 30_000;

/**
 * A fresh ed25519 host key for the agent side. ssh2 1.17 writes a key it cannot parse back about
 * once in 150 generations ("Malformed OpenSSH private key"), so a key is kept only once it parses.
 */
export function agentHostKey(): string {
  for (let attempt = 0; attempt < 20; attempt++) {
    const key = ssh2.utils.generateKeyPairSync('ed25519').private;
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return key;
  }
  throw new Error('could not generate a usable ed25519 host key');
}

/** cluster mode: the host key the operator hands out (read for every new connection) */
export interface AgentHostKeySource {
  sshHostKey(): string | undefined;
}

export async function startSshProxy(options: ProxyOptions & { readonly agentHostKey?: AgentHostKeySource }): Promise<RunningProxy> {
  // The bash grammar (WASM) is compiled before the first command, not while an agent waits.
  await loadShellParser();
  const generated = agentHostKey();
  const sessions = new Set<SessionHandle>();
  // one ssh2 server per host key: a key that arrives (or changes) later applies to new connections
  let current: { readonly key: string; readonly server: ssh2.Server } | undefined;
  const serverFor = (key: string): ssh2.Server => {
    if (current?.key === key) return current.server;
    const server = newServer(key);
    current = { key, server };
    return server;
  };
  const newServer = (hostKey: string): ssh2.Server => {
    const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: { cipher: [...CIPHERS] }, ident: 'airlock' }, (conn, info) => {
      const session = startSession(options, conn, info);
      sessions.add(session);
      void session.closed.then(() => sessions.delete(session));
      const timer = setTimeout(() => {
        if (!(conn as { authenticated?: boolean }).authenticated) session.close('handshake timeout');
      }, HANDSHAKE_TIMEOUT_MS);
      timer.unref();
      conn.once('ready', () => { clearTimeout(timer); });
    });
    server.on('error', (err: Error) => options.log.error('listener error', { error: err.message }));
    return server;
  };
  // the listener is ours, so that ssh2 gets each connection's socket with its writes coalesced;
  // TCP_NODELAY: keystrokes and their echo must not wait behind Nagle's algorithm for the ACK of
  // the previous packet (OpenSSH sets it for interactive sessions too)
  const listener = createServer({ noDelay: true }, (socket) => {
    const key = options.agentHostKey?.sshHostKey() ?? generated;
    let server: ssh2.Server;
    try {
      server = serverFor(key);
    } catch (err) {
      // a key ssh2 cannot read: the generated one, rather than no service
      options.log.error('the host key from the operator cannot be used; serving a generated one', { error: (err as Error).message });
      server = serverFor(generated);
    }
    server.injectSocket(coalesceWrites(socket));
  });
  listener.on('error', (err: Error) => options.log.error('listener error', { error: err.message }));
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.listen.port, options.listen.host, () => {
      listener.off('error', reject);
      const addr = listener.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : options.listen.port;
      resolve({
        host: options.listen.host,
        port,
        async close() {
          await new Promise<void>((r) => {
            listener.close(() => { r(); });
            for (const s of sessions) s.close('sidecar stopping');
          });
          await Promise.all([...sessions].map((s) => s.closed));
        },
      });
    });
  });
}
