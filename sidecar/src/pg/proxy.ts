/**
 * The PostgreSQL proxy: a loopback listener, one PgSession per agent connection, the registry
 * of upstream cancel keys (the agent receives the upstream's BackendKeyData unchanged, so a
 * CancelRequest carrying a key of one of our sessions is forwarded on a fresh upstream
 * connection; any other key is dropped), and the shared catalogue connection. With an agent TLS
 * source (cluster mode), an agent's SSLRequest is accepted and the session runs over TLS
 * (agent-tls.ts).
 */
import { createServer, type Socket } from 'node:net';
import { SqlDecider, type PolicyBundle } from '@airlock/policy';
import type { UpstreamConfig } from '../config.ts';
import { policyOf, type ProxyOptions, type RunningProxy } from '../proxy.ts';
import { negotiateAgentTls, type AgentTlsSource } from './agent-tls.ts';
import { Catalog } from './catalog.ts';
import { PgSession } from './session.ts';
import { sendCancel } from './upstream.ts';
import { cancelRequestMessage } from './wire.ts';

/** cluster mode: the certificate the operator issued for the targets' names */
export interface AgentTlsOption {
  readonly agentTls?: AgentTlsSource;
}

export async function startPgProxy(options: ProxyOptions & AgentTlsOption): Promise<RunningProxy> {
  const { log } = options;
  const policy = policyOf(options);
  // one decider per bundle, one catalogue connection per upstream (a swapped bundle gets its own)
  const deciders = new WeakMap<PolicyBundle, SqlDecider>();
  const deciderFor = (bundle: PolicyBundle): SqlDecider => {
    let d = deciders.get(bundle);
    if (d === undefined) {
      d = new SqlDecider(bundle);
      deciders.set(bundle, d);
    }
    return d;
  };
  const catalogs = new Set<Catalog>();
  let catalog: { key: string; catalog: Catalog } | undefined;
  const catalogFor = (upstream: UpstreamConfig): Catalog => {
    const key = JSON.stringify(upstream);
    if (catalog?.key !== key) {
      // the previous one reconnects if a running session still asks it
      catalog?.catalog.close();
      catalog = { key, catalog: new Catalog(upstream) };
      catalogs.add(catalog.catalog);
    }
    return catalog.catalog;
  };
  const sessions = new Set<PgSession>();
  const keys = new Map<string, PgSession>();
  const keyOf = new Map<PgSession, string>();
  const sockets = new Set<Socket>();

  const registry = {
    register(processId: number, secretKey: Buffer, session: PgSession): void {
      const k = `${String(processId)}:${secretKey.toString('hex')}`;
      keys.set(k, session);
      keyOf.set(session, k);
    },
    unregister(session: PgSession): void {
      const k = keyOf.get(session);
      if (k !== undefined) keys.delete(k);
      keyOf.delete(session);
    },
  };

  const onCancel = (processId: number, secretKey: Buffer): void => {
    const k = `${String(processId)}:${secretKey.toString('hex')}`;
    const upstream = keys.get(k)?.target;
    if (upstream === undefined) {
      log.warn('cancel request with an unknown key dropped', { processId });
      return;
    }
    log.info('cancel request forwarded', { processId });
    sendCancel(upstream, cancelRequestMessage(processId, secretKey)).catch((err: unknown) => {
      log.warn('cancel request failed', { error: (err as Error).message });
    });
  };

  // high-water mark 1: a write to the agent that cannot complete at once reports backpressure
  // (and later 'drain'), which keeps the upstream paused while the queued bytes still point into
  // its reused read buffer (see PgSession)
  const startSession = (socket: Socket): void => {
    const session = new PgSession(socket, {
      policy,
      deciderFor,
      catalogFor,
      approvals: options.approvals,
      recordingsDir: options.recordingsDir,
      log,
      ...(options.pod !== undefined ? { pod: options.pod } : {}),
      ...(options.serviceAccount !== undefined ? { serviceAccount: options.serviceAccount } : {}),
      keys: registry,
      onCancel,
      ...(options.sessions !== undefined ? { sessions: options.sessions } : {}),
    });
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  };
  const server = createServer({ noDelay: true, highWaterMark: 1 }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (options.agentTls === undefined) startSession(socket);
    else negotiateAgentTls(socket, options.agentTls, log, startSession);
  });
  server.on('error', (err) => {
    log.error('listener error', { error: err.message });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : options.listen.port;
  return {
    host: options.listen.host,
    port,
    async close(): Promise<void> {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const s of sessions) s.shutdown('the sidecar is shutting down');
        for (const s of sockets) s.end();
      });
      await Promise.all([...sessions].map((s) => s.closed));
      for (const c of catalogs) c.close();
    },
  };
}
