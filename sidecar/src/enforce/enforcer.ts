/**
 * The enforce step PostgreSQL and SSH share: decide → record (write-ahead: flushed before
 * anything is forwarded, invariant 4) → refuse a Block, or hold a RequireApproval until a human
 * decides. One Enforcer per session holds the policy by reference (the source's `current()`,
 * read at the start of each statement or command, so a swapped bundle applies from the next
 * one while one in flight keeps the bundle it started with); no bundle refuses (fail closed).
 *
 * Refusals are SidecarErrors (or the recorder's RecorderError); replies.ts turns them into what
 * the agent sees. How the agent is told it waits, and what a protocol records of a decision,
 * stay in the protocol's code (the hooks below).
 */
import type { Decision, PolicyBundle } from '@airlock/policy';
import type { ApprovalOutcome, ApprovalPort, PendingApproval } from '../approval/port.ts';
import { SidecarError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { noPolicyMessage, type Enforcement, type PolicySource } from '../proxy.ts';
import type { RecordBody } from '@airlock/api';
import { outcomeRecord, outcomeRefusal, pendingRecord, ticketFor, unavailableRecord, unavailableRefusal, type HeldCommand, type Requester, type Subject } from './approval.ts';

/** What both protocols' recorders offer (ssh/recorder.ts SessionRecorder; the PostgreSQL session's adapter). */
export interface EnforceRecorder {
  /** the session (recording) id */
  readonly id: string;
  /** appends a record; with `flush`, hands it to the OS first; throws RecorderError when it cannot and failurePolicy is Closed */
  record(body: RecordBody, flush?: boolean): void;
  /** best effort: never throws */
  note(body: RecordBody, flush?: boolean): void;
}

/** The session counters the step keeps. */
export interface EnforceCounters {
  blocked: number;
  approvals: number;
}

export interface EnforcerDeps extends Requester {
  readonly policy: PolicySource;
  readonly approvals: ApprovalPort;
  readonly recorder: EnforceRecorder;
  readonly log?: Logger;
}

/** A held statement or command: where it is recorded, and how the agent hears of the wait. */
export interface Hold extends Omit<HeldCommand, 'session'> {
  readonly subject: Subject;
  /** aborted when the agent goes away (the request is withdrawn) */
  readonly signal: AbortSignal;
  /** tell the agent it waits (the request exists and is recorded) */
  readonly waiting: (pending: PendingApproval, decision: Decision) => void;
  readonly approved?: (outcome: ApprovalOutcome) => void;
}

/** One command through the whole step (SSH): the protocol's decision and records. */
export interface Step {
  decide(bundle: PolicyBundle): Decision | Promise<Decision>;
  /** records the decision, flushed; returns what reviewers see of the command (masked); throws RecorderError */
  record(bundle: PolicyBundle, decision: Decision): string;
  /** records a refusal for want of a policy (best effort) */
  noPolicy(): void;
  readonly hold: Omit<Hold, 'command' | 'decision'>;
}

/** Decisions made for want of a policy: refused with PolicyUnavailable. */
const unavailable = new WeakSet<Decision>();

export class Enforcer {
  readonly #deps: EnforcerDeps;
  #pol: Enforcement | undefined;

  constructor(deps: EnforcerDeps, start?: Enforcement) {
    this.#deps = deps;
    this.#pol = start;
  }

  /** what the last refresh read: statements decided since then are decided with it */
  get current(): Enforcement | undefined {
    return this.#pol;
  }

  /**
   * Reads the source for the next statement or command. Once a session has had a policy, a
   * source that no longer serves the connection leaves it with none: everything is refused.
   */
  refresh(): Enforcement | undefined {
    const p = this.#deps.policy.current();
    const before = this.#pol;
    if (p === before) return p;
    if (p === undefined && before === undefined) return undefined;
    this.#pol = p ?? { bundle: undefined, upstream: (before as Enforcement).upstream, unavailable: 'the connection is no longer served' };
    return this.#pol;
  }

  /** The message of what is refused for want of a policy. */
  noPolicy(what: string): string {
    return noPolicyMessage(this.#deps.policy, this.#pol, what);
  }

  /** A Block decision for want of a policy (recorded like any decision; refused with PolicyUnavailable). */
  unavailableDecision(what: string): Decision {
    const d: Decision = { decision: 'Block', classes: [], rules: [], message: this.noPolicy(what) };
    unavailable.add(d);
    return d;
  }

  /** The refusal of a decision (a Block; counted), or undefined when it may run or be held. */
  refusal(d: Decision, counters: EnforceCounters): SidecarError | undefined {
    if (d.decision !== 'Block') return undefined;
    counters.blocked += 1;
    return new SidecarError(unavailable.has(d) ? 'PolicyUnavailable' : 'Blocked', d.message, d.rules);
  }

  /**
   * Holds a statement or command until it is decided: asks the approval port, records the
   * request (flushed), tells the agent, waits, records the outcome (flushed). Resolves when
   * approved; throws the refusal otherwise (counted as blocked).
   */
  async approve(hold: Hold, counters: EnforceCounters): Promise<void> {
    const { recorder } = this.#deps;
    const rules = hold.decision.rules;
    counters.approvals += 1;
    let pending: PendingApproval;
    try {
      pending = await this.#deps.approvals.request(ticketFor(this.#deps, { ...hold, session: recorder.id }));
    } catch (err) {
      counters.blocked += 1;
      this.#deps.log?.error('approval backend unavailable', { session: recorder.id, error: err instanceof Error ? err.message : String(err) });
      recorder.note(unavailableRecord(hold.subject, err), true);
      throw unavailableRefusal(err, rules);
    }
    try {
      recorder.record(pendingRecord(hold.subject, pending), true);
    } catch (err) {
      counters.blocked += 1;
      throw err;
    }
    hold.waiting(pending, hold.decision);
    const outcome = await pending.outcome(hold.signal);
    try {
      recorder.record(outcomeRecord(hold.subject, pending.name, outcome), true);
    } catch (err) {
      // failurePolicy Closed: what cannot be recorded does not run, approved or not
      counters.blocked += 1;
      throw err;
    }
    const refused = outcomeRefusal(pending.name, outcome, rules);
    if (refused !== undefined) {
      counters.blocked += 1;
      throw refused;
    }
    hold.approved?.(outcome);
  }

  /**
   * One command through the whole step: resolves with the bundle it was decided with (what runs
   * is masked with it) when it may run; throws SidecarError / RecorderError otherwise.
   */
  async authorize(step: Step, counters: EnforceCounters): Promise<PolicyBundle> {
    const bundle = this.refresh()?.bundle;
    if (bundle === undefined) {
      counters.blocked += 1;
      step.noPolicy();
      throw new SidecarError('PolicyUnavailable', this.noPolicy('every command is refused'));
    }
    const decision = await step.decide(bundle);
    const command = step.record(bundle, decision);
    const refused = this.refusal(decision, counters);
    if (refused !== undefined) throw refused;
    if (decision.decision === 'RequireApproval') await this.approve({ ...step.hold, command, decision }, counters);
    return bundle;
  }
}
