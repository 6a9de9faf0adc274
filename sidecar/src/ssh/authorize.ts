/**
 * Decides one command line (an exec request, or a shell line on Enter) before anything is
 * sent upstream, through the shared enforce step (enforce/enforcer.ts: no bundle refuses, the
 * decision is recorded and flushed, Block refuses, RequireApproval waits for a human). What is
 * SSH's own stays here: a line that could not be rebuilt from keystrokes is decided as an
 * unresolvable one, the `command` record, and how the agent is told it waits.
 */
import { decideShell, type Decision, type PolicyBundle } from '@airlock/policy';
import type { Enforcer } from '../enforce/enforcer.ts';
import { approvedBy } from '../enforce/approval.ts';
import type { SessionRecorder } from './recorder.ts';

/** A line the engine treats as unresolvable: what the sidecar decides for a line it could not rebuild. */
export const UNRESOLVABLE_LINE = 'eval "$AIRLOCK_LINE_NOT_REBUILT"';

export interface AuthorizeContext {
  /** the policy the last command was decided with (output of what is not a command is masked with it) */
  current(): PolicyBundle | undefined;
  /** the message of a command refused for want of a policy */
  noPolicy(): string;
  readonly enforcer: Enforcer;
  readonly recorder: SessionRecorder;
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
  counters.commands++;
  const { recorder } = ctx;
  return ctx.enforcer.authorize(
    {
      decide: (bundle) => decide(bundle, req),
      record: (bundle, decision) => {
        const masked = bundle.masker.maskText(req.command).text;
        recorder.record(
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
        return masked;
      },
      noPolicy: () => {
        recorder.note({ type: 'command', channel: req.channel, kind: req.kind, command: req.command, decision: 'Block', rules: [], message: 'no policy loaded' }, true);
      },
      hold: {
        subject: { channel: req.channel },
        signal: req.signal,
        waiting: (pending, decision) => {
          req.notify(`airlock: ${decision.message}: waiting for approval (${pending.where}; expires ${pending.expiresAt.toISOString()})\n`);
        },
        approved: (outcome) => {
          req.notify(`airlock: approved by ${approvedBy(outcome).join(', ')}\n`);
        },
      },
    },
    counters,
  );
}
