/** Shared by `airlock check` and `airlock mask`: the bundle of one connection, and JSON Lines input. */
import { createInterface } from 'node:readline';
import { formatManifestError } from '@airlock/api';
import { PolicyError, compileBundle, loadSqlParser, type PolicyBundle } from '@airlock/policy';
import { CliError } from './errors.ts';
import { loadManifestFiles } from './files.ts';

/** The options every policy command takes: which manifests, which connection. */
export const CONNECTION_OPTIONS = {
  filename: { type: 'string', short: 'f', multiple: true },
  connection: { type: 'string', short: 'c' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function loadBundle(files: readonly string[], connection: string | undefined, namespace: string | undefined, serviceAccount?: string): Promise<PolicyBundle> {
  if (connection === undefined) throw new CliError('MissingConnection', '--connection <name> is required');
  const loaded = await loadManifestFiles(files);
  if (loaded.errors.length > 0) throw new CliError('InvalidManifest', `invalid manifests:\n  ${loaded.errors.map(formatManifestError).join('\n  ')}`);
  try {
    await loadSqlParser();
    return compileBundle(loaded.manifests, {
      connection,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    });
  } catch (err) {
    if (err instanceof PolicyError) throw new CliError(err.code, err.message);
    throw err;
  }
}

/** Yields [line number, parsed object] for each non-empty line of stdin; bad JSON is a CliError. */
export async function* jsonLines(input: NodeJS.ReadableStream): AsyncGenerator<[number, Record<string, unknown>]> {
  const rl = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n += 1;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new CliError('InvalidInput', `stdin:${n}: invalid JSON: ${(err as Error).message}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CliError('InvalidInput', `stdin:${n}: expected a JSON object`);
    yield [n, value as Record<string, unknown>];
  }
}
