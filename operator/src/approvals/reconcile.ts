/**
 * One reconcile of an ApprovalRequest: plan (pure, plan.ts), then the I/O — replace /status when
 * it changed (with the cached resourceVersion: a stale write conflicts and is retried), an Event
 * per condition transition, an Event per ignored decision entry (once per entry and process),
 * and deletion once a decided request outlived the retention. The caller requeues the key after
 * `requeueAfterMs` (expiry, end of retention).
 */
import { GROUP, VERSION, type ApprovalRequest } from '@airlock/api';
import { V1DeleteOptions, V1Preconditions } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { EventRecorder } from '../events.ts';
import type { Kube } from '../kube.ts';
import { apiStatus, errorText, ServiceError } from './errors.ts';
import type { ApprovalKeyStore } from './key.ts';
import type { NoticeRecorder } from './notice.ts';
import { planApprovalRequest } from './plan.ts';
import { APPROVAL_REQUESTS } from './service.ts';

/** default time decided ApprovalRequests are kept */
export const DEFAULT_APPROVAL_RETENTION_MS = 24 * 3600 * 1000;

export interface ApprovalReconcileDeps {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly notices: NoticeRecorder;
  readonly keys: ApprovalKeyStore;
  /** how long decided requests are kept (default 24 h) */
  readonly retentionMs?: number;
  /** ignored entries already reported (uid/entry id), so each gets one Event per process; pass one Set for the process */
  readonly reported?: Set<string>;
}

export interface ApprovalReconcileResult {
  readonly outcome: 'deleted' | 'unchanged' | 'updated' | 'collected';
  readonly phase?: string;
  /** reconcile again after this long (expiry or end of retention) */
  readonly requeueAfterMs?: number;
}

/** `request`: the latest object from the informer cache, undefined when it is gone */
export async function reconcileApprovalRequest(deps: ApprovalReconcileDeps, request: ApprovalRequest | undefined): Promise<ApprovalReconcileResult> {
  if (request === undefined || request.metadata.deletionTimestamp !== undefined) return { outcome: 'deleted' };
  const { kube, clock, log } = deps;
  const namespace = request.metadata.namespace ?? 'default';
  const name = request.metadata.name ?? '';
  const plan = planApprovalRequest({ request, key: await deps.keys.get(), nowMs: clock.now(), retentionMs: deps.retentionMs ?? DEFAULT_APPROVAL_RETENTION_MS });

  for (const ignored of plan.ignored) {
    const id = `${request.metadata.uid ?? ''}/${ignored.id}`;
    if (deps.reported?.has(id) === true) continue;
    deps.reported?.add(id);
    log.warn('approval decision ignored', { namespace, name, user: ignored.user, code: ignored.code, message: ignored.message });
    await deps.notices.record(request, { type: 'Warning', reason: ignored.code === 'BadSignature' || ignored.code === 'Malformed' ? 'DecisionNotVerified' : 'DecisionRefused', action: 'VerifyDecision', note: ignored.message });
  }

  if (plan.collect) {
    try {
      await kube.customObjects.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: APPROVAL_REQUESTS,
        name,
        body: Object.assign(new V1DeleteOptions(), { preconditions: Object.assign(new V1Preconditions(), { uid: request.metadata.uid }) }),
      });
    } catch (err) {
      if (apiStatus(err) !== 404) throw new ServiceError('Unavailable', `approvalrequest ${namespace}/${name} not deleted: ${errorText(err)}`, { cause: err });
    }
    log.info('decided approval request deleted after its retention', { namespace, name, phase: plan.phase });
    return { outcome: 'collected', phase: plan.phase };
  }

  if (!plan.write) return { outcome: 'unchanged', phase: plan.phase, ...(plan.requeueAfterMs === undefined ? {} : { requeueAfterMs: plan.requeueAfterMs }) };
  try {
    await kube.customObjects.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: APPROVAL_REQUESTS, name, body: { ...request, status: plan.status } });
  } catch (err) {
    if (apiStatus(err) === 404) return { outcome: 'deleted' };
    throw new ServiceError('Unavailable', `status of approvalrequest ${namespace}/${name} not written: ${errorText(err)}`, { cause: err });
  }
  if (plan.previousPhase !== undefined) log.info('approval request phase changed', { namespace, name, from: plan.previousPhase, to: plan.phase });
  // written in the background (EventRecorder): an Event never holds up a reconcile
  for (const condition of plan.transitions) void deps.events.record(request, condition);
  return { outcome: 'updated', phase: plan.phase, ...(plan.requeueAfterMs === undefined ? {} : { requeueAfterMs: plan.requeueAfterMs }) };
}
