/**
 * One agent connection. The agent authenticates with anything (`none`, any key, any password):
 * the listener is on loopback inside the pod, and the agent holds no credential worth
 * checking. The upstream connection is started as soon as the agent asks to authenticate (so
 * its setup overlaps the agent's), with the Secret's credentials and the pinned host key; a
 * failure is recorded and every channel is then refused with its message.
 */
import type { Client, ClientInfo, Connection, ServerChannel } from 'ssh2';
import { Enforcer } from '../enforce/enforcer.ts';
import { noPolicyMessage, policyOf, type ProxyOptions, type SessionOptions } from '../proxy.ts';
import { SidecarError } from '../errors.ts';
import { sshReply } from '../replies.ts';
import type { SessionContext } from './context.ts';
import { handleSession, reply as answer } from './channel.ts';
import { onDirectTcpip, onGlobalRequest, onUpstreamTcpConnection, refuse } from './forward.ts';
import { SessionRecorder } from './recorder.ts';
import { connectUpstream } from './upstream.ts';

export interface SessionHandle {
  readonly id: string;
  /** ends the session (agent and upstream) and closes its recording */
  close(reason: string): void;
  readonly closed: Promise<void>;
}

/** ssh2 keeps the socket of a connection whose peer broke the protocol open: close it. */
function destroySocket(conn: Connection): void {
  const sock = (conn as unknown as { _sock?: { destroy(): void } })._sock;
  if (sock !== undefined) sock.destroy();
  else conn.end();
}

/**
 * Nothing is enforced for the connection now: the agent is let in (as always, see the module
 * comment) and every command or shell it asks for gets the reason on stderr and exit status 126,
 * like any refused command; subsystems (sftp) and forwarding are refused. Nothing is recorded:
 * nothing reaches a target.
 */
function refuseAll(proxy: ProxyOptions, conn: Connection, message: string): SessionHandle {
  proxy.log.warn('connection refused', { error: message });
  const reply = sshReply(new SidecarError('PolicyUnavailable', message));
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  conn.on('authentication', (auth) => {
    auth.accept();
  });
  conn.on('session', (accept) => {
    const session = accept();
    const turnAway = (channel: ServerChannel): void => {
      channel.stderr.write(reply.stderr);
      channel.exit(reply.exitStatus);
      channel.end();
    };
    session.on('pty', (ok) => {
      answer(ok);
    });
    session.on('env', (ok) => {
      answer(ok);
    });
    session.on('window-change', (ok) => {
      answer(ok);
    });
    session.on('exec', (ok) => {
      turnAway(ok());
    });
    session.on('shell', (ok) => {
      turnAway(ok());
    });
    session.on('subsystem', (_ok, no) => {
      answer(no);
    });
  });
  conn.on('tcpip', (_accept, reject) => {
    reject();
  });
  conn.on('request', (_accept, reject) => {
    reject?.();
  });
  conn.on('error', () => {
    destroySocket(conn);
  });
  conn.on('close', () => {
    resolveClosed();
  });
  return {
    id: '',
    closed,
    close() {
      conn.end();
      setTimeout(resolveClosed, 2000).unref();
    },
  };
}

export function startSession(proxy: ProxyOptions, conn: Connection, info: ClientInfo): SessionHandle {
  const source = policyOf(proxy);
  // the policy as the session starts: its upstream connection and channel permissions; each
  // command reads the current one (ctx.auth.current)
  const start = source.current();
  if (start === undefined) return refuseAll(proxy, conn, noPolicyMessage(source, undefined, 'the connection is refused'));
  const options: SessionOptions = { ...proxy, bundle: start.bundle, upstream: start.upstream };
  const recorder = new SessionRecorder(options.recordingsDir, options.upstream.name, options.upstream.failurePolicy, options.log);
  const log = options.log.child({ session: recorder.id, connection: `${options.upstream.namespace}/${options.upstream.name}` });
  const startTime = new Date();
  const abort = new AbortController();
  let channels = 0;
  let upstream: Promise<Client> | undefined;
  let client: Client | undefined;
  let endReason = 'agent disconnected';
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  const counters = { commands: 0, blocked: 0, approvals: 0, refused: 0, sftpOps: 0 };

  recorder.note(
    {
      type: 'session_start',
      protocol: 'ssh',
      connection: `${options.upstream.namespace}/${options.upstream.name}`,
      target: `${options.upstream.host}:${options.upstream.port}`,
      client: `${info.ip}:${info.port}`,
      clientVersion: info.header.versions.software,
      ...(options.pod !== undefined ? { pod: options.pod } : {}),
      ...(options.serviceAccount !== undefined ? { serviceAccount: options.serviceAccount } : {}),
      policy: options.bundle?.digest ?? null,
    },
    true,
  );
  log.info('session start', { client: `${info.ip}:${info.port}` });
  if (recorder.path !== undefined) {
    proxy.sessions?.started({
      id: recorder.id,
      connection: options.upstream.name,
      protocol: 'ssh',
      startTime,
      recordingPath: recorder.path,
      counts: () => ({ statements: counters.commands, rows: 0, maskedValues: 0, blocked: counters.blocked, approvals: counters.approvals }),
      head: () => ({ hash: recorder.head, records: recorder.records }),
      closed,
    });
  }

  const enforcer = new Enforcer(
    {
      protocol: 'ssh',
      policy: source,
      approvals: options.approvals,
      recorder,
      connection: { name: options.upstream.name, namespace: options.upstream.namespace },
      pod: options.pod,
      serviceAccount: options.serviceAccount,
      log,
    },
    start,
  );
  const ctx: SessionContext = {
    options,
    recorder,
    counters,
    log,
    auth: {
      current: () => enforcer.refresh()?.bundle,
      noPolicy: () => enforcer.noPolicy('every command is refused'),
      enforcer,
      recorder,
    },
    upstream: () => {
      upstream ??= startUpstream();
      return upstream;
    },
    signal: abort.signal,
    nextChannel: () => channels++,
  };

  function startUpstream(): Promise<Client> {
    if (options.bundle === undefined) return Promise.reject(new SidecarError('PolicyUnavailable', noPolicyMessage(source, start, 'nothing is forwarded')));
    const { promise, client: c } = connectUpstream(options.upstream);
    client = c;
    let ready = false;
    c.on('close', () => {
      // an upstream that never came up leaves the agent connected: its channels get the reason
      if (ready && !abort.signal.aborted) {
        log.info('upstream closed');
        endReason = 'upstream disconnected';
        conn.end();
      }
    });
    return promise.then(
      (r) => {
        ready = true;
        recorder.note({ type: 'upstream', target: `${options.upstream.host}:${options.upstream.port}`, hostKey: r.fingerprint, user: options.upstream.credentials.username }, true);
        onUpstreamTcpConnection(ctx, conn, r.client);
        return r.client;
      },
      (err: unknown) => {
        const e = err instanceof SidecarError ? err : new SidecarError('UpstreamUnavailable', (err as Error).message);
        recorder.note({ type: 'refusal', what: e.code === 'HostKeyMismatch' ? 'host key' : 'upstream', code: e.code, reason: e.message }, true);
        log.warn('upstream failed', { code: e.code, error: e.message });
        throw e;
      },
    );
  }

  conn.on('authentication', (auth) => {
    // Pod-local listener: every method is accepted (see the module comment).
    if (options.bundle !== undefined) ctx.upstream().catch(() => undefined);
    auth.accept();
  });
  conn.on('session', (accept) => {
    handleSession(ctx, accept());
  });
  conn.on('tcpip', (accept, reject, i) => {
    onDirectTcpip(ctx, accept, reject, i);
  });
  conn.on('openssh.streamlocal', (_accept, reject, i: { socketPath: string }) => {
    refuse(ctx, 'unix socket forward', { socketPath: i.socketPath });
    reject();
  });
  conn.on('request', (accept, reject, name: string, i) => {
    onGlobalRequest(ctx, accept, reject, name, i);
  });
  conn.on('error', (err: Error) => {
    log.info('agent connection error', { error: err.message });
    endReason = `agent connection error: ${err.message}`;
    // a protocol error leaves nothing to talk about: drop the connection
    destroySocket(conn);
  });
  const finish = (): void => {
    if (abort.signal.aborted) return;
    abort.abort();
    client?.end();
    // let channel handlers record what the abort ended, and the casts reach the disk, before the
    // log closes
    setImmediate(() => {
      void recorder.settled().then(() => {
        recorder.end({ type: 'session_end', reason: endReason, commands: counters.commands, blocked: counters.blocked, approvals: counters.approvals, refused: counters.refused, sftpOps: counters.sftpOps });
        log.info('session end', { reason: endReason, recording: recorder.path, head: recorder.head });
        resolveClosed();
      });
    });
  };
  conn.on('close', finish);

  return {
    id: recorder.id,
    closed,
    close(reason) {
      endReason = reason;
      conn.end();
      // a connection that never completed its handshake does not always emit close
      setTimeout(finish, 2000).unref();
    },
  };
}
