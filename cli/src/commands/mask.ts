import { parseArgs } from 'node:util';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';
import { CONNECTION_OPTIONS, jsonLines, loadBundle } from '../policy-input.ts';

export const MASK_HELP = `Usage: airlock mask -f <file|dir> [-f ...] --connection <name> [--namespace <ns>]

Masks values with the MaskingPolicies that select one AgentConnection, exactly as the sidecar
would, from manifests on disk (no cluster).

Reads JSON Lines on stdin: {"column": "schema.table.column", "value": "..."} (a SQL result
value) or {"text": "..."} (terminal output), and writes {"value": ...} (null where the action
is null) or {"text": "..."} for each.

Exit status: 0, or 2 on bad manifests, options or input.

Options:
  -f, --filename <path>     manifest file or directory (repeatable)
  -c, --connection <name>   the AgentConnection whose masking applies
  -n, --namespace <ns>      its namespace, when the name is not unique
  -h, --help                show this help
`;

export async function maskCommand(args: readonly string[], io: CliIO, stdin: NodeJS.ReadableStream): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: CONNECTION_OPTIONS,
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(MASK_HELP);
    return 0;
  }
  const bundle = await loadBundle(values.filename ?? [], values.connection, values.namespace);
  for await (const [n, input] of jsonLines(stdin)) {
    if (typeof input['text'] === 'string') {
      io.stdout.write(`${JSON.stringify({ text: bundle.masker.maskText(input['text']).text })}\n`);
    } else if (typeof input['value'] === 'string') {
      const column = input['column'];
      if (column !== undefined && typeof column !== 'string') throw new CliError('InvalidInput', `stdin:${n}: "column" must be a string`);
      io.stdout.write(`${JSON.stringify({ value: bundle.masker.maskValue(column, input['value']).value })}\n`);
    } else if (input['value'] === null) {
      io.stdout.write('{"value":null}\n');
    } else {
      throw new CliError('InvalidInput', `stdin:${n}: expected {"column": "...", "value": "..."} or {"text": "..."}`);
    }
  }
  return 0;
}
