/**
 * Masking of what the server says besides rows: error and notice fields (a unique violation's
 * key quotes values), ParameterStatus values (application_name can be set by a statement) and
 * NOTIFY channels and payloads. Each returns the message to send instead and how many values
 * it masked, or undefined when nothing changed. Pure.
 */
import type { Masker } from '@airlock/policy';
import { ProtocolError } from './errors.ts';
import { withholdEchoes } from './rows.ts';
import { frontendMessage, readNoticeFields, writeNoticeFields } from './wire.ts';

export interface Masked {
  readonly message: Buffer;
  readonly masked: number;
}

/** The two C strings of a backend message body from `from` (ParameterStatus, NotificationResponse). */
export function twoStrings(buf: Buffer, from: number, end: number, what: string): [string, string] {
  const firstEnd = buf.indexOf(0, from);
  const secondEnd = firstEnd < 0 ? -1 : buf.indexOf(0, firstEnd + 1);
  if (firstEnd < 0 || secondEnd < 0 || secondEnd >= end) throw new ProtocolError(`upstream sent a malformed ${what}`);
  return [buf.toString('utf8', from, firstEnd), buf.toString('utf8', firstEnd + 1, secondEnd)];
}

/** A field of an ErrorResponse or NoticeResponse (0x53 severity, 0x43 SQLSTATE, …). */
export function noticeField(buf: Buffer, start: number, end: number, code: number): string | undefined {
  return readNoticeFields(buf.subarray(start, end)).fields.find(([c]) => c === code)?.[1];
}

/**
 * An ErrorResponse or NoticeResponse masked like results; `echoes`: its statement reads masked
 * columns, so what may quote their values is withheld (rows.ts).
 */
export function maskNotice(masker: Masker, type: 'E' | 'N', buf: Buffer, start: number, end: number, echoes: boolean): Masked | undefined {
  const f = readNoticeFields(buf.subarray(start, end));
  let changed = 0;
  let masked = 0;
  const withheld = echoes ? withholdEchoes(f.fields) : undefined;
  if (withheld !== undefined) {
    changed += 1;
    masked += 1;
  }
  const fields = (withheld ?? f.fields).map(([c, v]): readonly [number, string] => {
    // every field but the severity (S, V) and the SQLSTATE (C): message, detail, hint, where,
    // internal query, schema/table/column/type/constraint names, file, routine, …
    if (c === 0x53 || c === 0x56 || c === 0x43) return [c, v];
    const r = masker.maskText(v);
    if (r.masked === 0) return [c, v];
    changed += 1;
    masked += r.masked;
    return [c, r.text];
  });
  return changed > 0 ? { message: writeNoticeFields(type, { fields }), masked } : undefined;
}

/** A ParameterStatus's name and value. */
export function parameterStatus(buf: Buffer, start: number, end: number): [string, string] {
  return twoStrings(buf, start + 5, end, 'ParameterStatus');
}

/** A ParameterStatus with its value masked. */
export function maskParameterStatus(masker: Masker, name: string, value: string): Masked | undefined {
  const r = masker.maskText(value);
  if (r.masked === 0) return undefined;
  return { message: frontendMessage('S', Buffer.from(`${name}\0${r.text}\0`, 'utf8')), masked: r.masked };
}

/** A NOTIFY's channel and payload, masked like results (checked even when nothing masks). */
export function maskNotification(masker: Masker | undefined, buf: Buffer, start: number, end: number): Masked | undefined {
  const [channel, payload] = twoStrings(buf, start + 9, end, 'NotificationResponse');
  if (masker === undefined) return undefined;
  const c = masker.maskText(channel);
  const p = masker.maskText(payload);
  if (c.masked === 0 && p.masked === 0) return undefined;
  return {
    message: frontendMessage('A', Buffer.concat([buf.subarray(start + 5, start + 9), Buffer.from(`${c.masked === 0 ? channel : c.text}\0${p.masked === 0 ? payload : p.text}\0`, 'utf8')])),
    masked: c.masked + p.masked,
  };
}
