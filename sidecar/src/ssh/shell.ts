/**
 * An interactive shell (only with spec.ssh.allowShell). Keystrokes go upstream as they are typed
 * (so the remote echoes, completes and edits as usual), but each Enter is held: the line is
 * rebuilt from the keystrokes (line-editor.ts) and decided first. Allowed: the Enter is sent.
 * Blocked, denied or unresolvable: ^E^U is sent instead (the remote discards the line), and
 * the refusal is shown on stderr. Keystrokes typed while a line waits for approval are queued.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { RecorderError } from '../record/writer.ts';
import { SidecarError } from '../errors.ts';
import { sshReply } from '../replies.ts';
import { authorize } from './authorize.ts';
import type { SessionContext } from './context.ts';
import { openCast, recordExit, type ChannelState } from './exec.ts';
import { LineEditor, type EditorSegment, type EnterSegment } from './line-editor.ts';
import { refuseChannel } from './refuse.ts';
import { endAgentChannel, relayOutput, type Relay } from './relay.ts';
import type { ChannelCast } from './recorder.ts';

/** Sent upstream instead of a refused Enter: end of line, then kill to its start. */
export const DISCARD_LINE = '\x05\x15';

const crlf = (text: string): string => text.replace(/\r?\n/g, '\r\n');

export async function runShell(ctx: SessionContext, st: ChannelState, agent: ServerChannel): Promise<void> {
  let cast: ChannelCast | undefined;
  try {
    const ssh = ctx.options.upstream.ssh;
    const bundle = ctx.auth.current();
    if (bundle === undefined) throw new SidecarError('PolicyUnavailable', ctx.auth.noPolicy());
    if (ssh?.allowShell !== true) throw new SidecarError('NotPermitted', `interactive shells are not allowed on connection ${ctx.options.upstream.name} (spec.ssh.allowShell is false); run commands with exec: ssh <host> '<command>'`);
    cast = openCast(ctx, st, 'shell');
    ctx.recorder.record({ type: 'shell', channel: st.id, pty: st.pty === undefined ? null : { term: st.pty.term, cols: st.pty.cols ?? 80, rows: st.pty.rows ?? 24 } }, true);
    const client = await ctx.upstream();
    const upstream = await new Promise<ClientChannel>((resolve, reject) => {
      client.shell(st.pty ?? false, { env: st.env }, (err, stream) => {
        if (err !== undefined) reject(new SidecarError('UpstreamUnavailable', `the server refused the shell: ${err.message}`));
        else resolve(stream);
      });
    });
    st.upstream = upstream;
    const castRef = cast;
    const relay = relayOutput({
      agent,
      upstream,
      cast,
      masker: () => bundle.masker.stream(),
      binaryOutput: ctx.options.upstream.ssh?.binaryOutput ?? 'Refuse',
      onDone: (exit, masked, error) => {
        if (error !== undefined) {
          refuseChannel(ctx, agent, st.id, error, castRef, true);
          return;
        }
        recordExit(ctx, st, exit, masked);
        castRef?.close();
        endAgentChannel(agent, exit);
      },
    });
    st.abort.signal.addEventListener('abort', () => { relay.abort(); }, { once: true });
    feedKeystrokes(ctx, st, agent, upstream, relay, cast);
  } catch (err) {
    refuseChannel(ctx, agent, st.id, err, cast, st.pty !== undefined);
  }
}

function feedKeystrokes(ctx: SessionContext, st: ChannelState, agent: ServerChannel, upstream: ClientChannel, relay: Relay, cast: ChannelCast | undefined): void {
  const editor = new LineEditor();
  const decoder = new StringDecoder('utf8');
  const queue: EditorSegment[] = [];
  let busy = false;

  const enter = async (seg: EnterSegment): Promise<void> => {
    if (seg.certain && seg.line.trim() === '') {
      upstream.write(seg.key);
      return;
    }
    cast?.checkpoint();
    try {
      await authorize(
        ctx.auth,
        {
          channel: st.id,
          kind: 'shell',
          command: seg.line,
          certain: seg.certain,
          reasons: seg.reasons,
          signal: st.abort.signal,
          notify: (text) => { relay.notice(crlf(`\n${text}`)); },
        },
        ctx.counters,
      );
      if (!st.abort.signal.aborted) upstream.write(seg.key);
    } catch (err) {
      upstream.write(DISCARD_LINE);
      const reply = sshReply(err);
      relay.notice(crlf(`\n${reply.stderr}`));
      ctx.recorder.note({ type: 'refusal', channel: st.id, what: 'shell line', code: err instanceof SidecarError ? err.code : err instanceof RecorderError ? 'RecorderFailed' : 'Error' }, true);
      if (err instanceof RecorderError) {
        // failurePolicy Closed and the recorder is gone: nothing more may run
        upstream.close();
      }
    }
  };

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      for (let seg = queue.shift(); seg !== undefined; seg = queue.shift()) {
        if (seg.kind === 'data') upstream.write(seg.text);
        else {
          agent.pause();
          await enter(seg);
          agent.resume();
        }
      }
    } finally {
      busy = false;
    }
  };

  agent.on('data', (d: Buffer) => {
    queue.push(...editor.push(decoder.write(d)));
    drain().catch((err: unknown) => {
      ctx.log.error('shell input failed', { channel: st.id, error: (err as Error).message });
      upstream.close();
    });
  });
  agent.once('end', () => {
    const rest = decoder.end();
    if (rest !== '') queue.push(...editor.push(rest));
    const finish = (): void => {
      if (busy || queue.length > 0) {
        setTimeout(finish, 20);
        return;
      }
      upstream.end();
    };
    finish();
  });
}
