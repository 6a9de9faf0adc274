/**
 * Row plans: which columns of a result are masked and how, made from its row description, the
 * catalogue's column names and (with column rules) what each column derives from. Plans are
 * remembered per bundle, row description, result formats and lineage until the catalogue
 * entries they were made from expire. Pure but for the catalogue's lookups (a promise when
 * names must be fetched first; the caller waits and asks again).
 */
import type { PolicyBundle, QueryLineage, StatementLineage } from '@airlock/policy';
import type { Catalog } from './catalog.ts';
import { DESCRIBED_CACHE, fieldsOf, type Described } from './described.ts';
import type { CopyState, Expect, ResultExpect } from './expects.ts';
import { PASS_THROUGH, SessionLineage, planRow, readsMasked, rowLineageOf, withFormats, type RowPlan } from './rows.ts';
import { SidecarError } from '../errors.ts';

/** a bundle with masking policies: results are masked */
export function masks(bundle: PolicyBundle | undefined): boolean {
  return (bundle?.maskingPolicies.length ?? 0) > 0;
}

export class RowPlans {
  /** the session's catalogue connection (set once logged in) */
  catalog: Catalog | undefined;
  /** the search_path's schemas when not the default (lineage depends on it) */
  searchPath: string[] | undefined;
  readonly #plans = new Map<string, { readonly plan: RowPlan; readonly until: number }>();
  /** what result columns derive from, per statement shape */
  readonly #lineage = new SessionLineage();

  /** The lineage of a query's statements (column rules only: others do not need it). */
  lineageOf(sql: string | undefined, bundle: PolicyBundle | undefined): QueryLineage | undefined {
    if (sql === undefined || bundle?.columnRules !== true) return undefined;
    return this.#lineage.of(sql, this.searchPath);
  }

  /**
   * The lineage of the statement a result belongs to: the query's statement by its position,
   * the prepared statement of a portal; undefined when unknown (FETCH, SQL EXECUTE): computed
   * columns are then opaque; null when there is nothing to follow (no column rules).
   * `current`: the bundle new statements are decided with.
   */
  statementLineage(e: ResultExpect, current: PolicyBundle | undefined): StatementLineage | undefined | null {
    if (e.k === 'query') return e.lineage === undefined ? null : e.lineage.statements[e.results ?? 0];
    const sql = e.portal?.statement?.sql;
    return sql === undefined ? undefined : this.lineageOf(sql, current)?.statements[0];
  }

  /** true when an error or notice of the current statement may quote values of masked columns */
  echoesMasked(e: Expect | undefined, current: PolicyBundle | undefined): boolean {
    const bundle = e !== undefined && (e.k === 'query' || e.k === 'execute') ? e.pol?.bundle : undefined;
    if (bundle === undefined || !bundle.columnRules || (e?.k !== 'query' && e?.k !== 'execute')) return false;
    if (e.k === 'query') return e.lineage !== undefined && readsMasked(bundle.masker, e.lineage.statements);
    return readsMasked(bundle.masker, [this.statementLineage(e, current) ?? undefined]);
  }

  /**
   * The row plan of the current result (set on `e`); a promise when column names must be
   * looked up first.
   */
  planFor(e: ResultExpect, current: PolicyBundle | undefined): RowPlan | Promise<void> {
    const bundle = e.pol?.bundle;
    const catalog = this.catalog;
    if (bundle === undefined || !masks(bundle) || catalog === undefined) return (e.plan = PASS_THROUGH);
    let described: Described | null | undefined;
    let formats: readonly number[] | undefined;
    if (e.k === 'query') described = e.fields;
    else {
      const portal = e.portal;
      if (portal?.fields !== undefined) described = portal.fields;
      else if (portal?.statement?.fields !== undefined) {
        described = portal.statement.fields;
        formats = portal.resultFormats;
      }
    }
    if (described === null) return (e.plan = PASS_THROUGH);
    if (described === undefined) {
      // rows without a known shape: nothing tells which columns they hold, so nothing is passed
      throw new SidecarError('NotPermitted', 'result rows arrived without a row description; they cannot be masked');
    }
    // computed columns are masked by what they derive from (sql/lineage.ts)
    const statement = bundle.columnRules ? this.statementLineage(e, current) : undefined;
    const lineage = statement === null ? undefined : rowLineageOf(statement, catalog);
    if (lineage instanceof Promise) return lineage;
    // plans depend on the bundle too: a swapped one makes its own
    const key = `${bundle.digest}\u0000${formats === undefined ? described.key : `${described.key}\u0000${formats.join(',')}`}${lineage === undefined ? '' : `\u0000${lineage.key ?? ''}`}`;
    const now = Date.now();
    const cached = this.#plans.get(key);
    if (cached !== undefined && now < cached.until) return (e.plan = cached.plan);
    const fields = formats === undefined ? described.fields : withFormats(described.fields, formats);
    const tables = [...new Set(fields.filter((f) => f.tableID !== 0).map((f) => f.tableID))];
    if (tables.length > 0 && !catalog.has(tables)) return catalog.load(tables);
    const plan = planRow(fields, bundle.masker, (t, c) => catalog.cached(t, c), lineage);
    if (this.#plans.size >= DESCRIBED_CACHE) this.#plans.clear();
    this.#plans.set(key, { plan, until: tables.length > 0 ? catalog.validUntil(tables) : Infinity });
    return (e.plan = plan);
  }

  /**
   * The plan of a COPY … TO STDOUT's rows from the RowDescription of its probe (set on `copy`);
   * a promise when names must be looked up first. False when nothing can be planned.
   */
  probePlan(copy: CopyState, bundle: PolicyBundle | undefined, buf: Buffer, start: number, end: number): boolean | Promise<void> {
    const catalog = this.catalog;
    if (bundle === undefined || catalog === undefined) return false;
    const fields = fieldsOf(buf, start, end);
    const tables = [...new Set(fields.filter((f) => f.tableID !== 0).map((f) => f.tableID))];
    if (tables.length > 0 && !catalog.has(tables)) return catalog.load(tables);
    const lineage = bundle.columnRules ? rowLineageOf(copy.lineage, catalog) : undefined;
    if (lineage instanceof Promise) return lineage;
    copy.plan = planRow(fields, bundle.masker, (t, c) => catalog.cached(t, c), lineage);
    return true;
  }
}
