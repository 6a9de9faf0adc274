import { access, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { GROUP, VERSION, recordingText, verifyCast, verifyRecording, type AgentSession, type CastCheckpoint } from '@airlock/api';
import { contextNamespace, kubeFromConfig, loadKubeConfig } from '@airlock/operator';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const SESSIONS_HELP = `Usage: airlock sessions verify <recording.jsonl> [--head sha256:...] [--allow-open]
       airlock sessions verify <recording.jsonl> --session <name> [-n <namespace>] [--kubeconfig <file>]
       airlock sessions show <recording.jsonl>

verify  checks a recording's hash chain: exits 0 when intact, 1 naming the first bad record on
        any edit, deletion, insertion, reordering or truncation. An SSH recording's terminal
        casts (<session>.<channel>.cast, next to it) are checked against the length and
        SHA-256 checkpoints the chain holds for them: an edited or truncated cast fails too.
          --head <hash>   the chain head anchored outside the recording (AgentSession
                          status.recording.chainHead); a recording cut short no longer ends there
          --allow-open    accept a recording without its session_end record (a live session)
          --session <name>  check against the anchor in the AgentSession <name> (status.recording:
                          chainHead at record number 'records'), read from the cluster; a live
                          session's anchor may lag behind its recording, an ended session's
                          anchor is its last record, so records appended after it fail too
          -n, --namespace <ns>  the AgentSession's namespace (default: the kubeconfig context's)
          --kubeconfig <file>   kubeconfig (default: KUBECONFIG, ~/.kube/config, or in-cluster)
show    prints the recording as a readable timeline (after checking it; a broken chain is
        reported at the end and exits 1).
`;

/**
 * The session log to read for `path`. A terminal cast (`<session>.<channel>.cast`) is verified
 * through the log that holds its checkpoints (`<session>.jsonl`, next to it): that log is
 * returned, with a note saying so; without it, an error names the log to verify.
 */
async function recordingPath(path: string, io: CliIO): Promise<string> {
  const cast = /^(.*)\.[^./]+\.cast$/s.exec(path) ?? /^(.*)\.cast$/s.exec(path);
  if (cast === null) return path;
  const log = `${cast[1] ?? ''}.jsonl`;
  try {
    await access(log);
  } catch {
    throw new CliError('InvalidArgument', `${path} is a terminal cast: it is verified through the session log that holds its checkpoints (${log}), which is not there; verify that log`);
  }
  io.stderr.write(`${path} is a terminal cast: verifying its session log ${log} and every cast it names\n`);
  return log;
}

async function readRecording(path: string | undefined): Promise<string> {
  if (path === undefined) throw new CliError('MissingArgument', 'a recording file is required');
  try {
    // a recording still being written ends with the zero bytes of its reserved space
    return recordingText(await readFile(path, 'utf8'));
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
      what =
        rec['commands'] !== undefined
          ? `${str(rec['reason'])} commands=${str(rec['commands'])} blocked=${str(rec['blocked'])} approvals=${str(rec['approvals'])} refused=${str(rec['refused'])}`
          : `${str(rec['reason'])} statements=${str(rec['statements'])} blocked=${str(rec['blocked'])}`;
      break;
    case 'exit':
      what = `channel ${str(rec['channel'])} ${rec['signal'] !== undefined ? `signal ${str(rec['signal'])}` : `status ${str(rec['status'])}`}${rec['refused'] !== undefined ? ` (refused: ${str(rec['refused'])})` : ''}${rec['masked'] !== undefined && rec['masked'] !== 0 ? ` masked=${str(rec['masked'])}` : ''}`;
      break;
    case 'sftp':
      what = `${str(rec['op'])} ${str(rec['path'])}${rec['to'] !== undefined ? ` -> ${str(rec['to'])}` : ''}${rec['flags'] !== undefined ? ` (${str(rec['flags'])})` : ''}${rec['bytes'] !== undefined ? ` ${str(rec['bytes'])} bytes` : ''}`;
      break;
    case 'refusal':
      what = `${str(rec['what'])}${rec['to'] !== undefined ? ` ${str(rec['to'])}` : ''}: ${str(rec['reason'] ?? rec['code'])}`;
      break;
    case 'cast':
      what = `${str(rec['file'])} ${str(rec['bytes'])} bytes${rec['final'] === true ? ' (closed)' : ''}`;
      break;
    default: {
      const rest = Object.entries(rec).filter(([k]) => !['seq', 'time', 'type', 'prev', 'hash'].includes(k));
      what = rest.map(([k, v]) => `${k}=${str(v)}`).join(' ');
    }
  }
  return `${String(rec['seq']).padStart(5)}  ${time}  ${type.padEnd(13)} ${what}`;
}

/** The cast checkpoints a (chain-verified) SSH recording holds, per cast file name. */
function castCheckpoints(text: string): Map<string, CastCheckpoint[]> {
  const out = new Map<string, CastCheckpoint[]>();
  for (const line of text.split('\n')) {
    if (!line.includes('"type":"cast"')) continue;
    const rec = JSON.parse(line) as Record<string, unknown>;
    const file = rec['file'];
    if (rec['type'] !== 'cast' || typeof file !== 'string' || typeof rec['bytes'] !== 'number' || typeof rec['sha256'] !== 'string') continue;
    const list = out.get(file) ?? [];
    list.push({ bytes: rec['bytes'], sha256: rec['sha256'], final: rec['final'] === true });
    out.set(file, list);
  }
  return out;
}

/** Checks every cast the recording names against its checkpoints; returns the first problem. */
async function verifyCasts(path: string, text: string, closed: boolean): Promise<string | undefined> {
  for (const [file, checkpoints] of castCheckpoints(text)) {
    if (basename(file) !== file) return `${path}: cast "${file}" is not a file name next to the recording`;
    const castPath = join(dirname(path), file);
    let data: Buffer;
    try {
      data = await readFile(castPath);
    } catch (err) {
      return `${castPath}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (the recording names it)' : (err as Error).message}`;
    }
    if (closed && !checkpoints.some((c) => c.final)) return `${castPath}: the recording has no final checkpoint of this cast`;
    const r = verifyCast(data, checkpoints);
    if (!r.ok) return `${castPath}: ${r.message ?? 'does not match its checkpoints'}`;
  }
  return undefined;
}

/** The anchor an AgentSession holds: its chain head, the record it is at, and whether the session ended. */
async function sessionAnchor(name: string, namespace: string | undefined, kubeconfig: string | undefined): Promise<{ head: string; records: number; final: boolean }> {
  const config = loadKubeConfig(kubeconfig);
  const ns = namespace ?? contextNamespace(config) ?? 'default';
  let session: AgentSession;
  try {
    session = (await kubeFromConfig(config).customObjects.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'agentsessions', name })) as AgentSession;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 404) throw new CliError('SessionNotFound', `AgentSession "${name}" not found in namespace "${ns}"`);
    throw new CliError('ClusterUnreachable', `cannot read AgentSession ${ns}/${name}: ${(err as Error).message}`);
  }
  const recording = session.status?.recording;
  const head = recording?.chainHead;
  const records = recording?.records;
  if (head === undefined || records === undefined || records < 1) throw new CliError('NoAnchor', `AgentSession ${ns}/${name} has no anchored chain head yet (status.recording.chainHead and records): nothing to check against`);
  return { head, records, final: session.status?.endTime !== undefined };
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
    options: {
      head: { type: 'string' },
      'allow-open': { type: 'boolean' },
      session: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(SESSIONS_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CliError('InvalidArgument', `one recording at a time (got ${positionals.length})`);
  const given = positionals[0];
  const path = given === undefined ? undefined : await recordingPath(given, io);
  const text = await readRecording(path);
  if (given !== undefined && path !== given && !castCheckpoints(text).has(basename(given))) {
    io.stderr.write(`${given}: ${path ?? ''} holds no checkpoint of this cast\n`);
    return 1;
  }
  if (values.session !== undefined && values.head !== undefined) throw new CliError('InvalidArgument', '--session and --head are alternatives: the session gives the head');
  const anchor = values.session === undefined ? undefined : await sessionAnchor(values.session, values.namespace, values.kubeconfig);
  const open = values['allow-open'] === true || (anchor !== undefined && !anchor.final);
  const result = verifyRecording(text, {
    ...(values.head !== undefined ? { expectedHead: values.head } : {}),
    ...(anchor !== undefined ? { anchor } : {}),
    endTypes: open ? [] : ['session_end'],
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
  const castError = await verifyCasts(path ?? '', text, !open);
  if (castError !== undefined) {
    io.stderr.write(`${castError}\n`);
    return 1;
  }
  if (sub === 'verify') {
    const against = anchor === undefined ? '' : `; matches the anchor of AgentSession ${values.session ?? ''} (record ${anchor.records}${anchor.final ? ', the end of the session' : ', session still open'})`;
    io.stdout.write(`${path ?? ''}: intact, ${result.records} records, chain head ${result.head}${against}\n`);
  }
  return 0;
}
