/**
 * `airlock webhook` as an object: the admission server, its health listener, the reloaded files
 * (serving certificate, control CA, approval key) and the cluster view, started and stopped
 * together. Dependencies by constructor ({ view, clock, log }): tests pass a plain ClusterView.
 */
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import type { CaptureMode } from '@airlock/api';
import type { Logger } from 'winston';
import { deny, type AdmissionRequest, type AdmissionVerdict } from './admission.ts';
import { reviewApprovalAdmission } from './approvals.ts';
import type { ClusterView } from './caches.ts';
import { HealthServer, type Clock } from '@airlock/kube';
import type { InjectionSettings } from './inject/index.ts';
import { WebhookMetrics } from './metrics.ts';
import { injectPodAdmission } from './pods.ts';
import { validatePolicyAdmission } from './policies.ts';
import { AdmissionServer, admissionApp } from './server.ts';
import { WatchedFiles, type FileContents } from './watch.ts';
import { backendPorts } from './capture/backends.ts';
import { connectionName } from './inject/select.ts';

export interface SidecarOptions {
  readonly image: string;
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  readonly controlUrl: string;
  readonly resources?: V1ResourceRequirements;
  readonly defaultCapture?: CaptureMode;
}

export interface WebhookOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly metrics: { readonly host: string; readonly port: number };
  /** holds tls.crt and tls.key (a mounted kubernetes.io/tls Secret); reloaded when they change */
  readonly tlsDir: string;
  /** PEM bundle of the control API's CA, given to the sidecar (default <tlsDir>/ca.crt) */
  readonly controlCaFile?: string;
  /** HMAC key of recorded approval decisions (32+ bytes) */
  readonly approvalKeyFile: string;
  readonly sidecar: SidecarOptions;
  /** Airlock's own namespace: never injected */
  readonly airlockNamespace: string;
  /** the cluster's DNS domain, to know a Service by its name (default cluster.local) */
  readonly clusterDomain?: string;
  /** how often the files are polled besides fs.watch (default 1000 ms) */
  readonly pollMs?: number;
  /** how long in-flight admissions may take to finish on stop (default 10 s) */
  readonly shutdownGraceMs?: number;
}

export interface RunningAddresses {
  readonly admission: AddressInfo;
  readonly metrics: AddressInfo;
}

const MIN_APPROVAL_KEY_BYTES = 32;

export class Webhook {
  readonly metrics = new WebhookMetrics();
  readonly #view: ClusterView;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #options: WebhookOptions;
  readonly #admission: AdmissionServer;
  readonly #health: HealthServer;
  readonly #tls: WatchedFiles;
  readonly #controlCa: WatchedFiles;
  readonly #approvalKey: WatchedFiles;
  #settings: InjectionSettings | undefined;
  #key: Uint8Array | undefined;

  constructor({ view, clock, log, options }: { readonly view: ClusterView; readonly clock: Clock; readonly log: Logger; readonly options: WebhookOptions }) {
    this.#view = view;
    this.#clock = clock;
    this.#log = log;
    this.#options = options;
    this.#admission = new AdmissionServer(
      admissionApp({
        handlers: {
          pods: (r) => this.#pods(r),
          approvalrequests: (r) => reviewApprovalAdmission(r, this.#key, new Date(this.#clock.now())),
          policies: (r) => validatePolicyAdmission(r),
        },
        metrics: this.metrics,
        log,
      }),
    );
    this.#health = new HealthServer({ probe: { notReady: () => this.notReady() }, registry: this.metrics.registry });
    const pollMs = options.pollMs ?? 1000;
    const crt = join(options.tlsDir, 'tls.crt');
    const key = join(options.tlsDir, 'tls.key');
    this.#tls = new WatchedFiles({
      name: `${crt}, ${key}`,
      files: [crt, key],
      clock,
      log,
      pollMs,
      apply: (c) => {
        try {
          this.#applyTls(c, crt, key);
        } catch (err) {
          this.metrics.tlsReloads.inc({ result: 'failed' });
          throw err;
        }
      },
    });
    const caFile = options.controlCaFile ?? join(options.tlsDir, 'ca.crt');
    this.#controlCa = new WatchedFiles({ name: caFile, files: [caFile], clock, log, pollMs, apply: (c) => { this.#applyControlCa(c.get(caFile)); } });
    this.#approvalKey = new WatchedFiles({
      name: options.approvalKeyFile,
      files: [options.approvalKeyFile],
      clock,
      log,
      pollMs,
      apply: (c) => { this.#applyApprovalKey(c.get(options.approvalKeyFile)); },
    });
  }

  /** what is not ready: informers not synced, no serving certificate */
  notReady(): readonly string[] {
    const waiting = [...this.#view.notSynced()];
    if (!this.#tls.loaded) waiting.push(`serving certificate (${this.#tls.error ?? 'not loaded'})`);
    return waiting;
  }

  async start(): Promise<RunningAddresses> {
    await Promise.all([this.#tls.start(), this.#controlCa.start(), this.#approvalKey.start()]);
    if (this.#controlCa.error !== undefined) this.#log.error('control CA not loaded: opted-in pods are refused until it is', { error: this.#controlCa.error });
    if (this.#approvalKey.error !== undefined) this.#log.error('approval key not loaded: approval decisions are refused until it is', { error: this.#approvalKey.error });
    const metrics = await this.#health.listen(this.#options.metrics.host, this.#options.metrics.port);
    const admission = await this.#admission.listen(this.#options.listen.host, this.#options.listen.port);
    this.#log.info('serving', { address: `${admission.address}:${admission.port}`, metricsAddress: `${metrics.address}:${metrics.port}`, tlsDir: this.#options.tlsDir });
    return { admission, metrics };
  }

  /** stops accepting, lets in-flight admissions finish, then closes the probes */
  async stop(): Promise<void> {
    this.#tls.stop();
    this.#controlCa.stop();
    this.#approvalKey.stop();
    await this.#admission.close(this.#options.shutdownGraceMs ?? 10_000);
    await this.#health.close();
  }

  async #pods(request: AdmissionRequest): Promise<AdmissionVerdict> {
    const namespaceName = request.namespace;
    if (namespaceName === undefined) return deny('a pod admission without a namespace', 400, 'BadRequest');
    const namespace = await this.#view.namespace(namespaceName);
    if (namespace === undefined) return deny(`namespace ${namespaceName} not found`, 404, 'NotFound');
    const connections = this.#view.connections(namespaceName);
    const domain = this.#options.clusterDomain ?? 'cluster.local';
    const backends = new Map((connections ?? []).map((c) => [connectionName(c), backendPorts(c.spec.target, namespaceName, domain, this.#view)] as const));
    return injectPodAdmission(request, {
      namespace,
      connections,
      backendPorts: backends,
      settings: this.#settings,
      ...(this.#controlCa.error === undefined ? {} : { settingsProblem: `the control API's CA bundle cannot be read: ${this.#controlCa.error}` }),
    });
  }

  #applyTls(contents: FileContents, crtFile: string, keyFile: string): void {
    const cert = contents.get(crtFile);
    const key = contents.get(keyFile);
    if (cert === undefined || key === undefined) throw new Error(`${cert === undefined ? crtFile : keyFile} is missing`);
    try {
      // throws on a malformed certificate or a key that does not match it (e.g. half-way through a rewrite)
      createSecureContext({ cert, key });
    } catch (err) {
      throw new Error(`${crtFile} and ${keyFile} are not a usable pair: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#admission.setCertificate({ cert, key });
    this.metrics.tlsReloads.inc({ result: 'loaded' });
  }

  #applyControlCa(data: Buffer | undefined): void {
    const file = this.#options.controlCaFile ?? join(this.#options.tlsDir, 'ca.crt');
    if (data === undefined) throw new Error(`${file} is missing`);
    const pem = data.toString('utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${file} holds no PEM certificate`);
    const s = this.#options.sidecar;
    this.#settings = {
      image: s.image,
      ...(s.imagePullPolicy === undefined ? {} : { imagePullPolicy: s.imagePullPolicy }),
      controlUrl: s.controlUrl,
      controlCa: pem,
      ...(s.resources === undefined ? {} : { resources: s.resources }),
      defaultCapture: s.defaultCapture ?? 'transparent',
      airlockNamespace: this.#options.airlockNamespace,
    };
  }

  #applyApprovalKey(data: Buffer | undefined): void {
    if (data === undefined) throw new Error(`${this.#options.approvalKeyFile} is missing`);
    if (data.length < MIN_APPROVAL_KEY_BYTES) throw new Error(`${this.#options.approvalKeyFile} holds ${data.length} bytes; the approval key must have at least ${MIN_APPROVAL_KEY_BYTES}`);
    this.#key = new Uint8Array(data);
  }
}
