/**
 * An exec request: decided (authorize.ts) before anything goes upstream, then run upstream with
 * the agent's pty (if any) and relayed with masking and recording. The agent's stdin is data
 * for the decided command and is passed as it is.
 */
import type { ClientChannel, PseudoTtyOptions, ServerChannel } from 'ssh2';
import { SidecarError } from '../errors.ts';
import { authorize } from './authorize.ts';
import type { SessionContext } from './context.ts';
import { refuseChannel } from './refuse.ts';
import { endAgentChannel, relayOutput, type ExitInfo } from './relay.ts';
import type { ChannelCast } from './recorder.ts';

export interface ChannelState {
  readonly id: number;
  pty: (PseudoTtyOptions & { term: string }) | undefined;
  readonly env: Record<string, string>;
  /** the upstream channel once it runs */
  upstream: ClientChannel | undefined;
  cast: ChannelCast | undefined;
  /** aborted when the agent's channel closes */
  readonly abort: AbortController;
}

export function openCast(ctx: SessionContext, st: ChannelState, title: string): ChannelCast | undefined {
  const cast = ctx.recorder.openCast(st.id, {
    width: st.pty?.cols ?? 80,
    height: st.pty?.rows ?? 24,
    timestamp: Math.floor(Date.now() / 1000),
    title,
    ...(st.pty !== undefined ? { env: { TERM: st.pty.term } } : {}),
  });
  st.cast = cast;
  return cast;
}

/** Pipes agent → upstream with backpressure; EOF is passed on. */
export function pipeInput(agent: ServerChannel, upstream: ClientChannel): void {
  agent.on('data', (d: Buffer) => {
    if (!upstream.write(d)) {
      agent.pause();
      upstream.once('drain', () => agent.resume());
    }
  });
  agent.once('end', () => upstream.end());
}

export function recordExit(ctx: SessionContext, st: ChannelState, exit: ExitInfo | undefined, masked: number): void {
  ctx.recorder.note(
    {
      type: 'exit',
      channel: st.id,
      ...(exit === undefined ? { status: null, note: 'the upstream channel closed without an exit status' } : exit.code !== null ? { status: exit.code } : { signal: exit.signal ?? null, ...(exit.coreDumped === true ? { coreDumped: true } : {}) }),
      masked,
    },
    true,
  );
}

/** Read through a call: the signal changes while a function awaits. */
export function aborted(st: ChannelState): boolean {
  return st.abort.signal.aborted;
}

export async function runExec(ctx: SessionContext, st: ChannelState, agent: ServerChannel, command: string): Promise<void> {
  let cast: ChannelCast | undefined;
  try {
    cast = openCast(ctx, st, ctx.auth.current()?.masker.maskText(command).text ?? command);
    const bundle = await authorize(
      ctx.auth,
      {
        channel: st.id,
        kind: 'exec',
        command,
        certain: true,
        signal: st.abort.signal,
        notify: (text) => {
          cast?.output(text);
          agent.stderr.write(text);
        },
      },
      ctx.counters,
    );
    if (st.abort.signal.aborted) throw new SidecarError('ApprovalDenied', 'the agent closed the channel');
    const client = await ctx.upstream();
    const upstream = await new Promise<ClientChannel>((resolve, reject) => {
      client.exec(command, { ...(st.pty !== undefined ? { pty: st.pty } : {}), env: st.env }, (err, stream) => {
        if (err !== undefined) reject(new SidecarError('UpstreamUnavailable', `the server refused the exec: ${err.message}`));
        else resolve(stream);
      });
    });
    st.upstream = upstream;
    if (aborted(st)) {
      upstream.close();
      return;
    }
    const relay = relayOutput({
      agent,
      upstream,
      cast,
      masker: () => bundle.masker.stream(),
      binaryOutput: ctx.options.upstream.ssh?.binaryOutput ?? 'Refuse',
      onDone: (exit, masked, error) => {
        if (error !== undefined) {
          refuseChannel(ctx, agent, st.id, error, cast);
          return;
        }
        ctx.log.debug('exec done', { channel: st.id, exit, writable: agent.writable });
        recordExit(ctx, st, exit, masked);
        cast?.close();
        endAgentChannel(agent, exit);
      },
    });
    st.abort.signal.addEventListener('abort', () => { relay.abort(); }, { once: true });
    pipeInput(agent, upstream);
  } catch (err) {
    refuseChannel(ctx, agent, st.id, err, cast);
  }
}
