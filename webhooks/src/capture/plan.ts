/**
 * The capture plan: what the `airlock-capture` init container redirects, and its command-line
 * form. The webhook writes the arguments (captureArgs) and `airlock capture` reads them back
 * (parseCaptureArgs); one module owns both directions so they cannot drift. Pure.
 *
 *   airlock capture --sidecar-uid <uid> --redirect <connection>=<host>:<port>:<listenPort> [--redirect ...]
 *                   [--reject <connection>=<port> ...]
 *
 * `<host>` is a DNS name, an IPv4 address, or an IPv6 address in brackets ([fd00::1]).
 */

export interface CaptureTarget {
  /** AgentConnection name (rule comments and output only) */
  readonly connection: string;
  /** the target's host as the AgentConnection names it */
  readonly host: string;
  /** the target's TCP port: the agent's outbound connections to it are redirected */
  readonly port: number;
  /** the sidecar's loopback port for this connection */
  readonly listenPort: number;
}

/**
 * A port where a target's own endpoints listen other than its port (a Service's targetPort: the
 * agent could dial a backend pod's address on it directly). New connections to it are refused.
 */
export interface CaptureReject {
  readonly connection: string;
  readonly port: number;
}

export interface CapturePlan {
  /** the sidecar's UID: its own traffic is never redirected */
  readonly sidecarUid: number;
  readonly targets: readonly CaptureTarget[];
  readonly rejects?: readonly CaptureReject[];
}

export type CaptureErrorCode = 'InvalidArgument' | 'MissingArgument' | 'ResolveFailed' | 'ApplyFailed';

export class CaptureError extends Error {
  readonly code: CaptureErrorCode;
  constructor(code: CaptureErrorCode, message: string) {
    super(message);
    this.name = 'CaptureError';
    this.code = code;
  }
}

const CONNECTION = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_]([-A-Za-z0-9_]{0,62})?(\.[A-Za-z0-9_]([-A-Za-z0-9_]{0,62})?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const REDIRECT = /^([^=]+)=(\[[^\]]+\]|[^:[\]]+):(\d{1,5}):(\d{1,5})$/;
const REJECT = /^([^=]+)=(\d{1,5})$/;

export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** a plausible IPv6 literal (hex groups, `::`, optional dotted IPv4 tail); the kernel is the final judge */
export function isIPv6(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':')) return false;
  const dbl = text.split('::').length - 1;
  if (dbl > 1) return false;
  const groups = text.split(':').filter((g) => g !== '');
  const tail = groups.at(-1);
  const v4tail = tail !== undefined && tail.includes('.');
  if (v4tail && !isIPv4(tail)) return false;
  const hex = v4tail ? groups.slice(0, -1) : groups;
  if (!hex.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  const width = hex.length + (v4tail ? 2 : 0);
  return dbl === 1 ? width <= 7 : width === 8;
}

function port(text: string, what: string, spec: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CaptureError('InvalidArgument', `--redirect ${spec}: ${what} must be 1-65535 (got ${text})`);
  return n;
}

/** `<connection>=<host>:<port>:<listenPort>` → CaptureTarget */
export function parseRedirect(spec: string): CaptureTarget {
  const m = REDIRECT.exec(spec);
  if (m === null) throw new CaptureError('InvalidArgument', `--redirect ${spec}: expected <connection>=<host>:<port>:<listenPort>, e.g. orders-db=orders-db.databases.svc:5432:15432 (IPv6 hosts in brackets)`);
  const [, connection = '', rawHost = '', p = '', l = ''] = m;
  if (!CONNECTION.test(connection)) throw new CaptureError('InvalidArgument', `--redirect ${spec}: "${connection}" is not an AgentConnection name`);
  const bracketed = rawHost.startsWith('[');
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  if (bracketed ? !isIPv6(host) : !(isIPv4(host) || HOSTNAME.test(host))) throw new CaptureError('InvalidArgument', `--redirect ${spec}: "${rawHost}" is not a host name, an IPv4 address or a bracketed IPv6 address`);
  return { connection, host, port: port(p, 'the target port', spec), listenPort: port(l, 'the listen port', spec) };
}

/** `<connection>=<port>` → CaptureReject */
export function parseReject(spec: string): CaptureReject {
  const m = REJECT.exec(spec);
  if (m === null) throw new CaptureError('InvalidArgument', `--reject ${spec}: expected <connection>=<port>, e.g. bastion=2222`);
  const [, connection = '', p = ''] = m;
  if (!CONNECTION.test(connection)) throw new CaptureError('InvalidArgument', `--reject ${spec}: "${connection}" is not an AgentConnection name`);
  return { connection, port: port(p, 'the port', spec) };
}

export function formatReject(r: CaptureReject): string {
  return `${r.connection}=${r.port}`;
}

export function formatRedirect(t: CaptureTarget): string {
  return `${t.connection}=${isIPv6(t.host) ? `[${t.host}]` : t.host}:${t.port}:${t.listenPort}`;
}

/** the arguments of `airlock capture` (after the command name) for a plan */
export function captureArgs(plan: CapturePlan): string[] {
  return ['--sidecar-uid', String(plan.sidecarUid), ...plan.targets.flatMap((t) => ['--redirect', formatRedirect(t)]), ...(plan.rejects ?? []).flatMap((r) => ['--reject', formatReject(r)])];
}

/** checks a plan: a UID, at least one target, no listen port used twice for different targets, rejects only of its connections */
export function validatePlan(plan: CapturePlan): CapturePlan {
  if (!Number.isInteger(plan.sidecarUid) || plan.sidecarUid < 1 || plan.sidecarUid > 2147483647) throw new CaptureError('InvalidArgument', `--sidecar-uid must be a non-root UID (1-2147483647), got ${plan.sidecarUid}`);
  if (plan.targets.length === 0) throw new CaptureError('MissingArgument', 'at least one --redirect <connection>=<host>:<port>:<listenPort> is required');
  const seen = new Map<number, string>();
  for (const t of plan.targets) {
    const other = seen.get(t.listenPort);
    if (other !== undefined && other !== t.connection) throw new CaptureError('InvalidArgument', `--redirect: connections ${other} and ${t.connection} both use listen port ${t.listenPort}`);
    seen.set(t.listenPort, t.connection);
  }
  const names = new Set(plan.targets.map((t) => t.connection));
  for (const r of plan.rejects ?? []) {
    if (!names.has(r.connection)) throw new CaptureError('InvalidArgument', `--reject ${formatReject(r)}: ${r.connection} has no --redirect`);
  }
  return plan;
}
