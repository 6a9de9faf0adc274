/**
 * The approval service behind the control API: a sidecar's ask becomes an ApprovalRequest
 * (with Events on it and on the agent pod, and an optional outgoing notification); the sidecar
 * reads, long-polls and withdraws its own requests. Waiters are woken by `observe`, which the
 * operator calls on every informer event of an ApprovalRequest, so a held statement resumes as
 * soon as the decision's status reaches this replica; a slow poll backs the informer up.
 *
 * Withdrawal deletes a still-pending request (the CRD's phases are Pending, Approved, Denied and
 * Expired; the recording keeps the withdrawn statement).
 */
import { GROUP, VERSION, type ApprovalAsk, type ApprovalCreated, type ApprovalRequest, type ApprovalState, type PodIdentity } from '@airlock/api';
import { V1DeleteOptions, V1Preconditions } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';
import type { EventRecorder } from '../events.ts';
import type { Kube } from '../kube.ts';
import { apiStatus, errorText, ServiceError } from './errors.ts';
import { ApprovalKeyStore } from './key.ts';
import { admittedDecisions } from './plan.ts';
import { NoticeRecorder } from './notice.ts';
import { postNotification } from './notify.ts';
import { annotateCommand, approvalRequestBody, approvalState, MESSAGE_ANNOTATION, notificationText, ownedBy } from './request.ts';

export const APPROVAL_REQUESTS = 'approvalrequests';
const AGENT_SESSIONS = 'agentsessions';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface ApprovalServiceDeps {
  readonly kube: Kube;
  readonly clock: Clock;
  readonly log: Logger;
  /** kept for the agreed signature; transitions are recorded by the reconcile */
  readonly events: EventRecorder;
  /** a Slack/Teams-style incoming webhook: `{"text": ...}` is POSTed to it for every new request */
  readonly notifyUrl?: string;
  /**
   * Airlock's namespace, where the approval key Secret is. With it (or `keys`), waiters are woken
   * straight from a new signed decision in the annotation, without waiting for the status write.
   */
  readonly namespace?: string;
  /** the approval key store to share with the reconcile (default: one for `namespace`) */
  readonly keys?: ApprovalKeyStore;
  /** reportingInstance of the notice Events (default: the host name) */
  readonly instance?: string;
  /** how often a waiter re-reads the request in case an informer event was missed (default 5 s) */
  readonly pollMs?: number;
}

interface Waiter {
  readonly pod: PodIdentity;
  /** what the caller last saw; the wait ends when the request has progressed past it */
  baseline: ApprovalState | undefined;
  /** progress observed before the baseline was known */
  early: ApprovalState | undefined;
  readonly resolve: (state: ApprovalState) => void;
  readonly reject: (err: unknown) => void;
}

/** phases only move forward and decisions only grow: `next` is news to whoever saw `seen` */
export function progressed(seen: ApprovalState, next: ApprovalState): boolean {
  if (seen.phase === 'Pending' && next.phase !== 'Pending') return true;
  return seen.phase === next.phase && next.decisions.length > seen.decisions.length;
}

function validateAsk(ask: ApprovalAsk): void {
  const fail = (message: string): never => {
    throw new ServiceError('InvalidBody', message);
  };
  if (!DNS_SUBDOMAIN.test(ask.connection) || ask.connection.length > 253) fail(`connection "${ask.connection}" is not an object name`);
  if (!(['postgres', 'ssh'] as readonly string[]).includes(ask.protocol)) fail('protocol must be postgres or ssh');
  if (!Number.isInteger(ask.required) || ask.required < 1 || ask.required > 16) fail('required must be an integer from 1 to 16');
  if (!Number.isFinite(ask.timeoutSeconds) || ask.timeoutSeconds <= 0) fail('timeoutSeconds must be positive');
  if (ask.approvers.users.length + ask.approvers.groups.length === 0) fail('the rule names no approvers: nobody could decide this request');
  if (ask.command.length > 65536) fail('command is longer than 65536 characters');
}

export class ApprovalService {
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #notifyUrl: string | undefined;
  readonly #notices: NoticeRecorder;
  readonly #pollMs: number;
  readonly #keys: ApprovalKeyStore | undefined;
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #background = new Set<Promise<unknown>>();

  constructor(deps: ApprovalServiceDeps) {
    this.#kube = deps.kube;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#notifyUrl = deps.notifyUrl === '' ? undefined : deps.notifyUrl;
    this.#notices = new NoticeRecorder({ kube: deps.kube, clock: deps.clock, log: deps.log, ...(deps.instance === undefined ? {} : { instance: deps.instance }) });
    this.#pollMs = deps.pollMs ?? 5000;
    this.#keys = deps.keys ?? (deps.namespace === undefined ? undefined : new ApprovalKeyStore({ kube: deps.kube, clock: deps.clock, log: deps.log, namespace: deps.namespace }));
  }

  async create(pod: PodIdentity, ask: ApprovalAsk): Promise<ApprovalCreated> {
    validateAsk(ask);
    if (this.#keys !== undefined) this.#inBackground(this.#keys.get()); // warm the key for observe()
    const owner = await this.#sessionOwner(pod, ask.session);
    const body = approvalRequestBody(pod, ask, this.#clock.now(), owner);
    let created: ApprovalRequest;
    try {
      created = (await this.#kube.customObjects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: pod.namespace, plural: APPROVAL_REQUESTS, body })) as ApprovalRequest;
    } catch (err) {
      const status = apiStatus(err);
      throw new ServiceError(status === 422 || status === 400 ? 'InvalidBody' : 'Unavailable', `the ApprovalRequest could not be created: ${errorText(err)}`, { cause: err });
    }
    const name = created.metadata.name ?? '';
    const annotate = annotateCommand(pod.namespace, name);
    this.#log.info('approval requested', { namespace: pod.namespace, name, pod: pod.name, connection: ask.connection, rule: `${ask.rule.approvalRule}/${ask.rule.name}`, expiresAt: created.spec.expiresAt });
    const note = `approval needed: ${annotate} (or =deny); rule ${ask.rule.approvalRule}/${ask.rule.name}; ${created.spec.required} required; expires ${created.spec.expiresAt}`;
    this.#inBackground(this.#notices.record(created, { type: 'Normal', reason: 'ApprovalNeeded', action: 'RequestApproval', note: `${note}: ${ask.command}` }));
    this.#inBackground(
      this.#notices.record({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace: pod.namespace, uid: pod.uid } }, { type: 'Normal', reason: 'ApprovalNeeded', action: 'RequestApproval', note: `approvalrequest/${name}: ${note}` }),
    );
    if (this.#notifyUrl !== undefined) this.#inBackground(postNotification(this.#notifyUrl, notificationText(created, created.metadata.annotations?.[MESSAGE_ANNOTATION]), this.#log));
    return { name, namespace: pod.namespace, expiresAt: created.spec.expiresAt, annotate };
  }

  /** the pod's own request; ServiceError NotFound when absent or another pod's */
  async state(pod: PodIdentity, name: string): Promise<ApprovalState> {
    return approvalState(await this.#read(pod, name));
  }

  /** resolves with the request's state once it progressed (a decision, a phase), or after waitMs, or when `signal` aborts */
  wait(pod: PodIdentity, name: string, waitMs: number, signal: AbortSignal): Promise<ApprovalState> {
    const key = `${pod.namespace}/${name}`;
    return new Promise<ApprovalState>((resolve, reject) => {
      const cancels: (() => void)[] = [];
      const ended = { settled: false };
      const settled = (): boolean => ended.settled;
      const finish = (): void => {
        ended.settled = true;
        for (const cancel of cancels) cancel();
        const set = this.#waiters.get(key);
        set?.delete(waiter);
        if (set?.size === 0) this.#waiters.delete(key);
      };
      const waiter: Waiter = {
        pod,
        baseline: undefined,
        early: undefined,
        resolve: (state) => {
          if (settled()) return;
          finish();
          resolve(state);
        },
        reject: (err) => {
          if (settled()) return;
          finish();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      };
      const set = this.#waiters.get(key) ?? new Set<Waiter>();
      set.add(waiter);
      this.#waiters.set(key, set);
      const current = (): void => {
        this.state(pod, name).then(waiter.resolve, waiter.reject);
      };
      const onAbort = (): void => {
        const seen = waiter.baseline;
        if (seen === undefined) current();
        else waiter.resolve(seen);
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      cancels.push(() => {
        signal.removeEventListener('abort', onAbort);
      });
      cancels.push(this.#clock.setTimer(Math.max(0, waitMs), current));
      const poll = (): void => {
        this.state(pod, name).then(
          (state) => {
            this.#offer(waiter, state);
            if (!settled()) cancels.push(this.#clock.setTimer(this.#pollMs, poll));
          },
          waiter.reject,
        );
      };
      this.state(pod, name).then((state) => {
        if (settled()) return;
        if (state.phase !== 'Pending') {
          waiter.resolve(state);
          return;
        }
        waiter.baseline = state;
        if (waiter.early !== undefined) this.#offer(waiter, waiter.early);
        if (!settled()) cancels.push(this.#clock.setTimer(this.#pollMs, poll));
      }, waiter.reject);
    });
  }

  /** deletes the pod's own request while it is still Pending (a decided one stays, for the record) */
  async withdraw(pod: PodIdentity, name: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const request = await this.#read(pod, name);
      if (approvalState(request).phase !== 'Pending') return;
      try {
        await this.#kube.customObjects.deleteNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: pod.namespace,
          plural: APPROVAL_REQUESTS,
          name,
          body: Object.assign(new V1DeleteOptions(), {
            preconditions: Object.assign(new V1Preconditions(), { uid: request.metadata.uid, resourceVersion: request.metadata.resourceVersion }),
          }),
        });
      } catch (err) {
        const status = apiStatus(err);
        if (status === 404) return;
        if (status === 409) continue; // decided (or changed) meanwhile: look again
        throw new ServiceError('Unavailable', `approvalrequest/${name} could not be withdrawn: ${errorText(err)}`, { cause: err });
      }
      this.#log.info('approval withdrawn', { namespace: pod.namespace, name, pod: pod.name });
      this.#inBackground(
        this.#notices.record({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace: pod.namespace, uid: pod.uid } }, { type: 'Normal', reason: 'ApprovalWithdrawn', action: 'WithdrawApproval', note: `approvalrequest/${name} withdrawn: the agent went away before a decision` }),
      );
      for (const waiter of this.#waiters.get(`${pod.namespace}/${name}`) ?? []) waiter.resolve({ name, phase: 'Withdrawn', decisions: [] });
      return;
    }
    throw new ServiceError('Conflict', `approvalrequest/${name} kept changing while it was being withdrawn`);
  }

  /** call on every informer event of an ApprovalRequest (deleted: the delete event) */
  observe(request: ApprovalRequest, deleted = false): void {
    const key = `${request.metadata.namespace ?? 'default'}/${request.metadata.name ?? ''}`;
    const set = this.#waiters.get(key);
    if (set === undefined) return;
    const state = this.#early(request) ?? approvalState(request);
    for (const waiter of [...set]) {
      if (!ownedBy(request, waiter.pod)) continue;
      if (deleted) {
        this.state(waiter.pod, state.name).then(waiter.resolve, waiter.reject);
        continue;
      }
      this.#offer(waiter, state);
    }
  }

  /** number of waits in progress (metrics, tests) */
  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /** resolves once the Events and notifications started so far are done (tests, shutdown) */
  async drain(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /**
   * The decision a new signed entry leads to, before the reconcile writes it to status: the same
   * pure derivation (plan.ts), so the status that follows says the same. Undefined when the
   * status already says it, or nothing is decided yet, or the key is not at hand.
   */
  #early(request: ApprovalRequest): ApprovalState | undefined {
    const key = this.#keys?.current();
    if (key === undefined || (request.status?.phase ?? 'Pending') !== 'Pending') return undefined;
    const admitted = admittedDecisions(request, key);
    if (admitted.phase === 'Pending') return undefined;
    return {
      name: request.metadata.name ?? '',
      phase: admitted.phase,
      decisions: admitted.decisions.map((d) => ({ user: d.user, decision: d.decision, ...(d.reason === undefined ? {} : { reason: d.reason }), time: d.time })),
    };
  }

  #offer(waiter: Waiter, state: ApprovalState): void {
    if (waiter.baseline === undefined) {
      if (waiter.early === undefined || progressed(waiter.early, state)) waiter.early = state;
      return;
    }
    if (progressed(waiter.baseline, state)) waiter.resolve(state);
  }

  async #read(pod: PodIdentity, name: string): Promise<ApprovalRequest> {
    let request: ApprovalRequest;
    try {
      request = (await this.#kube.customObjects.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: pod.namespace, plural: APPROVAL_REQUESTS, name })) as ApprovalRequest;
    } catch (err) {
      if (apiStatus(err) === 404) throw new ServiceError('NotFound', `approvalrequest/${name} not found in namespace ${pod.namespace}`);
      throw new ServiceError('Unavailable', `approvalrequest/${name} could not be read: ${errorText(err)}`, { cause: err });
    }
    if (!ownedBy(request, pod)) throw new ServiceError('NotFound', `approvalrequest/${name} not found in namespace ${pod.namespace}`);
    return request;
  }

  /** the AgentSession the request belongs to, when it exists and is the pod's (it then owns the request) */
  async #sessionOwner(pod: PodIdentity, sessionId: string): Promise<{ name: string; uid: string } | undefined> {
    const session = sessionId.toLowerCase();
    if (!DNS_SUBDOMAIN.test(session)) return undefined;
    try {
      const found = (await this.#kube.customObjects.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: pod.namespace, plural: AGENT_SESSIONS, name: session })) as {
        metadata?: { uid?: string };
        status?: { pod?: string };
      };
      const uid = found.metadata?.uid;
      return uid !== undefined && found.status?.pod === pod.name ? { name: session, uid } : undefined;
    } catch {
      return undefined;
    }
  }

  #inBackground(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.#log.warn('background approval task failed', { error: errorText(err) });
    });
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }
}
