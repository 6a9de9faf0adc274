import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { ApprovalFileError, defaultStateDir, listApprovals, readApproval, reviewApproval, type LocalApprovalFile } from '@airlock/sidecar';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const APPROVALS_HELP = `Usage: airlock approvals list [--state-dir <dir>] [--all] [-o table|json]
       airlock approvals show <name> [--state-dir <dir>]
       airlock approvals approve <name> [--state-dir <dir>] [--as <user>] [--group <g> ...] [--reason <text>]
       airlock approvals deny <name> [--state-dir <dir>] [--as <user>] [--group <g> ...] [--reason <text>]

Local mode approvals: a sidecar started with 'airlock sidecar' holds a statement or command
that needs approval and writes the request to <state-dir>/approvals/<name>.json. Reviewers
decide it here; the held statement runs when approved and fails (SQLSTATE 42501, or SSH exit
status 126) when denied or expired. In a cluster, reviewers use
'kubectl annotate approvalrequest <name> airlock.dev/decision=approve' instead.

The rules are the cluster's (docs/approvals.md): the reviewer must be a listed user or belong
to a listed group (--group); each reviewer decides once; N-of-M counts distinct reviewers; any
deny denies; a reason is needed when the rule says so. The reviewer's identity is the OS user
(or --as); the agent's own identity (system:serviceaccount:<namespace>:<service account> of the
request) is refused as self-approval. A request that lists no approvers (defaultAction
RequireApproval) may be decided by anyone who can write the state directory.

Options:
      --state-dir <dir>   where the sidecar keeps its state (default: $AIRLOCK_STATE_DIR,
                          else $XDG_STATE_HOME/airlock, else ~/.local/state/airlock)
      --all               list decided requests too (default: only pending ones)
  -o, --output <fmt>      table (default) or json
      --as <user>         the reviewer (default: the current OS user)
      --group <group>     a group the reviewer belongs to (repeatable), for rules that name groups
      --reason <text>     why; required when the rule says so
  -h, --help              show this help

Exit status: 0 on success; 1 when the request is not pending or expired, the reviewer is not an
approver, is the requesting agent (self-approval), has already decided, or a reason is missing;
2 on bad usage or an unknown request.
`;

function age(from: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(from)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function table(rows: readonly LocalApprovalFile[], now: Date): string {
  const header = ['NAME', 'CONNECTION', 'PHASE', 'AGE', 'EXPIRES', 'RULES', 'COMMAND'];
  const cells = rows.map((r) => [
    r.name,
    `${r.spec.namespace}/${r.spec.connection}`,
    r.status.phase,
    age(r.createdAt, now),
    r.status.phase === 'Pending' ? `in ${age(now.toISOString(), new Date(r.expiresAt))}` : '-',
    r.spec.rules.join(',') || '-',
    r.spec.command.replace(/\s+/g, ' ').slice(0, 80),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  return [header, ...cells].map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function describe(r: LocalApprovalFile): string {
  const lines = [
    `Name:        ${r.name}`,
    `Connection:  ${r.spec.namespace}/${r.spec.connection} (${r.spec.protocol})`,
    `Session:     ${r.spec.session}`,
    ...(r.spec.pod !== undefined ? [`Pod:         ${r.spec.pod}`] : []),
    ...(r.spec.serviceAccount !== undefined ? [`Agent:       ${r.spec.serviceAccount}`] : []),
    `Command:     ${r.spec.command}`,
    `Rules:       ${r.spec.rules.join(', ') || '(defaultAction)'}`,
    `Message:     ${r.spec.message}`,
    `Approvers:   users: ${r.spec.approvers.users.join(', ') || '-'}; groups: ${r.spec.approvers.groups.join(', ') || '-'}; required: ${r.spec.required}${r.spec.requireReason ? '; reason required' : ''}`,
    `Created:     ${r.createdAt}`,
    `Expires:     ${r.expiresAt}`,
    `Phase:       ${r.status.phase}${r.status.message !== undefined ? ` (${r.status.message})` : ''}`,
    ...r.status.decisions.map((d) => `  ${d.time}  ${d.decision} by ${d.user}${d.reason !== undefined ? `: ${d.reason}` : ''}`),
  ];
  return `${lines.join('\n')}\n`;
}

export async function approvalsCommand(args: readonly string[], io: CliIO): Promise<number> {
  await Promise.resolve();
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout.write(APPROVALS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (!['list', 'show', 'approve', 'deny'].includes(sub)) throw new CliError('UnknownCommand', `unknown approvals command "${sub}"; use list, show, approve or deny`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      'state-dir': { type: 'string' },
      all: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      as: { type: 'string' },
      group: { type: 'string', multiple: true },
      reason: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(APPROVALS_HELP);
    return 0;
  }
  const stateDir = values['state-dir'] ?? defaultStateDir();
  const now = new Date();
  try {
    if (sub === 'list') {
      if (positionals.length > 0) throw new CliError('InvalidArgument', `list takes no arguments (got ${positionals.join(' ')})`);
      const output = values.output ?? 'table';
      if (output !== 'table' && output !== 'json') throw new CliError('InvalidArgument', `--output must be table or json, not "${output}"`);
      const rows = listApprovals(stateDir).filter((r) => values.all === true || r.status.phase === 'Pending');
      if (output === 'json') io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) io.stderr.write(`no ${values.all === true ? '' : 'pending '}approval requests in ${stateDir}\n`);
      else io.stdout.write(`${table(rows, now)}\n`);
      return 0;
    }
    const name = positionals[0];
    if (name === undefined || positionals.length > 1) throw new CliError('InvalidArgument', `${sub} takes exactly one approval request name`);
    if (sub === 'show') {
      io.stdout.write(describe(readApproval(stateDir, name)));
      return 0;
    }
    const after = reviewApproval(stateDir, name, {
      user: values.as ?? userInfo().username,
      groups: values.group ?? [],
      decision: sub === 'approve' ? 'approve' : 'deny',
      ...(values.reason !== undefined ? { reason: values.reason } : {}),
    });
    const approvals = after.status.decisions.filter((d) => d.decision === 'approve').length;
    io.stdout.write(
      after.status.phase === 'Pending'
        ? `approvalrequest/${name} approved by ${values.as ?? userInfo().username} (${approvals} of ${after.spec.required} required)\n`
        : `approvalrequest/${name} ${after.status.phase.toLowerCase()}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ApprovalFileError) throw new CliError(err.code, err.message, err.code === 'NotFound' ? 2 : 1);
    throw err;
  }
}
