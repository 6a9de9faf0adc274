/**
 * Local-mode approvals: one JSON file per request under `<state-dir>/approvals/`. The sidecar
 * creates the file and watches it; `airlock approvals approve|deny` records a reviewer's
 * decision in it. Updates are read-modify-write under an exclusive lock file and land with an
 * atomic rename, so the sidecar (expiry, withdrawal) and reviewers never lose each other's writes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compareCodeUnits } from '@airlock/api';
import { reviewDecision } from '@airlock/policy';
import { SidecarError } from '../errors.ts';
import type { ApprovalOutcome, ApprovalPhase, ApprovalPort, ApprovalTicket, PendingApproval, ReviewerDecision } from './port.ts';

export interface LocalApprovalFile {
  readonly name: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly spec: ApprovalTicket;
  readonly status: { readonly phase: ApprovalPhase; readonly decisions: readonly ReviewerDecision[]; readonly message?: string };
}

export class ApprovalFileError extends Error {
  readonly code: 'NotFound' | 'NotPending' | 'NotApprover' | 'SelfApproval' | 'ReasonRequired' | 'AlreadyDecided' | 'InvalidDecision' | 'Unreadable' | 'Busy';
  constructor(code: ApprovalFileError['code'], message: string) {
    super(message);
    this.name = 'ApprovalFileError';
    this.code = code;
  }
}

const NAME = /^[a-z0-9][a-z0-9.-]{0,250}$/;

export function approvalsDir(stateDir: string): string {
  return join(stateDir, 'approvals');
}

function fileOf(stateDir: string, name: string): string {
  if (!NAME.test(name)) throw new ApprovalFileError('NotFound', `"${name}" is not an approval request name`);
  return join(approvalsDir(stateDir), `${name}.json`);
}

export function readApproval(stateDir: string, name: string): LocalApprovalFile {
  const path = fileOf(stateDir, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ApprovalFileError('NotFound', `approval request "${name}" not found in ${approvalsDir(stateDir)}`);
    throw new ApprovalFileError('Unreadable', `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as LocalApprovalFile;
  } catch (err) {
    throw new ApprovalFileError('Unreadable', `${path} is not valid JSON: ${(err as Error).message}`);
  }
}

export function listApprovals(stateDir: string): LocalApprovalFile[] {
  let names: string[];
  try {
    names = readdirSync(approvalsDir(stateDir)).filter((f) => f.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: LocalApprovalFile[] = [];
  for (const f of names) {
    try {
      out.push(readApproval(stateDir, f.slice(0, -'.json'.length)));
    } catch {
      // a file being replaced or not ours: skip it in a listing
    }
  }
  return out.sort((a, b) => compareCodeUnits(a.createdAt, b.createdAt));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs `update` on the request under its lock and writes the result atomically. */
function update(stateDir: string, name: string, change: (current: LocalApprovalFile) => LocalApprovalFile): LocalApprovalFile {
  const path = fileOf(stateDir, name);
  const lock = `${path}.lock`;
  let fd: number | undefined;
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ApprovalFileError('Unreadable', `cannot lock ${path}: ${(err as Error).message}`);
      // a lock older than 10 s belongs to a process that died holding it
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) unlinkSync(lock);
      } catch {
        // gone meanwhile
      }
      if (attempt > 200) throw new ApprovalFileError('Busy', `approval request "${name}" is locked by another process (${lock})`);
      sleepSync(10);
    }
  }
  try {
    const next = change(readApproval(stateDir, name));
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
    return next;
  } finally {
    closeSync(fd);
    unlinkSync(lock);
  }
}

export interface ReviewInput {
  readonly user: string;
  readonly groups?: readonly string[];
  readonly decision: 'approve' | 'deny';
  readonly reason?: string;
  readonly now?: Date;
}

/**
 * Pure: the request after one reviewer's decision, by the same rules as cluster approvals
 * (policy's reviewDecision): a listed user or a member of a listed group; never the requesting
 * service account (`system:serviceaccount:<namespace>:<serviceAccount>` of the ticket: in local
 * mode the reviewer is the OS user or --as, so only a reviewer claiming that name is refused);
 * one decision per user; a reason when required; any deny denies; `required` distinct
 * approvals approve. Local mode only: a ticket that lists no approvers (a connection whose
 * defaultAction is RequireApproval) may be decided by any reviewer who can write the state
 * directory.
 */
export function applyReview(current: LocalApprovalFile, review: ReviewInput): LocalApprovalFile {
  const now = review.now ?? new Date();
  const { spec } = current;
  const anyone = spec.approvers.users.length === 0 && spec.approvers.groups.length === 0;
  const verdict = reviewDecision(
    {
      phase: current.status.phase,
      approvers: anyone ? { users: [review.user], groups: [] } : spec.approvers,
      required: spec.required,
      requireReason: spec.requireReason,
      ...(spec.serviceAccount === undefined ? {} : { requesterServiceAccount: spec.serviceAccount }),
      namespace: spec.namespace,
      expiresAt: new Date(current.expiresAt),
      decisions: current.status.decisions,
    },
    { user: review.user, groups: review.groups ?? [] },
    review.decision,
    review.reason,
    now,
  );
  if (!verdict.ok) {
    const code = verdict.code === 'Expired' ? 'NotPending' : verdict.code;
    const hint = verdict.code === 'ReasonRequired' ? ' (--reason)' : '';
    throw new ApprovalFileError(code, `approval request "${current.name}": ${verdict.message}${hint}`);
  }
  const decision: ReviewerDecision = { user: review.user, decision: review.decision, time: now.toISOString(), ...(review.reason !== undefined ? { reason: review.reason } : {}) };
  return { ...current, status: { phase: verdict.phase, decisions: [...current.status.decisions, decision] } };
}

export function reviewApproval(stateDir: string, name: string, review: ReviewInput): LocalApprovalFile {
  return update(stateDir, name, (current) => applyReview(current, review));
}

export interface LocalApprovalsOptions {
  readonly stateDir: string;
  /** how often the request file is polled for a decision */
  readonly pollMs?: number;
  readonly now?: () => Date;
}

/** The local-mode ApprovalPort. */
export class LocalApprovals implements ApprovalPort {
  readonly #stateDir: string;
  readonly #pollMs: number;
  readonly #now: () => Date;

  constructor(options: LocalApprovalsOptions) {
    this.#stateDir = options.stateDir;
    this.#pollMs = options.pollMs ?? 100;
    this.#now = options.now ?? ((): Date => new Date());
  }

  request(ticket: ApprovalTicket): Promise<PendingApproval> {
    const created = this.#now();
    const expiresAt = new Date(created.getTime() + ticket.timeoutSeconds * 1000);
    const name = `${ticket.connection.slice(0, 40).replace(/[^a-z0-9-]/g, '-')}-${randomBytes(5).toString('hex')}`;
    const file: LocalApprovalFile = { name, createdAt: created.toISOString(), expiresAt: expiresAt.toISOString(), spec: ticket, status: { phase: 'Pending', decisions: [] } };
    try {
      mkdirSync(approvalsDir(this.#stateDir), { recursive: true, mode: 0o700 });
      const path = fileOf(this.#stateDir, name);
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, path);
    } catch (err) {
      return Promise.reject(new SidecarError('ApprovalUnavailable', `cannot create the approval request in ${approvalsDir(this.#stateDir)}: ${(err as Error).message}`));
    }
    const stateDir = this.#stateDir;
    const where = `approval request ${name} in ${approvalsDir(stateDir)}; a reviewer runs: airlock approvals approve ${name} --state-dir ${stateDir} (or deny)`;
    return Promise.resolve({ name, where, expiresAt, outcome: (signal?: AbortSignal) => this.#wait(name, expiresAt, signal) });
  }

  #finish(name: string, phase: 'Expired' | 'Withdrawn', message: string): ApprovalOutcome {
    try {
      const after = update(this.#stateDir, name, (cur) => (cur.status.phase === 'Pending' ? { ...cur, status: { ...cur.status, phase, message } } : cur));
      return outcomeOf(after) ?? { phase, decisions: after.status.decisions };
    } catch {
      return { phase, decisions: [] };
    }
  }

  #wait(name: string, expiresAt: Date, signal: AbortSignal | undefined): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (outcome: ApprovalOutcome): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onAbort = (): void => {
        done(this.#finish(name, 'Withdrawn', 'the agent disconnected before a decision'));
      };
      const poll = (): void => {
        let current: LocalApprovalFile;
        try {
          current = readApproval(this.#stateDir, name);
        } catch {
          // the request file vanished or is unreadable: nobody can approve it any more
          done({ phase: 'Denied', decisions: [] });
          return;
        }
        const outcome = outcomeOf(current);
        if (outcome !== undefined) {
          done(outcome);
          return;
        }
        if (this.#now().getTime() >= expiresAt.getTime()) {
          done(this.#finish(name, 'Expired', 'no decision before the timeout'));
          return;
        }
        timer = setTimeout(poll, this.#pollMs);
      };
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      poll();
    });
  }
}

function outcomeOf(f: LocalApprovalFile): ApprovalOutcome | undefined {
  const phase = f.status.phase;
  return phase === 'Pending' ? undefined : { phase, decisions: f.status.decisions };
}
