/**
 * Keeps ConfigMap OBJECT_NAMES.agentTrustConfigMap in every namespace that has AgentConnections:
 * Airlock's CA bundle (ca.crt, for PGSSLROOTCERT) and the namespace's known_hosts line pinning its
 * Airlock SSH host key for the ssh targets' names (ssh_known_hosts). The webhook mounts it into
 * the agent containers. Leader only; a namespace is written when one of its connections changes,
 * when the CA or the SSH seed changes, and every `resyncMs` (a deleted ConfigMap comes back then).
 * A ConfigMap of a namespace left without connections is left as it is.
 */
import { AGENT_TRUST, COMPONENT_LABEL, COMPONENT_VALUE, OBJECT_NAMES, type AgentConnection } from '@airlock/api';
import { V1ConfigMap, V1ObjectMeta } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import { agentTrustData, knownHostsText, sshHostPatterns } from './agent.ts';
import { deriveSshHostKey } from './ssh-key.ts';

export interface TrustSource {
  /** the CA bundle agents trust ('' while there is none) */
  agentCaBundle(): string;
  /** the SSH host key seed (undefined while there is none) */
  sshSeed(): Uint8Array | undefined;
}

export interface AgentTrustPublisherOptions {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  readonly source: TrustSource;
  /** the AgentConnections of every namespace, from the informer's cache */
  readonly connections: () => readonly AgentConnection[];
  readonly resyncMs?: number;
}

const DEBOUNCE_MS = 200;
const MANAGED_LABELS = { [COMPONENT_LABEL]: COMPONENT_VALUE, 'app.kubernetes.io/managed-by': 'airlock-operator' };

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** the ConfigMap's data for a namespace's connections; pure */
export function desiredTrust(namespace: string, connections: readonly AgentConnection[], source: { readonly bundle: string; readonly seed: Uint8Array | undefined }): Record<string, string> {
  const patterns = sshHostPatterns(connections.filter((c) => (c.metadata.namespace ?? 'default') === namespace));
  const knownHosts = source.seed === undefined ? '' : knownHostsText(patterns, deriveSshHostKey(source.seed, namespace).publicKey);
  const data = agentTrustData(source.bundle, knownHosts);
  return data;
}

function sameData(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>>): boolean {
  const ak = Object.keys(a ?? {}).sort();
  const bk = Object.keys(b).sort();
  return ak.length === bk.length && ak.every((k, i) => k === bk[i] && a?.[k] === b[k]);
}

export class AgentTrustPublisher {
  readonly #o: AgentTrustPublisherOptions;
  readonly #log: Logger;
  readonly #dirty = new Set<string>();
  #leading = false;
  #stopped = false;
  #cancelTimer: (() => void) | undefined;
  #cancelResync: (() => void) | undefined;
  #pass: Promise<void> | undefined;
  #failures = 0;

  constructor(options: AgentTrustPublisherOptions) {
    this.#o = options;
    this.#log = options.log.child({ controller: 'agent-trust' });
  }

  setLeader(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    if (leading) {
      this.touchAll();
      this.#scheduleResync();
    } else {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      this.#cancelResync?.();
    }
  }

  /** a connection of `namespace` changed */
  touch(namespace: string): void {
    this.#dirty.add(namespace);
    this.#schedule(DEBOUNCE_MS);
  }

  /** the CA or the SSH seed changed: every namespace */
  touchAll(): void {
    for (const c of this.#o.connections()) this.#dirty.add(c.metadata.namespace ?? 'default');
    this.#schedule(DEBOUNCE_MS);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelResync?.();
    await this.#pass;
  }

  #scheduleResync(): void {
    this.#cancelResync = this.#o.clock.setTimer(this.#o.resyncMs ?? 300_000, () => {
      if (!this.#leading || this.#stopped) return;
      this.touchAll();
      this.#scheduleResync();
    });
  }

  #schedule(delayMs: number): void {
    if (!this.#leading || this.#stopped || this.#cancelTimer !== undefined || this.#pass !== undefined) return;
    this.#cancelTimer = this.#o.clock.setTimer(delayMs, () => {
      this.#cancelTimer = undefined;
      this.#pass = this.#run().finally(() => {
        this.#pass = undefined;
        if (this.#dirty.size > 0) this.#schedule(this.#failures === 0 ? 0 : Math.min(1000 * 2 ** (this.#failures - 1), 60_000));
      });
    });
  }

  async #run(): Promise<void> {
    const namespaces = [...this.#dirty].sort();
    this.#dirty.clear();
    const source = { bundle: this.#o.source.agentCaBundle(), seed: this.#o.source.sshSeed() };
    const all = this.#o.connections();
    let failed = false;
    for (const namespace of namespaces) {
      if (!this.#leading || this.#stopped) return;
      const connections = all.filter((c) => (c.metadata.namespace ?? 'default') === namespace);
      if (connections.length === 0) continue;
      if (source.bundle === '' && source.seed === undefined) {
        // nothing to publish yet; the manager's onTrustChange brings it back
        continue;
      }
      try {
        await this.#write(namespace, desiredTrust(namespace, connections, source));
      } catch (err) {
        failed = true;
        this.#dirty.add(namespace);
        this.#log.warn('cannot write the agents\' trust ConfigMap; retrying', { namespace, configMap: OBJECT_NAMES.agentTrustConfigMap, error: err instanceof Error ? err.message : String(err) });
      }
    }
    this.#failures = failed ? this.#failures + 1 : 0;
  }

  async #write(namespace: string, data: Record<string, string>): Promise<void> {
    const core = this.#o.kube.core;
    const name = OBJECT_NAMES.agentTrustConfigMap;
    let current: V1ConfigMap | undefined;
    try {
      current = await core.readNamespacedConfigMap({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    if (current !== undefined && sameData(current.data, data)) return;
    const body = Object.assign(new V1ConfigMap(), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: Object.assign(new V1ObjectMeta(), {
        name,
        namespace,
        labels: { ...(current?.metadata?.labels ?? {}), ...MANAGED_LABELS },
        annotations: { ...(current?.metadata?.annotations ?? {}), 'airlock.dev/mount-path': AGENT_TRUST.mountPath },
        ...(current?.metadata?.resourceVersion === undefined ? {} : { resourceVersion: current.metadata.resourceVersion }),
      }),
      data,
    });
    try {
      if (current === undefined) await core.createNamespacedConfigMap({ namespace, body });
      else await core.replaceNamespacedConfigMap({ name, namespace, body });
    } catch (err) {
      // written meanwhile (another leader's last write, or the user): read again on the next pass
      if (statusCode(err) === 409) {
        this.#dirty.add(namespace);
        return;
      }
      throw err;
    }
    this.#log.info(current === undefined ? 'agents\' trust ConfigMap created' : 'agents\' trust ConfigMap updated', { namespace, configMap: name });
  }
}
