/**
 * Masking of DataRow messages. A result's plan lists only the columns a masking rule can touch
 * (by column identity or because detectors apply to every column); every other column, and
 * every row nothing matched, passes through as the original bytes. Pure.
 *
 * Formats: text-format values are masked as text. Binary values of text types (text, varchar,
 * char, name, json, xml, unknown) are UTF-8 too and are masked in place; binary jsonb is a
 * version byte plus text. Binary integers are decoded to decimal for the detectors. Any other
 * binary value cannot be rewritten without corrupting it: when a rule masks it (a column rule,
 * or a detector on a decoded integer) it becomes NULL. A masked value of a non-text type in text
 * format becomes NULL as well, so typed clients never receive text that does not parse as the
 * column's type.
 *
 * A value is decoded only when the masker's look at its bytes (ColumnMasker.mayMaskBytes) says a rule
 * might apply; rewritten rows are built in a Slab, one after the other, so a run of them is one
 * contiguous slice to write.
 */
import type { ColumnMasker, Masker } from '@airlock/policy';

export interface FieldInfo {
  readonly tableID: number;
  readonly columnID: number;
  readonly dataTypeID: number;
  /** 0 text, 1 binary */
  readonly format: number;
}

type Kind = 'text' | 'typedText' | 'binText' | 'binJsonb' | 'binInt' | 'binOther';

interface ColumnMask {
  readonly index: number;
  readonly masker: ColumnMasker;
  readonly kind: Kind;
}

export interface RowPlan {
  readonly fieldCount: number;
  /** columns to look at, ascending by index; empty: rows pass through untouched */
  readonly columns: readonly ColumnMask[];
}

export const PASS_THROUGH: RowPlan = Object.freeze({ fieldCount: -1, columns: Object.freeze([]) });

/** text 25, varchar 1043, bpchar 1042, name 19, "char" 18, json 114, xml 142, unknown 705 */
const TEXT_TYPES: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 18, 114, 142, 705]);
const JSONB = 3802;
/** int2 21, int4 23, int8 20, oid 26 */
const INT_TYPES: ReadonlySet<number> = new Set([21, 23, 20, 26]);

function kindOf(f: FieldInfo): Kind {
  if (f.format === 0) return TEXT_TYPES.has(f.dataTypeID) || f.dataTypeID === JSONB ? 'text' : 'typedText';
  if (TEXT_TYPES.has(f.dataTypeID)) return 'binText';
  if (f.dataTypeID === JSONB) return 'binJsonb';
  if (INT_TYPES.has(f.dataTypeID)) return 'binInt';
  return 'binOther';
}

/**
 * The plan of one result. `columnName(tableID, columnID)` gives `schema.table.column` for a
 * column of a table (undefined for computed columns or when unknown).
 */
export function planRow(fields: readonly FieldInfo[], masker: Masker, columnName: (tableID: number, columnID: number) => string | undefined): RowPlan {
  const columns: ColumnMask[] = [];
  fields.forEach((f, index) => {
    const column = f.tableID !== 0 && f.columnID > 0 ? columnName(f.tableID, f.columnID) : undefined;
    const m = masker.forColumn(column);
    if (!m.canMatch) return;
    columns.push({ index, masker: m, kind: kindOf(f) });
  });
  return { fieldCount: fields.length, columns };
}

/** The formats a Bind asks for, per result column (0 = one format for all, else one each). */
export function withFormats(fields: readonly FieldInfo[], resultFormats: readonly number[]): FieldInfo[] {
  return fields.map((f, i) => ({ ...f, format: resultFormats.length === 0 ? 0 : resultFormats.length === 1 ? (resultFormats[0] ?? 0) : (resultFormats[i] ?? 0) }));
}

function decodeInt(buf: Buffer, start: number, len: number): string | undefined {
  if (len === 2) return String(buf.readInt16BE(start));
  if (len === 4) return String(buf.readInt32BE(start));
  if (len === 8) return String(buf.readBigInt64BE(start));
  return undefined;
}

export interface MaskedRow {
  /** the rewritten message, or undefined when nothing changed */
  readonly message: Buffer | undefined;
  readonly masked: number;
  /** the rules that masked something (may repeat a name when several columns were masked) */
  readonly rules: readonly string[];
}

const UNCHANGED: MaskedRow = Object.freeze({ message: undefined, masked: 0, rules: Object.freeze([]) });

const SLAB_SIZE = 64 * 1024;

/**
 * Memory for rewritten messages: consecutive allocations are consecutive bytes of one buffer
 * (so writes coalesce), and a region handed out is never handed out again (it may still be
 * queued for writing): a full slab is replaced, not reused.
 */
export class Slab {
  #buf = Buffer.allocUnsafe(SLAB_SIZE);
  #used = 0;

  alloc(n: number): Buffer {
    if (n > SLAB_SIZE / 4) return Buffer.allocUnsafe(n);
    if (this.#used + n > this.#buf.length) {
      this.#buf = Buffer.allocUnsafe(SLAB_SIZE);
      this.#used = 0;
    }
    const b = this.#buf.subarray(this.#used, this.#used + n);
    this.#used += n;
    return b;
  }

  /** a copy of src[start, end) */
  copy(src: Buffer, start: number, end: number): Buffer {
    const b = this.alloc(end - start);
    src.copy(b, 0, start, end);
    return b;
  }
}

/**
 * Masks one DataRow (`buf[start, end)` is the whole message). Throws on a malformed row, which
 * the session treats as an upstream protocol error.
 */
export function maskDataRow(plan: RowPlan, buf: Buffer, start: number, end: number, slab?: Slab): MaskedRow {
  const cols = plan.columns;
  if (cols.length === 0) return UNCHANGED;
  const n = buf.readInt16BE(start + 5);
  let pos = start + 7;
  let ci = 0;
  let next = cols[0];
  let replaced: (string | null | undefined)[] | undefined;
  let masked = 0;
  let rules: readonly string[] = UNCHANGED.rules;
  for (let i = 0; i < n && next !== undefined; i++) {
    if (pos + 4 > end) throw new Error('DataRow is truncated');
    const len = buf.readInt32BE(pos);
    pos += 4;
    if (len > 0 && pos + len > end) throw new Error('DataRow is truncated');
    if (i === next.index) {
      const col = next;
      next = cols[++ci];
      if (len < 0) continue;
      const masker = col.masker;
      let text: string | undefined;
      switch (col.kind) {
        case 'text':
        case 'typedText':
        case 'binText':
          if (masker.mayMaskBytes(buf, pos, pos + len)) text = buf.toString('utf8', pos, pos + len);
          break;
        case 'binJsonb':
          if (len === 0) text = '';
          else if (masker.mayMaskBytes(buf, pos + 1, pos + len)) text = buf.toString('utf8', pos + 1, pos + len);
          break;
        case 'binInt':
          text = decodeInt(buf, pos, len);
          break;
        case 'binOther':
          // cannot be decoded: only a rule that masks whole values of this column applies
          text = '\u0000';
          break;
      }
      if (text !== undefined) {
        const r = masker.maskValue(text);
        if (r.masked > 0) {
          rules = masked === 0 ? r.rules : [...rules, ...r.rules];
          masked += r.masked;
          replaced ??= new Array<string | null | undefined>(n);
          if (r.value === null || col.kind === 'typedText' || col.kind === 'binInt' || col.kind === 'binOther') replaced[i] = null;
          else if (col.kind === 'binJsonb') replaced[i] = `\u0001${r.value}`; // the jsonb version byte, then the text
          else replaced[i] = r.value;
        }
      }
    }
    if (len > 0) pos += len;
  }
  if (replaced === undefined) return UNCHANGED;
  return { message: rebuild(buf, start, end, n, replaced, slab), masked, rules };
}

function rebuild(buf: Buffer, start: number, end: number, n: number, replaced: readonly (string | null | undefined)[], slab: Slab | undefined): Buffer {
  let size = end - start;
  let pos = start + 7;
  const bytes = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    // maskDataRow stops reading after the last column it masks: the rest is checked here, so a
    // malformed row never leaves unwritten bytes in (or copies another message into) the output
    if (pos + 4 > end) throw new Error('DataRow is truncated');
    const len = buf.readInt32BE(pos);
    if (len < -1) throw new Error(`DataRow column ${String(i + 1)} has length ${String(len)}`);
    if (pos + 4 + Math.max(len, 0) > end) throw new Error('DataRow is truncated');
    const r = replaced[i];
    if (r !== undefined) {
      const b = r === null ? 0 : Buffer.byteLength(r, 'utf8');
      bytes[i] = b;
      size += b - Math.max(len, 0);
    }
    pos += 4 + Math.max(len, 0);
  }
  if (pos !== end) throw new Error('DataRow has bytes after its last column');
  const out = slab === undefined ? Buffer.allocUnsafe(size) : slab.alloc(size);
  out[0] = 0x44;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(n, 5);
  let src = start + 7;
  let dst = 7;
  // unchanged columns are copied a run at a time: [runStart, src) is the pending run
  let runStart = src;
  for (let i = 0; i < n; i++) {
    const len = buf.readInt32BE(src);
    const r = replaced[i];
    if (r !== undefined) {
      if (src > runStart) dst += buf.copy(out, dst, runStart, src);
      if (r === null) {
        out.writeInt32BE(-1, dst);
        dst += 4;
      } else {
        const b = bytes[i] ?? 0;
        out.writeInt32BE(b, dst);
        out.write(r, dst + 4, b, 'utf8');
        dst += 4 + b;
      }
    }
    src += 4 + Math.max(len, 0);
    if (r !== undefined) runStart = src;
  }
  if (src > runStart) buf.copy(out, dst, runStart, src);
  return out;
}
