/**
 * The sidecar in cluster mode: one process serving every connection of the pod. It long-polls
 * the operator for its bundle, compiles each connection as local mode compiles manifests, keeps
 * one loopback listener per connection, asks approvals and reports sessions through the control
 * API, and answers the kubelet's readiness probe once the first bundle is applied and every
 * listener is up. With the operator unreachable it keeps enforcing the last bundle; before the
 * first one nothing is served.
 */
import type * as Http from 'node:http';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { BundleConnection, SidecarBundle } from '@airlock/api';
import { loadSqlParser } from '@airlock/policy';
import type { Logger } from '../log.ts';
import { ClusterApprovals } from './approvals.ts';
import type { ControlClient } from './client.ts';
import { compileConnection, refusedConnection, type CompiledConnection } from './compile.ts';
import { AgentIdentity } from './identity.ts';
import { ListenerSet, type StartProxy, type WantedConnection } from './listeners.ts';
import { ReportBuffer, ReportSender, SessionReporter } from './reports.ts';

/**
 * node:http as its CommonJS object: an ESM import of node:http makes Node build the module's ESM
 * facade, which reads every export and so runs each lazy getter (undici for WebSocket and
 * EventSource, http2, perf_hooks, …): 57 more internal modules, ~9 MiB resident and ~70 ms of
 * CPU at start-up, for a health endpoint.
 */
function builtinHttp(): typeof Http {
  return process.getBuiltinModule('node:http');
}

/** the long poll's wait */
export const BUNDLE_WAIT_SECONDS = 30;

export interface ClusterSidecarOptions {
  readonly client: ControlClient;
  readonly log: Logger;
  /** where the recordings claims are mounted: `<root>/<claimName or "default">/` */
  readonly recordingsRoot: string;
  readonly stateDir: string;
  /** the readiness endpoint (0.0.0.0:SIDECAR_HEALTH_PORT in a pod) */
  readonly health: { readonly host: string; readonly port: number };
  /** loopback host of the listeners (default 127.0.0.1) */
  readonly listenHost?: string;
  readonly progressSeconds?: number;
  readonly progressStatements?: number;
  /** first retry delay after a failed bundle request (doubles up to 10 s) */
  readonly retryMs?: number;
}

/**
 * The recordings directory of a connection: `<root>/<claim or default>` (sessions add
 * `<connection>/`). The kubelet mounts the claim's per-pod subdirectory there
 * (`subPathExpr: <namespace>/<pod>`), so inside the claim a recording is at
 * `<namespace>/<pod>/<connection>/<session>.jsonl`: the path the session reports give.
 */
export function recordingsDirOf(root: string, claimName: string | undefined): string {
  return join(root, claimName ?? 'default');
}

export class ClusterSidecar {
  readonly #o: ClusterSidecarOptions;
  readonly #listeners: ListenerSet;
  readonly #sender: ReportSender;
  readonly #reporter: SessionReporter;
  readonly #abort = new AbortController();
  readonly #identity: AgentIdentity;
  #identityFirst: Promise<void> = Promise.resolve();
  #targets = '';
  /** compiled connections by the text of what went in (unchanged connections are not compiled again) */
  #compiled = new Map<string, CompiledConnection>();
  #wanted = new Map<string, WantedConnection>();
  #claims = new Map<string, string | undefined>();
  /** `<namespace>/<pod>`: the subdirectory of each claim mounted at its recordings directory */
  #podDir = '';
  #revision: string | undefined;
  #applied = false;
  #health: Server | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: ClusterSidecarOptions) {
    this.#o = options;
    const { client, log } = options;
    const buffer = new ReportBuffer(options.stateDir);
    if (buffer.pending.length > 0) log.info('session reports buffered by an earlier run will be delivered', { pending: buffer.pending.length, file: buffer.path });
    this.#sender = new ReportSender({ buffer, send: (r) => client.report(r), log, ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}) });
    this.#reporter = new SessionReporter({
      submit: (r) => {
        this.#sender.submit(r);
      },
      claimOf: (connection) => {
        const claimName = this.#claims.get(connection);
        return { root: recordingsDirOf(options.recordingsRoot, claimName), claimName, within: this.#podDir };
      },
      progressMs: (options.progressSeconds ?? 30) * 1000,
      progressStatements: options.progressStatements ?? 100,
    });
    this.#identity = new AgentIdentity({ client, log, ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}) });
    this.#listeners = new ListenerSet({
      log,
      agentIdentity: this.#identity,
      approvals: new ClusterApprovals({ client, log }),
      sessions: this.#reporter,
      host: options.listenHost ?? '127.0.0.1',
      loadProxy: async (protocol): Promise<StartProxy> => (protocol === 'postgres' ? (await import('../pg/proxy.ts')).startPgProxy : (await import('../ssh/proxy.ts')).startSshProxy),
    });
  }

  /** ready: the first bundle is applied and every listener is up */
  get ready(): boolean {
    return this.#applied && this.#listeners.allUp;
  }

  get revision(): string | undefined {
    return this.#revision;
  }

  addresses(): Record<string, string> {
    return this.#listeners.addresses();
  }

  /** Serves the readiness endpoint, starts delivering buffered reports, and polls for bundles. Resolves with the health address. */
  async start(): Promise<{ host: string; port: number }> {
    const health = await this.#serveHealth();
    this.#sender.start();
    this.#identityFirst = this.#identity.start();
    this.#loop = this.#pollBundles();
    return health;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#identity.stop();
    await this.#loop;
    await this.#listeners.close();
    this.#reporter.stop();
    // the end reports of the sessions just closed are buffered; the next start delivers what is left
    await this.#sender.stop();
    this.#o.client.close();
    const h = this.#health;
    if (h !== undefined) await new Promise<void>((resolve) => h.close(() => { resolve(); }));
  }

  /** resolves once the report buffer is empty (tests), or after `timeoutMs` with false */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.#sender.idle) {
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  }

  #serveHealth(): Promise<{ host: string; port: number }> {
    const server = builtinHttp().createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || (path !== '/healthz/ready' && path !== '/healthz/live')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      if (path === '/healthz/live' || this.ready) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      const why = !this.#applied ? 'no bundle from the Airlock operator yet' : [...this.#listeners.failures].map(([n, e]) => `${n}: ${e}`).join('; ');
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${why}\n`);
    });
    this.#health = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.health.port, this.#o.health.host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve({ host: this.#o.health.host, port: typeof a === 'object' && a !== null ? a.port : this.#o.health.port });
      });
    });
  }

  async #pollBundles(): Promise<void> {
    const { client, log } = this.#o;
    const signal = this.#abort.signal;
    const base = this.#o.retryMs ?? 500;
    let delay = base;
    let failing = false;
    while (!signal.aborted) {
      try {
        const bundle = await client.bundle(this.#revision, BUNDLE_WAIT_SECONDS, signal);
        if (failing) log.info('the control API answers again', { url: client.url });
        failing = false;
        delay = base;
        if (bundle.revision !== this.#revision || !this.#applied) await this.#apply(bundle);
        else if (!this.#listeners.allUp) await this.#listeners.retryFailed(this.#wanted);
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        if (!failing) {
          log.warn(this.#applied ? 'cannot reach the control API: the last bundle stays enforced' : 'cannot reach the control API: nothing is served until a first bundle arrives', { url: client.url, error: (err as Error).message, revision: this.#revision ?? null });
        }
        failing = true;
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  async #apply(bundle: SidecarBundle): Promise<void> {
    const { log } = this.#o;
    const pod = bundle.pod;
    const compiled = new Map<string, CompiledConnection>();
    const wanted = new Map<string, WantedConnection>();
    const claims = new Map<string, string | undefined>();
    for (const bc of bundle.connections) {
      const key = keyOf(bc, pod.namespace, pod.serviceAccount);
      let c = this.#compiled.get(key);
      if (c === undefined) {
        c = compileConnection(bc, pod.namespace, pod.serviceAccount);
        if (c === undefined) {
          log.error('connection not served: the bundle holds no AgentConnection for it', { connection: bc.name });
          continue;
        }
        const computed = c.enforcement?.bundle?.digest;
        if (c.error !== undefined) log.error('connection refused: it does not compile', { connection: bc.name, error: c.error, operatorDigest: bc.digest });
        else if (computed !== bc.digest) log.warn('policy digest differs from the operator\'s', { connection: bc.name, operatorDigest: bc.digest, digest: computed });
        else log.info('policy compiled', { connection: bc.name, digest: computed });
      }
      compiled.set(key, c);
      claims.set(bc.name, c.claimName);
      this.#podDir = join(pod.namespace, pod.name);
      wanted.set(bc.name, { compiled: c, recordingsDir: recordingsDirOf(this.#o.recordingsRoot, c.claimName) });
    }
    for (const r of bundle.refused ?? []) {
      if (wanted.has(r.name)) continue;
      const c = refusedConnection(r, pod.namespace);
      log.error('connection refused: the operator cannot serve it', { connection: r.name, reason: r.reason, error: r.message });
      wanted.set(r.name, { compiled: c, recordingsDir: recordingsDirOf(this.#o.recordingsRoot, undefined) });
    }
    this.#compiled = compiled;
    // claims of connections removed stay known: their sessions' end reports still come
    for (const [n, c] of claims) this.#claims.set(n, c);
    this.#wanted = wanted;
    // the first listeners open with the agent-facing certificate when the operator issues one;
    // a change of targets asks for one with the new names
    if (!this.#applied) await this.#identityFirst;
    const targets = JSON.stringify([...compiled.values()].map((c) => [c.protocol, c.enforcement?.upstream.host, c.enforcement?.upstream.port]).sort());
    if (this.#applied && targets !== this.#targets) void this.#identity.refresh();
    this.#targets = targets;
    // the PostgreSQL parser (WASM) is loaded by the first bundle that serves a postgres connection:
    // a pod with SSH connections only never holds it
    if ([...compiled.values()].some((c) => c.protocol === 'postgres')) await loadSqlParser();
    await this.#listeners.apply(wanted, { name: pod.name, serviceAccount: pod.serviceAccount });
    this.#revision = bundle.revision;
    const first = !this.#applied;
    this.#applied = true;
    log.info(first ? 'ready' : 'bundle applied', {
      revision: bundle.revision,
      pod: `${pod.namespace}/${pod.name}`,
      listeners: this.#listeners.addresses(),
      ...(this.#listeners.allUp ? {} : { failed: Object.fromEntries(this.#listeners.failures) }),
    });
  }
}

function keyOf(bc: BundleConnection, namespace: string, serviceAccount: string): string {
  return JSON.stringify([bc.name, bc.digest, namespace, serviceAccount, bc.objects]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
