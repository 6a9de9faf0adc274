/** What every channel handler of one SSH session shares. */
import type { Client } from 'ssh2';
import type { SessionOptions } from '../proxy.ts';
import type { Logger } from '../log.ts';
import type { AuthorizeContext, Counters } from './authorize.ts';
import type { SessionRecorder } from './recorder.ts';

export interface SessionContext {
  /** the policy and upstream as they were when the session started (its upstream connection, channel permissions) */
  readonly options: SessionOptions;
  readonly recorder: SessionRecorder;
  readonly counters: Counters & { refused: number; sftpOps: number };
  readonly log: Logger;
  readonly auth: AuthorizeContext;
  /** the upstream connection; rejects with a SidecarError when it cannot be had */
  upstream(): Promise<Client>;
  /** aborted when the agent's connection ends */
  readonly signal: AbortSignal;
  nextChannel(): number;
}
