/**
 * The operator process: informers fill caches and enqueue keys (handlers do nothing else),
 * workers pop keys and reconcile them, a resync re-enqueues every object periodically, and an
 * HTTP server answers /healthz, /readyz and /metrics. Workers start once every informer has
 * synced, so no status is computed from a half-filled cache.
 *
 * Every replica also serves the control API to sidecars (when `control` is set) from the same
 * caches plus a lean cache of injected pods; every informer event wakes the long polls of its
 * namespace. Only the leader reconciles, and writes certificates (when `certificates` is set).
 * Keys: `AgentConnection|MaskingPolicy|ApprovalRule/<ns>/<name>` (status), `ApprovalRequest/<ns>/<name>`
 * (the approvals reconcile), `SessionRetention/<ns>/-` (AgentSession retention of a namespace).
 */
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { GROUP, VERSION, type AgentConnection, type AgentSession, type ApprovalRequest, type ApprovalRule, type MaskingPolicy } from '@airlock/api';
import type { KubernetesListObject, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { ApprovalKeyStore } from './approvals/key.ts';
import { CONNECTION_LABEL } from './approvals/request.ts';
import { NoticeRecorder } from './approvals/notice.ts';
import { reconcileApprovalRequest, type ApprovalReconcileDeps } from './approvals/reconcile.ts';
import { ApprovalService } from './approvals/service.ts';
import { CertificateManager } from './certs/manager.ts';
import { AgentTrustPublisher } from './certs/trust.ts';
import { AgentCertificateService } from './control/certificates.ts';
import type { ControlView } from './control/api.ts';
import { PodCache } from './control/pod-cache.ts';
import { ControlService, type TlsSource } from './control/service.ts';
import { NamespaceSignals } from './control/signals.ts';
import { reconcileSessionRetention } from './sessions/retention.ts';
import { SessionService } from './sessions/service.ts';
import type { Logger } from 'winston';
import { HealthServer, SupervisedInformer, type Clock, type InformerEvent } from '@airlock/kube';
import { keysForConnection, keysForPolicy, keysForSecret } from './dependents.ts';
import { EventRecorder } from './events.ts';
import type { Kube } from './kube.ts';
import { formatKey } from './keys.ts';
import { OperatorMetrics } from './metrics.ts';
import { PLURALS } from './plan.ts';
import { RateLimiter, type RateLimiterOptions } from './rate-limiter.ts';
import { Reconciler } from './reconciler.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader/elector.ts';
import { WorkQueue } from './queue.ts';
import type { ClusterView } from './view.ts';
import { CredentialAccess } from './access/checker.ts';
import { MeaningfulChanges } from './changes.ts';

export interface OperatorOptions {
  readonly metricsHost: string;
  readonly metricsPort: number;
  /** how often every object is reconciled again although nothing changed */
  readonly resyncPeriodMs: number;
  readonly workers: number;
  readonly rateLimiter?: RateLimiterOptions;
  /** reportingInstance of the Events */
  readonly instance?: string;
  /**
   * how long an answer to "which ServiceAccounts can read this credentials Secret"
   * (SubjectAccessReviews) is trusted; 0 turns the CredentialsIsolated condition off (default 5m)
   */
  readonly accessCheckPeriodMs?: number;
  /** when set, only the holder of this Lease reconciles; the others keep warm caches */
  readonly leaderElection?: LeaderElectionOptions;
  /** when set, every replica serves the control API there */
  readonly control?: {
    readonly host: string;
    readonly port: number;
    /** tls.crt and tls.key of the serving certificate; without it, the certificate manager's (needs `certificates`) */
    readonly tlsDir?: string;
  };
  /** Airlock's own namespace: the certificate Secrets, the approval key */
  readonly airlockNamespace?: string;
  /** JSON POST target for new ApprovalRequests (Slack/Teams incoming webhook) */
  readonly notifyUrl?: string;
  /** when set, the leader keeps the CA, the serving certificates and the webhooks' caBundle */
  readonly certificates?: {
    readonly validityMs?: number;
    /** more SANs of the serving certificates (e.g. 127.0.0.1 for tests on loopback) */
    readonly extraNames?: { readonly webhook?: readonly string[]; readonly control?: readonly string[] };
  };
}

/** the custom kinds' informers hold the API server's JSON as it came: the api package's types */
interface Informers {
  readonly connections: SupervisedInformer<KubernetesObject>;
  readonly maskingPolicies: SupervisedInformer<KubernetesObject>;
  readonly approvalRules: SupervisedInformer<KubernetesObject>;
  readonly secrets: SupervisedInformer<V1Secret>;
  readonly approvalRequests: SupervisedInformer<KubernetesObject>;
  readonly agentSessions: SupervisedInformer<KubernetesObject>;
}

const asConnection = (object: KubernetesObject): AgentConnection => object as unknown as AgentConnection;
const asMaskingPolicy = (object: KubernetesObject): MaskingPolicy => object as unknown as MaskingPolicy;
const asApprovalRule = (object: KubernetesObject): ApprovalRule => object as unknown as ApprovalRule;
const asApprovalRequest = (object: KubernetesObject): ApprovalRequest => object as unknown as ApprovalRequest;
const asAgentSession = (object: KubernetesObject): AgentSession => object as unknown as AgentSession;
const namespaceOf = (object: KubernetesObject): string => object.metadata?.namespace ?? 'default';
const retentionKey = (namespace: string): string => `SessionRetention/${namespace}/-`;
const connectionKey = (namespace: string, name: string | undefined): string[] =>
  name === undefined || name === '' ? [] : [formatKey({ kind: 'AgentConnection', namespace, name })];

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
  readonly #access: CredentialAccess | undefined;
  readonly #server: HealthServer;
  readonly #elector: LeaderElector | undefined;
  readonly #leadershipLost: Promise<void>;
  readonly #signals: NamespaceSignals;
  readonly #pods: PodCache | undefined;
  readonly #control: ControlService | undefined;
  readonly #certificates: CertificateManager | undefined;
  readonly #trust: AgentTrustPublisher | undefined;
  readonly #approvals: ApprovalService;
  readonly #sessions: SessionService;
  readonly #approvalDeps: ApprovalReconcileDeps | undefined;
  readonly #events: EventRecorder;
  #controlStarting: Promise<unknown> | undefined;
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
    this.#signals = new NamespaceSignals(clock);
    const instance = options.instance ?? hostname();
    const events = new EventRecorder({ kube, clock, log, instance });
    this.#events = events;
    this.#approvals = new ApprovalService({
      kube,
      clock,
      log,
      events,
      instance,
      ...(options.notifyUrl === undefined ? {} : { notifyUrl: options.notifyUrl }),
      ...(options.airlockNamespace === undefined ? {} : { namespace: options.airlockNamespace }),
    });
    this.#sessions = new SessionService({ kube, clock, log, events });
    const connectionChanges = new MeaningfulChanges();
    const policyChanges = { mask: new MeaningfulChanges(), rule: new MeaningfulChanges() };
    this.#informers = {
      // our own status writes come back as updates: those that changed nothing else enqueue nothing
      connections: this.#customInformer('AgentConnection', (o, event) => (connectionChanges.matters(event, o) ? keysForConnection(asConnection(o), this.#view) : []), (_event, o) => {
        this.#trust?.touch(namespaceOf(o));
      }),
      maskingPolicies: this.#customInformer('MaskingPolicy', (o, event) => (policyChanges.mask.matters(event, o) ? keysForPolicy('MaskingPolicy', asMaskingPolicy(o), this.#view) : [])),
      approvalRules: this.#customInformer('ApprovalRule', (o, event) => (policyChanges.rule.matters(event, o) ? keysForPolicy('ApprovalRule', asApprovalRule(o), this.#view) : [])),
      secrets: this.#informer<V1Secret>('Secret', '/api/v1/secrets', () => kube.core.listSecretForAllNamespaces(), (o) => keysForSecret(o, this.#view)),
      // each also enqueues its connection, whose status counts sessions and pending approvals
      approvalRequests: this.#customInformer(
        'ApprovalRequest',
        (o) => [`ApprovalRequest/${namespaceOf(o)}/${o.metadata?.name ?? ''}`, ...connectionKey(namespaceOf(o), asApprovalRequest(o).spec.connection)],
        (event, o) => {
          this.#approvals.observe(asApprovalRequest(o), event === 'delete');
        },
      ),
      agentSessions: this.#customInformer('AgentSession', (o) => {
        const session = asAgentSession(o);
        return [retentionKey(namespaceOf(o)), ...connectionKey(namespaceOf(o), session.status?.connection ?? session.metadata.labels?.[CONNECTION_LABEL])];
      }),
    };
    this.#access =
      options.accessCheckPeriodMs === 0
        ? undefined
        : new CredentialAccess({
            kube,
            clock,
            log,
            periodMs: options.accessCheckPeriodMs ?? 300_000,
            // only the connections whose credentials are that Secret: the answer is per Secret
            onChange: (namespace, secret) => {
              for (const c of this.#informers.connections.cache.list(namespace).map(asConnection)) {
                if (c.spec.credentialsSecretRef.name === secret) this.#queue.add(formatKey({ kind: 'AgentConnection', namespace, name: c.metadata.name ?? '' }));
              }
            },
          });
    this.#view = cacheView(this.#informers, this.#access, options.control === undefined ? undefined : () => this.#pods);
    this.#reconciler = new Reconciler({ kube, clock, log, view: this.#view, events });
    // the approval key lives in Airlock's namespace: without it, decisions cannot be verified
    this.#approvalDeps =
      options.airlockNamespace === undefined
        ? undefined
        : {
            kube,
            clock,
            log,
            events,
            notices: new NoticeRecorder({ kube, clock, log, instance }),
            keys: new ApprovalKeyStore({ kube, clock, log, namespace: options.airlockNamespace }),
            reported: new Set<string>(),
          };
    this.#certificates =
      options.certificates === undefined || options.airlockNamespace === undefined
        ? undefined
        : new CertificateManager({
            kube,
            clock,
            log,
            namespace: options.airlockNamespace,
            ...(options.certificates.validityMs === undefined ? {} : { validityMs: options.certificates.validityMs }),
            ...(options.certificates.extraNames === undefined ? {} : { extraNames: options.certificates.extraNames }),
          });
    const manager = this.#certificates;
    this.#trust = manager === undefined ? undefined : new AgentTrustPublisher({ kube, clock, log, source: manager, connections: () => this.#informers.connections.cache.list().map(asConnection) });
    manager?.onTrustChange(() => this.#trust?.touchAll());
    if (options.control === undefined) {
      this.#pods = undefined;
      this.#control = undefined;
    } else {
      const pods = new PodCache({
        kube,
        config: kube.config,
        clock,
        log,
        onEvent: (pod) => {
          this.#signals.wake(pod.metadata.namespace);
          // TrafficCaptured of the connections it serves follows the pods that come and go
          for (const name of pod.record.connections ?? []) this.#queue.add(formatKey({ kind: 'AgentConnection', namespace: pod.metadata.namespace, name }));
        },
        onRestart: () => {
          this.#metrics.informerRestarts.inc({ informer: 'Pod' });
        },
      });
      this.#pods = pods;
      const tlsDir = options.control.tlsDir;
      const certificates = this.#certificates;
      const tls: TlsSource | undefined =
        tlsDir !== undefined ? { kind: 'dir', dir: tlsDir } : certificates !== undefined ? { kind: 'manager', manager: certificates } : undefined;
      // the CLI refuses such flags; reaching here is a programming error
      if (tls === undefined) throw new TypeError('the control API needs a certificate: control.tlsDir, or certificates with airlockNamespace');
      this.#control = new ControlService({
        kube,
        clock,
        log,
        metrics: this.#metrics,
        view: controlView(this.#informers, pods, () => this.#notSynced().length === 0),
        signals: this.#signals,
        instance,
        host: options.control.host,
        port: options.control.port,
        tls,
        approvals: this.#approvals,
        sessions: this.#sessions,
        certificates: manager === undefined ? undefined : new AgentCertificateService({ source: manager, clock, ...(options.airlockNamespace !== undefined ? { reservedNamespace: options.airlockNamespace } : {}) }),
      });
    }
    this.#server = new HealthServer({ probe: { notReady: () => this.#notReady() }, registry: this.#metrics.registry });
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
    this.#pods?.start();
    this.#certificates?.start();
    this.#elector?.start({
      onStartedLeading: () => {
        this.#certificates?.setLeader(true);
        this.#trust?.setLeader(true);
        this.#startWorkers();
      },
      onStoppedLeading: () => {
        // another replica leads now: reconcile nothing more, not even what is queued
        this.#leader = false;
        this.#certificates?.setLeader(false);
        this.#trust?.setLeader(false);
        this.#onLeadershipLost();
      },
    });
    if (this.#elector === undefined) {
      this.#certificates?.setLeader(true);
      this.#trust?.setLeader(true);
    }
    this.#waitForSync();
    this.#controlStarting = this.#control?.start().catch((err: unknown) => {
      this.#log.error('the control API cannot serve', { error: err instanceof Error ? err.message : String(err) });
      this.#controlFailed = err instanceof Error ? err : new Error(String(err));
    });
    return address;
  }

  /** the control API's address once it listens (undefined without a control API) */
  async controlAddress(): Promise<AddressInfo | undefined> {
    await this.#controlStarting;
    if (this.#controlFailed !== undefined) throw this.#controlFailed;
    return this.#control?.address;
  }

  #controlFailed: Error | undefined;

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
    this.#access?.stop();
    this.#cancelSyncWait?.();
    await this.#control?.stop();
    await Promise.all((Object.values(this.#informers) as SupervisedInformer<KubernetesObject>[]).map((i) => i.stop()));
    await this.#pods?.stop();
    await this.#queue.shutDown({ drain: this.#leader });
    await Promise.all(this.#workers);
    await this.#trust?.stop();
    await this.#certificates?.stop();
    await this.#approvals.drain();
    await this.#events.drain();
    await this.#elector?.stop();
    await this.#server.close();
    this.#log.info('stopped');
  }

  #notSynced(): string[] {
    const informers: { readonly name: string; readonly synced: boolean }[] = Object.values(this.#informers) as SupervisedInformer<KubernetesObject>[];
    if (this.#pods !== undefined) informers.push(this.#pods);
    return informers.filter((i) => !i.synced).map((i) => `informer ${i.name}`);
  }

  /** the informers, and the control API once it should listen */
  #notReady(): string[] {
    const waiting = this.#notSynced();
    if (this.#control !== undefined && this.#control.address === undefined) waiting.push('control API');
    return waiting;
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
    // the certificate manager creates the approval key when it runs; without it (cert-manager
    // issues the certificates) the leader does, or no decision could ever be verified
    if (this.#certificates === undefined) this.#ensureApprovalKey(1000);
  }

  #ensureApprovalKey(retryMs: number): void {
    const keys = this.#approvalDeps?.keys;
    if (keys === undefined || this.#queue.shuttingDown || !this.#leader) return;
    keys.ensure().then(
      () => undefined,
      (err: unknown) => {
        this.#log.warn('cannot create the approval key Secret; retrying', { retryMs, error: err instanceof Error ? err.message : String(err) });
        this.#clock.setTimer(retryMs, () => {
          this.#ensureApprovalKey(Math.min(retryMs * 2, 60_000));
        });
      },
    );
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
    for (const o of this.#informers.approvalRequests.cache.list()) this.#queue.add(`ApprovalRequest/${namespaceOf(o)}/${o.metadata?.name ?? ''}`);
    for (const namespace of new Set(this.#informers.agentSessions.cache.list().map(namespaceOf))) this.#queue.add(retentionKey(namespace));
  }

  /** one reconcile of a key of any kind; 'updated' when it wrote */
  async #reconcile(key: string): Promise<string> {
    const [kind = '', namespace = '', name = ''] = key.split('/');
    if (kind === 'ApprovalRequest') {
      if (this.#approvalDeps === undefined) return 'skipped';
      const cached = this.#informers.approvalRequests.cache.get(name, namespace);
      const result = await reconcileApprovalRequest(this.#approvalDeps, cached === undefined ? undefined : asApprovalRequest(cached));
      if (result.requeueAfterMs !== undefined) this.#queue.addAfter(key, result.requeueAfterMs);
      return result.outcome;
    }
    if (kind === 'SessionRetention') {
      const sessions = this.#informers.agentSessions.cache.list(namespace).map(asAgentSession);
      const result = await reconcileSessionRetention({ kube: this.#kube, clock: this.#clock, log: this.#log }, namespace, sessions, this.#view.connections(namespace));
      if (result.requeueAfterMs !== undefined) this.#queue.addAfter(key, result.requeueAfterMs);
      return result.deleted > 0 ? 'updated' : 'unchanged';
    }
    return this.#reconciler.reconcile(key);
  }

  async #work(): Promise<void> {
    for (let key = await this.#queue.get(); key !== undefined; key = await this.#queue.get()) {
      const kind = key.split('/')[0] ?? '';
      const started = performance.now();
      try {
        const outcome = await this.#reconcile(key);
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

  #customInformer(
    kind: keyof typeof CUSTOM_PLURALS,
    keys: (object: KubernetesObject, event: InformerEvent) => string[],
    observe?: (event: InformerEvent, object: KubernetesObject) => void,
  ): SupervisedInformer<KubernetesObject> {
    const plural = CUSTOM_PLURALS[kind];
    return this.#informer<KubernetesObject>(
      kind,
      `/apis/${GROUP}/${VERSION}/${plural}`,
      async () => {
        const list: unknown = await this.#kube.customObjects.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
        return list as KubernetesListObject<KubernetesObject>;
      },
      keys,
      observe,
    );
  }

  #informer<T extends KubernetesObject>(
    name: string,
    path: string,
    list: () => Promise<KubernetesListObject<T>>,
    keys: (object: T, event: InformerEvent) => string[],
    observe?: (event: InformerEvent, object: T) => void,
  ): SupervisedInformer<T> {
    return new SupervisedInformer<T>({
      name,
      config: this.#kube.config,
      path,
      list,
      clock: this.#clock,
      log: this.#log,
      onEvent: (event: InformerEvent, object: T) => {
        for (const key of keys(object, event)) this.#queue.add(key);
        observe?.(event, object);
        // long polls of the control API wait on their namespace
        this.#signals.wake(object.metadata?.namespace ?? 'default');
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

const CUSTOM_PLURALS = { ...PLURALS, ApprovalRequest: 'approvalrequests', AgentSession: 'agentsessions' } as const;

function controlView(informers: Informers, pods: PodCache, ready: () => boolean): ControlView {
  return {
    ready,
    pod: (namespace, name) => pods.get(namespace, name),
    connections: (namespace) => informers.connections.cache.list(namespace).map(asConnection),
    maskingPolicies: (namespace) => informers.maskingPolicies.cache.list(namespace).map(asMaskingPolicy),
    approvalRules: (namespace) => informers.approvalRules.cache.list(namespace).map(asApprovalRule),
    secret: (namespace, name) => informers.secrets.cache.get(name, namespace),
  };
}

/** `pods`: the injected pods' cache (kept with the control API), for TrafficCaptured; undefined: not watched */
function cacheView(informers: Informers, access: CredentialAccess | undefined, pods: (() => PodCache | undefined) | undefined): ClusterView {
  return {
    ...(access === undefined ? {} : { credentialReaders: (namespace: string, secret: string) => access.readers(namespace, secret) }),
    ...(pods === undefined ? {} : { injectedPods: (namespace: string) => pods()?.list(namespace) ?? [] }),
    connection: (namespace, name) => opt(informers.connections.cache.get(name, namespace), asConnection),
    maskingPolicy: (namespace, name) => opt(informers.maskingPolicies.cache.get(name, namespace), asMaskingPolicy),
    approvalRule: (namespace, name) => opt(informers.approvalRules.cache.get(name, namespace), asApprovalRule),
    connections: (namespace) => informers.connections.cache.list(namespace).map(asConnection),
    maskingPolicies: (namespace) => informers.maskingPolicies.cache.list(namespace).map(asMaskingPolicy),
    approvalRules: (namespace) => informers.approvalRules.cache.list(namespace).map(asApprovalRule),
    secretKeys: (namespace) => new Map(informers.secrets.cache.list(namespace).map((s) => [s.metadata?.name ?? '', Object.keys(s.data ?? {})])),
    agentSessions: (namespace) => informers.agentSessions.cache.list(namespace).map(asAgentSession),
    approvalRequests: (namespace) => informers.approvalRequests.cache.list(namespace).map(asApprovalRequest),
  };
}
