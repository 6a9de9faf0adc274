/**
 * The capture plan → iptables-restore / ip6tables-restore text. Pure.
 *
 * IPv4, table nat, chain AIRLOCK-OUTPUT (jumped to from OUTPUT for TCP):
 *   - the sidecar's UID and loopback destinations return untouched;
 *   - a target port used by one connection: every TCP connection to that port is redirected to
 *     the connection's listen port (the agent may use the Service name, its IP or a pod IP);
 *   - a target port shared by several connections: per resolved destination address, to each
 *     connection's listen port (the sidecar cannot read the original destination, so each
 *     connection has its own listener).
 * IPv4, table filter, chain AIRLOCK-OUTPUT: after nat, anything still headed to a target port
 * (another address on a shared port, a packet nat did not see), or to a port where a target's
 * endpoints listen (a Service's targetPort, dialled at a backend pod's address), is rejected with
 * a TCP reset, so nothing reaches a target unproxied.
 * IPv6, table filter: the sidecar listens on IPv4 loopback only, so TCP to the target ports is
 * rejected for every UID but the sidecar's (clients fall back to IPv4).
 */
import { formatRedirect, formatReject, isIPv4, isIPv6, type CapturePlan, type CaptureTarget } from './plan.ts';

export const CAPTURE_CHAIN = 'AIRLOCK-OUTPUT';

export interface CaptureRules {
  readonly ipv4: string;
  readonly ipv6: string;
  /** targets that could not be captured as asked (an address claimed twice, an IPv6-only target) */
  readonly notes: readonly string[];
}

/** target ports used by more than one target of the plan */
export function sharedPorts(plan: CapturePlan): ReadonlySet<number> {
  const count = new Map<number, number>();
  for (const t of plan.targets) count.set(t.port, (count.get(t.port) ?? 0) + 1);
  return new Set([...count].filter(([, n]) => n > 1).map(([p]) => p));
}

/** host names whose IPv4 addresses the rules need: hosts (not IP literals) of targets on a shared port */
export function hostsToResolve(plan: CapturePlan): readonly string[] {
  const shared = sharedPorts(plan);
  return [...new Set(plan.targets.filter((t) => shared.has(t.port) && !isIPv4(t.host) && !isIPv6(t.host)).map((t) => t.host))].sort();
}

function comment(t: CaptureTarget): string {
  return `-m comment --comment "airlock ${t.connection}"`;
}

function ports(plan: CapturePlan): number[] {
  return [...new Set(plan.targets.map((t) => t.port))].sort((a, b) => a - b);
}

function header(family: string, plan: CapturePlan): string[] {
  const rejected = (plan.rejects ?? []).map(formatReject);
  return [`# airlock capture (${family}): sidecar uid ${plan.sidecarUid}; redirect ${plan.targets.map(formatRedirect).join(' ')}${rejected.length > 0 ? `; reject ${rejected.join(' ')}` : ''}`];
}

function chainStart(plan: CapturePlan, loopback: string): string[] {
  return [
    `:${CAPTURE_CHAIN} - [0:0]`,
    `-A OUTPUT -p tcp -j ${CAPTURE_CHAIN}`,
    `-A ${CAPTURE_CHAIN} -m owner --uid-owner ${plan.sidecarUid} -j RETURN`,
    `-A ${CAPTURE_CHAIN} -d ${loopback} -j RETURN`,
  ];
}

function rejects(plan: CapturePlan): string[] {
  // only new connections (and packets conntrack cannot place): replies of connections the pod
  // accepted may come from any port, the target ports included
  const all = [...new Set([...ports(plan), ...(plan.rejects ?? []).map((r) => r.port)])].sort((a, b) => a - b);
  return all.map((p) => `-A ${CAPTURE_CHAIN} -p tcp --dport ${p} -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset`);
}

/**
 * @param addresses IPv4 addresses of each name in hostsToResolve(plan) (a missing name is an
 *   error: capturing it by address is impossible without them)
 */
export function captureRules(plan: CapturePlan, addresses: ReadonlyMap<string, readonly string[]>): CaptureRules {
  const shared = sharedPorts(plan);
  const notes: string[] = [];
  const nat: string[] = [];
  const claimed = new Map<string, string>();
  for (const t of plan.targets) {
    if (!shared.has(t.port)) continue;
    let ips: readonly string[];
    if (isIPv4(t.host)) ips = [t.host];
    else if (isIPv6(t.host)) ips = [];
    else {
      const found = addresses.get(t.host);
      if (found === undefined) throw new Error(`captureRules: no addresses given for ${t.host}`);
      ips = found.filter(isIPv4);
    }
    if (ips.length === 0) notes.push(`${t.connection}: ${t.host} has no IPv4 address; its port ${t.port} is shared, so it cannot be captured (connections to it are refused)`);
    for (const ip of [...new Set(ips)].sort()) {
      const owner = claimed.get(`${ip}:${t.port}`);
      if (owner !== undefined) {
        notes.push(`${t.connection}: ${ip}:${t.port} is already captured for ${owner}; the agent reaches ${t.connection} only at 127.0.0.1:${t.listenPort}`);
        continue;
      }
      claimed.set(`${ip}:${t.port}`, t.connection);
      nat.push(`-A ${CAPTURE_CHAIN} -d ${ip}/32 -p tcp --dport ${t.port} ${comment(t)} -j REDIRECT --to-ports ${t.listenPort}`);
    }
  }
  for (const t of plan.targets) {
    if (shared.has(t.port)) continue;
    if (isIPv6(t.host)) notes.push(`${t.connection}: ${t.host} is an IPv6 address; the sidecar listens on IPv4 loopback only, so the agent must use 127.0.0.1:${t.listenPort}`);
    nat.push(`-A ${CAPTURE_CHAIN} -p tcp --dport ${t.port} ${comment(t)} -j REDIRECT --to-ports ${t.listenPort}`);
  }
  const ipv4 = [
    ...header('IPv4', plan),
    '*nat',
    ...chainStart(plan, '127.0.0.0/8'),
    ...nat,
    'COMMIT',
    '*filter',
    ...chainStart(plan, '127.0.0.0/8'),
    ...rejects(plan),
    'COMMIT',
    '',
  ].join('\n');
  const ipv6 = [...header('IPv6', plan), '*filter', ...chainStart(plan, '::1/128'), ...rejects(plan), 'COMMIT', ''].join('\n');
  return { ipv4, ipv6, notes };
}
