/**
 * Port forwarding. Refused (and recorded) unless spec.ssh.allowPortForwarding: a tunnel would
 * carry traffic no rule looks at. When allowed, local forwards (direct-tcpip) are opened from
 * the upstream server, and remote forwards (tcpip-forward) are requested there, their
 * connections passed back to the agent. Bytes through a tunnel are not masked or recorded;
 * each tunnel is.
 */
import type { Duplex } from 'node:stream';
import type { AcceptConnection, Client, ClientChannel, Connection, RejectConnection, ServerChannel, TcpipBindInfo, TcpipRequestInfo } from 'ssh2';
import type { SessionContext } from './context.ts';

function allowed(ctx: SessionContext): boolean {
  return ctx.options.bundle !== undefined && ctx.options.upstream.ssh?.allowPortForwarding === true;
}

function splice(a: Duplex, b: Duplex): void {
  a.pipe(b).on('error', () => a.destroy());
  b.pipe(a).on('error', () => b.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

export function refuse(ctx: SessionContext, what: string, detail: Record<string, unknown>): void {
  ctx.counters.refused++;
  ctx.recorder.note({ type: 'refusal', what, ...detail, reason: ctx.options.bundle === undefined ? 'no policy loaded' : 'spec.ssh.allowPortForwarding is false' }, true);
  ctx.log.info('refused', { what, ...detail });
}

export function onDirectTcpip(ctx: SessionContext, accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo): void {
  const detail = { to: `${info.destIP}:${info.destPort}`, from: `${info.srcIP}:${info.srcPort}` };
  if (!allowed(ctx)) {
    refuse(ctx, 'local port forward', detail);
    reject();
    return;
  }
  ctx
    .upstream()
    .then(
      (client) =>
        new Promise<ClientChannel>((resolve, rej) => {
          client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, ch) => {
            if (err !== undefined) rej(err);
            else resolve(ch);
          });
        }),
    )
    .then((up) => {
      ctx.recorder.note({ type: 'forward', kind: 'local', ...detail }, true);
      splice(accept(), up);
    })
    .catch((err: unknown) => {
      ctx.recorder.note({ type: 'forward', kind: 'local', ...detail, error: (err as Error).message }, true);
      reject();
    });
}

export function onGlobalRequest(
  ctx: SessionContext,
  accept: ((port?: number) => void) | undefined,
  reject: (() => void) | undefined,
  name: string,
  info: TcpipBindInfo | { socketPath: string },
): void {
  const detail = { request: name, ...info };
  if (name !== 'tcpip-forward' && name !== 'cancel-tcpip-forward') {
    refuse(ctx, 'global request', detail);
    reject?.();
    return;
  }
  if (!allowed(ctx) || !('bindPort' in info)) {
    refuse(ctx, 'remote port forward', detail);
    reject?.();
    return;
  }
  ctx
    .upstream()
    .then(
      (client: Client) =>
        new Promise<number>((resolve, rej) => {
          if (name === 'cancel-tcpip-forward') client.unforwardIn(info.bindAddr, info.bindPort, (err) => { if (err !== undefined && err !== null) rej(err); else resolve(info.bindPort); });
          else client.forwardIn(info.bindAddr, info.bindPort, (err, port) => { if (err !== undefined) rej(err); else resolve(port); });
        }),
    )
    .then((port) => {
      ctx.recorder.note({ type: 'forward', kind: 'remote', ...detail, port }, true);
      accept?.(port);
    })
    .catch((err: unknown) => {
      ctx.recorder.note({ type: 'forward', kind: 'remote', ...detail, error: (err as Error).message }, true);
      reject?.();
    });
}

/** Connections the upstream server forwards back (remote forwards): passed to the agent. */
export function onUpstreamTcpConnection(ctx: SessionContext, conn: Connection, client: Client): void {
  client.on('tcp connection', (details, accept, reject) => {
    if (!allowed(ctx)) {
      reject();
      return;
    }
    conn.forwardOut(details.destIP, details.destPort, details.srcIP, details.srcPort, (err, ch) => {
      if (err !== undefined) {
        reject();
        return;
      }
      ctx.recorder.note({ type: 'forward', kind: 'remote connection', to: `${details.destIP}:${details.destPort}`, from: `${details.srcIP}:${details.srcPort}` });
      splice(accept(), ch);
    });
  });
}
