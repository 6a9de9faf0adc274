/**
 * Approvals in cluster mode: the ApprovalPort over the control API. The operator creates the
 * ApprovalRequest (POST /v1/approvals) and tells the decision (GET …?waitSeconds long polls);
 * an agent that goes away withdraws it (DELETE). A request that cannot be created is refused
 * (SidecarError ApprovalUnavailable: fail closed); once created, an operator outage only delays
 * the answer, and nothing is approved without the operator saying so (past the expiry the
 * statement is refused as expired).
 */
import type { ApprovalAsk, ApprovalState } from '@airlock/api';
import type { ApprovalOutcome, ApprovalPort, ApprovalTicket, PendingApproval } from '../approval/port.ts';
import { SidecarError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ControlClient } from './client.ts';
import { classesOf } from '../pg/statements.ts';
import { sessionName } from './names.ts';

const WAIT_SECONDS = 30;

export interface ClusterApprovalsDeps {
  readonly client: Pick<ControlClient, 'createApproval' | 'approval' | 'withdrawApproval'>;
  readonly log: Logger;
  /** first retry delay after a failed wait (doubles up to 10 s) */
  readonly retryMs?: number;
}

/**
 * The ApprovalAsk of a ticket (pure). `command` is the ticket's: for a query of several
 * statements, one line per statement with its classes; `classes`: those of every statement.
 */
export function askOf(ticket: ApprovalTicket): ApprovalAsk {
  const rule = ticket.rules[0];
  const slash = rule === undefined ? -1 : rule.indexOf('/');
  return {
    connection: ticket.connection,
    session: sessionName(ticket.session),
    protocol: ticket.protocol,
    command: ticket.command,
    classes: ticket.statements === undefined ? [] : classesOf(ticket.statements),
    rule: rule === undefined || slash < 0 ? { approvalRule: ticket.connection, name: rule ?? 'defaultAction' } : { approvalRule: rule.slice(0, slash), name: rule.slice(slash + 1) },
    approvers: { users: [...ticket.approvers.users], groups: [...ticket.approvers.groups] },
    required: ticket.required,
    requireReason: ticket.requireReason,
    timeoutSeconds: ticket.timeoutSeconds,
    message: ticket.message,
  };
}

function outcomeOf(state: ApprovalState): ApprovalOutcome | undefined {
  if (state.phase === 'Pending') return undefined;
  return { phase: state.phase, decisions: state.decisions.map((d) => ({ user: d.user, decision: d.decision, time: d.time, ...(d.reason !== undefined ? { reason: d.reason } : {}) })) };
}

export class ClusterApprovals implements ApprovalPort {
  readonly #deps: ClusterApprovalsDeps;

  constructor(deps: ClusterApprovalsDeps) {
    this.#deps = deps;
  }

  async request(ticket: ApprovalTicket): Promise<PendingApproval> {
    const { client, log } = this.#deps;
    let created;
    try {
      created = await client.createApproval(askOf(ticket));
    } catch (err) {
      throw new SidecarError('ApprovalUnavailable', `cannot create the approval request (the Airlock operator did not take it: ${(err as Error).message}); the statement is refused`, ticket.rules);
    }
    log.info('approval requested', { request: `${created.namespace}/${created.name}`, session: ticket.session, expiresAt: created.expiresAt });
    const expiresAt = new Date(created.expiresAt);
    return {
      name: created.name,
      where: `ApprovalRequest ${created.namespace}/${created.name}; a reviewer runs: ${created.annotate}`,
      expiresAt,
      outcome: (signal) => this.#wait(created.name, expiresAt, signal),
    };
  }

  async #wait(name: string, expiresAt: Date, signal: AbortSignal | undefined): Promise<ApprovalOutcome> {
    const { client, log } = this.#deps;
    const base = this.#deps.retryMs ?? 500;
    let delay = base;
    for (;;) {
      if (aborted(signal)) return this.#withdraw(name);
      try {
        const state = await client.approval(name, WAIT_SECONDS, signal);
        const outcome = outcomeOf(state);
        if (outcome !== undefined) return outcome;
        delay = base;
      } catch (err) {
        if (aborted(signal)) return this.#withdraw(name);
        // the operator may be down: the request stands; past its expiry nobody can approve it
        if (Date.now() > expiresAt.getTime() + 5_000) return { phase: 'Expired', decisions: [] };
        log.warn('cannot read the approval request; retrying', { request: name, error: (err as Error).message });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  async #withdraw(name: string): Promise<ApprovalOutcome> {
    try {
      await this.#deps.client.withdrawApproval(name);
    } catch (err) {
      this.#deps.log.warn('cannot withdraw the approval request', { request: name, error: (err as Error).message });
    }
    return { phase: 'Withdrawn', decisions: [] };
  }
}

/** read through a call: the signal changes while the loop awaits */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
