/**
 * Keeps Airlock's certificates: the CA Secret, the webhook's and the control API's serving
 * certificates (kubernetes.io/tls Secrets), the caBundle of every webhook of Airlock's two
 * webhook configurations, and the approval-decision key Secret.
 *
 * Every replica reads: an informer on the Secrets of Airlock's namespace serves controlTls() and
 * calls onChange listeners when the control API's certificate changes, so each replica's HTTPS
 * server reloads it. Only the leader writes (setLeader): a pass GETs the Secrets and the
 * configurations afresh, asks planCertificates what to do, carries the steps out with
 * resourceVersion preconditions (a 409 means someone wrote in between: read again and ask
 * again), and repeats until the plan is empty. Passes run when leadership is gained, shortly
 * after any change to these objects (watched, so a deleted Secret or a configuration the chart
 * just created is handled within a second), when the plan says a renewal or rotation phase is
 * due, and every `resyncMs` regardless. A failed pass is retried with backoff (1 s doubling to 60 s).
 */
import { randomBytes } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  V1DeleteOptions,
  V1ObjectMeta,
  V1Preconditions,
  V1Secret,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { APPROVAL_KEY_SECRET, COMPONENT_LABEL, COMPONENT_VALUE, OBJECT_NAMES } from '@airlock/api';
import type { Logger } from 'winston';
import { SupervisedInformer, type Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import { agentCaBundle } from './agent.ts';
import { SSH_SEED_BYTES } from './ssh-key.ts';
import { DEFAULT_CA_VALIDITY_MS, DEFAULT_LEAF_VALIDITY_MS, crossSign, issueCa, issueServingCertificate, serviceNames, type ServingNames } from './issue.ts';
import {
  CA_KEYS,
  ROTATE_CA_ANNOTATION,
  TLS_KEYS,
  TLS_SECRET_TYPE,
  caBundlePatch,
  planCertificates,
  type CertificatePlan,
  type CertificateStep,
  type ConfigurationContents,
  type ConfigurationKind,
  type LeafName,
  type SecretContents,
} from './plan.ts';

/** what the control API serves: its certificate, key and the bundle its clients trust (PEM) */
export interface ControlTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface CertificateManagerOptions {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  /** Airlock's namespace: the Secrets and the Services live there */
  readonly namespace: string;
  /** lifetime of the serving certificates (`--cert-validity`, default 2160h) */
  readonly validityMs?: number;
  /** lifetime of the CA (default 10 years) */
  readonly caValidityMs?: number;
  /** how long a new CA is trusted before it signs and an old one stays trusted after (default 1 h) */
  readonly caOverlapMs?: number;
  /** how often a leader checks although nothing changed (default 5 min) */
  readonly resyncMs?: number;
  readonly webhookConfigurations?: { readonly mutating: string; readonly validating: string };
  readonly services?: { readonly webhook: string; readonly control: string };
  /**
   * false (`--manage-certificates=false`): cert-manager fills the TLS Secrets and its CA injector
   * the caBundles; the manager then only reads the control API's certificate and, as leader,
   * keeps the approval key Secret. Default true.
   */
  readonly manageCertificates?: boolean;
  /** more SANs per certificate (an IP address becomes an IP SAN), e.g. 127.0.0.1 for tests on loopback */
  readonly extraNames?: { readonly webhook?: readonly string[]; readonly control?: readonly string[] };
}

const HOUR_MS = 3_600_000;
const SECRET_NAMES: Readonly<Record<LeafName, string>> = { webhook: OBJECT_NAMES.webhookTlsSecret, control: OBJECT_NAMES.controlTlsSecret };
const MANAGED_LABELS = { [COMPONENT_LABEL]: COMPONENT_VALUE, 'app.kubernetes.io/managed-by': 'airlock-operator' };
/** steps a pass carries out before it gives up until the next trigger (a plan settles in 4) */
const MAX_ROUNDS = 12;
const DEBOUNCE_MS = 200;

/** a write refused because the object changed since it was read: read again */
class Conflict extends Error {}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function decode(data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function encode(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}

function contents(secret: V1Secret | undefined): SecretContents | undefined {
  if (secret === undefined) return undefined;
  return { ...(secret.type === undefined ? {} : { type: secret.type }), data: decode(secret.data), annotations: secret.metadata?.annotations ?? {} };
}

interface WebhookConfiguration {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly webhooks?: readonly { readonly name: string; readonly clientConfig: { readonly caBundle?: string } }[];
}

/** what a pass reads */
interface ClusterState {
  readonly ca: V1Secret | undefined;
  readonly leaves: Record<LeafName, V1Secret | undefined>;
  readonly configurations: readonly { readonly kind: ConfigurationKind; readonly name: string; readonly object: WebhookConfiguration }[];
}

export class CertificateManager {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #namespace: string;
  readonly #settings: { readonly caValidityMs: number; readonly leafValidityMs: number; readonly caOverlapMs: number };
  readonly #resyncMs: number;
  readonly #manage: boolean;
  readonly #configurations: Readonly<Record<ConfigurationKind, string>>;
  readonly #names: Readonly<Record<LeafName, ServingNames>>;
  readonly #admission: AdmissionregistrationV1Api;
  readonly #informers: SupervisedInformer<KubernetesObject>[];
  readonly #secrets: SupervisedInformer<V1Secret>;
  readonly #listeners = new Set<(tls: ControlTls) => void>();
  readonly #trustListeners = new Set<() => void>();
  #trustText = '';
  #controlTls: ControlTls | undefined;
  #leading = false;
  #stopped = true;
  #cancelTimer: (() => void) | undefined;
  #timerAt = Infinity;
  #pass: Promise<void> | undefined;
  #again = false;
  #failures = 0;

  constructor(options: CertificateManagerOptions) {
    this.#kube = options.kube;
    this.#clock = options.clock;
    this.#log = options.log.child({ controller: 'certificates' });
    this.#namespace = options.namespace;
    this.#settings = {
      caValidityMs: options.caValidityMs ?? DEFAULT_CA_VALIDITY_MS,
      leafValidityMs: options.validityMs ?? DEFAULT_LEAF_VALIDITY_MS,
      caOverlapMs: options.caOverlapMs ?? HOUR_MS,
    };
    this.#resyncMs = options.resyncMs ?? 5 * 60_000;
    this.#manage = options.manageCertificates ?? true;
    this.#configurations = {
      mutating: options.webhookConfigurations?.mutating ?? OBJECT_NAMES.mutatingWebhookConfiguration,
      validating: options.webhookConfigurations?.validating ?? OBJECT_NAMES.validatingWebhookConfiguration,
    };
    const services = options.services ?? { webhook: OBJECT_NAMES.webhookService, control: OBJECT_NAMES.controlService };
    this.#names = {
      webhook: serviceNames(services.webhook, options.namespace, options.extraNames?.webhook),
      control: serviceNames(services.control, options.namespace, options.extraNames?.control),
    };
    this.#admission = options.kube.config.makeApiClient(AdmissionregistrationV1Api);
    const namespace = options.namespace;
    this.#secrets = this.#informer<V1Secret>('certificate Secrets', `/api/v1/namespaces/${namespace}/secrets`, () => this.#kube.core.listNamespacedSecret({ namespace }), (secret) => {
      if (secret.metadata?.name === OBJECT_NAMES.controlTlsSecret) this.#refreshControlTls();
      if (secret.metadata?.name === OBJECT_NAMES.caSecret || secret.metadata?.name === OBJECT_NAMES.sshHostKeySecret) this.#refreshTrust();
      if (this.#ours(secret.metadata?.name)) this.#trigger();
    });
    this.#informers = [
      this.#secrets,
      this.#informer('mutating webhook configurations', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', () => this.#admission.listMutatingWebhookConfiguration(), (o) => {
        if (o.metadata?.name === this.#configurations.mutating) this.#trigger();
      }),
      this.#informer('validating webhook configurations', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', () => this.#admission.listValidatingWebhookConfiguration(), (o) => {
        if (o.metadata?.name === this.#configurations.validating) this.#trigger();
      }),
    ];
  }

  /** starts watching (every replica); writes nothing until setLeader(true) */
  start(): void {
    this.#stopped = false;
    for (const informer of this.#informers) informer.start();
  }

  /** stops watching and writing; waits for a pass under way */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#leading = false;
    this.#cancel();
    await Promise.all(this.#informers.map((i) => i.stop()));
    await this.#pass;
  }

  /**
   * Whether this replica writes. Call it with true from the leader election's onStartedLeading
   * (or right after start() when there is no leader election) and with false from
   * onStoppedLeading; a pass under way stops before its next write.
   */
  setLeader(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#log.info(leading ? 'leading: managing certificates' : 'not leading: certificates are read only');
    if (leading) this.#schedule(0);
    else this.#cancel();
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** true once the Secret informer has listed (controlTls() then reflects the cluster) */
  get synced(): boolean {
    return this.#secrets.synced;
  }

  /** the control API's serving certificate, key and trust bundle, once the Secret holds them */
  controlTls(): ControlTls | undefined {
    return this.#controlTls;
  }

  /** calls `listener` whenever controlTls() changes (to setSecureContext); returns the unsubscribe function */
  onChange(listener: (tls: ControlTls) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** resolves with controlTls() as soon as it is defined */
  waitForControlTls(): Promise<ControlTls> {
    const current = this.#controlTls;
    if (current !== undefined) return Promise.resolve(current);
    return new Promise((resolve) => {
      const off = this.onChange((tls) => {
        off();
        resolve(tls);
      });
    });
  }

  /** the CA that signs agent-facing certificates (ca.crt, ca.key of the CA Secret), from the cache */
  agentSigner(): { readonly cert: string; readonly key: string } | undefined {
    const data = decode(this.#secrets.cache.get(OBJECT_NAMES.caSecret, this.#namespace)?.data);
    const cert = data[CA_KEYS.cert] ?? '';
    const key = data[CA_KEYS.key] ?? '';
    return cert === '' || key === '' ? undefined : { cert, key };
  }

  /** the CA bundle agents trust (active, next and previous CA), from the cache; '' without a CA */
  agentCaBundle(): string {
    return agentCaBundle(decode(this.#secrets.cache.get(OBJECT_NAMES.caSecret, this.#namespace)?.data));
  }

  /** the seed of the per-namespace SSH host keys, from the cache */
  sshSeed(): Uint8Array | undefined {
    const seed = Buffer.from(this.#secrets.cache.get(OBJECT_NAMES.sshHostKeySecret, this.#namespace)?.data?.['seed'] ?? '', 'base64');
    return seed.length >= SSH_SEED_BYTES ? new Uint8Array(seed) : undefined;
  }

  /** calls `listener` whenever agentCaBundle() or sshSeed() changes; returns the unsubscribe function */
  onTrustChange(listener: () => void): () => void {
    this.#trustListeners.add(listener);
    return () => {
      this.#trustListeners.delete(listener);
    };
  }

  #refreshTrust(): void {
    const text = `${this.agentCaBundle()}|${Buffer.from(this.sshSeed() ?? new Uint8Array()).toString('base64')}`;
    if (text === this.#trustText) return;
    this.#trustText = text;
    for (const listener of [...this.#trustListeners]) {
      try {
        listener();
      } catch (err) {
        this.#log.error('trust listener failed', { error: message(err) });
      }
    }
  }

  // ── reading ──────────────────────────────────────────────────────────────────────────────

  #ours(name: string | undefined): boolean {
    return name === OBJECT_NAMES.caSecret || name === OBJECT_NAMES.webhookTlsSecret || name === OBJECT_NAMES.controlTlsSecret || name === APPROVAL_KEY_SECRET || name === OBJECT_NAMES.sshHostKeySecret;
  }

  #refreshControlTls(): void {
    const secret = this.#secrets.cache.get(OBJECT_NAMES.controlTlsSecret, this.#namespace);
    const data = decode(secret?.data);
    const cert = data[TLS_KEYS.cert] ?? '';
    const key = data[TLS_KEYS.key] ?? '';
    const next = cert === '' || key === '' ? undefined : { cert, key, ca: data[TLS_KEYS.ca] ?? '' };
    const current = this.#controlTls;
    if (next === undefined || (current !== undefined && current.cert === next.cert && current.key === next.key && current.ca === next.ca)) return;
    this.#controlTls = next;
    this.#log.info('control API certificate loaded', { secret: OBJECT_NAMES.controlTlsSecret });
    for (const listener of [...this.#listeners]) {
      try {
        listener(next);
      } catch (err) {
        this.#log.error('control API certificate listener failed', { error: message(err) });
      }
    }
  }

  #informer<T extends KubernetesObject>(name: string, path: string, list: () => Promise<KubernetesListObject<T>>, onEvent: (object: T) => void): SupervisedInformer<T> {
    return new SupervisedInformer<T>({ name, config: this.#kube.config, path, list, clock: this.#clock, log: this.#log, onEvent: (_event, object) => {
        onEvent(object);
      },
    });
  }

  async #readSecret(name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#kube.core.readNamespacedSecret({ name, namespace: this.#namespace });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async #readConfiguration(kind: ConfigurationKind): Promise<WebhookConfiguration | undefined> {
    const name = this.#configurations[kind];
    try {
      return kind === 'mutating' ? await this.#admission.readMutatingWebhookConfiguration({ name }) : await this.#admission.readValidatingWebhookConfiguration({ name });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async #read(): Promise<ClusterState> {
    const [ca, webhook, control, mutating, validating] = await Promise.all([
      this.#readSecret(OBJECT_NAMES.caSecret),
      this.#readSecret(SECRET_NAMES.webhook),
      this.#readSecret(SECRET_NAMES.control),
      this.#readConfiguration('mutating'),
      this.#readConfiguration('validating'),
    ]);
    const configurations: ClusterState['configurations'][number][] = [];
    if (mutating !== undefined) configurations.push({ kind: 'mutating', name: this.#configurations.mutating, object: mutating });
    if (validating !== undefined) configurations.push({ kind: 'validating', name: this.#configurations.validating, object: validating });
    return { ca, leaves: { webhook, control }, configurations };
  }

  // ── scheduling ───────────────────────────────────────────────────────────────────────────

  #trigger(): void {
    if (this.#leading) this.#schedule(DEBOUNCE_MS);
  }

  #cancel(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#timerAt = Infinity;
  }

  /** a pass in `delayMs`, unless one is due sooner; during a pass, one more right after it */
  #schedule(delayMs: number): void {
    if (this.#stopped || !this.#leading) return;
    if (this.#pass !== undefined) {
      if (delayMs <= DEBOUNCE_MS) this.#again = true;
      else this.#timerAt = Math.min(this.#timerAt, this.#clock.now() + delayMs);
      return;
    }
    const at = this.#clock.now() + delayMs;
    if (at >= this.#timerAt) return;
    this.#cancel();
    this.#timerAt = at;
    this.#cancelTimer = this.#clock.setTimer(delayMs, () => {
      this.#cancelTimer = undefined;
      this.#timerAt = Infinity;
      this.#pass = this.#run().finally(() => {
        this.#pass = undefined;
        this.#afterPass();
      });
    });
  }

  #afterPass(): void {
    const pending = this.#timerAt;
    this.#timerAt = Infinity;
    if (this.#again) {
      this.#again = false;
      this.#schedule(0);
    } else if (pending !== Infinity) {
      this.#schedule(Math.max(0, pending - this.#clock.now()));
    }
  }

  async #run(): Promise<void> {
    let next: number;
    try {
      const plan = await this.#reconcile();
      this.#failures = 0;
      const now = this.#clock.now();
      // never sooner than a second: a phase that is due but waits for something else must not spin
      next = plan === undefined ? this.#resyncMs : Math.min(this.#resyncMs, Math.max(1000, plan.nextCheckAt - now));
    } catch (err) {
      next = Math.min(1000 * 2 ** this.#failures, 60_000);
      this.#failures++;
      this.#log.warn('certificate check failed; retrying', { error: message(err), ...(typeof (err as { code?: unknown }).code === 'string' ? { code: (err as { code: string }).code } : {}), retryInMs: next });
    }
    this.#timerAt = Math.min(this.#timerAt, this.#clock.now() + next);
  }

  // ── writing (leader only) ────────────────────────────────────────────────────────────────

  /** leadership can end during any await of a pass */
  #mayWrite(): boolean {
    return this.#leading && !this.#stopped;
  }

  /** one pass: the approval key, then plan → steps until the plan is empty; the last plan, or undefined when leadership ended */
  async #reconcile(): Promise<CertificatePlan | undefined> {
    if (!this.#mayWrite()) return undefined;
    await this.#ensureApprovalKey();
    if (!this.#manage) return undefined;
    // agent-facing SSH host keys go with agent-facing certificates: only when the CA is ours
    await this.#ensureSshSeed();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (!this.#mayWrite()) return undefined;
      const state = await this.#read();
      const plan = planCertificates({
        now: this.#clock.now(),
        settings: this.#settings,
        ca: contents(state.ca),
        leaves: { webhook: contents(state.leaves.webhook), control: contents(state.leaves.control) },
        names: this.#names,
        configurations: state.configurations.map((c): ConfigurationContents => ({
          kind: c.kind,
          name: c.name,
          caBundles: (c.object.webhooks ?? []).map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')),
        })),
      });
      if (plan.steps.length === 0) return plan;
      try {
        for (const step of plan.steps) {
          if (!this.#mayWrite()) return undefined;
          await this.#apply(step, plan, state);
        }
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
        this.#log.debug('certificate write conflicted; reading again', { error: err.message });
      }
    }
    throw new Error(`certificates did not settle after ${String(MAX_ROUNDS)} rounds of writes`);
  }

  async #apply(step: CertificateStep, plan: CertificatePlan, state: ClusterState): Promise<void> {
    const now = this.#clock.now();
    switch (step.kind) {
      case 'issueCa': {
        const issued = await issueCa({ now, validityMs: this.#settings.caValidityMs });
        let data: Record<string, string> = { [CA_KEYS.cert]: issued.cert, [CA_KEYS.key]: issued.key };
        if (step.slot === 'next') {
          const current = decode(state.ca?.data);
          data = { ...pick(current, [CA_KEYS.cert, CA_KEYS.key, CA_KEYS.crossCert, CA_KEYS.previousCert]), [CA_KEYS.nextCert]: issued.cert, [CA_KEYS.nextKey]: issued.key };
          // the active CA certifies the next one now, while its key is at hand: clients that trust only it keep verifying after the switch
          data[CA_KEYS.nextCrossCert] = await crossSign({ subject: issued, issuer: { cert: current[CA_KEYS.cert] ?? '', key: current[CA_KEYS.key] ?? '' }, now });
        }
        await this.#writeSecret(OBJECT_NAMES.caSecret, state.ca, 'Opaque', data);
        this.#log.info(step.slot === 'active' ? 'CA issued' : 'CA rotation started: the next CA is published in the bundle', { secret: OBJECT_NAMES.caSecret, reason: step.reason });
        return;
      }
      case 'writeCa':
        await this.#writeSecret(OBJECT_NAMES.caSecret, state.ca, 'Opaque', step.data);
        this.#log.info('CA Secret updated', { secret: OBJECT_NAMES.caSecret, reason: step.reason });
        return;
      case 'issueLeaf': {
        if (plan.signer === undefined) throw new Error('no CA to sign with');
        const issued = await issueServingCertificate({ ca: plan.signer, names: this.#names[step.leaf], now, validityMs: this.#settings.leafValidityMs });
        const name = SECRET_NAMES[step.leaf];
        let current = state.leaves[step.leaf];
        if (step.recreate && current !== undefined) {
          await this.#deleteSecret(name, current);
          current = undefined;
        }
        await this.#writeSecret(name, current, TLS_SECRET_TYPE, { [TLS_KEYS.cert]: issued.cert + plan.chain, [TLS_KEYS.key]: issued.key, [TLS_KEYS.ca]: plan.bundle });
        this.#log.info('serving certificate issued', { secret: name, reason: step.reason });
        return;
      }
      case 'updateLeafBundle': {
        const name = SECRET_NAMES[step.leaf];
        const current = state.leaves[step.leaf];
        await this.#writeSecret(name, current, TLS_SECRET_TYPE, { ...decode(current?.data), [TLS_KEYS.cert]: step.cert, [TLS_KEYS.ca]: plan.bundle });
        this.#log.info('trust bundle or chain updated', { secret: name, chained: plan.chain !== '' });
        return;
      }
      case 'patchCaBundle': {
        const configuration = state.configurations.find((c) => c.kind === step.configuration.kind && c.name === step.configuration.name);
        if (configuration === undefined) return;
        const ops = caBundlePatch(
          { resourceVersion: configuration.object.metadata?.resourceVersion ?? '', webhooks: (configuration.object.webhooks ?? []).map((w) => ({ name: w.name, ...(w.clientConfig.caBundle === undefined ? {} : { caBundle: w.clientConfig.caBundle }) })) },
          plan.bundle,
        );
        if (ops.length === 0) return;
        await this.#conflicts(() =>
          step.configuration.kind === 'mutating'
            ? this.#admission.patchMutatingWebhookConfiguration({ name: step.configuration.name, body: ops })
            : this.#admission.patchValidatingWebhookConfiguration({ name: step.configuration.name, body: ops }),
        );
        this.#log.info('caBundle updated', { configuration: `${step.configuration.kind}/${step.configuration.name}`, webhooks: configuration.object.webhooks?.length ?? 0 });
        return;
      }
    }
  }

  /** create (absent) or replace (with the resourceVersion read) a Secret; the rotate-ca annotation is consumed */
  async #writeSecret(name: string, current: V1Secret | undefined, type: string, data: Readonly<Record<string, string>>): Promise<void> {
    const annotations = Object.fromEntries(Object.entries(current?.metadata?.annotations ?? {}).filter(([k]) => k !== ROTATE_CA_ANNOTATION));
    const body = Object.assign(new V1Secret(), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: Object.assign(new V1ObjectMeta(), {
        name,
        namespace: this.#namespace,
        labels: { ...(current?.metadata?.labels ?? {}), ...MANAGED_LABELS },
        annotations,
        ...(current?.metadata?.resourceVersion === undefined ? {} : { resourceVersion: current.metadata.resourceVersion }),
      }),
      type,
      data: encode(data),
    });
    await this.#conflicts(() =>
      current === undefined ? this.#kube.core.createNamespacedSecret({ namespace: this.#namespace, body }) : this.#kube.core.replaceNamespacedSecret({ name, namespace: this.#namespace, body }),
    );
  }

  async #deleteSecret(name: string, current: V1Secret): Promise<void> {
    this.#log.warn('replacing a Secret of the wrong type', { secret: name, type: current.type });
    const body = Object.assign(new V1DeleteOptions(), { preconditions: Object.assign(new V1Preconditions(), { resourceVersion: current.metadata?.resourceVersion }) });
    try {
      await this.#conflicts(() => this.#kube.core.deleteNamespacedSecret({ name, namespace: this.#namespace, body }));
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
  }

  /** runs a write; a 409 (changed or created meanwhile) or a failed JSON Patch test (422) becomes Conflict */
  async #conflicts(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (err) {
      const code = statusCode(err);
      if (code === 409 || code === 422) throw new Conflict(message(err), { cause: err });
      throw err;
    }
  }

  /** the seed of the per-namespace SSH host keys: created once with 32 random bytes, never replaced */
  async #ensureSshSeed(): Promise<void> {
    const current = await this.#readSecret(OBJECT_NAMES.sshHostKeySecret);
    if (current !== undefined) {
      if (Buffer.from(current.data?.['seed'] ?? '', 'base64').length < SSH_SEED_BYTES) {
        this.#log.error('the SSH host key Secret holds no seed of 32 bytes or more; it is left as it is (delete it to have a new one generated)', { secret: OBJECT_NAMES.sshHostKeySecret });
      }
      return;
    }
    const body = Object.assign(new V1Secret(), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: Object.assign(new V1ObjectMeta(), { name: OBJECT_NAMES.sshHostKeySecret, namespace: this.#namespace, labels: MANAGED_LABELS }),
      type: 'Opaque',
      data: { seed: randomBytes(SSH_SEED_BYTES).toString('base64') },
    });
    try {
      await this.#kube.core.createNamespacedSecret({ namespace: this.#namespace, body });
      this.#log.info('SSH host key seed created', { secret: OBJECT_NAMES.sshHostKeySecret });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
  }

  /** the HMAC key of recorded approval decisions: created once with 32 random bytes, never replaced */
  async #ensureApprovalKey(): Promise<void> {
    const current = await this.#readSecret(APPROVAL_KEY_SECRET);
    if (current !== undefined) {
      const key = Buffer.from(current.data?.key ?? '', 'base64');
      if (key.length < 32) this.#log.error('the approval key Secret holds no key of 32 bytes or more; it is left as it is (delete it to have a new one generated)', { secret: APPROVAL_KEY_SECRET, bytes: key.length });
      return;
    }
    const body = Object.assign(new V1Secret(), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: Object.assign(new V1ObjectMeta(), { name: APPROVAL_KEY_SECRET, namespace: this.#namespace, labels: MANAGED_LABELS }),
      type: 'Opaque',
      data: { key: randomBytes(32).toString('base64') },
    });
    try {
      await this.#kube.core.createNamespacedSecret({ namespace: this.#namespace, body });
      this.#log.info('approval key created', { secret: APPROVAL_KEY_SECRET });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
  }
}

function pick(data: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => data[k] !== undefined).map((k) => [k, data[k] ?? '']));
}
