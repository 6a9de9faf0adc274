/**
 * The hash chain of a recording. Every record is one JSON line; its `hash` is
 * sha256(prev hash + "\n" + the line's JSON without `hash`), and it names the previous record's
 * hash in `prev`, so any edit, deletion, insertion or reordering breaks the chain, and a
 * truncation is caught by the missing end record or by the chain head anchored elsewhere
 * (AgentSession status). Pure.
 */
import { hash as oneShotHash } from 'node:crypto';

export const GENESIS = `sha256:${'0'.repeat(64)}`;

export type RecordBody = Readonly<Record<string, unknown>> & { readonly type: string };

export interface SealedRecord {
  readonly seq: number;
  readonly hash: string;
  /** the JSON line, without the trailing newline */
  readonly line: string;
}

function digest(prev: string, json: string): string {
  // one native call (a Hash object per record costs twice as much)
  return `sha256:${oneShotHash('sha256', `${prev}\n${json}`, 'hex')}`;
}

/** The JSON text of a record's body without the fields that are Airlock's (seq, prev, hash). */
export function bodyJson(body: RecordBody): string {
  if (!('seq' in body) && !('prev' in body) && !('hash' in body)) return JSON.stringify(body);
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (k !== 'seq' && k !== 'prev' && k !== 'hash') rest[k] = v;
  return JSON.stringify(rest);
}

/**
 * Seals a record after `prev`: `{"seq":…, "time":…, <the body's fields in order>, "prev":…,
 * "hash":…}` (time only when given). seq, prev and hash are Airlock's; a body field of those
 * names is dropped. The usual body (no such field) is serialised in one JSON.stringify, without
 * copying it.
 */
export function seal(body: RecordBody, seq: number, prev: string, time?: string): SealedRecord {
  return sealJson(bodyJson(body), seq, prev, time);
}

/** seal() of a body already serialised (the JSON text of an object without seq, prev or hash). */
export function sealJson(json: string, seq: number, prev: string, time?: string): SealedRecord {
  const fields = json.slice(1, -1);
  // prev is always `sha256:` + hex: nothing to escape
  const head = time === undefined ? `{"seq":${String(seq)},` : `{"seq":${String(seq)},"time":${JSON.stringify(time)},`;
  const text = `${head}${fields === '' ? '' : `${fields},`}"prev":"${prev}"}`;
  const hash = digest(prev, text);
  return { seq, hash, line: `${text.slice(0, -1)},"hash":"${hash}"}` };
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly records: number;
  /** hash of the last valid record */
  readonly head: string;
  /** 1-based line of the first bad record, and why */
  readonly error?: { readonly line: number; readonly message: string };
}

export interface VerifyOptions {
  /** the chain head anchored outside the recording (AgentSession status.recording.chainHead) */
  readonly expectedHead?: string;
  /** record types that close a recording; without one at the end the recording is truncated */
  readonly endTypes?: readonly string[];
  /**
   * The anchor reported to the AgentSession: record `records` must hash to `head`. A live
   * session's anchor lags behind its recording (records after it are fine); an ended session's
   * anchor is its last record (`final`), so nothing may follow it.
   */
  readonly anchor?: { readonly head: string; readonly records: number; readonly final: boolean };
}

/**
 * A recording's text without the zero bytes that end a recording still being written, or one
 * whose writer died (the reserved space of a mapped file, see writer.ts). A NUL anywhere else
 * stays, and fails verification.
 */
export function recordingText(raw: string): string {
  let end = raw.length;
  while (end > 0 && raw.charCodeAt(end - 1) === 0) end--;
  return end === raw.length ? raw : raw.slice(0, end);
}

/** Verifies a whole recording's text (trailing zero bytes ignored). */
export function verifyRecording(raw: string, options: VerifyOptions = {}): VerifyResult {
  const text = recordingText(raw);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let prev = GENESIS;
  let lastType = '';
  for (let i = 0; i < lines.length; i++) {
    const fail = (message: string): VerifyResult => ({ ok: false, records: i, head: prev, error: { line: i + 1, message } });
    const line = lines[i] ?? '';
    let rec: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return fail('not a JSON object');
      rec = parsed as Record<string, unknown>;
    } catch {
      return fail(i === lines.length - 1 ? 'incomplete last line (the recording was cut mid-write)' : 'not valid JSON');
    }
    if (rec['seq'] !== i + 1) return fail(`sequence number is ${JSON.stringify(rec['seq'])}, expected ${i + 1} (records removed, inserted or reordered)`);
    if (rec['prev'] !== prev) return fail('does not chain to the previous record (records removed, inserted or reordered)');
    const hash = rec['hash'];
    if (typeof hash !== 'string' || !line.endsWith(`,"hash":"${hash}"}`)) return fail('has no hash as its last field');
    const json = `${line.slice(0, line.length - `,"hash":"${hash}"}`.length)}}`;
    if (digest(prev, json) !== hash) return fail('hash does not match its content (the record was edited)');
    prev = hash;
    lastType = typeof rec['type'] === 'string' ? rec['type'] : '';
    const anchor = options.anchor;
    if (anchor !== undefined && anchor.records === i + 1 && anchor.head !== hash) {
      return { ok: false, records: i + 1, head: prev, error: { line: i + 1, message: `record ${i + 1} is not the anchored head ${anchor.head} (the recording was edited or replaced)` } };
    }
  }
  const records = lines.length;
  if (records === 0) return { ok: false, records, head: prev, error: { line: 1, message: 'the recording is empty' } };
  const anchor = options.anchor;
  if (anchor !== undefined && records < anchor.records) {
    return { ok: false, records, head: prev, error: { line: records, message: `the recording has ${records} records but its anchor is record ${anchor.records} (the recording was truncated)` } };
  }
  if (anchor !== undefined && anchor.final && records > anchor.records) {
    return { ok: false, records, head: prev, error: { line: anchor.records + 1, message: `${records - anchor.records} records follow the anchored end of the session (record ${anchor.records}): they were appended afterwards` } };
  }
  if (options.expectedHead !== undefined && options.expectedHead !== prev) {
    return { ok: false, records, head: prev, error: { line: records, message: `chain head ${prev} is not the anchored head ${options.expectedHead} (the recording was truncated or replaced)` } };
  }
  const ends = options.endTypes ?? [];
  if (ends.length > 0 && !ends.includes(lastType)) {
    return { ok: false, records, head: prev, error: { line: records, message: `the last record is "${lastType}", not ${ends.join('/')}: the recording is truncated or the session is still open` } };
  }
  return { ok: true, records, head: prev };
}
