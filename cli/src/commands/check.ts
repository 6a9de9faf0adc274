import { parseArgs } from 'node:util';
import { SqlDecider, decideShell, type Decision } from '@airlock/policy';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';
import { CONNECTION_OPTIONS, jsonLines, loadBundle } from '../policy-input.ts';

export const CHECK_HELP = `Usage: airlock check -f <file|dir> [-f ...] --connection <name> [--namespace <ns>]
                     [--service-account <sa>] [--sql '<text>' | --ssh '<line>']

Decides SQL statements and SSH command lines with the policy of one AgentConnection, exactly
as the sidecar would, from manifests on disk (no cluster). GitOps CI uses it to test policies
before they merge.

Reads JSON Lines on stdin, each {"sql": "..."} or {"ssh": "..."}, and writes one line per
input: {"decision": "Allow"|"Block"|"RequireApproval", "classes": [...], "rules": [...],
"message": "...", "why": [...]}, where "why" (when present) says what the decision assumed
about what the policy cannot know: tables of an opaque statement (every table), an unknown
agent identity (without --service-account, every stopping rule written for service accounts
applies and none of their Allow rules), a statement that changes how the server reads text.
With --sql or --ssh it answers that one and exits.

Exit status: 0 whatever the decisions; 2 on bad manifests, options or input.

Options:
  -f, --filename <path>        manifest file or directory (repeatable; Secrets and other kinds allowed)
  -c, --connection <name>      the AgentConnection whose policy applies
  -n, --namespace <ns>         its namespace, when the name is not unique
      --service-account <sa>   the agent's service account (ApprovalRule subjects); without it the
                               identity is unknown and is treated as the strictest
      --sql <text>             decide this SQL text
      --ssh <line>             decide this SSH command line
  -h, --help                   show this help
`;

function render(d: Decision): string {
  return JSON.stringify({ decision: d.decision, classes: d.classes, rules: d.rules, message: d.message, ...(d.why !== undefined ? { why: d.why } : {}) });
}

export async function checkCommand(args: readonly string[], io: CliIO, stdin: NodeJS.ReadableStream): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      ...CONNECTION_OPTIONS,
      'service-account': { type: 'string' },
      sql: { type: 'string' },
      ssh: { type: 'string' },
    },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(CHECK_HELP);
    return 0;
  }
  if (values.sql !== undefined && values.ssh !== undefined) throw new CliError('InvalidInput', '--sql and --ssh are exclusive');
  const bundle = await loadBundle(values.filename ?? [], values.connection, values.namespace, values['service-account']);
  const sql = new SqlDecider(bundle);
  const decide = async (input: Record<string, unknown>, where: string): Promise<Decision> => {
    if (typeof input['sql'] === 'string') return sql.decide(input['sql']);
    if (typeof input['ssh'] === 'string') return decideShell(bundle, input['ssh']);
    throw new CliError('InvalidInput', `${where}: expected {"sql": "..."} or {"ssh": "..."}`);
  };
  if (values.sql !== undefined || values.ssh !== undefined) {
    io.stdout.write(`${render(await decide(values.sql !== undefined ? { sql: values.sql } : { ssh: values.ssh }, 'option'))}\n`);
    return 0;
  }
  for await (const [n, input] of jsonLines(stdin)) io.stdout.write(`${render(await decide(input, `stdin:${n}`))}\n`);
  return 0;
}
