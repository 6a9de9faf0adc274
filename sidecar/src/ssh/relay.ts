/**
 * Relays an upstream session channel's output to the agent's channel: stdout and stderr each
 * masked (output.ts), recorded in the channel's cast before they are sent, with backpressure
 * both ways; when both streams have ended, the held rest is flushed and the exit status (or
 * signal) is passed on, then the agent's channel is closed.
 */
import type { Readable, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import type { StreamMasker } from '@airlock/policy';
import { MaskedOutput, type BinaryOutput } from './output.ts';
import type { ChannelCast } from './recorder.ts';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal?: string;
  readonly coreDumped?: boolean;
  readonly message?: string;
}

export interface RelayOptions {
  readonly agent: ServerChannel;
  readonly upstream: ClientChannel;
  readonly cast: ChannelCast | undefined;
  readonly masker: () => StreamMasker | undefined;
  /** spec.ssh.binaryOutput: what happens to output that is not text (default Refuse) */
  readonly binaryOutput?: BinaryOutput;
  /** called once, after the agent got everything; `error` when recording failed mid-stream */
  readonly onDone: (exit: ExitInfo | undefined, masked: number, error?: unknown) => void;
}

export interface Relay {
  /** writes text to the agent (stdout) through the same recording, bypassing the masker (sidecar messages) */
  notice(text: string): void;
  /** stops relaying: the agent went away */
  abort(): void;
}

function pump(src: Readable, dst: Writable, out: MaskedOutput, cast: ChannelCast | undefined, fail: (err: unknown) => void): void {
  src.on('data', (chunk: Buffer) => {
    let text: string;
    try {
      // binary output under binaryOutput: Refuse throws here, before anything of it is sent
      text = out.push(chunk);
      if (text === '') return;
      cast?.output(text);
    } catch (err) {
      fail(err);
      return;
    }
    if (!dst.write(out.encode(text))) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
}

export function relayOutput(o: RelayOptions): Relay {
  const { agent, upstream, cast } = o;
  const stdout = new MaskedOutput(o.masker(), o.binaryOutput);
  const stderr = new MaskedOutput(o.masker(), o.binaryOutput);
  let exit: ExitInfo | undefined;
  let ends = 0;
  let done = false;
  const finish = (error?: unknown): void => {
    if (done) return;
    done = true;
    o.onDone(exit, stdout.masked + stderr.masked, error);
  };
  const fail = (err: unknown): void => {
    if (done) return;
    upstream.destroy();
    finish(err);
  };
  upstream.on('exit', (code: number | null, signal?: string, coreDumped?: boolean, message?: string) => {
    exit = code !== null ? { code } : { code: null, ...(signal !== undefined ? { signal } : {}), coreDumped: coreDumped === true, ...(message !== undefined && message !== '' ? { message } : {}) };
  });
  // Done when stdout and stderr have ended (all data read) and the channel is closed (after
  // the exit status, which the server may send after its EOF).
  const onEnd = (): void => {
    ends++;
    if (ends < 3 || done) return;
    try {
      const restOut = stdout.end();
      const restErr = stderr.end();
      cast?.output(restOut + restErr);
      if (restOut !== '') agent.write(stdout.encode(restOut));
      if (restErr !== '') agent.stderr.write(stderr.encode(restErr));
    } catch (err) {
      fail(err);
      return;
    }
    finish();
  };
  pump(upstream, agent, stdout, cast, fail);
  pump(upstream.stderr, agent.stderr, stderr, cast, fail);
  upstream.once('end', onEnd);
  upstream.stderr.once('end', onEnd);
  upstream.once('close', onEnd);
  return {
    notice(text) {
      try {
        cast?.output(text);
      } catch {
        // the recorder's failure is handled where output flows
      }
      agent.stderr.write(text);
    },
    abort() {
      if (done) return;
      done = true;
      upstream.destroy();
      o.onDone(exit, stdout.masked + stderr.masked, undefined);
    },
  };
}

/** Sends the exit status or signal to the agent, then closes its channel. */
export function endAgentChannel(agent: ServerChannel, exit: ExitInfo | undefined): void {
  try {
    if (exit?.code !== null && exit?.code !== undefined) agent.exit(exit.code);
    else if (exit?.signal !== undefined) agent.exit(exit.signal, exit.coreDumped ?? false, exit.message ?? '');
  } catch {
    // a signal name ssh2 does not know: the channel ends without one, as with a dropped upstream
  }
  agent.end();
}
