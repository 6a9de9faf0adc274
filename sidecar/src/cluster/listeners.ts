/**
 * One loopback listener per connection of the bundle, in this one process: opened, closed or
 * given a new policy as bundles change (plan.ts decides which). Each listener reads its policy
 * by reference (SwappablePolicy), so a new bundle applies to the next statement of running
 * sessions.
 */
import type { ApprovalPort } from '../approval/port.ts';
import type { Logger } from '../log.ts';
import type { AgentTlsSource } from '../pg/agent-tls.ts';
import type { AgentHostKeySource } from '../ssh/proxy.ts';
import type { Enforcement, PolicySource, ProxyOptions, RunningProxy, SessionObserver } from '../proxy.ts';
import type { CompiledConnection } from './compile.ts';
import { planListeners, type ListenerSpec } from './plan.ts';

/** A policy source whose enforcement is swapped in place. */
export class SwappablePolicy implements PolicySource {
  readonly connection: { readonly name: string; readonly namespace: string };
  #current: Enforcement | undefined;

  constructor(connection: { name: string; namespace: string }, initial: Enforcement | undefined, refusal?: string) {
    this.connection = connection;
    this.#current = initial;
    this.#refusal = refusal;
  }

  #refusal: string | undefined;

  current(): Enforcement | undefined {
    return this.#current;
  }

  refusal(): string | undefined {
    return this.#refusal;
  }

  /** `refusal`: why the connection cannot be served, when `e` is undefined */
  set(e: Enforcement | undefined, refusal?: string): void {
    this.#current = e;
    this.#refusal = refusal;
  }
}

/** what the proxies present to the agent (cluster mode: from the operator) */
export interface AgentIdentityOptions {
  readonly agentTls?: AgentTlsSource;
  readonly agentHostKey?: AgentHostKeySource;
}

export type StartProxy = (options: ProxyOptions & AgentIdentityOptions) => Promise<RunningProxy>;

export interface ListenerSetDeps {
  readonly log: Logger;
  readonly approvals: ApprovalPort;
  readonly sessions: SessionObserver;
  /** loopback host (127.0.0.1) */
  readonly host: string;
  readonly loadProxy: (protocol: 'postgres' | 'ssh') => Promise<StartProxy>;
  /** the agent-facing certificate and SSH host key, when the operator issues them */
  readonly agentIdentity?: AgentTlsSource & AgentHostKeySource;
}

interface Listener {
  readonly spec: ListenerSpec;
  readonly policy: SwappablePolicy;
  readonly proxy: RunningProxy;
}

export interface WantedConnection {
  readonly compiled: CompiledConnection;
  readonly recordingsDir: string;
}

/** The enforcement a connection's sessions get: its compiled one, or (it no longer resolves) a refusal with the last upstream. */
function enforcementOf(c: CompiledConnection, previous: Enforcement | undefined): Enforcement | undefined {
  if (c.enforcement !== undefined) return c.enforcement;
  if (previous === undefined) return undefined;
  return { bundle: undefined, upstream: previous.upstream, unavailable: c.error ?? 'the connection cannot be served' };
}

export class ListenerSet {
  readonly #deps: ListenerSetDeps;
  readonly #listeners = new Map<string, Listener>();
  /** connections of the last bundle that have no listener, and why */
  readonly #failed = new Map<string, string>();
  #pod: { name: string; serviceAccount: string } | undefined;

  constructor(deps: ListenerSetDeps) {
    this.#deps = deps;
  }

  /** every connection of the last bundle has its listener */
  get allUp(): boolean {
    return this.#failed.size === 0;
  }

  get failures(): ReadonlyMap<string, string> {
    return this.#failed;
  }

  /** name → host:port of each listener */
  addresses(): Record<string, string> {
    return Object.fromEntries([...this.#listeners].map(([n, l]) => [n, `${l.proxy.host}:${String(l.proxy.port)}`]));
  }

  async apply(wanted: ReadonlyMap<string, WantedConnection>, pod: { name: string; serviceAccount: string }): Promise<void> {
    const { log } = this.#deps;
    this.#pod = pod;
    const specs = new Map<string, ListenerSpec>([...wanted].map(([n, w]) => [n, { protocol: w.compiled.protocol, listenPort: w.compiled.listenPort, recordingsDir: w.recordingsDir }]));
    const plan = planListeners(new Map([...this.#listeners].map(([n, l]) => [n, l.spec])), specs);
    this.#failed.clear();
    for (const c of plan.conflicts) {
      this.#failed.set(c.name, `port ${String(c.port)} is already the listener of connection ${c.with}`);
      log.error('connection not served: its listen port is taken', { connection: c.name, port: c.port, by: c.with });
    }
    const previous = new Map<string, Enforcement | undefined>();
    for (const name of plan.stop) {
      const l = this.#listeners.get(name);
      if (l === undefined) continue;
      previous.set(name, l.policy.current());
      this.#listeners.delete(name);
      log.info(wanted.has(name) ? 'listener restarting' : 'listener closing', { connection: name, listen: `${l.proxy.host}:${String(l.proxy.port)}` });
      await l.proxy.close();
    }
    for (const name of plan.keep) {
      const l = this.#listeners.get(name);
      const w = wanted.get(name);
      if (l === undefined || w === undefined) continue;
      l.policy.set(enforcementOf(w.compiled, l.policy.current()), w.compiled.error);
    }
    for (const name of plan.start) {
      const w = wanted.get(name);
      const spec = specs.get(name);
      if (w === undefined || spec === undefined) continue;
      const policy = new SwappablePolicy({ name, namespace: w.compiled.namespace }, enforcementOf(w.compiled, previous.get(name)), w.compiled.error);
      try {
        const start = await this.#deps.loadProxy(spec.protocol);
        const proxy = await start({
          policy,
          listen: { host: this.#deps.host, port: spec.listenPort },
          recordingsDir: spec.recordingsDir,
          approvals: this.#deps.approvals,
          log: this.#deps.log,
          sessions: this.#deps.sessions,
          pod: pod.name,
          serviceAccount: pod.serviceAccount,
          ...(this.#deps.agentIdentity === undefined ? {} : { agentTls: this.#deps.agentIdentity, agentHostKey: this.#deps.agentIdentity }),
        });
        this.#listeners.set(name, { spec, policy, proxy });
        log.info('listener up', { connection: name, protocol: spec.protocol, listen: `${proxy.host}:${String(proxy.port)}` });
      } catch (err) {
        this.#failed.set(name, `cannot listen on ${this.#deps.host}:${String(spec.listenPort)}: ${(err as Error).message}`);
        log.error('listener failed', { connection: name, port: spec.listenPort, error: (err as Error).message });
      }
    }
  }

  /** retries the listeners that failed to open (a port freed later) */
  async retryFailed(wanted: ReadonlyMap<string, WantedConnection>): Promise<void> {
    if (this.#failed.size === 0 || this.#pod === undefined) return;
    await this.apply(wanted, this.#pod);
  }

  async close(): Promise<void> {
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map((l) => l.proxy.close()));
  }
}
