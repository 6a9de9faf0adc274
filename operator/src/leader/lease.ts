/**
 * Leader election over a coordination.k8s.io Lease, decided as client-go's leaderelection does:
 * a lease nobody holds, or whose holder has not renewed it within its duration, may be taken;
 * the holder renews it; anyone else waits. Pure: the lease as read and the time go in, what to
 * write comes out (the write itself carries the read resourceVersion, so two candidates that
 * decide at once cannot both win).
 */
export interface LeaseState {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  /** ms since the epoch */
  readonly acquireTime?: number;
  readonly renewTime?: number;
  readonly leaseTransitions?: number;
}

export type LeaseDecision =
  | { readonly action: 'create' | 'update'; readonly lease: Required<LeaseState>; readonly acquired: boolean }
  | { readonly action: 'wait'; readonly holder: string };

export function decideLease(current: LeaseState | undefined, identity: string, now: number, leaseDurationSeconds: number): LeaseDecision {
  if (current === undefined) {
    return { action: 'create', acquired: true, lease: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } };
  }
  const holder = current.holderIdentity ?? '';
  const transitions = current.leaseTransitions ?? 0;
  if (holder === identity) {
    return {
      action: 'update',
      acquired: false,
      lease: { holderIdentity: identity, leaseDurationSeconds, acquireTime: current.acquireTime ?? now, renewTime: now, leaseTransitions: transitions },
    };
  }
  const renewed = current.renewTime ?? current.acquireTime ?? 0;
  const expired = renewed + (current.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 <= now;
  if (holder !== '' && !expired) return { action: 'wait', holder };
  return { action: 'update', acquired: true, lease: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: transitions + 1 } };
}

/** the lease given up on a clean shutdown: the next candidate takes it at once */
export function releasedLease(current: LeaseState, now: number): Required<LeaseState> {
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: current.acquireTime ?? now,
    renewTime: now,
    leaseTransitions: current.leaseTransitions ?? 0,
  };
}
