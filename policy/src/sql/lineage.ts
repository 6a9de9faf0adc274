/**
 * Lineage of result columns, from the real PostgreSQL parse tree (libpg-query): for each output
 * column of a statement that returns rows, the table columns its values may come from. Pure.
 *
 * - `passthrough`: columns whose values reach the output unchanged (a column reference, through
 *   subqueries, CTEs, set operations, COALESCE/GREATEST/LEAST/NULLIF, CASE results, COLLATE,
 *   min/max and value-returning window functions).
 * - `derived`: columns the output is computed from (operators, casts, functions, aggregates,
 *   constructors, CASE and comparison conditions, whole-row references as `schema.table.*`).
 * - `opaque`: what the output derives from cannot be known (a function or operator Airlock does not
 *   know, a cast to a type it does not know, a statement it cannot analyse): it may be derived from
 *   every masked column of the database.
 *
 * Unqualified table names count as each schema of the search path (pg_* as pg_catalog). Whether a
 * named relation is a table or a view is not in the parse tree: `relations` lists every relation
 * named, for the caller to look up (a view is opaque). Column references that could belong to
 * several tables (unqualified names, correlated subqueries) count as each of them.
 *
 * WHERE, JOIN, GROUP BY, ORDER BY, window PARTITION/ORDER BY and FILTER clauses choose rows but do
 * not put values in them: their columns are in `reads` (for error messages that may quote them),
 * not in an output's lineage. count(…) reads nothing of its argument but its nullness: none.
 */
import { parseSql } from './parser.ts';
import { BUILTIN_OPERATORS, BUILTIN_TYPES } from './classify.ts';
import { statementShape } from './shape.ts';

export interface ColumnLineage {
  readonly passthrough: readonly string[];
  readonly derived: readonly string[];
  readonly opaque: boolean;
}

/**
 * The output columns of a statement, in order: single columns, or a run of unknown width (`*`
 * of a table, a function returning a row type, a USING join), each column of which has the
 * run's lineage; `table` runs are columns of those tables, identified exactly by the server.
 */
export type OutputSegment =
  | { readonly kind: 'column'; readonly name: string; readonly lineage: ColumnLineage }
  | { readonly kind: 'run'; readonly lineage: ColumnLineage; readonly tables: readonly string[] };

export interface StatementLineage {
  /** undefined: the statement returns no rows Airlock analysed (its rows, if any, are opaque) */
  readonly outputs: readonly OutputSegment[] | undefined;
  /** true when the statement returns rows whose lineage is unknown (FETCH, EXECUTE, CALL, …) */
  readonly opaqueRows: boolean;
  /** `schema.table` of every relation named (to tell tables from views) */
  readonly relations: readonly string[];
  /** every column the statement reads anywhere (WHERE, JOIN, …), as sources */
  readonly reads: ColumnLineage;
  /**
   * what the statement copies into places masking does not follow: setting values (set_config,
   * read back with SHOW or current_setting) and NOTIFY payloads (pg_notify)
   */
  readonly writes: ColumnLineage;
}

export interface QueryLineage {
  readonly statements: readonly StatementLineage[];
  /** a key for caches: equal for texts of the same lineage */
  readonly key: string;
}

export const NO_LINEAGE: ColumnLineage = Object.freeze({ passthrough: Object.freeze([]), derived: Object.freeze([]), opaque: false });
export const OPAQUE_LINEAGE: ColumnLineage = Object.freeze({ passthrough: Object.freeze([]), derived: Object.freeze([]), opaque: true });

/**
 * Functions whose result is computed from their arguments only (no table or file is read;
 * settings hold no masked value: set_config of one is a `write`, see below). Any other function
 * is opaque.
 */
const DERIVING = new Set(
  `abs acos acosd acosh age array_agg array_append array_cat array_dims array_fill array_length array_lower
array_ndims array_position array_positions array_prepend array_remove array_replace array_to_json
array_to_string array_upper ascii asin asind asinh atan atan2 atan2d atand atanh avg bit_and bit_count
bit_length bit_or bit_xor bool_and bool_or btrim cardinality cbrt ceil ceiling char_length character_length
chr clock_timestamp concat concat_ws convert convert_from convert_to corr cos cosd
cosh cot cotd covar_pop covar_samp cume_dist current_database current_date current_query
current_schema current_schemas current_time current_timestamp current_user date_bin
date_part date_trunc decode degrees dense_rank div encode every exp extract factorial
floor format format_type gcd gen_random_uuid generate_series generate_subscripts get_bit get_byte
host hostmask initcap isfinite json_agg json_array_elements json_array_elements_text json_array_length
json_build_array json_build_object json_each json_each_text json_extract_path json_extract_path_text
json_object json_object_agg json_object_keys json_populate_record json_strip_nulls json_typeof
jsonb_agg jsonb_array_elements jsonb_array_elements_text jsonb_array_length jsonb_build_array
jsonb_build_object jsonb_each jsonb_each_text jsonb_extract_path jsonb_extract_path_text jsonb_insert
jsonb_object jsonb_object_agg jsonb_object_keys jsonb_path_exists jsonb_path_match jsonb_path_query
jsonb_path_query_array jsonb_path_query_first jsonb_populate_record jsonb_pretty jsonb_set jsonb_strip_nulls
jsonb_typeof justify_days justify_hours justify_interval lcm left length ln
localtime localtimestamp log log10 lower lpad ltrim make_date make_interval make_time make_timestamp
make_timestamptz masklen md5 min_scale mod netmask network now ntile
num_nonnulls num_nulls octet_length overlay percent_rank percentile_cont
pg_backend_pid pg_column_size pg_typeof pi position power quote_ident quote_literal quote_nullable radians random rank regexp_count
regexp_instr regexp_like regexp_match regexp_matches regexp_replace regexp_split_to_array
regexp_split_to_table regexp_substr regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope
regr_sxx regr_sxy regr_syy repeat replace reverse right round row_number row_to_json rpad rtrim scale
session_user set_bit set_byte sha224 sha256 sha384 sha512 sign sin sind sinh split_part sqrt
starts_with statement_timestamp stddev stddev_pop stddev_samp string_agg string_to_array
string_to_table strpos substr substring sum tan tand tanh timeofday to_ascii to_char to_date to_hex
to_json to_jsonb to_number to_timestamp to_tsquery to_tsvector
transaction_timestamp translate trim trim_scale trunc ts_headline ts_rank ts_rank_cd unistr unnest
upper user var_pop var_samp variance version websearch_to_tsquery width_bucket xmlagg xmlconcat
xmlelement xmlforest json_scalar json_serialize jsonb_path_query_tz jsonb_path_exists_tz
array_sort array_reverse casefold uuidv4 uuidv7 bool set_config current_setting pg_notify`.split(/\s+/).filter((s) => s !== ''),
);

/** Functions that return one of their arguments' values unchanged (the first `n` arguments, or all). */
const PASSING: ReadonlyMap<string, number> = new Map([
  ['min', 1],
  ['max', 1],
  ['any_value', 1],
  ['first_value', 1],
  ['last_value', 1],
  ['nth_value', 1],
  ['lag', 3],
  ['lead', 3],
  ['mode', 0],
  ['percentile_disc', 0],
]);

/** Functions of the catalogue whose result says nothing of any value (row counts, privileges). */
const NOTHING = new Set(['count', 'has_table_privilege', 'has_column_privilege', 'has_schema_privilege', 'has_database_privilege', 'has_function_privilege', 'has_sequence_privilege', 'has_any_column_privilege', 'pg_table_is_visible']);

// ---------------------------------------------------------------------------------------------
// Tree access

type Node = Readonly<Record<string, unknown>>;

const isNode = (v: unknown): v is Node => v !== null && typeof v === 'object' && !Array.isArray(v);
const asList = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
const asNode = (v: unknown): Node | undefined => (isNode(v) ? v : undefined);

function unwrap(v: unknown): [string, Node] | undefined {
  if (!isNode(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const key = keys[0] ?? '';
  if (!/^[A-Z]/.test(key)) return undefined;
  const body = asNode(v[key]);
  return body === undefined ? undefined : [key, body];
}

function strings(list: unknown): string[] {
  return asList(list).flatMap((item) => {
    const u = unwrap(item);
    if (u?.[0] !== 'String') return [];
    const s = u[1]['sval'];
    return typeof s === 'string' ? [s] : [];
  });
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

// ---------------------------------------------------------------------------------------------
// Lineage values while walking

class L {
  readonly p = new Set<string>();
  readonly d = new Set<string>();
  o = false;

  static of(...parts: readonly L[]): L {
    const l = new L();
    for (const x of parts) l.add(x);
    return l;
  }

  add(x: L): this {
    for (const c of x.p) this.p.add(c);
    for (const c of x.d) this.d.add(c);
    if (x.o) this.o = true;
    return this;
  }

  /** the same sources, now computed from (passthrough becomes derived) */
  derive(): L {
    const l = new L();
    for (const c of this.p) l.d.add(c);
    for (const c of this.d) l.d.add(c);
    l.o = this.o;
    return l;
  }

  freeze(): ColumnLineage {
    if (this.o) return OPAQUE_LINEAGE;
    if (this.p.size === 0 && this.d.size === 0) return NO_LINEAGE;
    // a column both passed and computed from: computed (the stricter)
    return Object.freeze({ passthrough: Object.freeze([...this.p].filter((c) => !this.d.has(c)).sort()), derived: Object.freeze([...this.d].sort()), opaque: false });
  }

  static opaque(): L {
    const l = new L();
    l.o = true;
    return l;
  }
}

/** A segment while walking: a named column, or a run of unknown width. */
type Seg =
  | { readonly kind: 'column'; readonly name: string; readonly l: L }
  /** `tables`: a table's columns (resolve by name as table.column); `l`: the run's lineage */
  | { readonly kind: 'run'; readonly l: L; readonly tables: readonly string[] };

/** An item of a FROM clause, as column references see it. */
interface Item {
  readonly alias: string;
  readonly schema: string | undefined;
  readonly segs: readonly Seg[];
  /** renamed columns (`AS x(a, b)`): names resolve to the whole item */
  readonly renamed: boolean;
}

interface Scope {
  readonly items: Item[];
  readonly parent: Scope | undefined;
  readonly ctes: ReadonlyMap<string, readonly Seg[]>;
}

class Walker {
  readonly relations = new Set<string>();
  readonly reads = new L();
  readonly writes = new L();
  /** FROM lists with a USING / NATURAL join: the width of each item's part of `*` is unknown */
  readonly merged = new WeakSet<Item[]>();
  readonly searchPath: readonly string[];
  #depth = 0;

  constructor(searchPath: readonly string[]) {
    this.searchPath = searchPath;
  }

  tableNames(schema: string | undefined, rel: string): string[] {
    if (schema !== undefined) return [`${schema}.${rel}`];
    if (rel.startsWith('pg_')) return [`pg_catalog.${rel}`];
    return this.searchPath.map((ns) => `${ns}.${rel}`);
  }

  // ------------------------------------------------------------------ statements

  /** The output segments of a statement that returns rows (undefined: none, or not analysed). */
  statement(key: string, body: Node, parent: Scope | undefined, ctes: ReadonlyMap<string, readonly Seg[]>): Seg[] | undefined {
    if (++this.#depth > 200) {
      this.#depth--;
      return [{ kind: 'run', l: L.opaque(), tables: [] }];
    }
    try {
      switch (key) {
        case 'SelectStmt':
          return this.select(body, parent, ctes);
        case 'InsertStmt':
        case 'UpdateStmt':
        case 'DeleteStmt':
        case 'MergeStmt':
          return this.modify(key, body, parent, ctes);
        default:
          return undefined;
      }
    } finally {
      this.#depth--;
    }
  }

  withCtes(body: Node, parent: Scope | undefined, ctes: ReadonlyMap<string, readonly Seg[]>): Map<string, readonly Seg[]> {
    const out = new Map(ctes);
    const w = asNode(body['withClause']);
    if (w === undefined) return out;
    const recursive = w['recursive'] === true;
    for (const c of asList(w['ctes'])) {
      const u = unwrap(c);
      if (u?.[0] !== 'CommonTableExpr') continue;
      const name = str(u[1]['ctename']);
      const q = unwrap(u[1]['ctequery']);
      if (name === undefined) continue;
      const cols = strings(u[1]['aliascolnames']);
      const analyse = (): readonly Seg[] => {
        const segs = q === undefined ? undefined : this.statement(q[0], q[1], parent, out);
        return renameSegs(segs ?? [{ kind: 'run', l: L.opaque(), tables: [] }], cols);
      };
      if (recursive) {
        // a recursive CTE refers to itself: grow its lineage to a fixed point (opaque when it does not settle)
        out.set(name, [{ kind: 'run', l: new L(), tables: [] }]);
        let prev = '';
        let settled = false;
        for (let i = 0; i < 8; i++) {
          const segs = analyse();
          const sig = JSON.stringify(segs.map((s) => [s.kind, s.kind === 'column' ? s.name : '', s.l.freeze()]));
          out.set(name, segs);
          if (sig === prev) {
            settled = true;
            break;
          }
          prev = sig;
        }
        if (!settled) out.set(name, [{ kind: 'run', l: L.opaque(), tables: [] }]);
      } else out.set(name, analyse());
    }
    return out;
  }

  select(body: Node, parent: Scope | undefined, outerCtes: ReadonlyMap<string, readonly Seg[]>): Seg[] {
    const ctes = this.withCtes(body, parent, outerCtes);
    const op = str(body['op']);
    if (op !== undefined && op !== 'SETOP_NONE') {
      const l = asNode(body['larg']);
      const r = asNode(body['rarg']);
      const left = l === undefined ? [] : this.select(l, parent, ctes);
      const right = r === undefined ? [] : this.select(r, parent, ctes);
      // set operations carry no column identity: a table run's columns are any of its columns
      return zipSegs(left.map(anonymous), right.map(anonymous));
    }
    const values = asList(body['valuesLists']);
    if (values.length > 0) {
      const scope: Scope = { items: [], parent, ctes };
      const cols: L[] = [];
      for (const row of values) {
        const u = unwrap(row);
        const items = u?.[0] === 'List' ? asList(u[1]['items']) : [];
        items.forEach((e, i) => {
          (cols[i] ??= new L()).add(this.expr(e, scope));
        });
      }
      return cols.map((l, i) => ({ kind: 'column', name: `column${String(i + 1)}`, l }));
    }
    const scope: Scope = { items: [], parent, ctes };
    for (const f of asList(body['fromClause'])) this.fromItem(f, scope, scope.items);
    const out: Seg[] = [];
    for (const t of asList(body['targetList'])) {
      const u = unwrap(t);
      if (u?.[0] !== 'ResTarget') continue;
      const val = u[1]['val'];
      const star = this.starOf(val, scope);
      if (star !== undefined) {
        out.push(...star);
        continue;
      }
      out.push({ kind: 'column', name: str(u[1]['name']) ?? colname(val), l: this.expr(val, scope) });
    }
    // clauses that choose rows: read, not returned
    for (const k of ['whereClause', 'havingClause', 'groupClause', 'sortClause', 'distinctClause', 'windowClause', 'limitCount', 'limitOffset']) {
      this.read(body[k], scope);
    }
    const into = asNode(body['intoClause']);
    if (into !== undefined) return [];
    return out;
  }

  /** RETURNING of INSERT / UPDATE / DELETE / MERGE: columns of the target (and FROM / USING) */
  modify(key: string, body: Node, parent: Scope | undefined, outerCtes: ReadonlyMap<string, readonly Seg[]>): Seg[] | undefined {
    const ctes = this.withCtes(body, parent, outerCtes);
    const scope: Scope = { items: [], parent, ctes };
    const rel = asNode(body['relation']);
    if (rel !== undefined) this.rangeVar(rel, scope, scope.items);
    for (const k of ['fromClause', 'usingClause']) for (const f of asList(body[k])) this.fromItem(f, scope, scope.items);
    if (key === 'MergeStmt') {
      const src = body['sourceRelation'];
      if (src !== undefined) this.fromItem(src, scope, scope.items);
    }
    // what is written is read (a failing write may quote it)
    const sel = unwrap(body['selectStmt']);
    if (sel !== undefined) {
      for (const s of this.statement(sel[0], sel[1], parent, ctes) ?? []) this.reads.add(s.l);
    }
    for (const k of ['targetList', 'whereClause', 'mergeWhenClauses', 'joinCondition', 'onConflictClause']) this.read(body[k], scope);
    const returning = asNode(body['returningClause'])?.['exprs'] ?? body['returningList'];
    const list = asList(returning);
    if (list.length === 0) return undefined;
    const out: Seg[] = [];
    for (const t of list) {
      const u = unwrap(t);
      if (u?.[0] !== 'ResTarget') continue;
      const val = u[1]['val'];
      const star = this.starOf(val, scope);
      if (star !== undefined) out.push(...star);
      else out.push({ kind: 'column', name: str(u[1]['name']) ?? colname(val), l: this.expr(val, scope) });
    }
    return out;
  }

  /** Reads every column reference of a clause into `reads`. */
  read(v: unknown, scope: Scope): void {
    if (v === undefined) return;
    this.reads.add(this.expr(v, scope));
  }

  // ------------------------------------------------------------------ FROM

  rangeVar(rv: Node, scope: Scope, into: Item[]): void {
    const rel = str(rv['relname']);
    if (rel === undefined) return;
    const schema = str(rv['schemaname']);
    const alias = asNode(rv['alias']);
    const aliasName = str(alias?.['aliasname']) ?? rel;
    const cols = strings(alias?.['colnames']);
    const cte = schema === undefined ? lookupCte(scope, rel) : undefined;
    if (cte !== undefined) {
      into.push({ alias: aliasName, schema: undefined, segs: renameSegs(cte, cols), renamed: false });
      return;
    }
    const tables = this.tableNames(schema, rel);
    for (const t of tables) this.relations.add(t);
    const seg: Seg = { kind: 'run', l: new L(), tables };
    if (cols.length > 0) {
      // renamed columns: which column each name is is not in the tree; any name is any column
      const whole = L.of(...tables.map((t) => passthrough(`${t}.*`)));
      into.push({ alias: aliasName, schema, segs: [...cols.map((c): Seg => ({ kind: 'column', name: c, l: whole })), { kind: 'run', l: new L(), tables }], renamed: true });
      return;
    }
    into.push({ alias: aliasName, schema, segs: [seg], renamed: false });
  }

  fromItem(f: unknown, scope: Scope, into: Item[]): void {
    const u = unwrap(f);
    if (u === undefined) return;
    const [key, body] = u;
    const alias = asNode(body['alias']);
    const aliasName = str(alias?.['aliasname']);
    const cols = strings(alias?.['colnames']);
    switch (key) {
      case 'RangeVar':
        this.rangeVar(body, scope, into);
        return;
      case 'RangeSubselect': {
        const q = unwrap(body['subquery']);
        // LATERAL subqueries see the items before them
        const lateral = body['lateral'] === true;
        const parent: Scope = lateral ? { items: [...scope.items, ...into.filter((i) => !scope.items.includes(i))], parent: scope.parent, ctes: scope.ctes } : { items: [], parent: scope.parent, ctes: scope.ctes };
        const segs = q === undefined ? undefined : this.statement(q[0], q[1], lateral ? parent : scope.parent, scope.ctes);
        into.push({ alias: aliasName ?? '', schema: undefined, segs: renameSegs(segs ?? [{ kind: 'run', l: L.opaque(), tables: [] }], cols), renamed: false });
        return;
      }
      case 'JoinExpr': {
        const inner: Item[] = [];
        this.fromItem(body['larg'], scope, inner);
        this.fromItem(body['rarg'], { ...scope, items: [...scope.items, ...inner] }, inner);
        into.push(...inner);
        const joinScope: Scope = { items: [...scope.items, ...inner], parent: scope.parent, ctes: scope.ctes };
        this.read(body['quals'], joinScope);
        const merged = asList(body['usingClause']).length > 0 || body['isNatural'] === true;
        if (aliasName !== undefined || merged) {
          // USING / NATURAL merge columns: the width of `*` is not known from the tree
          const segs = inner.flatMap((i) => i.segs);
          const joined: readonly Seg[] = merged ? [mergeRun(segs)] : segs;
          if (aliasName !== undefined) into.push({ alias: aliasName, schema: undefined, segs: renameSegs(joined, cols), renamed: false });
        }
        if (merged || this.merged.has(inner)) this.merged.add(into);
        return;
      }
      case 'RangeFunction': {
        const lateralScope: Scope = { items: [...scope.items, ...into], parent: scope.parent, ctes: scope.ctes };
        const l = new L();
        for (const fn of asList(body['functions'])) {
          const parts = unwrap(fn);
          const items = parts?.[0] === 'List' ? asList(parts[1]['items']) : [];
          const call = items[0];
          l.add(this.expr(call, lateralScope));
        }
        const segs: Seg[] = cols.length > 0 ? cols.map((c): Seg => ({ kind: 'column', name: c, l })) : [{ kind: 'run', l, tables: [] }];
        const firstList = unwrap(asList(body['functions'])[0]);
        const first = unwrap(firstList === undefined ? undefined : asList(firstList[1]['items'])[0]);
        const fnames = first?.[0] === 'FuncCall' ? strings(first[1]['funcname']) : [];
        const fname = fnames[fnames.length - 1] ?? '';
        // a function's single column is named after the function (or the alias)
        into.push({ alias: aliasName ?? fname, schema: undefined, segs: cols.length > 0 ? segs : [{ kind: 'column', name: aliasName ?? fname, l }, ...segs], renamed: cols.length === 0 });
        return;
      }
      case 'RangeTableSample': {
        const rel = asNode(body['relation']);
        if (rel !== undefined) this.fromItem(rel, scope, into);
        return;
      }
      default: {
        // XMLTABLE, JSON_TABLE and anything else: every column comes from what it reads
        const lateralScope: Scope = { items: [...scope.items, ...into], parent: scope.parent, ctes: scope.ctes };
        const l = this.generic(body, lateralScope).derive();
        into.push({ alias: aliasName ?? '', schema: undefined, segs: [{ kind: 'run', l, tables: [] }], renamed: true });
      }
    }
  }

  // ------------------------------------------------------------------ column references

  /** `*` or `t.*` in a target list: the segments it expands to, or undefined for anything else. */
  starOf(val: unknown, scope: Scope): Seg[] | undefined {
    const u = unwrap(val);
    if (u?.[0] !== 'ColumnRef') return undefined;
    const fields = asList(u[1]['fields']);
    const last = unwrap(fields[fields.length - 1]);
    if (last?.[0] !== 'A_Star') return undefined;
    const names = strings(fields);
    if (names.length === 0) {
      const segs = scope.items.flatMap((i) => [...i.segs]);
      const merged = this.merged.has(scope.items);
      for (const s of segs) this.reads.add(s.l);
      // after a USING / NATURAL join the width of each item's part is not known
      return merged ? [mergeRun(segs)] : [...segs];
    }
    const item = this.findItem(scope, names);
    if (item === undefined) return [{ kind: 'run', l: L.opaque(), tables: [] }];
    return [...item.segs];
  }

  findItem(scope: Scope | undefined, qualifier: readonly string[]): Item | undefined {
    const rel = qualifier[qualifier.length - 1];
    const schema = qualifier.length >= 2 ? qualifier[qualifier.length - 2] : undefined;
    for (let s = scope; s !== undefined; s = s.parent) {
      const hit = s.items.find((i) => i.alias === rel && (schema === undefined || i.schema === schema));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  column(fields: readonly unknown[], scope: Scope): L {
    const names = strings(fields);
    if (names.length !== fields.length || names.length === 0) return L.opaque();
    const col = names[names.length - 1] ?? '';
    if (names.length >= 2) {
      const item = this.findItem(scope, names.slice(0, -1));
      if (item !== undefined) return resolveIn(item, col);
      // `t.col` where t is not in scope: a composite field (`(row).f`) or an error: any column of any item
      if (names.length === 2) {
        const whole = this.findItem(scope, [names[0] ?? '']);
        if (whole !== undefined) return wholeRow(whole);
      }
      return L.opaque();
    }
    // an unqualified name: every item that may have the column, here and in the outer scopes
    // (a correlated reference); a whole-row reference when it names an item
    const out = new L();
    let found = false;
    for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
      let definite = s.items.length > 0;
      for (const item of s.items) {
        const named = item.segs.some((g) => g.kind === 'column' && g.name === col);
        const runs = item.segs.some((g) => g.kind === 'run');
        if (named || runs || item.renamed) {
          out.add(resolveIn(item, col));
          found = true;
        }
        if (runs || item.renamed) definite = false;
        if (item.alias === col) {
          out.add(wholeRow(item));
          found = true;
        }
      }
      if (found && definite) break;
    }
    return found ? out : L.opaque();
  }

  // ------------------------------------------------------------------ expressions

  expr(v: unknown, scope: Scope): L {
    if (Array.isArray(v)) return L.of(...v.map((x) => this.expr(x, scope)));
    const u = unwrap(v);
    if (u === undefined) return isNode(v) ? this.generic(v, scope) : new L();
    const [key, b] = u;
    switch (key) {
      case 'A_Const':
      case 'ParamRef':
      case 'SQLValueFunction':
      case 'SetToDefault':
      case 'GroupingFunc':
      case 'A_Star':
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
        return new L();
      case 'ColumnRef':
        return this.column(asList(b['fields']), scope);
      case 'CollateClause':
        return this.expr(b['arg'], scope);
      case 'TypeCast': {
        const names = strings(asNode(b['typeName'])?.['names']);
        const type = names[names.length - 1] ?? '';
        const schema = names.length >= 2 ? names[names.length - 2] : undefined;
        const arrayBounds = asList(asNode(b['typeName'])?.['arrayBounds']).length > 0;
        const l = this.expr(b['arg'], scope).derive();
        if ((schema !== undefined && schema !== 'pg_catalog') || (!BUILTIN_TYPES.has(type) && !arrayBounds && !EXTRA_TYPES.has(type))) l.o = true;
        if (arrayBounds && !BUILTIN_TYPES.has(type) && !EXTRA_TYPES.has(type)) l.o = true;
        return l;
      }
      case 'A_Expr': {
        const kind = str(b['kind']);
        const l = this.expr(b['lexpr'], scope);
        const r = this.expr(b['rexpr'], scope);
        if (kind === 'AEXPR_NULLIF') return l.add(r.derive());
        const names = strings(b['name']);
        const op = names[names.length - 1] ?? '';
        const schema = names.length >= 2 ? names[names.length - 2] : undefined;
        const out = L.of(l, r).derive();
        if ((kind === 'AEXPR_OP' || kind === 'AEXPR_OP_ANY' || kind === 'AEXPR_OP_ALL') && ((schema !== undefined && schema !== 'pg_catalog') || !BUILTIN_OPERATORS.has(op))) out.o = true;
        return out;
      }
      case 'BoolExpr':
      case 'NullTest':
      case 'BooleanTest':
        return this.generic(b, scope).derive();
      case 'CaseExpr': {
        const out = new L();
        // the conditions choose the value shown: derived; the results pass through
        out.add(this.expr(b['arg'], scope).derive());
        for (const w of asList(b['args'])) {
          const cw = unwrap(w);
          if (cw?.[0] !== 'CaseWhen') continue;
          out.add(this.expr(cw[1]['expr'], scope).derive());
          out.add(this.expr(cw[1]['result'], scope));
        }
        out.add(this.expr(b['defresult'], scope));
        return out;
      }
      case 'CoalesceExpr':
      case 'MinMaxExpr':
        return this.expr(b['args'], scope);
      case 'FuncCall':
        return this.call(b, scope);
      case 'SubLink': {
        const type = str(b['subLinkType']);
        const q = unwrap(b['subselect']);
        const segs = q === undefined ? undefined : this.statement(q[0], q[1], scope, scope.ctes);
        const test = this.expr(b['testexpr'], scope).derive();
        const out = segs === undefined ? L.opaque() : L.of(...segs.map(anonymousL));
        if (type === 'EXISTS_SUBLINK') {
          this.reads.add(out);
          return new L();
        }
        if (type === 'EXPR_SUBLINK') return out.add(test);
        return out.derive().add(test);
      }
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt': {
        const segs = this.statement(key, b, scope, scope.ctes);
        return segs === undefined ? new L() : L.of(...segs.map(anonymousL)).derive();
      }
      case 'A_Indirection':
        return L.of(this.expr(b['arg'], scope), this.generic({ i: b['indirection'] }, scope)).derive();
      default:
        // constructors (ROW, ARRAY, JSON, XML), subscripts, JSON functions, anything else:
        // computed from every column reference inside
        return this.generic(b, scope).derive();
    }
  }

  /** Every column reference under a node, through its child nodes (each analysed as an expression). */
  generic(body: Node, scope: Scope): L {
    const out = new L();
    for (const [k, child] of Object.entries(body)) {
      if (k === 'location') continue;
      if (Array.isArray(child)) {
        for (const item of child) out.add(unwrap(item) !== undefined ? this.expr(item, scope) : isNode(item) ? this.generic(item, scope) : new L());
        continue;
      }
      if (!isNode(child)) continue;
      out.add(unwrap(child) !== undefined ? this.expr(child, scope) : this.generic(child, scope));
    }
    return out;
  }

  call(b: Node, scope: Scope): L {
    const names = strings(b['funcname']);
    const name = names[names.length - 1] ?? '';
    const schema = names.length >= 2 ? names[names.length - 2] : undefined;
    const builtin = names.length <= 2 && (schema === undefined || schema === 'pg_catalog');
    const args = asList(b['args']);
    // FILTER, OVER (PARTITION BY / ORDER BY) choose rows: read, not in the value
    this.read(b['agg_filter'], scope);
    this.read(b['over'], scope);
    const order = asList(b['agg_order']);
    const within = b['agg_within_group'] === true;
    if (!within) this.read(order, scope);
    if (!builtin) {
      this.read(args, scope);
      return L.opaque();
    }
    if (NOTHING.has(name)) {
      this.read(args, scope);
      return new L();
    }
    const pass = PASSING.get(name);
    if (pass !== undefined) {
      const out = new L();
      const values = pass === 0 ? order.map((o) => asNode(unwrap(o)?.[1])?.['node']) : args.slice(0, pass);
      for (const a of values) out.add(this.expr(a, scope));
      for (const a of pass === 0 ? [] : args.slice(pass)) out.add(this.expr(a, scope).derive());
      return out;
    }
    if (!DERIVING.has(name)) {
      this.read(args, scope);
      return L.opaque();
    }
    const out = L.of(...args.map((a) => this.expr(a, scope))).derive();
    // a setting's value (SHOW, current_setting) and a NOTIFY payload are read back unmasked
    if (name === 'set_config' || name === 'pg_notify') this.writes.add(this.expr(args[1], scope));
    if (within) out.add(L.of(...order.map((o) => this.expr(asNode(unwrap(o)?.[1])?.['node'], scope))).derive());
    return out;
  }
}

/** Types that are not in classify's list but are plain built-ins (aliases the parser keeps). */
const EXTRA_TYPES = new Set(['float', 'double precision', 'character', 'character varying', 'timestamp with time zone', 'time with time zone', 'varbit', 'bit varying', 'jsonpath', 'regnamespace', 'char']);

function passthrough(column: string): L {
  const l = new L();
  l.p.add(column);
  return l;
}

/** A whole-row reference: derived from every column of the item. */
function wholeRow(item: Item): L {
  return L.of(...item.segs.map(anonymousL)).derive();
}

/** A run or column as it is when its column identity is lost (set operations, scalar subqueries). */
function anonymousL(s: Seg): L {
  if (s.kind === 'column') return s.l;
  return L.of(s.l, ...s.tables.map((t) => passthrough(`${t}.*`)));
}

/** Segments of unknown widths as one run: each of its columns may be any of theirs. */
function mergeRun(segs: readonly Seg[]): Seg {
  return { kind: 'run', l: L.of(...segs.map((s) => s.l)), tables: [...new Set(segs.flatMap((s) => (s.kind === 'run' ? s.tables : [])))] };
}

function anonymous(s: Seg): Seg {
  return s.kind === 'column' ? s : { kind: 'run', l: anonymousL(s), tables: [] };
}

/** The lineage of column `col` of an item. */
function resolveIn(item: Item, col: string): L {
  if (item.renamed && !item.segs.some((g) => g.kind === 'column' && g.name === col)) {
    return L.of(...item.segs.map(anonymousL));
  }
  const out = new L();
  for (const g of item.segs) {
    if (g.kind === 'column') {
      if (g.name === col) out.add(g.l);
    } else {
      out.add(g.l);
      for (const t of g.tables) out.p.add(`${t}.${col}`);
    }
  }
  return out;
}

/** Columns renamed by an alias list: the first n columns take the names (runs make names unknown). */
function renameSegs(segs: readonly Seg[], names: readonly string[]): Seg[] {
  if (names.length === 0) return [...segs];
  if (segs.every((s) => s.kind === 'column')) {
    return segs.map((s, i) => (i < names.length ? { ...s, name: names[i] ?? s.name } : s));
  }
  const all = L.of(...segs.map(anonymousL));
  return [...names.map((n): Seg => ({ kind: 'column', name: n, l: all })), { kind: 'run', l: all, tables: [] }];
}

/** The outputs of a set operation: column by column when both sides are plain columns, else one run. */
function zipSegs(a: readonly Seg[], b: readonly Seg[]): Seg[] {
  if (a.length === b.length && a.every((s) => s.kind === 'column') && b.every((s) => s.kind === 'column')) {
    return a.map((s, i) => ({ kind: 'column', name: s.name, l: L.of(s.l, (b[i] as Seg).l) }));
  }
  return [{ kind: 'run', l: L.of(...a.map(anonymousL), ...b.map(anonymousL)), tables: [] }];
}

function lookupCte(scope: Scope, name: string): readonly Seg[] | undefined {
  return scope.ctes.get(name);
}

/** The name PostgreSQL gives an output column (FigureColname, roughly). */
function colname(v: unknown): string {
  const u = unwrap(v);
  if (u === undefined) return '?column?';
  const [k, b] = u;
  if (k === 'ColumnRef') {
    const n = strings(b['fields']);
    return n[n.length - 1] ?? '?column?';
  }
  if (k === 'FuncCall') {
    const n = strings(b['funcname']);
    return n[n.length - 1] ?? '?column?';
  }
  if (k === 'TypeCast' || k === 'CollateClause') {
    const inner = colname(b['arg']);
    if (inner !== '?column?' || k === 'CollateClause') return inner;
    const n = strings(asNode(b['typeName'])?.['names']);
    return n[n.length - 1] ?? '?column?';
  }
  if (k === 'CoalesceExpr') return 'coalesce';
  if (k === 'MinMaxExpr') return str(b['op']) === 'IS_GREATEST' ? 'greatest' : 'least';
  if (k === 'A_Expr' && str(b['kind']) === 'AEXPR_NULLIF') return 'nullif';
  if (k === 'CaseExpr') return 'case';
  if (k === 'RowExpr') return 'row';
  if (k === 'A_ArrayExpr') return 'array';
  return '?column?';
}

// ---------------------------------------------------------------------------------------------
// Statements of a query

function freezeSegs(segs: readonly Seg[]): OutputSegment[] {
  return segs.map((s) => (s.kind === 'column' ? { kind: 'column', name: s.name, lineage: s.l.freeze() } : { kind: 'run', lineage: s.l.freeze(), tables: [...s.tables] }));
}

/** Statements that return rows whose columns Airlock does not analyse. */
const OPAQUE_ROWS = new Set(['FetchStmt', 'ExecuteStmt', 'CallStmt', 'DoStmt']);

/** The lineage of one parsed statement. */
export function statementLineage(stmt: unknown, searchPath: readonly string[] = ['public']): StatementLineage {
  const w = new Walker(searchPath);
  const u = unwrap(stmt);
  if (u === undefined) return { outputs: undefined, opaqueRows: true, relations: [], reads: OPAQUE_LINEAGE, writes: NO_LINEAGE };
  let [key, body] = u;
  // EXPLAIN shows a plan, not values; DECLARE's rows come with FETCH; COPY (query) TO STDOUT sends the query's rows
  if (key === 'CopyStmt') {
    const q = unwrap(body['query']);
    const rel = asNode(body['relation']);
    if (q !== undefined) [key, body] = q;
    else if (rel !== undefined) {
      const tables = w.tableNames(str(rel['schemaname']), str(rel['relname']) ?? '');
      for (const t of tables) w.relations.add(t);
      const attlist = strings(body['attlist']);
      const outputs: OutputSegment[] =
        attlist.length > 0
          ? attlist.map((c) => ({ kind: 'column', name: c, lineage: L.of(...tables.map((t) => passthrough(`${t}.${c}`))).freeze() }))
          : [{ kind: 'run', lineage: NO_LINEAGE, tables }];
      return { outputs, opaqueRows: false, relations: [...w.relations].sort(), reads: NO_LINEAGE, writes: NO_LINEAGE };
    }
  }
  if (key === 'DeclareCursorStmt') {
    const q = unwrap(body['query']);
    if (q !== undefined) w.statement(q[0], q[1], undefined, new Map());
    return { outputs: undefined, opaqueRows: false, relations: [...w.relations].sort(), reads: w.reads.freeze(), writes: w.writes.freeze() };
  }
  if (key === 'ExplainStmt') {
    const q = unwrap(body['query']);
    if (q !== undefined) w.statement(q[0], q[1], undefined, new Map());
    return { outputs: [{ kind: 'run', lineage: NO_LINEAGE, tables: [] }], opaqueRows: false, relations: [...w.relations].sort(), reads: w.reads.freeze(), writes: w.writes.freeze() };
  }
  if (key === 'CreateTableAsStmt') {
    const q = unwrap(body['query']);
    if (q !== undefined) for (const s of w.statement(q[0], q[1], undefined, new Map()) ?? []) w.reads.add(s.l);
    return { outputs: undefined, opaqueRows: q?.[0] === 'ExecuteStmt', relations: [...w.relations].sort(), reads: w.reads.freeze(), writes: w.writes.freeze() };
  }
  if (key === 'VariableShowStmt') return { outputs: [{ kind: 'run', lineage: NO_LINEAGE, tables: [] }], opaqueRows: false, relations: [], reads: NO_LINEAGE, writes: NO_LINEAGE };
  const segs = w.statement(key, body, undefined, new Map());
  if (segs === undefined) {
    // statements with rows of their own kind (SHOW, FETCH, EXECUTE, CALL, …)
    return { outputs: undefined, opaqueRows: OPAQUE_ROWS.has(key), relations: [...w.relations].sort(), reads: OPAQUE_ROWS.has(key) ? OPAQUE_LINEAGE : w.reads.freeze(), writes: w.writes.freeze() };
  }
  for (const s of segs) w.reads.add(anonymousL(s));
  return { outputs: freezeSegs(segs), opaqueRows: false, relations: [...w.relations].sort(), reads: w.reads.freeze(), writes: w.writes.freeze() };
}

export interface LineageOptions {
  readonly searchPath?: readonly string[];
}

/** The lineage of every statement of a query text. Never throws: text that does not parse is opaque. */
export function analyzeLineage(text: string, options: LineageOptions = {}): QueryLineage {
  const searchPath = options.searchPath ?? ['public'];
  let stmts: unknown[];
  try {
    stmts = (parseSql(text) as { stmts?: unknown[] }).stmts ?? [];
  } catch {
    return { statements: [{ outputs: undefined, opaqueRows: true, relations: [], reads: OPAQUE_LINEAGE, writes: NO_LINEAGE }], key: 'unparsable' };
  }
  const statements = stmts.map((raw) => statementLineage(asNode(raw)?.['stmt'], searchPath));
  return { statements, key: JSON.stringify(statements) };
}

/**
 * The lineage of each of `count` result columns from a statement's output segments: columns are
 * matched from the front, then from the back; a run of unknown width takes what is left (when
 * several runs share it, each of its columns may come from any of them).
 */
export function alignOutputs(outputs: readonly OutputSegment[] | undefined, count: number): { readonly lineage: ColumnLineage; readonly tables: readonly string[] }[] {
  if (outputs === undefined) return Array.from({ length: count }, () => ({ lineage: OPAQUE_LINEAGE, tables: [] }));
  const out = new Array<{ lineage: ColumnLineage; tables: readonly string[] }>(count);
  let front = 0;
  while (front < outputs.length && front < count && outputs[front]?.kind === 'column') {
    out[front] = { lineage: (outputs[front] as OutputSegment).lineage, tables: [] };
    front++;
  }
  let back = 0;
  while (back < outputs.length - front && back < count - front && outputs[outputs.length - 1 - back]?.kind === 'column') {
    out[count - 1 - back] = { lineage: (outputs[outputs.length - 1 - back] as OutputSegment).lineage, tables: [] };
    back++;
  }
  const middle = outputs.slice(front, outputs.length - back);
  if (middle.length === 0) {
    // every segment placed: a count that does not match means the layout is not the one analysed
    if (front + back !== count) return Array.from({ length: count }, () => ({ lineage: OPAQUE_LINEAGE, tables: [] }));
    return out;
  }
  const runs = middle.filter((s) => s.kind === 'run');
  let lineage: ColumnLineage;
  let tables: string[];
  if (middle.length === 1 && runs.length === 1) {
    lineage = (middle[0] as OutputSegment).lineage;
    tables = [...((middle[0] as Extract<OutputSegment, { kind: 'run' }>).tables)];
  } else {
    // several pieces of unknown width: each column may be any of them
    const l = new L();
    tables = [];
    for (const s of middle) {
      l.add(fromFrozen(s.lineage));
      if (s.kind === 'run') tables.push(...s.tables);
    }
    lineage = l.freeze();
    tables = [...new Set(tables)];
  }
  for (let i = front; i < count - back; i++) out[i] = { lineage, tables };
  return out;
}

function fromFrozen(c: ColumnLineage): L {
  const l = new L();
  for (const x of c.passthrough) l.p.add(x);
  for (const x of c.derived) l.d.add(x);
  l.o = c.opaque;
  return l;
}

const CACHE_LIMIT = 4096;

/**
 * Lineage decided once per statement shape (texts that differ only in literal values have the
 * same lineage), per search path.
 */
export class LineageCache {
  readonly #searchPath: readonly string[];
  readonly #byKey = new Map<string, QueryLineage>();

  constructor(options: LineageOptions = {}) {
    this.#searchPath = options.searchPath ?? ['public'];
  }

  of(text: string): QueryLineage {
    const key = statementShape(text) ?? text;
    let l = this.#byKey.get(key);
    if (l === undefined) {
      l = analyzeLineage(text, { searchPath: this.#searchPath });
      if (this.#byKey.size >= CACHE_LIMIT) this.#byKey.clear();
      this.#byKey.set(key, l);
    }
    return l;
  }
}
