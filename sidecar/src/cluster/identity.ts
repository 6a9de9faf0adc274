/**
 * What the sidecar presents to its agent in cluster mode, from the operator (`POST
 * /v1/certificates`): a TLS certificate for the postgres targets' names on a key generated here
 * (the private key never leaves the process), and the namespace's Airlock SSH host key. Asked at
 * start, renewed at two thirds of the certificate's life, asked again when the bundle's targets
 * change, retried with backoff while the operator cannot answer. Until one arrives (or once it
 * has expired) the proxies behave as without it: TLS declined, a generated SSH host key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { AgentCertificates } from '@airlock/api';
import type { Logger } from '../log.ts';
import type { ControlClient } from './client.ts';

export interface Issued {
  readonly certs: AgentCertificates;
  /** ms since the epoch; undefined: no TLS certificate (no postgres target) */
  readonly renewAt: number | undefined;
  readonly notAfter: number | undefined;
}

/** longest wait between two asks: a day (the SSH key alone never expires, but targets may change) */
const MAX_WAIT_MS = 24 * 3_600_000;

/** when to ask next; pure */
export function nextAskIn(now: number, issued: Issued | undefined, failures: number, retryMs: number): number {
  if (failures > 0) {
    const backoff = Math.min(retryMs * 2 ** (failures - 1), 60_000);
    // an expiring certificate is retried at least as eagerly
    return backoff;
  }
  if (issued?.renewAt === undefined) return MAX_WAIT_MS;
  return Math.max(1000, Math.min(MAX_WAIT_MS, issued.renewAt - now));
}

/** parses an answer's times; pure */
export function issuedFrom(certs: AgentCertificates): Issued {
  const renewAt = certs.tls === undefined ? undefined : Date.parse(certs.tls.renewAt);
  const notAfter = certs.tls === undefined ? undefined : Date.parse(certs.tls.notAfter);
  return { certs, renewAt: Number.isNaN(renewAt) ? undefined : renewAt, notAfter: Number.isNaN(notAfter) ? undefined : notAfter };
}

export interface AgentIdentityOptions {
  readonly client: Pick<ControlClient, 'certificates'>;
  readonly log: Logger;
  /** first retry delay (doubles up to 60 s); default 1 s */
  readonly retryMs?: number;
  readonly now?: () => number;
}

export class AgentIdentity {
  readonly #o: AgentIdentityOptions;
  readonly #key: string;
  readonly #publicPem: string;
  readonly #abort = new AbortController();
  #issued: Issued | undefined;
  #context: SecureContext | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #asking: Promise<void> | undefined;
  #stopped = false;

  constructor(options: AgentIdentityOptions) {
    this.#o = options;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.#publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** asks once; resolves when that first ask is answered or failed (then retries in the background) */
  start(): Promise<void> {
    return this.#ask();
  }

  /** ask again now (the bundle's targets changed) */
  refresh(): Promise<void> {
    return this.#ask();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  /** the TLS context to present, while a certificate is valid */
  tlsContext(): SecureContext | undefined {
    const notAfter = this.#issued?.notAfter;
    if (notAfter === undefined || notAfter <= this.#now()) return undefined;
    return this.#context;
  }

  sshHostKey(): string | undefined {
    return this.#issued?.certs.ssh?.hostKey;
  }

  /** the last answer (tests, logs) */
  get issued(): AgentCertificates | undefined {
    return this.#issued?.certs;
  }

  /** read through a method: it changes across awaits */
  #isStopped(): boolean {
    return this.#stopped;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  #ask(): Promise<void> {
    this.#asking ??= this.#askOnce().finally(() => {
      this.#asking = undefined;
    });
    return this.#asking;
  }

  async #askOnce(): Promise<void> {
    if (this.#stopped) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const { log } = this.#o;
    try {
      const certs = await this.#o.client.certificates({ tlsPublicKey: this.#publicPem }, this.#abort.signal);
      const issued = issuedFrom(certs);
      this.#context = certs.tls === undefined ? undefined : createSecureContext({ key: this.#key, cert: certs.tls.cert, minVersion: 'TLSv1.2' });
      this.#issued = issued;
      if (this.#failures > 0) log.info('the control API issues certificates again');
      this.#failures = 0;
      log.info('agent-facing certificates received', {
        tls: certs.tls === undefined ? null : { names: [...certs.tls.dnsNames, ...certs.tls.ipAddresses], notAfter: certs.tls.notAfter },
        ssh: certs.ssh === undefined ? null : { hostNames: certs.ssh.hostNames },
      });
    } catch (err) {
      if (this.#isStopped()) return;
      if (this.#failures === 0) {
        log.warn('cannot get the agent-facing certificates: agents cannot verify the sidecar until they arrive (TLS is declined, the SSH host key is a generated one)', { error: (err as Error).message });
      }
      this.#failures++;
    }
    if (this.#isStopped()) return;
    const wait = nextAskIn(this.#now(), this.#issued, this.#failures, this.#o.retryMs ?? 1000);
    this.#timer = setTimeout(() => {
      void this.#ask();
    }, wait);
    this.#timer.unref();
  }
}
