/**
 * Row descriptions: the columns of a RowDescription message, parsed once per distinct
 * description (the bytes are the key) and remembered in a bounded cache. Pure.
 */
import { ProtocolError } from './errors.ts';
import type { FieldInfo } from './rows.ts';

/** A RowDescription: its bytes (the key of the caches) and its columns. */
export interface Described {
  readonly key: string;
  readonly fields: readonly FieldInfo[];
}

/** Bound of the per-session caches of row descriptions and row plans. */
export const DESCRIBED_CACHE = 256;

/** The columns of the RowDescription in `buf[start, end)` (the whole message, type byte first). */
export function fieldsOf(buf: Buffer, start: number, end: number): FieldInfo[] {
  const n = buf.readInt16BE(start + 5);
  const out: FieldInfo[] = [];
  let pos = start + 7;
  for (let i = 0; i < n; i++) {
    const nul = buf.indexOf(0, pos);
    if (nul < 0 || nul + 19 > end) throw new ProtocolError('upstream sent a malformed RowDescription');
    pos = nul + 1;
    out.push({ tableID: buf.readUInt32BE(pos), columnID: buf.readInt16BE(pos + 4), dataTypeID: buf.readUInt32BE(pos + 6), format: buf.readInt16BE(pos + 16) });
    pos += 18;
  }
  return out;
}

/** The row descriptions a session has seen, by their bytes. */
export class DescribedCache {
  readonly #described = new Map<string, Described>();

  /** The columns of a RowDescription, parsed once per distinct description. */
  of(buf: Buffer, start: number, end: number): Described {
    const key = buf.toString('latin1', start + 5, end);
    let d = this.#described.get(key);
    if (d === undefined) {
      d = { key, fields: fieldsOf(buf, start, end) };
      if (this.#described.size >= DESCRIBED_CACHE) this.#described.clear();
      this.#described.set(key, d);
    }
    return d;
  }
}
