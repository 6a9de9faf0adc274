/**
 * The control API as the operator runs it on every replica: token verification against the API
 * server's issuer, the routes, the HTTPS listener, and its serving certificate — from a directory
 * (cert-manager, tests; re-read every 30 s) or from the certificate manager (reloaded on every
 * change). It listens as soon as a certificate is there.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { ControlApi, type ControlApiDeps, type ControlView } from './api.ts';
import { TokenVerifier } from './auth.ts';
import { ControlServer, readTlsDir, watchTlsDir, type TlsMaterial } from './https.ts';
import { IssuerKeys } from './issuer.ts';
import { PodEvents } from './pod-events.ts';
import type { ApprovalsPort, SessionsPort } from './ports.ts';
import type { NamespaceSignals } from './signals.ts';

/** where the serving certificate comes from */
export type TlsSource =
  | { readonly kind: 'dir'; readonly dir: string }
  | { readonly kind: 'manager'; readonly manager: { waitForControlTls(): Promise<TlsMaterial>; onChange(listener: (tls: TlsMaterial) => void): () => void } };

export interface ControlServiceOptions {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  readonly view: ControlView;
  readonly signals: NamespaceSignals;
  readonly instance: string;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsSource;
  readonly approvals?: ApprovalsPort | undefined;
  readonly sessions?: SessionsPort | undefined;
  readonly certificates?: ControlApiDeps['certificates'];
}

export class ControlService {
  readonly #options: ControlServiceOptions;
  readonly #api: ControlApi;
  #server: ControlServer | undefined;
  #address: AddressInfo | undefined;
  #stopWatching: (() => void) | undefined;
  #stopped = false;

  constructor(options: ControlServiceOptions) {
    this.#options = options;
    const { kube, clock, log } = options;
    const keys = new IssuerKeys({
      clock,
      source: {
        discovery: () => kube.wellKnown.getServiceAccountIssuerOpenIDConfiguration(),
        keySet: () => kube.openid.getServiceAccountIssuerOpenIDKeyset(),
      },
    });
    this.#api = new ControlApi({
      verifier: new TokenVerifier({ keys, clock }),
      view: options.view,
      signals: options.signals,
      events: new PodEvents({ kube, clock, log, instance: options.instance }),
      metrics: options.metrics,
      log,
      approvals: options.approvals,
      sessions: options.sessions,
      certificates: options.certificates,
    });
  }

  /** the bound address once listening */
  get address(): AddressInfo | undefined {
    return this.#address;
  }

  /** resolves once listening (after the certificate is there) */
  async start(): Promise<AddressInfo> {
    const { tls, log, clock } = this.#options;
    const first = tls.kind === 'dir' ? await readTlsDir(tls.dir) : await tls.manager.waitForControlTls();
    if (this.#stopped) throw new Error('stopped before the control API listened');
    const server = new ControlServer({ app: this.#api.app, tls: { cert: first.cert, key: first.key } });
    this.#server = server;
    const reload = (next: TlsMaterial): void => {
      if (server.setTls({ cert: next.cert, key: next.key })) log.info('control API certificate reloaded');
    };
    this.#stopWatching = tls.kind === 'dir' ? watchTlsDir({ dir: tls.dir, clock, log, onChange: reload }) : tls.manager.onChange(reload);
    this.#address = await server.listen(this.#options.host, this.#options.port);
    log.info('serving the control API', { controlAddress: `${this.#address.address}:${this.#address.port}` });
    return this.#address;
  }

  /** wakes long polls (they answer with the current bundle), then closes the listener */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopWatching?.();
    this.#options.signals.wakeAll();
    await this.#server?.close();
  }
}
