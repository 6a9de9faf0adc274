/**
 * Column identity for masking: `schema.table.column` of a result column, from the table OID and
 * attribute number in RowDescription, looked up in pg_catalog on a separate upstream connection
 * (never the agent's, so lookups do not disturb its transaction). One per proxy, opened on first
 * use, reopened after a failure; answers are cached for a short time (a renamed column is picked
 * up within `ttlMs`).
 */
import type { UpstreamConfig } from '../config.ts';
import { SidecarError } from '../errors.ts';
import { connectUpstream, type UpstreamConnection } from './upstream.ts';
import { BackendFramer, noticeField, queryMessage, readNoticeFields } from './wire.ts';

interface TableColumns {
  readonly at: number;
  readonly columns: ReadonlyMap<number, string>;
  /** pg_class.relkind ('r' table, 'p' partitioned, 'f' foreign, 'v' view, 'm' materialized view, …) */
  readonly kind: string | undefined;
  readonly schema: string;
  readonly name: string;
}

/** Relation kinds whose columns hold their own values: tables, partitioned and foreign tables. */
const PLAIN_KINDS: ReadonlySet<string> = new Set(['r', 'p', 'f']);

/**
 * The views of the system schemas are PostgreSQL's own and show metadata, not table data, but
 * for the statistics views: their most common values and histograms are column values.
 */
const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema']);
const DATA_VIEWS: ReadonlySet<string> = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs']);

/** true when a relation's columns are its own values (not a view's, but for the system's metadata views) */
function plainRelation(schema: string, name: string, kind: string): boolean {
  if (PLAIN_KINDS.has(kind)) return true;
  return kind === 'v' && SYSTEM_SCHEMAS.has(schema) && !DATA_VIEWS.has(name);
}

interface RelationKind {
  readonly at: number;
  /** null: no such relation */
  readonly kind: string | null;
}

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export class Catalog {
  readonly #config: UpstreamConfig;
  readonly #ttlMs: number;
  readonly #tables = new Map<number, TableColumns>();
  /** relation kinds by `schema.name` (for lineage: a view's columns are not its own) */
  readonly #relations = new Map<string, RelationKind>();
  #conn: Promise<UpstreamConnection> | undefined;
  /** lookups run one at a time on the single connection */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(config: UpstreamConfig, options: { ttlMs?: number } = {}) {
    this.#config = config;
    this.#ttlMs = options.ttlMs ?? 60_000;
  }

  /** The cached name, or undefined when the table is not (or no longer) cached. */
  cached(tableID: number, columnID: number): string | undefined {
    const t = this.#tables.get(tableID);
    if (t === undefined || Date.now() - t.at > this.#ttlMs) return undefined;
    return t.columns.get(columnID);
  }

  /** true when every table is cached */
  has(tableIDs: readonly number[]): boolean {
    const now = Date.now();
    return tableIDs.every((id) => {
      const t = this.#tables.get(id);
      return t !== undefined && now - t.at <= this.#ttlMs;
    });
  }

  /** When the first of these tables' cached columns expires (ms since the epoch; 0 when one is not cached). */
  validUntil(tableIDs: readonly number[]): number {
    let until = Infinity;
    for (const id of tableIDs) {
      const t = this.#tables.get(id);
      if (t === undefined) return 0;
      until = Math.min(until, t.at + this.#ttlMs);
    }
    return until;
  }

  /** true when the table OID is a plain table's (cached): its columns' values are its own, not a view's */
  plainTable(tableID: number): boolean {
    const t = this.#tables.get(tableID);
    return t?.kind !== undefined && plainRelation(t.schema, t.name, t.kind);
  }

  /** true when the kinds of all these relations (`schema.name`) are cached */
  hasRelations(names: readonly string[]): boolean {
    const now = Date.now();
    return names.every((n) => {
      const r = this.#relations.get(n);
      return r !== undefined && now - r.at <= this.#ttlMs;
    });
  }

  /** Of these relations, those that exist and are not plain tables (views, …), or whose kind is not cached. */
  opaqueRelations(names: readonly string[]): Set<string> {
    const out = new Set<string>();
    for (const n of names) {
      const r = this.#relations.get(n);
      const dot = n.indexOf('.');
      if (r === undefined || (r.kind !== null && !plainRelation(n.slice(0, dot), n.slice(dot + 1), r.kind))) out.add(n);
    }
    return out;
  }

  /** Loads the kinds of these relations (`schema.name`). Throws SidecarError when the catalogue cannot be read. */
  loadRelations(names: readonly string[]): Promise<void> {
    const run = this.#queue.then(() => this.#loadRelations(names));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #loadRelations(names: readonly string[]): Promise<void> {
    const missing = [...new Set(names)].filter((n) => !this.hasRelations([n]));
    if (missing.length === 0) return;
    const pairs = missing.map((n) => {
      const dot = n.indexOf('.');
      return `(${literal(n.slice(0, dot))}, ${literal(n.slice(dot + 1))})`;
    });
    const rows = await this.#query(
      `SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE (n.nspname, c.relname) IN (${pairs.join(', ')})`,
    );
    const now = Date.now();
    for (const n of missing) this.#relations.set(n, { at: now, kind: null });
    for (const [schema, rel, kind] of rows) this.#relations.set(`${schema ?? ''}.${rel ?? ''}`, { at: now, kind: kind ?? '?' });
  }

  /** Loads the columns of these tables. Throws SidecarError when the catalogue cannot be read. */
  load(tableIDs: readonly number[]): Promise<void> {
    const run = this.#queue.then(() => this.#load(tableIDs));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #load(tableIDs: readonly number[]): Promise<void> {
    const missing = [...new Set(tableIDs)].filter((id) => !this.has([id]));
    if (missing.length === 0) return;
    const ids = missing.map((id) => String(id >>> 0)).join(',');
    const rows = await this.#query(
      `SELECT a.attrelid::int8, a.attnum, n.nspname, c.relname, a.attname, c.relkind FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE a.attrelid IN (${ids}) AND a.attnum > 0`,
    );
    const now = Date.now();
    const byTable = new Map<number, Map<number, string>>(missing.map((id) => [id, new Map<number, string>()]));
    const kinds = new Map<number, { kind: string; schema: string; name: string }>();
    for (const [rel, attnum, schema, table, column, kind] of rows) {
      byTable.get(Number(rel))?.set(Number(attnum), `${schema ?? ''}.${table ?? ''}.${column ?? ''}`);
      if (kind !== null && kind !== undefined) kinds.set(Number(rel), { kind, schema: schema ?? '', name: table ?? '' });
    }
    for (const [id, columns] of byTable) {
      const k = kinds.get(id);
      this.#tables.set(id, { at: now, columns, kind: k?.kind, schema: k?.schema ?? '', name: k?.name ?? '' });
    }
  }

  async #query(sql: string): Promise<(string | null)[][]> {
    // a connection opened earlier may have died since (a server restart): one fresh retry
    for (let attempt = 0; ; attempt++) {
      const reused = this.#conn !== undefined;
      let conn: UpstreamConnection;
      try {
        this.#conn ??= connectUpstream(this.#config, { parameters: { application_name: 'airlock-catalog' } });
        conn = await this.#conn;
      } catch (err) {
        this.#conn = undefined;
        throw new SidecarError('UpstreamUnavailable', `cannot open the catalogue connection for masking: ${(err as Error).message}`);
      }
      try {
        return await simpleQuery(conn, sql);
      } catch (err) {
        this.#conn = undefined;
        conn.socket.destroy();
        if (reused && attempt === 0) continue;
        throw new SidecarError('UpstreamUnavailable', `cannot read column names for masking: ${(err as Error).message}`);
      }
    }
  }

  close(): void {
    const c = this.#conn;
    this.#conn = undefined;
    if (c !== undefined) {
      c.then(
        (conn) => {
          conn.socket.end();
        },
        () => undefined,
      );
    }
  }
}

/** Runs one simple query and returns its rows as text (one statement, text results). */
export function simpleQuery(conn: UpstreamConnection, sql: string, timeoutMs = 10_000): Promise<(string | null)[][]> {
  const s = conn.socket;
  return new Promise((resolve, reject) => {
    const framer = new BackendFramer();
    const rows: (string | null)[][] = [];
    let error: string | undefined;
    const timer = setTimeout(() => {
      done(new Error(`no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', onError);
      s.off('close', onClose);
      s.pause();
      if (err !== undefined) reject(err);
      else if (error !== undefined) reject(new Error(error));
      else resolve(rows);
    };
    const onData = (d: Buffer): void => {
      try {
        framer.push(d, (type, buf, start) => {
          if (type === 0x44 /* D */) {
            const n = buf.readInt16BE(start + 5);
            let pos = start + 7;
            const row: (string | null)[] = [];
            for (let i = 0; i < n; i++) {
              const len = buf.readInt32BE(pos);
              pos += 4;
              row.push(len < 0 ? null : buf.toString('utf8', pos, pos + len));
              if (len > 0) pos += len;
            }
            rows.push(row);
          } else if (type === 0x45 /* E */) {
            error = noticeField(readNoticeFields(buf.subarray(start)), 'M') ?? 'error';
          } else if (type === 0x5a /* Z */) {
            done();
          }
        });
      } catch (err) {
        done(err as Error);
      }
    };
    const onError = (err: Error): void => {
      done(err);
    };
    const onClose = (): void => {
      done(new Error('the connection closed'));
    };
    s.on('data', onData);
    s.on('error', onError);
    s.on('close', onClose);
    s.resume();
    s.write(queryMessage(sql));
  });
}
