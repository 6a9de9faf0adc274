/**
 * Rows of COPY … TO STDOUT in the text and csv formats with PostgreSQL's default options (one
 * row per CopyData message, as the server sends them): read into values, masked with the
 * result's row plan, written back in the same format. Pure.
 */
import type { RowPlan } from './rows.ts';

export type CopyFormat = 'text' | 'csv';

const TEXT_ESCAPES: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
const TEXT_UNESCAPES: Readonly<Record<string, string>> = { '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\\': '\\\\' };

/** The values of one text-format row (without its newline); null for `\N`. */
export function readTextRow(line: string): (string | null)[] {
  return line.split('\t').map((f) => {
    if (f === '\\N') return null;
    return f.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/gs, (_, e: string) => {
      if (e.startsWith('x') && e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
      if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
      return TEXT_ESCAPES[e] ?? e;
    });
  });
}

export function writeTextRow(values: readonly (string | null)[]): string {
  return values.map((v) => (v === null ? '\\N' : v.replace(/[\b\f\n\r\t\v\\]/g, (c) => TEXT_UNESCAPES[c] ?? c))).join('\t');
}

/**
 * The text of a double-quoted item starting at `text[start]` (a `"`), with `""` read as one
 * quote (csv fields, quoted identifiers), and the index after its closing quote; undefined when
 * it is not closed.
 */
export function readQuoted(text: string, start: number): { value: string; end: number } | undefined {
  let value = '';
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return undefined;
    value += text.slice(i, q);
    if (text[q + 1] !== '"') return { value, end: q + 1 };
    value += '"';
    i = q + 2;
  }
}

/** The values of one csv row (without its line end); null for an unquoted empty field. */
export function readCsvRow(line: string): (string | null)[] | undefined {
  const out: (string | null)[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      const q = readQuoted(line, i);
      if (q === undefined) return undefined;
      out.push(q.value);
      i = q.end;
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? line.length : c;
      const v = line.slice(i, end);
      if (v.includes('"')) return undefined;
      out.push(v === '' ? null : v);
      i = end;
    }
    if (i === line.length) return out;
    if (line[i] !== ',') return undefined;
    i++;
  }
}

export function writeCsvRow(values: readonly (string | null)[]): string {
  return values
    .map((v) => {
      if (v === null) return '';
      return v === '' || v === '\\.' || /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
    })
    .join(',');
}

export interface MaskedCopyRow {
  /** the row to send instead, or undefined when nothing changed */
  readonly row: string | undefined;
  readonly masked: number;
  readonly rules: readonly string[];
}

/**
 * Masks one row (the CopyData's text, with its line end) by the plan of the result's columns.
 * undefined when the row does not have the plan's shape (the caller fails closed).
 */
export function maskCopyRow(format: CopyFormat, data: string, plan: RowPlan): MaskedCopyRow | undefined {
  const eol = data.endsWith('\r\n') ? '\r\n' : data.endsWith('\n') ? '\n' : '';
  const line = data.slice(0, data.length - eol.length);
  const values = format === 'text' ? readTextRow(line) : readCsvRow(line);
  if (values?.length !== plan.fieldCount) return undefined;
  let masked = 0;
  const rules = new Set<string>();
  for (const col of plan.columns) {
    const v = values[col.index];
    if (v === null || v === undefined) continue;
    const r = col.masker.maskValue(v);
    if (r.masked === 0) continue;
    masked += r.masked;
    for (const rule of r.rules) rules.add(rule);
    // as in DataRows: a masked value of a non-text type would not parse as its type
    values[col.index] = col.kind === 'text' ? r.value : null;
  }
  if (masked === 0) return { row: undefined, masked: 0, rules: [] };
  return { row: (format === 'text' ? writeTextRow(values) : writeCsvRow(values)) + eol, masked, rules: [...rules] };
}
