/** What every protocol's proxy takes and returns; the CLI's `airlock sidecar` builds these. */
import type { PolicyBundle } from '@airlock/policy';
import type { ApprovalPort } from './approval/port.ts';
import type { UpstreamConfig } from './config.ts';
import type { Logger } from './log.ts';

/** What one statement or command is decided with: the compiled policy and the connection's target. */
export interface Enforcement {
  /** undefined: no usable policy (none loaded, or it does not compile): every statement is refused */
  readonly bundle: PolicyBundle | undefined;
  readonly upstream: UpstreamConfig;
  /** why `bundle` is undefined, for the agent's message (e.g. the compile error) */
  readonly unavailable?: string;
}

/**
 * The policy by reference. Sessions read `current()` at the start of each statement or command
 * (and a new session at its start), so a swap takes effect for the next statement of running
 * sessions while one in flight keeps what it started with. Local mode wraps its fixed bundle
 * (fixedPolicy); cluster mode swaps it as the operator's bundle changes.
 */
export interface PolicySource {
  /** the connection served (names recordings and messages when nothing is enforced) */
  readonly connection: { readonly name: string; readonly namespace: string };
  /** undefined: the connection cannot be served now; new sessions are refused at startup */
  current(): Enforcement | undefined;
  /** why `current()` is undefined, when known (the operator's reason, an upstream that does not resolve) */
  refusal?(): string | undefined;
}

/** A bundle that never changes (local mode). */
export function fixedPolicy(bundle: PolicyBundle | undefined, upstream: UpstreamConfig): PolicySource {
  const enforcement: Enforcement = { bundle, upstream };
  return { connection: { name: upstream.name, namespace: upstream.namespace }, current: () => enforcement };
}

/** The message of a statement or command refused for want of a policy. */
export function noPolicyMessage(source: PolicySource, e: Enforcement | undefined, what: string): string {
  const why = e?.unavailable ?? source.refusal?.();
  return `no policy is loaded for connection ${source.connection.name}${why !== undefined ? ` (${why})` : ''}: ${what}`;
}

/** Live counters of one session, for session reports (cluster mode). */
export interface SessionCounts {
  readonly statements: number;
  readonly rows: number;
  readonly maskedValues: number;
  readonly blocked: number;
  readonly approvals: number;
}

/** One running session as the proxy shows it to an observer (cluster mode reports it). */
export interface ObservedSession {
  /** the recording's session id */
  readonly id: string;
  readonly connection: string;
  readonly protocol: 'postgres' | 'ssh';
  readonly startTime: Date;
  /** path of the recording (`.jsonl`), when it is recorded */
  readonly recordingPath: string | undefined;
  counts(): SessionCounts;
  /** the hash-chain head and the number of records so far */
  head(): { readonly hash: string | undefined; readonly records: number };
  /** resolves once the session ended and its recording is closed */
  readonly closed: Promise<void>;
}

export interface SessionObserver {
  /** a session whose recording is open (called once per session, after session_start is recorded) */
  started(session: ObservedSession): void;
}

interface ProxyBase {
  /** loopback address to listen on; port 0 picks a free one */
  readonly listen: { readonly host: string; readonly port: number };
  /** recordings go to `<recordingsDir>/<connection>/` */
  readonly recordingsDir: string;
  readonly approvals: ApprovalPort;
  readonly log: Logger;
  /** who the agent is, when known (cluster mode: from the downward API) */
  readonly pod?: string;
  readonly serviceAccount?: string;
  /** told of every session (cluster mode: session reports) */
  readonly sessions?: SessionObserver;
}

/**
 * Either the policy by reference (`policy`), or a fixed bundle and upstream (local mode, and the
 * form tests use): `bundle` undefined means none could be loaded, and every statement is refused.
 */
export type ProxyOptions = ProxyBase & ({ readonly policy: PolicySource } | { readonly bundle: PolicyBundle | undefined; readonly upstream: UpstreamConfig });

/** What an SSH session's channels read: the proxy's options with the policy as it was when the session started. */
export type SessionOptions = ProxyBase & { readonly bundle: PolicyBundle | undefined; readonly upstream: UpstreamConfig };

/** The policy source of `options`. */
export function policyOf(options: ProxyOptions): PolicySource {
  return 'policy' in options ? options.policy : fixedPolicy(options.bundle, options.upstream);
}

export interface RunningProxy {
  readonly host: string;
  readonly port: number;
  /** stops listening, ends every session (their recordings are closed) and resolves when done */
  close(): Promise<void>;
}
