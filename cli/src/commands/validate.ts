import { parseArgs } from 'node:util';
import { formatFieldError, formatManifestError, type ManifestError } from '@airlock/api';
import { policyVerdict } from '@airlock/policy';
import { loadManifestFiles } from '../files.ts';
import type { CliIO } from '../io.ts';

export const VALIDATE_HELP = `Usage: airlock validate -f <file|dir> [-f ...]

Validates Airlock manifests against the same schema and CEL rules the API server enforces,
then with the same semantic checks as Airlock's validating admission webhook and the sidecar's
compilers (RE2 patterns, detector ids, globs, approvers, label selectors), without a cluster.
Multi-document YAML and directories are read; Secrets and objects of other kinds are accepted
as they are.

Prints one line per problem as file:document: Kind/name: field: message and exits 1 when there
is any, 0 otherwise. Risky but legal objects (the warnings admission returns) are printed as
file:document: Kind/name: warning: message and do not change the exit status.

Options:
  -f, --filename <path>  a manifest file or directory (repeatable)
  -h, --help             show this help
`;

export async function validateCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { filename: { type: 'string', short: 'f', multiple: true }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(VALIDATE_HELP);
    return 0;
  }
  const loaded = await loadManifestFiles(values.filename ?? []);
  const errors: ManifestError[] = [...loaded.errors];
  for (const m of loaded.manifests) {
    const verdict = policyVerdict(m.object);
    const where = { source: m.source, document: m.document };
    for (const e of verdict.errors) errors.push({ ...where, message: `${m.kind}/${m.name || '?'}: ${formatFieldError(e)}` });
    for (const w of verdict.warnings) io.stderr.write(`${formatManifestError({ ...where, message: `${m.kind}/${m.name || '?'}: warning: ${w}` })}\n`);
  }
  for (const e of errors) io.stderr.write(`${formatManifestError(e)}\n`);
  const airlock = loaded.manifests.filter((m) => m.kind !== 'Secret').length;
  if (errors.length > 0) {
    io.stderr.write(`${errors.length} problem(s) in ${loaded.files.length} file(s)\n`);
    return 1;
  }
  io.stdout.write(`${airlock} Airlock object(s) in ${loaded.files.length} file(s) are valid\n`);
  return 0;
}
