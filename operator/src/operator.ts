/**
 * The operator process: informers fill caches and enqueue keys (handlers do nothing else),
 * workers pop keys and reconcile them, a resync re-enqueues every object periodically, and an
 * HTTP server answers /healthz, /readyz and /metrics. Workers start once every informer has
 * synced, so no status is computed from a half-filled cache.
 */
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { GROUP, VERSION, type AgentConnection, type ApprovalRule, type MaskingPolicy } from '@airlock/api';
import type { KubernetesListObject, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from './clock.ts';
import { keysForConnection, keysForPolicy, keysForSecret } from './dependents.ts';
import { EventRecorder } from './events.ts';
import { SupervisedInformer, type InformerEvent } from './informer.ts';
import type { Kube } from './kube.ts';
import { formatKey, parseKey } from './keys.ts';
import { OperatorMetrics } from './metrics.ts';
import { PLURALS } from './plan.ts';
import { RateLimiter, type RateLimiterOptions } from './rate-limiter.ts';
import { Reconciler } from './reconciler.ts';
import { HealthServer } from './server.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader/elector.ts';
import { WorkQueue } from './queue.ts';
import type { ClusterView } from './view.ts';

export interface OperatorOptions {
  readonly metricsHost: string;
  readonly metricsPort: number;
  /** how often every object is reconciled again although nothing changed */
  readonly resyncPeriodMs: number;
  readonly workers: number;
  readonly rateLimiter?: RateLimiterOptions;
  /** reportingInstance of the Events */
  readonly instance?: string;
  /** when set, only the holder of this Lease reconciles; the others keep warm caches */
  readonly leaderElection?: LeaderElectionOptions;
}

/** the custom kinds' informers hold the API server's JSON as it came: the api package's types */
interface Informers {
  readonly connections: SupervisedInformer<KubernetesObject>;
  readonly maskingPolicies: SupervisedInformer<KubernetesObject>;
  readonly approvalRules: SupervisedInformer<KubernetesObject>;
  readonly secrets: SupervisedInformer<V1Secret>;
}

const asConnection = (object: KubernetesObject): AgentConnection => object as unknown as AgentConnection;
const asMaskingPolicy = (object: KubernetesObject): MaskingPolicy => object as unknown as MaskingPolicy;
const asApprovalRule = (object: KubernetesObject): ApprovalRule => object as unknown as ApprovalRule;

export class Operator {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #options: OperatorOptions;
  readonly #queue: WorkQueue;
  readonly #metrics: OperatorMetrics;
  readonly #informers: Informers;
  readonly #view: ClusterView;
  readonly #reconciler: Reconciler;
  readonly #server: HealthServer;
  readonly #elector: LeaderElector | undefined;
  readonly #leadershipLost: Promise<void>;
  #onLeadershipLost: () => void = () => undefined;
  #synced = false;
  /** false once leadership is lost */
  #leader = true;
  #workers: Promise<void>[] = [];
  #cancelResync: (() => void) | undefined;
  #cancelSyncWait: (() => void) | undefined;
  #stopping: Promise<void> | undefined;

  constructor({ kube, clock, log, options }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly options: OperatorOptions }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#options = options;
    this.#queue = new WorkQueue({ clock, limiter: new RateLimiter(options.rateLimiter) });
    this.#metrics = new OperatorMetrics(() => this.#queue.length);
    this.#informers = {
      connections: this.#customInformer('AgentConnection', (o) => keysForConnection(asConnection(o), this.#view)),
      maskingPolicies: this.#customInformer('MaskingPolicy', (o) => keysForPolicy('MaskingPolicy', asMaskingPolicy(o), this.#view)),
      approvalRules: this.#customInformer('ApprovalRule', (o) => keysForPolicy('ApprovalRule', asApprovalRule(o), this.#view)),
      secrets: this.#informer<V1Secret>('Secret', '/api/v1/secrets', () => kube.core.listSecretForAllNamespaces(), (o) => keysForSecret(o, this.#view)),
    };
    this.#view = cacheView(this.#informers);
    this.#reconciler = new Reconciler({
      kube,
      clock,
      log,
      view: this.#view,
      events: new EventRecorder({ kube, clock, log, instance: options.instance ?? hostname() }),
    });
    this.#server = new HealthServer({ probe: { notReady: () => this.#notSynced() }, registry: this.#metrics.registry });
    this.#elector = options.leaderElection === undefined ? undefined : new LeaderElector({ kube, clock, log, options: options.leaderElection });
    this.#leadershipLost = new Promise((resolve) => {
      this.#onLeadershipLost = resolve;
    });
  }

  /** resolves if this replica led and lost the Lease: the caller should stop and exit non-zero */
  leadershipLost(): Promise<void> {
    return this.#leadershipLost;
  }

  /** serves the probes, starts the informers, and the workers once the caches have synced */
  async start(): Promise<AddressInfo> {
    const address = await this.#server.listen(this.#options.metricsHost, this.#options.metricsPort);
    this.#log.info('serving probes and metrics', { address: `${address.address}:${address.port}` });
    for (const informer of Object.values(this.#informers) as SupervisedInformer<KubernetesObject>[]) informer.start();
    this.#elector?.start({
      onStartedLeading: () => {
        this.#startWorkers();
      },
      onStoppedLeading: () => {
        // another replica leads now: reconcile nothing more, not even what is queued
        this.#leader = false;
        this.#onLeadershipLost();
      },
    });
    this.#waitForSync();
    return address;
  }

  get ready(): boolean {
    return this.#notSynced().length === 0;
  }

  /** stops the informers, drains the queue (unless leadership was lost), releases the Lease, closes the server; idempotent */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#log.info('stopping: informers, then the queue drains');
    this.#cancelResync?.();
    this.#cancelSyncWait?.();
    await Promise.all((Object.values(this.#informers) as SupervisedInformer<KubernetesObject>[]).map((i) => i.stop()));
    await this.#queue.shutDown({ drain: this.#leader });
    await Promise.all(this.#workers);
    await this.#elector?.stop();
    await this.#server.close();
    this.#log.info('stopped');
  }

  #notSynced(): string[] {
    return (Object.values(this.#informers) as SupervisedInformer<KubernetesObject>[]).filter((i) => !i.synced).map((i) => `informer ${i.name}`);
  }

  #waitForSync(): void {
    if (this.#queue.shuttingDown) return;
    if (!this.ready) {
      this.#cancelSyncWait = this.#clock.setTimer(100, () => {
        this.#waitForSync();
      });
      return;
    }
    this.#log.info('caches synced');
    this.#synced = true;
    this.#startWorkers();
  }

  /** once the caches have synced and, with leader election, this replica leads */
  #startWorkers(): void {
    if (!this.#synced || this.#workers.length > 0 || this.#queue.shuttingDown || (this.#elector !== undefined && !this.#elector.leading)) return;
    this.#log.info('starting workers', { workers: this.#options.workers });
    this.#enqueueAll();
    for (let i = 0; i < this.#options.workers; i++) this.#workers.push(this.#work());
    this.#scheduleResync();
  }

  #scheduleResync(): void {
    this.#cancelResync = this.#clock.setTimer(this.#options.resyncPeriodMs, () => {
      this.#enqueueAll();
      this.#scheduleResync();
    });
  }

  #enqueueAll(): void {
    const add = (kind: 'AgentConnection' | 'MaskingPolicy' | 'ApprovalRule', objects: readonly KubernetesObject[]): void => {
      for (const o of objects) this.#queue.add(formatKey({ kind, namespace: o.metadata?.namespace ?? 'default', name: o.metadata?.name ?? '' }));
    };
    add('AgentConnection', this.#informers.connections.cache.list());
    add('MaskingPolicy', this.#informers.maskingPolicies.cache.list());
    add('ApprovalRule', this.#informers.approvalRules.cache.list());
  }

  async #work(): Promise<void> {
    for (let key = await this.#queue.get(); key !== undefined; key = await this.#queue.get()) {
      const kind = parseKey(key).kind;
      const started = performance.now();
      try {
        const outcome = await this.#reconciler.reconcile(key);
        this.#queue.forget(key);
        this.#metrics.reconciles.inc({ kind, result: 'success' });
        if (outcome === 'updated') this.#metrics.statusWrites.inc({ kind });
        this.#log.debug('reconciled', { key, kind, outcome });
      } catch (err) {
        this.#metrics.reconciles.inc({ kind, result: 'error' });
        this.#queue.addRateLimited(key);
        const code = (err as { code?: unknown }).code;
        this.#log.warn('reconcile failed; retrying with backoff', {
          key,
          kind,
          ...(typeof code === 'string' ? { code } : {}),
          failures: this.#queue.failures(key),
          error: err instanceof Error ? err.message : String(err),
        });
      } finally {
        this.#metrics.reconcileDuration.observe({ kind }, (performance.now() - started) / 1000);
        this.#queue.done(key);
      }
    }
  }

  #customInformer(kind: keyof typeof PLURALS, keys: (object: KubernetesObject) => string[]): SupervisedInformer<KubernetesObject> {
    const plural = PLURALS[kind];
    return this.#informer<KubernetesObject>(kind, `/apis/${GROUP}/${VERSION}/${plural}`, async () => {
      const list: unknown = await this.#kube.customObjects.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
      return list as KubernetesListObject<KubernetesObject>;
    }, keys);
  }

  #informer<T extends KubernetesObject>(name: string, path: string, list: () => Promise<KubernetesListObject<T>>, keys: (object: T) => string[]): SupervisedInformer<T> {
    return new SupervisedInformer<T>({
      name,
      config: this.#kube.config,
      path,
      list,
      clock: this.#clock,
      log: this.#log,
      onEvent: (_event: InformerEvent, object: T) => {
        for (const key of keys(object)) this.#queue.add(key);
      },
      onRestart: () => {
        this.#metrics.informerRestarts.inc({ informer: name });
      },
    });
  }
}

function opt<T>(object: KubernetesObject | undefined, cast: (object: KubernetesObject) => T): T | undefined {
  return object === undefined ? undefined : cast(object);
}

function cacheView(informers: Informers): ClusterView {
  return {
    connection: (namespace, name) => opt(informers.connections.cache.get(name, namespace), asConnection),
    maskingPolicy: (namespace, name) => opt(informers.maskingPolicies.cache.get(name, namespace), asMaskingPolicy),
    approvalRule: (namespace, name) => opt(informers.approvalRules.cache.get(name, namespace), asApprovalRule),
    connections: (namespace) => informers.connections.cache.list(namespace).map(asConnection),
    maskingPolicies: (namespace) => informers.maskingPolicies.cache.list(namespace).map(asMaskingPolicy),
    approvalRules: (namespace) => informers.approvalRules.cache.list(namespace).map(asApprovalRule),
    secretKeys: (namespace) => new Map(informers.secrets.cache.list(namespace).map((s) => [s.metadata?.name ?? '', Object.keys(s.data ?? {})])),
  };
}
