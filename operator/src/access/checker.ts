/**
 * Who besides Airlock can read a connection's credentials Secret: every ServiceAccount of the
 * connection's namespace is asked about with a SubjectAccessReview (get, list, watch of that
 * Secret). An agent running as such an account could read the credentials itself and bypass the
 * sidecar, so the connection's status says so.
 *
 * Answers are cached per Secret and asked again after `periodMs`; `readers` never waits: it
 * returns what is known (undefined until the first answer) and schedules a check, whose result,
 * when it changed, enqueues the namespace's connections through `onChange`.
 */
import { V1ResourceAttributes, V1SubjectAccessReview, V1SubjectAccessReviewSpec } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';

const VERBS = ['get', 'list', 'watch'] as const;

export interface CredentialReader {
  /** the ServiceAccount's name (in the connection's namespace) */
  readonly serviceAccount: string;
  /** what it may do with the Secret */
  readonly verbs: readonly string[];
}

interface Entry {
  readonly readers: readonly CredentialReader[];
  readonly checkedAt: number;
}

export interface CredentialAccessOptions {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  /** how long an answer is trusted before it is asked again */
  readonly periodMs: number;
  /** called with the namespace whose answer changed */
  readonly onChange: (namespace: string) => void;
}

export class CredentialAccess {
  readonly #o: CredentialAccessOptions;
  readonly #cache = new Map<string, Entry>();
  readonly #inflight = new Set<string>();
  #stopped = false;

  constructor(options: CredentialAccessOptions) {
    this.#o = options;
  }

  /** the ServiceAccounts that can read `namespace/secret`, as last checked; undefined before the first answer */
  readers(namespace: string, secret: string): readonly CredentialReader[] | undefined {
    const key = `${namespace}/${secret}`;
    const entry = this.#cache.get(key);
    if (entry === undefined || this.#o.clock.now() - entry.checkedAt >= this.#o.periodMs) this.#schedule(namespace, secret, key);
    return entry?.readers;
  }

  stop(): void {
    this.#stopped = true;
  }

  #schedule(namespace: string, secret: string, key: string): void {
    if (this.#stopped || this.#inflight.has(key)) return;
    this.#inflight.add(key);
    this.#check(namespace, secret)
      .then((readers) => {
        const before = this.#cache.get(key);
        this.#cache.set(key, { readers, checkedAt: this.#o.clock.now() });
        if (before === undefined || JSON.stringify(before.readers) !== JSON.stringify(readers)) this.#o.onChange(namespace);
      })
      .catch((err: unknown) => {
        // unknown stays unknown (the condition says so); asked again on the next reconcile
        this.#o.log.warn('cannot check who may read a credentials Secret', { namespace, secret, error: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => {
        this.#inflight.delete(key);
      });
  }

  async #check(namespace: string, secret: string): Promise<CredentialReader[]> {
    const accounts = await this.#o.kube.core.listNamespacedServiceAccount({ namespace });
    const names = accounts.items.map((a) => a.metadata?.name ?? '').filter((n) => n !== '').sort();
    const readers: CredentialReader[] = [];
    for (const name of names) {
      const verbs: string[] = [];
      for (const verb of VERBS) {
        const body = Object.assign(new V1SubjectAccessReview(), {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: Object.assign(new V1SubjectAccessReviewSpec(), {
            user: `system:serviceaccount:${namespace}:${name}`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
            resourceAttributes: Object.assign(new V1ResourceAttributes(), { namespace, verb, resource: 'secrets', name: secret }),
          }),
        });
        const review = await this.#o.kube.authorization.createSubjectAccessReview({ body });
        if (review.status?.allowed === true) verbs.push(verb);
      }
      if (verbs.length > 0) readers.push({ serviceAccount: name, verbs });
    }
    return readers;
  }
}
