/**
 * The HMAC key of recorded decisions: Secret APPROVAL_KEY_SECRET (data.key, 32 random bytes) in
 * Airlock's namespace. The webhook signs with it (mounted as a file); the operator verifies. The
 * leader creates it when absent; every replica reads it, cached for a minute.
 */
import { randomBytes } from 'node:crypto';
import { APPROVAL_KEY_SECRET, COMPONENT_LABEL, COMPONENT_VALUE } from '@airlock/api';
import { V1ObjectMeta, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import { apiStatus, errorText } from './errors.ts';

export const APPROVAL_KEY_BYTES = 32;
const CACHE_MS = 60_000;

/** the key in a Secret, or undefined when it has none of at least 32 bytes */
export function keyOf(secret: V1Secret | undefined): Uint8Array | undefined {
  const b64 = secret?.data?.['key'];
  if (b64 === undefined) return undefined;
  const key = Buffer.from(b64, 'base64');
  return key.length >= APPROVAL_KEY_BYTES ? new Uint8Array(key) : undefined;
}

export function approvalKeySecret(namespace: string, key: Uint8Array): V1Secret {
  return Object.assign(new V1Secret(), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: Object.assign(new V1ObjectMeta(), { name: APPROVAL_KEY_SECRET, namespace, labels: { [COMPONENT_LABEL]: COMPONENT_VALUE } }),
    type: 'Opaque',
    data: { key: Buffer.from(key).toString('base64') },
  });
}

export class ApprovalKeyStore {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #namespace: string;
  #cached: { readonly key: Uint8Array; readonly at: number } | undefined;

  constructor({ kube, clock, log, namespace }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly namespace: string }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#namespace = namespace;
  }

  /** the key last read, without I/O (undefined until a get() succeeded) */
  current(): Uint8Array | undefined {
    return this.#cached?.key;
  }

  /** the key, or undefined when the Secret is absent or unreadable (nothing verifies then) */
  async get(): Promise<Uint8Array | undefined> {
    if (this.#cached !== undefined && this.#clock.now() - this.#cached.at < CACHE_MS) return this.#cached.key;
    try {
      const key = keyOf(await this.#kube.core.readNamespacedSecret({ name: APPROVAL_KEY_SECRET, namespace: this.#namespace }));
      if (key === undefined) this.#log.warn('approval key Secret has no usable data.key', { namespace: this.#namespace, secret: APPROVAL_KEY_SECRET });
      else this.#cached = { key, at: this.#clock.now() };
      return key;
    } catch (err) {
      if (apiStatus(err) !== 404) this.#log.warn('approval key Secret not readable', { namespace: this.#namespace, error: errorText(err) });
      return this.#cached?.key;
    }
  }

  /** leader only: the key, creating the Secret with 32 random bytes when it does not exist */
  async ensure(): Promise<Uint8Array> {
    const existing = await this.get();
    if (existing !== undefined) return existing;
    const key = new Uint8Array(randomBytes(APPROVAL_KEY_BYTES));
    try {
      await this.#kube.core.createNamespacedSecret({ namespace: this.#namespace, body: approvalKeySecret(this.#namespace, key) });
      this.#log.info('approval key Secret created', { namespace: this.#namespace, secret: APPROVAL_KEY_SECRET });
      this.#cached = { key, at: this.#clock.now() };
      return key;
    } catch (err) {
      // another replica (or the chart) created it meanwhile: use that one
      if (apiStatus(err) !== 409) throw err;
      this.#cached = undefined;
      const created = await this.get();
      if (created === undefined) throw new Error(`Secret ${this.#namespace}/${APPROVAL_KEY_SECRET} exists without a usable data.key`, { cause: err });
      return created;
    }
  }
}
