/**
 * Which informer events of a reconciled kind matter to the reconciles. Our own status writes come
 * back as updates; an update that changed only status (and resourceVersion, managedFields) changes
 * nothing that a status is computed from: not the object's spec (its generation), labels or
 * annotations. Enqueueing on it would reconcile the object again, and every object depending on
 * it, for nothing (1,000 connections: thousands of extra reconciles while the first writes land).
 * Someone else's edit of a status is set right by the next resync. Pure (no I/O); remembers one
 * short fingerprint per object.
 */
import type { InformerEvent } from '@airlock/kube';

export interface ObjectMetaLike {
  readonly metadata?: {
    readonly namespace?: string;
    readonly name?: string;
    readonly uid?: string;
    readonly generation?: number;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly deletionTimestamp?: unknown;
  };
}

function fingerprint(object: ObjectMetaLike): string {
  const m = object.metadata ?? {};
  return JSON.stringify([m.uid, m.generation, m.labels ?? null, m.annotations ?? null, m.deletionTimestamp !== undefined && m.deletionTimestamp !== null]);
}

export class MeaningfulChanges {
  readonly #seen = new Map<string, string>();

  /** true when the event may change a computed status: an add, a delete, or an update beyond status */
  matters(event: InformerEvent, object: ObjectMetaLike): boolean {
    const key = `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
    if (event === 'delete') {
      this.#seen.delete(key);
      return true;
    }
    const next = fingerprint(object);
    const before = this.#seen.get(key);
    this.#seen.set(key, next);
    return event === 'add' || before !== next;
  }

  /** objects remembered */
  get size(): number {
    return this.#seen.size;
  }
}
