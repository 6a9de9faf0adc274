/**
 * Leader election on a Lease (client-node 2.0.1 ships no helper). Every `retryPeriodMs` the
 * candidate reads the Lease and takes or renews it as decideLease says; a leader that cannot
 * renew for `renewDeadlineMs`, or finds someone else holding the Lease, stops leading. On a
 * clean stop the leader releases the Lease so a standby takes over at its next try.
 */
import { V1Lease, V1LeaseSpec, V1MicroTime, V1ObjectMeta } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { Kube } from '../kube.ts';
import { decideLease, releasedLease, type LeaseState } from './lease.ts';

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') return Date.parse(value);
  return undefined;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export class LeaderElector {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #options: Required<LeaderElectionOptions>;
  #callbacks: LeaderCallbacks | undefined;
  #leading = false;
  #lastRenew = 0;
  #stopped = false;
  #cancelTick: (() => void) | undefined;
  #tick: Promise<void> = Promise.resolve();

  constructor({ kube, clock, log, options }: { readonly kube: Kube; readonly clock: Clock; readonly log: Logger; readonly options: LeaderElectionOptions }) {
    this.#kube = kube;
    this.#clock = clock;
    this.#log = log;
    this.#options = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(callbacks: LeaderCallbacks): void {
    this.#callbacks = callbacks;
    this.#log.info('leader election: candidate', { lease: `${this.#options.namespace}/${this.#options.name}`, identity: this.#options.identity });
    this.#tick = this.#attempt();
  }

  /** stops trying; a leader releases the Lease */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTick?.();
    await this.#tick;
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const current = await this.#read();
      if (current?.spec?.holderIdentity === this.#options.identity) {
        await this.#write(current, releasedLease(this.#state(current), this.#clock.now()));
        this.#log.info('leader election: lease released', { identity: this.#options.identity });
      }
    } catch (err) {
      this.#log.warn('leader election: lease not released', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  async #attempt(): Promise<void> {
    let holding = false;
    try {
      holding = await this.#tryAcquireOrRenew();
    } catch (err) {
      this.#log.warn('leader election: lease not acquired or renewed', { error: err instanceof Error ? err.message : String(err) });
    }
    const now = this.#clock.now();
    if (holding) this.#lastRenew = now;
    if (this.#stopped) {
      // stop() is waiting for this attempt: it releases what the attempt took
      this.#leading ||= holding;
      return;
    }
    if (holding) {
      if (!this.#leading) {
        this.#leading = true;
        this.#log.info('leader election: leading', { identity: this.#options.identity });
        this.#callbacks?.onStartedLeading();
      }
    } else if (this.#leading && (now - this.#lastRenew >= this.#options.renewDeadlineMs || (await this.#heldByOther()))) {
      this.#leading = false;
      this.#log.error('leader election: leadership lost', { identity: this.#options.identity });
      this.#callbacks?.onStoppedLeading();
      return;
    }
    this.#cancelTick = this.#clock.setTimer(this.#options.retryPeriodMs, () => {
      this.#tick = this.#attempt();
    });
  }

  /** true when this candidate holds the Lease after the attempt */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const current = await this.#read();
    const decision = decideLease(current === undefined ? undefined : this.#state(current), this.#options.identity, this.#clock.now(), this.#options.leaseDurationSeconds);
    if (decision.action === 'wait') return false;
    try {
      if (decision.action === 'create') {
        await this.#kube.coordination.createNamespacedLease({ namespace: this.#options.namespace, body: this.#lease(undefined, decision.lease) });
      } else {
        await this.#write(current, decision.lease);
      }
    } catch (err) {
      // another candidate wrote first
      if (statusCode(err) === 409) return false;
      throw err;
    }
    if (decision.acquired) this.#log.info('leader election: lease acquired', { identity: this.#options.identity });
    return true;
  }

  async #heldByOther(): Promise<boolean> {
    try {
      const holder = (await this.#read())?.spec?.holderIdentity ?? '';
      return holder !== '' && holder !== this.#options.identity;
    } catch {
      return false;
    }
  }

  async #read(): Promise<V1Lease | undefined> {
    try {
      return await this.#kube.coordination.readNamespacedLease({ namespace: this.#options.namespace, name: this.#options.name });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async #write(current: V1Lease | undefined, state: Required<LeaseState>): Promise<void> {
    await this.#kube.coordination.replaceNamespacedLease({ namespace: this.#options.namespace, name: this.#options.name, body: this.#lease(current?.metadata?.resourceVersion, state) });
  }

  #state(lease: V1Lease): LeaseState {
    const spec = lease.spec;
    const state: { -readonly [K in keyof LeaseState]: LeaseState[K] } = {};
    if (spec?.holderIdentity !== undefined) state.holderIdentity = spec.holderIdentity;
    if (spec?.leaseDurationSeconds !== undefined) state.leaseDurationSeconds = spec.leaseDurationSeconds;
    const acquired = timeOf(spec?.acquireTime);
    if (acquired !== undefined) state.acquireTime = acquired;
    const renewed = timeOf(spec?.renewTime);
    if (renewed !== undefined) state.renewTime = renewed;
    if (spec?.leaseTransitions !== undefined) state.leaseTransitions = spec.leaseTransitions;
    return state;
  }

  #lease(resourceVersion: string | undefined, state: Required<LeaseState>): V1Lease {
    return Object.assign(new V1Lease(), {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: Object.assign(new V1ObjectMeta(), { name: this.#options.name, namespace: this.#options.namespace, ...(resourceVersion === undefined ? {} : { resourceVersion }) }),
      spec: Object.assign(new V1LeaseSpec(), {
        holderIdentity: state.holderIdentity,
        leaseDurationSeconds: state.leaseDurationSeconds,
        acquireTime: new V1MicroTime(state.acquireTime),
        renewTime: new V1MicroTime(state.renewTime),
        leaseTransitions: state.leaseTransitions,
      }),
    });
  }
}
