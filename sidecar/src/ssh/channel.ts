/**
 * One agent session channel: collects pty and env requests, relays window changes and signals,
 * refuses agent and X11 forwarding (recorded), and hands exec, shell and sftp to their modules.
 */
import type { PseudoTtyInfo, Session, SFTPWrapper, ServerChannel } from 'ssh2';
import { SidecarError } from '../errors.ts';
import type { SessionContext } from './context.ts';
import { runExec, type ChannelState } from './exec.ts';
import { refuse } from './forward.ts';
import { refuseChannel } from './refuse.ts';
import { proxySftp } from './sftp.ts';
import { runShell } from './shell.ts';

/** Environment variables passed upstream (as sshd's default AcceptEnv): locale only. */
const PASSED_ENV = /^(LANG|LC_[A-Z_]+)$/;

/** ssh2 leaves `modes` undefined when the client's encoding is not understood. */
function modesOf(info: PseudoTtyInfo): { modes?: PseudoTtyInfo['modes'] } {
  const modes = info.modes as PseudoTtyInfo['modes'] | undefined;
  return modes !== undefined ? { modes } : {};
}

/** ssh2 passes no accept/reject when the client wants no reply, whatever its types say. */
export function reply(fn: (() => void) | undefined): void {
  fn?.();
}

export function handleSession(ctx: SessionContext, session: Session): void {
  const st: ChannelState = { id: ctx.nextChannel(), pty: undefined, env: {}, upstream: undefined, cast: undefined, abort: new AbortController() };
  const onAbort = (): void => { st.abort.abort(); };
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const started = (ch: ServerChannel): void => {
    ch.on('close', () => {
      ctx.signal.removeEventListener('abort', onAbort);
      st.abort.abort();
    });
    ch.on('error', (err: Error) => ctx.log.debug('agent channel error', { channel: st.id, error: err.message }));
  };

  session.on('pty', (accept, _reject, info: PseudoTtyInfo) => {
    st.pty = { term: info.term, cols: info.cols, rows: info.rows, width: info.width, height: info.height, ...modesOf(info) };
    reply(accept);
  });
  session.on('env', (accept, reject, info: { key: string; val: string }) => {
    if (PASSED_ENV.test(info.key)) {
      st.env[info.key] = info.val;
      reply(accept);
    } else reply(reject);
  });
  session.on('window-change', (accept, _reject, info) => {
    if (st.pty !== undefined) st.pty = { ...st.pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
    st.upstream?.setWindow(info.rows, info.cols, info.height, info.width);
    st.cast?.resize(info.cols, info.rows);
    reply(accept);
  });
  session.on('signal', (accept, _reject, info: { name: string }) => {
    ctx.recorder.note({ type: 'signal', channel: st.id, signal: info.name });
    st.upstream?.signal(info.name);
    reply(accept);
  });
  session.on('auth-agent', (_accept, reject) => {
    refuse(ctx, 'agent forwarding', { channel: st.id });
    reply(reject);
  });
  session.on('x11', (_accept, reject) => {
    refuse(ctx, 'x11 forwarding', { channel: st.id });
    reply(reject);
  });
  session.on('exec', (accept, _reject, info: { command: string }) => {
    const ch = accept();
    started(ch);
    void runExec(ctx, st, ch, info.command);
  });
  session.on('shell', (accept) => {
    const ch = accept();
    started(ch);
    void runShell(ctx, st, ch);
  });
  const sftpAllowed = ctx.options.bundle !== undefined && ctx.options.upstream.ssh?.allowSftp === true;
  if (sftpAllowed) {
    session.on('sftp', (accept, reject) => {
      ctx.upstream().then(
        (client) => {
          client.sftp((err, up: SFTPWrapper) => {
            if (err !== undefined) {
              ctx.recorder.note({ type: 'refusal', what: 'sftp', channel: st.id, reason: `the server refused sftp: ${err.message}` }, true);
              reject();
              return;
            }
            try {
              ctx.recorder.record({ type: 'sftp', channel: st.id, op: 'start' }, true);
            } catch {
              up.end();
              reject();
              return;
            }
            const agentSftp = accept();
            const proxy = proxySftp(ctx, st.id, agentSftp, up);
            const end = (): void => {
              proxy.close();
              up.end();
              agentSftp.end();
            };
            agentSftp.on('close', end);
            up.on('close', end);
            agentSftp.on('error', () => undefined);
            up.on('error', () => undefined);
          });
        },
        (err: unknown) => {
          ctx.recorder.note({ type: 'refusal', what: 'sftp', channel: st.id, reason: (err as Error).message }, true);
          reject();
        },
      );
    });
  }
  session.on('subsystem', (accept, _reject, info: { name: string }) => {
    const ch = accept();
    started(ch);
    const why =
      info.name === 'sftp'
        ? ctx.options.bundle === undefined
          ? new SidecarError('PolicyUnavailable', 'no policy is loaded for this connection: sftp is refused')
          : new SidecarError('NotPermitted', `sftp is not allowed on connection ${ctx.options.upstream.name} (spec.ssh.allowSftp is false)`)
        : new SidecarError('NotPermitted', `subsystem ${info.name} is not available through airlock`);
    ctx.recorder.note({ type: 'refusal', what: `subsystem ${info.name}`, channel: st.id, reason: why.message }, true);
    refuseChannel(ctx, ch, st.id, why, undefined);
  });
}
