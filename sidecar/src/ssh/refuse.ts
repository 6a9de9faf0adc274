/** Ends an agent's session channel with a refusal: replies.ts's message on stderr, exit status 126, recorded. */
import type { ServerChannel } from 'ssh2';
import { sshReply } from '../replies.ts';
import { SidecarError } from '../errors.ts';
import type { SessionContext } from './context.ts';
import type { ChannelCast } from './recorder.ts';

export function refuseChannel(ctx: SessionContext, agent: ServerChannel, channel: number, err: unknown, cast: ChannelCast | undefined, crlf = false): void {
  const reply = sshReply(err);
  const text = crlf ? reply.stderr.replace(/\r?\n/g, '\r\n') : reply.stderr;
  ctx.counters.refused++;
  try {
    cast?.output(text);
  } catch {
    // recording failed: the refusal still reaches the agent
  }
  ctx.recorder.note({ type: 'exit', channel, status: reply.exitStatus, refused: err instanceof SidecarError ? err.code : err instanceof Error ? err.name : 'Error' }, true);
  cast?.close();
  ctx.log.info('refused', { channel, code: err instanceof SidecarError ? err.code : undefined, error: err instanceof Error ? err.message : String(err) });
  if (agent.writable) {
    agent.stderr.write(text);
    agent.exit(reply.exitStatus);
    agent.end();
  }
}
