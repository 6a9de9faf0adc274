import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { verifyRecording } from '@airlock/sidecar';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const SESSIONS_HELP = `Usage: airlock sessions verify <recording.jsonl> [--head sha256:...] [--allow-open]
       airlock sessions show <recording.jsonl>

verify  checks a recording's hash chain: exits 0 when intact, 1 naming the first bad record on
        any edit, deletion, insertion, reordering or truncation.
          --head <hash>   the chain head anchored outside the recording (AgentSession
                          status.recording.chainHead); a recording cut short no longer ends there
          --allow-open    accept a recording without its session_end record (a live session)
show    prints the recording as a readable timeline (after checking it; a broken chain is
        reported at the end and exits 1).
`;

async function readRecording(path: string | undefined): Promise<string> {
  if (path === undefined) throw new CliError('MissingArgument', 'a recording file is required');
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError('RecordingNotFound', `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** One readable line per record. */
export function describeRecord(rec: Readonly<Record<string, unknown>>): string {
  const time = str(rec['time']).replace(/^.*T/, '').replace(/Z$/, '');
  const type = str(rec['type']);
  let what: string;
  switch (type) {
    case 'session_start':
      what = `connection ${str(rec['connection'])} (${str(rec['protocol'])}) from ${str(rec['client'])}${rec['pod'] === undefined ? '' : ` pod ${str(rec['pod'])}`}`;
      break;
    case 'statement':
    case 'command':
      what = `${str(rec['decision']).padEnd(15)} ${str(rec['text'] ?? rec['command'])}${rec['rules'] === undefined || str(rec['rules']) === '[]' ? '' : `  [${(rec['rules'] as unknown[]).map(str).join(', ')}]`}`;
      break;
    case 'result':
      what = rec['error'] !== undefined ? `error ${str(rec['error'])}` : `${str(rec['tag'])} rows=${str(rec['rows'])} masked=${str(rec['masked'])}`;
      break;
    case 'approval':
      what = `${str(rec['phase'])} ${str(rec['request'])}${rec['reviewer'] === undefined ? '' : ` by ${str(rec['reviewer'])}`}${rec['reason'] === undefined ? '' : `: ${str(rec['reason'])}`}`;
      break;
    case 'session_end':
      what = `${str(rec['reason'])} statements=${str(rec['statements'])} blocked=${str(rec['blocked'])}`;
      break;
    default: {
      const rest = Object.entries(rec).filter(([k]) => !['seq', 'time', 'type', 'prev', 'hash'].includes(k));
      what = rest.map(([k, v]) => `${k}=${str(v)}`).join(' ');
    }
  }
  return `${String(rec['seq']).padStart(5)}  ${time}  ${type.padEnd(13)} ${what}`;
}

export async function sessionsCommand(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout.write(SESSIONS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'verify' && sub !== 'show') throw new CliError('UnknownCommand', `unknown sessions command "${sub}"; use verify or show`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: { head: { type: 'string' }, 'allow-open': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(SESSIONS_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CliError('InvalidArgument', `one recording at a time (got ${positionals.length})`);
  const path = positionals[0];
  const text = await readRecording(path);
  const result = verifyRecording(text, {
    ...(values.head !== undefined ? { expectedHead: values.head } : {}),
    endTypes: values['allow-open'] === true ? [] : ['session_end'],
  });
  if (sub === 'show') {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        io.stdout.write(`${describeRecord(JSON.parse(line) as Record<string, unknown>)}\n`);
      } catch {
        io.stdout.write(`  (unreadable line)\n`);
      }
    }
  }
  if (result.error !== undefined) {
    io.stderr.write(`${path ?? ''}: record ${result.error.line}: ${result.error.message}\n`);
    return 1;
  }
  if (sub === 'verify') io.stdout.write(`${path ?? ''}: intact, ${result.records} records, chain head ${result.head}\n`);
  return 0;
}
