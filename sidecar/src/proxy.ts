/** What every protocol's proxy takes and returns; the CLI's `airlock sidecar` builds these. */
import type { PolicyBundle } from '@airlock/policy';
import type { ApprovalPort } from './approval/port.ts';
import type { UpstreamConfig } from './config.ts';
import type { Logger } from './log.ts';

export interface ProxyOptions {
  /** the compiled policy; undefined means none could be loaded, and every statement is refused */
  readonly bundle: PolicyBundle | undefined;
  readonly upstream: UpstreamConfig;
  /** loopback address to listen on; port 0 picks a free one */
  readonly listen: { readonly host: string; readonly port: number };
  /** recordings go to `<recordingsDir>/<connection>/` */
  readonly recordingsDir: string;
  readonly approvals: ApprovalPort;
  readonly log: Logger;
  /** who the agent is, when known (cluster mode: from the downward API) */
  readonly pod?: string;
  readonly serviceAccount?: string;
}

export interface RunningProxy {
  readonly host: string;
  readonly port: number;
  /** stops listening, ends every session (their recordings are closed) and resolves when done */
  close(): Promise<void>;
}
