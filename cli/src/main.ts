/**
 * The airlock command line. `airlock <command> [options]`; also installed as kubectl-airlock,
 * so `kubectl airlock <command>` works.
 */
import { readFileSync } from 'node:fs';
import { CliError } from './errors.ts';
import type { CliIO } from './io.ts';

type Command = (args: readonly string[], io: CliIO, stdin: NodeJS.ReadableStream) => Promise<number>;

/**
 * Each command's module is imported when that command runs, so a process loads only what its
 * command uses (the long-running `airlock sidecar` keeps nothing of the offline tools).
 */
function lazy(load: () => Promise<Command>): Command {
  return async (args, io, stdin) => (await load())(args, io, stdin);
}

const COMMANDS: ReadonlyMap<string, { readonly summary: string; readonly run: Command }> = new Map<string, { readonly summary: string; readonly run: Command }>([
  ['approvals', { summary: 'List, approve or deny statements and commands a local sidecar holds for approval', run: lazy(async () => (await import('./commands/approvals.ts')).approvalsCommand) }],
  ['capture', { summary: 'Install the iptables rules that send an agent pod\'s traffic to its sidecar (the injected init container)', run: lazy(async () => (await import('./commands/capture.ts')).captureCommand) }],
  ['check', { summary: 'Decide SQL statements and SSH command lines with a connection\'s policy, offline', run: lazy(async () => (await import('./commands/check.ts')).checkCommand) }],
  ['mask', { summary: 'Mask values and text with a connection\'s masking policies, offline', run: lazy(async () => (await import('./commands/mask.ts')).maskCommand) }],
  ['operator', { summary: 'Run the operator against a cluster: status, approvals, sessions, and the control API for sidecars', run: lazy(async () => (await import('./commands/operator.ts')).operatorCommand) }],
  ['sessions', { summary: 'Verify a recording\'s hash chain, or show it as a timeline', run: lazy(async () => (await import('./commands/sessions.ts')).sessionsCommand) }],
  ['sidecar', { summary: 'Run the proxy for a pod with its bundle from the operator (--cluster), or for one connection from manifests on disk', run: lazy(async () => (await import('./commands/sidecar.ts')).sidecarCommand) }],
  ['validate', { summary: 'Validate manifests against the Airlock CRD schemas and rules, offline', run: lazy(async () => (await import('./commands/validate.ts')).validateCommand) }],
  ['webhook', { summary: 'Serve the admission webhooks: sidecar injection, policy validation, approver identity', run: lazy(async () => (await import('./commands/webhook.ts')).webhookCommand) }],
]);

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function help(): string {
  const width = Math.max(...[...COMMANDS.keys()].map((k) => k.length));
  const lines = [...COMMANDS].map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `airlock ${version()}: a governed data path between AI agents and the infrastructure they touch.

Usage: airlock <command> [options]
       kubectl airlock <command> [options]

Commands:
${lines.join('\n')}

Options:
  -h, --help     show this help (airlock <command> --help for a command)
  -v, --version  print the version
`;
}

export async function run(argv: readonly string[], io: CliIO, stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.stdout.write(help());
    return first === undefined ? 2 : 0;
  }
  if (first === '-v' || first === '--version' || first === 'version') {
    io.stdout.write(`airlock ${version()} (node ${process.version})\n`);
    return 0;
  }
  const command = COMMANDS.get(first);
  if (command === undefined) {
    io.stderr.write(`airlock: unknown command "${first}"; run 'airlock --help' for the list\n`);
    return 2;
  }
  try {
    return await command.run(rest, io, stdin);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`airlock ${first}: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`airlock ${first}: ${String(e.message)}; see 'airlock ${first} --help'\n`);
      return 2;
    }
    throw err;
  }
}

if (import.meta.main) {
  process.exitCode = await run(process.argv.slice(2), process, process.stdin);
}
