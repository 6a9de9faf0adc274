/**
 * Decides one command line (an exec request, or a shell line on Enter) before anything is
 * sent upstream: no bundle refuses (fail closed); the decision is recorded and flushed
 * (write-ahead); Block throws; RequireApproval asks the approval port, tells the agent it is
 * waiting, and resolves only when approved. Refusals are SidecarErrors (or RecorderError),
 * which replies.ts turns into what the agent sees.
 */
import { decideShell, type Decision, type PolicyBundle } from '@airlock/policy';
import type { ApprovalPort, ApprovalTicket } from '../approval/port.ts';
import { SidecarError } from '../errors.ts';
import type { SessionRecorder } from './recorder.ts';

/** A line the engine treats as unresolvable: what the sidecar decides for a line it could not rebuild. */
export const UNRESOLVABLE_LINE = 'eval "$AIRLOCK_LINE_NOT_REBUILT"';

export interface AuthorizeContext {
  /** the policy for the next command, read as it starts (hot reload); undefined refuses */
  current(): PolicyBundle | undefined;
  /** the message of a command refused for want of a policy */
  noPolicy(): string;
  readonly approvals: ApprovalPort;
  readonly recorder: SessionRecorder;
  readonly connection: { readonly name: string; readonly namespace: string };
  readonly pod?: string;
  readonly serviceAccount?: string;
}

export interface CommandRequest {
  readonly channel: number;
  readonly kind: 'exec' | 'shell';
  readonly command: string;
  /** false: the line could not be rebuilt from keystrokes */
  readonly certain: boolean;
  readonly reasons?: readonly string[];
  /** where to tell the agent it waits for approval */
  readonly notify: (text: string) => void;
  /** aborted when the agent goes away */
  readonly signal: AbortSignal;
}

export interface Counters {
  commands: number;
  blocked: number;
  approvals: number;
}

async function decide(bundle: PolicyBundle, req: CommandRequest): Promise<Decision> {
  if (req.certain) return decideShell(bundle, req.command);
  const d = await decideShell(bundle, UNRESOLVABLE_LINE);
  const why = `the line could not be rebuilt from the keystrokes (${(req.reasons ?? []).join(', ') || 'unknown editing'})`;
  return {
    ...d,
    message:
      d.rules.length > 0
        ? `${why}: it is unresolvable and matches every rule; ${d.decision === 'Block' ? 'blocked' : 'held'} by ${d.rules.join(', ')}`
        : `${why}; it is never allowed`,
  };
}

/**
 * Resolves with the bundle the command was decided with (its output is masked with it) when the
 * command may run; throws SidecarError / RecorderError otherwise.
 */
export async function authorize(ctx: AuthorizeContext, req: CommandRequest, counters: Counters): Promise<PolicyBundle> {
  const bundle = ctx.current();
  counters.commands++;
  if (bundle === undefined) {
    counters.blocked++;
    ctx.recorder.note({ type: 'command', channel: req.channel, kind: req.kind, command: req.command, decision: 'Block', rules: [], message: 'no policy loaded' }, true);
    throw new SidecarError('PolicyUnavailable', ctx.noPolicy());
  }
  const decision = await decide(bundle, req);
  const masked = bundle.masker.maskText(req.command).text;
  ctx.recorder.record(
    {
      type: 'command',
      channel: req.channel,
      kind: req.kind,
      command: masked,
      ...(req.certain ? {} : { rebuilt: false, reasons: req.reasons ?? [] }),
      decision: decision.decision,
      rules: decision.rules,
      ...(decision.message !== '' ? { message: decision.message } : {}),
    },
    true,
  );
  if (decision.decision === 'Block') {
    counters.blocked++;
    throw new SidecarError('Blocked', decision.message, decision.rules);
  }
  if (decision.decision === 'Allow') return bundle;
  await approve(ctx, req, decision, masked, counters);
  return bundle;
}

async function approve(ctx: AuthorizeContext, req: CommandRequest, decision: Decision, masked: string, counters: Counters): Promise<void> {
  counters.approvals++;
  const settings = decision.approval;
  const ticket: ApprovalTicket = {
    connection: ctx.connection.name,
    namespace: ctx.connection.namespace,
    session: ctx.recorder.id,
    protocol: 'ssh',
    command: masked,
    rules: decision.rules,
    message: decision.message,
    approvers: settings?.approvers ?? { users: [], groups: [] },
    required: settings?.required ?? 1,
    timeoutSeconds: settings?.timeoutSeconds ?? 600,
    requireReason: settings?.requireReason ?? false,
    ...(ctx.pod !== undefined ? { pod: ctx.pod } : {}),
    ...(ctx.serviceAccount !== undefined ? { serviceAccount: ctx.serviceAccount } : {}),
  };
  let pending;
  try {
    pending = await ctx.approvals.request(ticket);
  } catch (err) {
    counters.blocked++;
    ctx.recorder.note({ type: 'approval', channel: req.channel, phase: 'Unavailable', error: (err as Error).message }, true);
    if (err instanceof SidecarError) throw err;
    throw new SidecarError('ApprovalUnavailable', `the approval request could not be created: ${(err as Error).message}`, decision.rules);
  }
  ctx.recorder.record({ type: 'approval', channel: req.channel, request: pending.name, phase: 'Pending', expiresAt: pending.expiresAt.toISOString() }, true);
  req.notify(`airlock: ${decision.message}: waiting for approval (${pending.where}; expires ${pending.expiresAt.toISOString()})\n`);
  const outcome = await pending.outcome(req.signal);
  const last = outcome.decisions[outcome.decisions.length - 1];
  ctx.recorder.record(
    {
      type: 'approval',
      channel: req.channel,
      request: pending.name,
      phase: outcome.phase,
      ...(last !== undefined ? { reviewer: last.user, ...(last.reason !== undefined ? { reason: last.reason } : {}) } : {}),
      decisions: outcome.decisions,
    },
    true,
  );
  switch (outcome.phase) {
    case 'Approved':
      req.notify(`airlock: approved by ${outcome.decisions.filter((d) => d.decision === 'approve').map((d) => d.user).join(', ')}\n`);
      return;
    case 'Denied':
      counters.blocked++;
      throw new SidecarError('ApprovalDenied', `denied${last !== undefined ? ` by ${last.user}` : ''}${last?.reason !== undefined ? `: ${last.reason}` : ''} (approval request ${pending.name})`, decision.rules);
    case 'Expired':
      counters.blocked++;
      throw new SidecarError('ApprovalExpired', `nobody decided approval request ${pending.name} before it expired`, decision.rules);
    case 'Withdrawn':
      counters.blocked++;
      throw new SidecarError('ApprovalDenied', `approval request ${pending.name} was withdrawn: the agent went away`, decision.rules);
  }
}
