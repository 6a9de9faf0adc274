/**
 * `POST /v1/certificates`: what a sidecar presents to its agent. For the pod's granted postgres
 * connections, a TLS leaf for the targets' names on the sidecar's own public key, signed by
 * Airlock's CA (AGENT_CERT_VALIDITY_MS); for its granted ssh connections, the namespace's Airlock
 * SSH host key. The plan (which names, which key) is pure; issuance is the certs module's.
 */
import type { AgentCertificates, AgentConnection, CertificateAsk, PodIdentity } from '@airlock/api';
import type { Clock } from '@airlock/kube';
import { AGENT_CERT_VALIDITY_MS, agentServingNames, renewAt, sshHostPatterns } from '../certs/agent.ts';
import { CertificateError } from '../certs/errors.ts';
import { issueCertificateForKey, type ServingNames } from '../certs/issue.ts';
import { deriveSshHostKey } from '../certs/ssh-key.ts';
import { ControlFailure } from './errors.ts';

/** where the signing material comes from (the certificate manager's cache) */
export interface AgentSigningSource {
  agentSigner(): { readonly cert: string; readonly key: string } | undefined;
  agentCaBundle(): string;
  sshSeed(): Uint8Array | undefined;
}

const MAX_KEY_CHARS = 4096;

/** the body of POST /v1/certificates, or InvalidBody naming the field */
export function parseCertificateAsk(body: unknown): CertificateAsk {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ControlFailure('InvalidBody', 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'tlsPublicKey') throw new ControlFailure('InvalidBody', `unknown field "${k}"`);
  const key = b['tlsPublicKey'];
  if (key === undefined) return {};
  if (typeof key !== 'string' || !key.includes('-----BEGIN PUBLIC KEY-----') || key.length > MAX_KEY_CHARS) {
    throw new ControlFailure('InvalidBody', 'tlsPublicKey must be a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") of at most 4096 characters');
  }
  return { tlsPublicKey: key };
}

/**
 * The names no agent-facing certificate may carry: those of Services in Airlock's own namespace.
 * The same CA signs the webhook's and the control API's serving certificates, which the API server
 * and the sidecars trust; an AgentConnection aimed at `airlock-webhook.<namespace>.svc` must not
 * yield a certificate that could stand in for them.
 */
export function withoutReserved(names: ServingNames, reservedNamespace: string | undefined): ServingNames {
  if (reservedNamespace === undefined) return names;
  return { dnsNames: names.dnsNames.filter((n) => n.split('.')[1] !== reservedNamespace), ipAddresses: names.ipAddresses };
}

export class AgentCertificateService {
  readonly #source: AgentSigningSource;
  readonly #clock: Clock;
  readonly #validityMs: number;
  readonly #reserved: string | undefined;

  constructor({ source, clock, validityMs = AGENT_CERT_VALIDITY_MS, reservedNamespace }: { readonly source: AgentSigningSource; readonly clock: Clock; readonly validityMs?: number; readonly reservedNamespace?: string }) {
    this.#source = source;
    this.#clock = clock;
    this.#validityMs = validityMs;
    this.#reserved = reservedNamespace;
  }

  async issue(pod: PodIdentity, granted: readonly AgentConnection[], ask: CertificateAsk): Promise<AgentCertificates> {
    const out: { tls?: AgentCertificates['tls']; ssh?: AgentCertificates['ssh'] } = {};
    const names = withoutReserved(agentServingNames(granted), this.#reserved);
    if (ask.tlsPublicKey !== undefined && (names.dnsNames.length > 0 || names.ipAddresses.length > 0)) {
      const ca = this.#source.agentSigner();
      if (ca === undefined) throw new ControlFailure('Unavailable', `Airlock's CA (Secret airlock-ca) is not there yet, or certificates are managed by cert-manager: no agent-facing certificate can be issued`);
      const now = this.#clock.now();
      try {
        const issued = await issueCertificateForKey({ ca, publicKeyPem: ask.tlsPublicKey, names, now, validityMs: this.#validityMs });
        out.tls = {
          cert: issued.cert,
          ca: this.#source.agentCaBundle(),
          dnsNames: names.dnsNames,
          ipAddresses: names.ipAddresses,
          notAfter: new Date(issued.notAfter).toISOString(),
          renewAt: new Date(renewAt(now, issued.notAfter)).toISOString(),
        };
      } catch (err) {
        if (err instanceof CertificateError && err.code === 'InvalidKey' && err.message.startsWith('the public key')) throw new ControlFailure('InvalidBody', `tlsPublicKey: ${err.message}`, { cause: err });
        throw err;
      }
    }
    const patterns = sshHostPatterns(granted);
    if (patterns.length > 0) {
      const seed = this.#source.sshSeed();
      if (seed === undefined) throw new ControlFailure('Unavailable', 'the SSH host key seed (Secret airlock-ssh-host-key) is not there yet');
      const key = deriveSshHostKey(seed, pod.namespace);
      out.ssh = { hostKey: key.privateKey, publicKey: key.publicKey, hostNames: patterns };
    }
    return out;
  }
}
