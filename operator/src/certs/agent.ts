/**
 * What agents trust through the sidecar, as pure plans: the names a sidecar's agent-facing TLS
 * certificate carries (its granted postgres connections' target hosts, with their Service forms),
 * the names its SSH host key is pinned for, the known_hosts text and the trust bundle of the
 * ConfigMap AGENT_TRUST in the agents' namespace. No I/O.
 */
import { isIP } from 'node:net';
import { AGENT_TRUST, type AgentConnection } from '@airlock/api';
import type { ServingNames } from './issue.ts';
import { CA_KEYS } from './plan.ts';

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** agent-facing TLS certificates live a day; the sidecar renews at two thirds */
export const AGENT_CERT_VALIDITY_MS = 24 * 3_600_000;

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The names an agent may use for `host`: the host itself (lower case) and, when it names a
 * Service (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<domain>`; a bare `svc` is in the
 * connection's namespace), every other form of that Service's name. An IP address stays alone.
 */
export function targetNames(host: string, namespace: string, clusterDomain = DEFAULT_CLUSTER_DOMAIN): ServingNames {
  const h = host.trim().toLowerCase().replace(/\.$/, '');
  if (h === '') return { dnsNames: [], ipAddresses: [] };
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (isIP(bare) !== 0) return { dnsNames: [], ipAddresses: [bare] };
  const labels = h.split('.');
  const suffix = `.svc.${clusterDomain}`;
  let service: { name: string; ns: string } | undefined;
  if (labels.length === 1) service = { name: h, ns: namespace };
  else if (labels.length === 2) service = { name: labels[0] ?? '', ns: labels[1] ?? '' };
  else if (labels.length === 3 && labels[2] === 'svc') service = { name: labels[0] ?? '', ns: labels[1] ?? '' };
  else if (h.endsWith(suffix) && labels.length === 3 + clusterDomain.split('.').length) service = { name: labels[0] ?? '', ns: labels[1] ?? '' };
  if (service === undefined || !LABEL.test(service.name) || !LABEL.test(service.ns)) return { dnsNames: [h], ipAddresses: [] };
  const forms = [service.name, `${service.name}.${service.ns}`, `${service.name}.${service.ns}.svc`, `${service.name}.${service.ns}${suffix}`];
  // a bare name in another namespace than the agent's does not resolve to this Service
  const dnsNames = [h, ...forms.filter((f) => f !== h && (f !== service.name || service.ns === namespace))];
  return { dnsNames, ipAddresses: [] };
}

function union(all: readonly ServingNames[]): ServingNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const n of all) {
    for (const d of n.dnsNames) if (!dnsNames.includes(d)) dnsNames.push(d);
    for (const i of n.ipAddresses) if (!ipAddresses.includes(i)) ipAddresses.push(i);
  }
  return { dnsNames, ipAddresses };
}

const namespaceOf = (c: AgentConnection): string => c.metadata.namespace ?? 'default';

/** SANs of a sidecar's agent-facing TLS certificate: the postgres targets among `granted` */
export function agentServingNames(granted: readonly AgentConnection[], clusterDomain = DEFAULT_CLUSTER_DOMAIN): ServingNames {
  return union(granted.filter((c) => c.spec.protocol === 'postgres').map((c) => targetNames(c.spec.target.host, namespaceOf(c), clusterDomain)));
}

/**
 * Host patterns of the ssh targets among `connections`, as known_hosts writes them: every name
 * form, and `[name]:port` when the port is not 22 (OpenSSH looks a non-standard port up that way).
 */
export function sshHostPatterns(connections: readonly AgentConnection[], clusterDomain = DEFAULT_CLUSTER_DOMAIN): string[] {
  const out: string[] = [];
  for (const c of connections.filter((x) => x.spec.protocol === 'ssh')) {
    const names = targetNames(c.spec.target.host, namespaceOf(c), clusterDomain);
    const port = c.spec.target.port;
    for (const n of [...names.dnsNames, ...names.ipAddresses]) {
      const pattern = port === 22 ? n : `[${n}]:${String(port)}`;
      if (!out.includes(pattern)) out.push(pattern);
    }
  }
  return out.sort();
}

/** known_hosts text: one line pinning `publicKey` (`<type> <base64>`) for the patterns; empty without patterns */
export function knownHostsText(patterns: readonly string[], publicKey: string): string {
  if (patterns.length === 0) return '';
  return `# Airlock: the sidecar answers for these targets with the namespace's Airlock SSH host key\n${patterns.join(',')} ${publicKey}\n`;
}

/** the certificates agents trust, from the CA Secret's data: the active CA, and during a rotation the next and previous ones */
export function agentCaBundle(caData: Readonly<Record<string, string>>): string {
  const pems = [caData[CA_KEYS.cert], caData[CA_KEYS.nextCert], caData[CA_KEYS.previousCert]].filter((p): p is string => p !== undefined && p.trim() !== '');
  return pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

/** the data of ConfigMap AGENT_TRUST in a namespace */
export function agentTrustData(bundle: string, knownHosts: string): Record<string, string> {
  return { [AGENT_TRUST.caKey]: bundle, [AGENT_TRUST.knownHostsKey]: knownHosts };
}

/** when a certificate issued at `now` and expiring at `notAfter` should be asked again: at two thirds of its life */
export function renewAt(now: number, notAfter: number): number {
  return now + Math.floor(((notAfter - now) * 2) / 3);
}
