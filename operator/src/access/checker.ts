/**
 * Who besides Airlock can read a connection's credentials Secret: every ServiceAccount of the
 * connection's namespace is asked about with a SubjectAccessReview (get, list, watch of that
 * Secret). An agent running as such an account could read the credentials itself and bypass the
 * sidecar, so the connection's status says so.
 *
 * Answers are cached per Secret and asked again after `periodMs`; `readers` never waits: it
 * returns what is known (undefined until the first answer) and schedules a check, whose result,
 * when it changed, enqueues the connections of that Secret through `onChange`.
 *
 * A check is one ServiceAccount list and three reviews per account: 1,000 new connections would
 * be thousands of requests at once, competing with the status writes for the API server. So at
 * most `concurrency` checks run at a time (the others wait their turn, in order), and the checks
 * of one namespace share its ServiceAccount list while it is younger than a second.
 */
import { V1ResourceAttributes, V1SubjectAccessReview, V1SubjectAccessReviewSpec } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';

const VERBS = ['get', 'list', 'watch'] as const;

/** how long a namespace's ServiceAccount list is shared by the checks that need it */
const ACCOUNTS_REUSE_MS = 1000;

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
  /** checks running at once (default 4) */
  readonly concurrency?: number;
  /** called with the Secret whose answer changed (or came for the first time) */
  readonly onChange: (namespace: string, secret: string) => void;
}

export class CredentialAccess {
  readonly #o: CredentialAccessOptions;
  readonly #cache = new Map<string, Entry>();
  /** keys scheduled: waiting for their turn or being checked */
  readonly #inflight = new Set<string>();
  readonly #waiting: { readonly namespace: string; readonly secret: string; readonly key: string }[] = [];
  readonly #accounts = new Map<string, { readonly at: number; readonly names: Promise<string[]> }>();
  #running = 0;
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
    this.#waiting.push({ namespace, secret, key });
    this.#next();
  }

  /** starts waiting checks while fewer than `concurrency` run */
  #next(): void {
    while (!this.#stopped && this.#running < (this.#o.concurrency ?? 4)) {
      const job = this.#waiting.shift();
      if (job === undefined) return;
      const { namespace, secret, key } = job;
      this.#running++;
      this.#check(namespace, secret)
        .then((readers) => {
          const before = this.#cache.get(key);
          this.#cache.set(key, { readers, checkedAt: this.#o.clock.now() });
          if (before === undefined || JSON.stringify(before.readers) !== JSON.stringify(readers)) this.#o.onChange(namespace, secret);
        })
        .catch((err: unknown) => {
          // unknown stays unknown (the condition says so); asked again on the next reconcile
          this.#o.log.warn('cannot check who may read a credentials Secret', { namespace, secret, error: err instanceof Error ? err.message : String(err) });
        })
        .finally(() => {
          this.#inflight.delete(key);
          this.#running--;
          this.#next();
        });
    }
  }

  /** the namespace's ServiceAccount names, one list shared by the checks of the next second */
  #accountNames(namespace: string): Promise<string[]> {
    const now = this.#o.clock.now();
    const shared = this.#accounts.get(namespace);
    if (shared !== undefined && now - shared.at < ACCOUNTS_REUSE_MS) return shared.names;
    const names = this.#o.kube.core.listNamespacedServiceAccount({ namespace }).then((accounts) => accounts.items.map((a) => a.metadata?.name ?? '').filter((n) => n !== '').sort());
    this.#accounts.set(namespace, { at: now, names });
    // a failed list is not shared
    names.catch(() => {
      if (this.#accounts.get(namespace)?.names === names) this.#accounts.delete(namespace);
    });
    return names;
  }

  async #check(namespace: string, secret: string): Promise<CredentialReader[]> {
    const names = await this.#accountNames(namespace);
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
