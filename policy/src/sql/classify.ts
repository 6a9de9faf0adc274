/**
 * SQL statement classification over the real PostgreSQL parse tree (libpg-query). Pure: the
 * parser is a WASM build of PostgreSQL's own grammar, loaded once by `loadSqlParser()` (parser.ts).
 *
 * `read` and `session` are allowlists: a statement is in them only when every node that could
 * have an effect is known. Anything unrecognised is `opaque`; unparsable text is `opaque`.
 */
import type { SqlClass } from '@airlock/api';
import { classifyFunction } from './functions.ts';
import { parseSql, scanSql } from './parser.ts';

export interface StatementInfo {
  /** The statement's own text (a slice of the query). */
  readonly text: string;
  readonly classes: ReadonlySet<SqlClass>;
  /** schema.table of every relation the statement touches (unqualified names as public). */
  readonly tables: readonly string[];
  /** schema.function of every function the statement calls. */
  readonly functions: readonly string[];
  /** false when the statement could not be analysed (parse error): rules must assume any table. */
  readonly known: boolean;
  /** true when the classes depend on a literal value (e.g. set_config('role', …)). */
  readonly literalSensitive: boolean;
  /** the parser's message for text that does not parse */
  readonly parseError?: string;
  /**
   * The settings this statement may change that decide how the server splits statement text
   * (client_encoding, standard_conforming_strings, backslash_quote); `*` when it may change
   * any setting (set_config with a computed name, UPDATE pg_settings). Such a statement never
   * runs: the sidecar reads statements as UTF-8 with standard strings, and so must the server.
   */
  readonly lexing: readonly string[];
  /** COPY … TO STDOUT in the binary format: values a masker cannot read */
  readonly binaryCopyOut?: true;
  /** COPY … TO STDOUT: what the sidecar needs to apply column rules to its rows */
  readonly copyOut?: CopyOut;
}

/**
 * The layout of a COPY … TO STDOUT. `probe` is a query with the same result columns (the
 * table's columns, or the COPY's own query), for the sidecar to describe before the COPY runs;
 * `plain` is false when options change the text or csv rendering (delimiter, null, quote, …).
 */
export interface CopyOut {
  readonly format: 'text' | 'csv' | 'binary';
  readonly header: boolean;
  readonly plain: boolean;
  readonly probe: string | undefined;
}

type Node = Readonly<Record<string, unknown>>;

function isNode(v: unknown): v is Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function field(node: Node, key: string): unknown {
  return node[key];
}

function asNode(v: unknown): Node | undefined {
  return isNode(v) ? v : undefined;
}

function asList(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

/** The single key of a wrapped node ({"SelectStmt": {...}}) and its body. */
function unwrap(v: unknown): [string, Node] | undefined {
  if (!isNode(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const key = keys[0] ?? '';
  const body = asNode(v[key]);
  return body === undefined ? undefined : [key, body];
}

function strings(list: unknown): string[] {
  return asList(list).flatMap((item) => {
    const u = unwrap(item);
    if (u?.[0] !== 'String') return [];
    const s = field(u[1], 'sval');
    return typeof s === 'string' ? [s] : [];
  });
}

function constString(v: unknown): string | undefined {
  const u = unwrap(v);
  if (u?.[0] !== 'A_Const') return undefined;
  const s = asNode(field(u[1], 'sval'));
  const val = s === undefined ? undefined : field(s, 'sval');
  return typeof val === 'string' ? val : undefined;
}

/** Statement kinds whose only class is fixed, by parse-node name. */
const FIXED: Readonly<Record<string, readonly SqlClass[]>> = {
  TransactionStmt: ['session'],
  VariableShowStmt: ['session'],
  DiscardStmt: ['session'],
  DeallocateStmt: ['session'],
  ListenStmt: ['session'],
  UnlistenStmt: ['session'],
  FetchStmt: ['session'],
  ClosePortalStmt: ['session'],
  ConstraintsSetStmt: ['session'],
  NotifyStmt: ['write'],
  LockStmt: ['write'],
  RefreshMatViewStmt: ['write'],
  TruncateStmt: ['write', 'destructive'],
  DropStmt: ['ddl', 'destructive'],
  DropOwnedStmt: ['destructive', 'privilege'],
  DropdbStmt: ['admin', 'destructive'],
  DropTableSpaceStmt: ['admin', 'destructive'],
  DropRoleStmt: ['privilege', 'destructive'],
  DropSubscriptionStmt: ['admin', 'destructive'],
  DropUserMappingStmt: ['privilege', 'destructive'],
  RenameStmt: ['ddl', 'destructive'],
  GrantStmt: ['privilege'],
  GrantRoleStmt: ['privilege'],
  AlterDefaultPrivilegesStmt: ['privilege'],
  CreateRoleStmt: ['privilege'],
  AlterRoleStmt: ['privilege'],
  AlterRoleSetStmt: ['privilege'],
  ReassignOwnedStmt: ['privilege'],
  AlterOwnerStmt: ['privilege', 'ddl'],
  CreateUserMappingStmt: ['privilege'],
  AlterUserMappingStmt: ['privilege'],
  CreatePolicyStmt: ['privilege', 'ddl'],
  AlterPolicyStmt: ['privilege', 'ddl'],
  AlterSystemStmt: ['admin'],
  CreateExtensionStmt: ['admin', 'ddl'],
  AlterExtensionStmt: ['admin', 'ddl'],
  AlterExtensionContentsStmt: ['admin', 'ddl'],
  LoadStmt: ['admin'],
  VacuumStmt: ['admin'],
  ReindexStmt: ['admin'],
  ClusterStmt: ['admin'],
  CheckPointStmt: ['admin'],
  CreatedbStmt: ['admin'],
  AlterDatabaseStmt: ['admin'],
  AlterDatabaseSetStmt: ['admin'],
  CreateTableSpaceStmt: ['admin'],
  CreateSubscriptionStmt: ['admin'],
  AlterSubscriptionStmt: ['admin'],
  CreatePublicationStmt: ['admin', 'ddl'],
  AlterPublicationStmt: ['admin', 'ddl'],
  CreateEventTrigStmt: ['admin', 'ddl'],
  CreateFdwStmt: ['admin', 'ddl'],
  CreateForeignServerStmt: ['admin', 'ddl'],
  ImportForeignSchemaStmt: ['ddl'],
  CreateForeignTableStmt: ['ddl'],
  CreateStmt: ['ddl'],
  IndexStmt: ['ddl'],
  ViewStmt: ['ddl'],
  CreateSchemaStmt: ['ddl'],
  CreateSeqStmt: ['ddl'],
  AlterSeqStmt: ['ddl'],
  CommentStmt: ['ddl'],
  SecLabelStmt: ['ddl'],
  RuleStmt: ['ddl'],
  CreateTrigStmt: ['ddl'],
  CompositeTypeStmt: ['ddl'],
  CreateEnumStmt: ['ddl'],
  AlterEnumStmt: ['ddl'],
  CreateDomainStmt: ['ddl'],
  AlterDomainStmt: ['ddl'],
  DefineStmt: ['ddl'],
  AlterObjectSchemaStmt: ['ddl'],
  CreateStatsStmt: ['ddl'],
  CreateCastStmt: ['ddl', 'opaque'],
  CreateOpClassStmt: ['ddl'],
  CreateConversionStmt: ['ddl'],
  AlterTSConfigurationStmt: ['ddl'],
  AlterTSDictionaryStmt: ['ddl'],
  CreateFunctionStmt: ['ddl', 'opaque'],
  AlterFunctionStmt: ['ddl', 'opaque'],
  CreatePLangStmt: ['ddl', 'admin'],
  CreateTransformStmt: ['ddl', 'opaque'],
  DoStmt: ['opaque'],
  CallStmt: ['opaque'],
  ExecuteStmt: ['opaque'],
};

/** Settings a plain SET may not change without review: identity, search path, replication. */
const PRIVILEGE_SETTINGS = new Set(['role', 'session_authorization']);
const OPAQUE_SETTINGS = new Set(['search_path']);
/**
 * Settings that change how the server splits statement text into tokens: with another client
 * encoding a byte read here as a quote or a backslash may belong to a character there, and
 * without standard strings a backslash escapes a quote. The sidecar pins them at startup and no
 * statement may change them (see `lexingSetting`).
 */
const LEXING_SETTINGS: ReadonlySet<string> = new Set(['client_encoding', 'standard_conforming_strings', 'backslash_quote']);

/** The lexing setting named `name` (case-insensitive; `names` is SET NAMES), or undefined. */
export function lexingSetting(name: string): string | undefined {
  const n = name.toLowerCase();
  return LEXING_SETTINGS.has(n) ? n : undefined;
}

const ADMIN_SETTINGS = new Set([
  ...LEXING_SETTINGS,
  'escape_string_warning',
  'session_replication_role',
  'allow_system_table_mods',
  'lo_compat_privileges',
  'log_statement',
  'log_min_duration_statement',
  'default_transaction_read_only',
  'transaction_read_only',
  'zero_damaged_pages',
  'ignore_system_indexes',
  'local_preload_libraries',
  'session_preload_libraries',
  'dynamic_library_path',
]);

/** The class of a statement that changes setting `name` (SET, set_config, a startup parameter). */
export function settingClass(name: string): SqlClass {
  const n = name.toLowerCase();
  if (PRIVILEGE_SETTINGS.has(n)) return 'privilege';
  if (OPAQUE_SETTINGS.has(n)) return 'opaque';
  if (ADMIN_SETTINGS.has(n)) return 'admin';
  return 'session';
}

/** Unqualified names resolve to public unless the session says otherwise. */
const DEFAULT_SEARCH_PATH: readonly string[] = ['public'];

export interface ClassifyOptions {
  /** the session's search_path, as schema names in order (default: public) */
  readonly searchPath?: readonly string[];
}

/** Collects what one statement does while walking its tree. */
class Collector {
  readonly classes = new Set<SqlClass>();
  readonly tables = new Set<string>();
  readonly functions = new Set<string>();
  readonly cteNames = new Set<string>();
  /** classes contributed by function calls, operators and casts (not by statement kinds) */
  readonly callClasses = new Set<SqlClass>();
  binaryCopyOut = false;
  copyOut: CopyOut | undefined;
  /** lexing settings the statement may change (`*`: any setting) */
  readonly lexing = new Set<string>();
  literalSensitive = false;

  /** A setting the statement changes (or resets); `undefined`: a name known only at run time. */
  setting(name: string | undefined): void {
    if (name === undefined) {
      this.lexing.add('*');
      return;
    }
    const l = lexingSetting(name);
    if (l !== undefined) this.lexing.add(l);
  }

  call(cls: SqlClass): void {
    this.classes.add(cls);
    if (cls !== 'read' && cls !== 'session') this.callClasses.add(cls);
  }

  add(...classes: readonly SqlClass[]): void {
    for (const c of classes) this.classes.add(c);
  }

  /** the schemas an unqualified name may resolve to (the session's search_path) */
  readonly searchPath: readonly string[];

  constructor(searchPath: readonly string[] = DEFAULT_SEARCH_PATH) {
    this.searchPath = searchPath;
  }

  relation(rangeVar: Node): void {
    const rel = field(rangeVar, 'relname');
    if (typeof rel !== 'string') return;
    const schema = field(rangeVar, 'schemaname');
    if (typeof schema !== 'string' && this.cteNames.has(rel)) return;
    this.table(typeof schema === 'string' ? schema : undefined, rel);
  }

  /**
   * A table by name. pg_catalog is searched first: an unqualified pg_* name is the catalog's
   * relation. Any other unqualified name may be in any schema of the search path: it counts as
   * each of them (every one must be allowed, any one may stop it).
   */
  table(schema: string | undefined, rel: string): void {
    if (schema !== undefined) this.tables.add(`${schema}.${rel}`);
    else if (rel.startsWith('pg_')) this.tables.add(`pg_catalog.${rel}`);
    else for (const ns of this.searchPath) this.tables.add(`${ns}.${rel}`);
  }
}

/** A WHERE that does not depend on the row: no column reference outside a subquery. */
function isConstantPredicate(v: unknown): boolean {
  return !referencesColumn(v);
}

function referencesColumn(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(referencesColumn);
  if (!isNode(v)) return false;
  for (const [key, child] of Object.entries(v)) {
    if (key === 'ColumnRef') return true;
    if (key === 'SubLink') {
      // The subquery's own columns do not tie the predicate to the row; only its test expression does.
      if (isNode(child) && referencesColumn(child['testexpr'])) return true;
      continue;
    }
    if (referencesColumn(child)) return true;
  }
  return false;
}

/** A predicate true for every row: constant, `x = x`, or an OR with such a branch. */
function isTautology(v: unknown, c: Collector): boolean {
  if (isConstantPredicate(v)) return true;
  const u = unwrap(v);
  if (u === undefined) return false;
  const [key, body] = u;
  if (key === 'BoolExpr' && field(body, 'boolop') === 'OR_EXPR') return asList(field(body, 'args')).some((a) => isTautology(a, c));
  if (key === 'BoolExpr' && field(body, 'boolop') === 'AND_EXPR') return asList(field(body, 'args')).every((a) => isTautology(a, c));
  if (key === 'A_Expr' && field(body, 'kind') === 'AEXPR_OP' && strings(field(body, 'name')).join('.') === '=') {
    const l = field(body, 'lexpr');
    const r = field(body, 'rexpr');
    // When both sides have the same structure but for literal values, the answer depends on them.
    if (JSON.stringify(strip(l, true)) === JSON.stringify(strip(r, true))) c.literalSensitive = true;
    return JSON.stringify(strip(l, false)) === JSON.stringify(strip(r, false));
  }
  return false;
}

/** The tree without locations (and, with `values`, without the values of constants). */
function strip(v: unknown, values: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => strip(x, values));
  if (!isNode(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k === 'location') continue;
    out[k] = values && k === 'A_Const' ? 'const' : strip(val, values);
  }
  return out;
}

function writesCatalog(stmt: Node, c: Collector): boolean {
  const rel = asNode(field(stmt, 'relation'));
  if (rel === undefined) return false;
  const name = field(rel, 'relname');
  const schema = field(rel, 'schemaname');
  const catalog = schema === 'pg_catalog' || (schema === undefined && typeof name === 'string' && name.startsWith('pg_'));
  // UPDATE pg_settings is set_config of whatever rows it reaches
  if (catalog && name === 'pg_settings') c.setting(undefined);
  return catalog;
}

/** SET TRANSACTION / SESSION CHARACTERISTICS / BEGIN … READ WRITE: leaves a read-only default. */
function readWrite(options: unknown): boolean {
  return asList(options).some((o) => {
    const u = unwrap(o);
    if (u?.[0] !== 'DefElem' || field(u[1], 'defname') !== 'transaction_read_only') return false;
    const arg = unwrap(field(u[1], 'arg'));
    const ival = arg?.[0] === 'A_Const' ? asNode(field(arg[1], 'ival')) : undefined;
    return ival === undefined || field(ival, 'ival') !== 1;
  });
}

function hasAnalyze(options: unknown, c: Collector): boolean {
  return asList(options).some((o) => {
    const u = unwrap(o);
    if (u?.[0] !== 'DefElem' || field(u[1], 'defname') !== 'analyze') return false;
    const arg = field(u[1], 'arg');
    if (arg === undefined) return true;
    const b = unwrap(arg);
    const str = b?.[0] === 'String' ? field(b[1], 'sval') : undefined;
    const s = typeof str === 'string' ? str : constString(arg);
    if (s !== undefined) c.literalSensitive = true;
    // EXPLAIN (ANALYZE false) does not execute; anything else does.
    if (s !== undefined) return !['false', 'off', '0', 'no'].includes(s.toLowerCase());
    if (b?.[0] === 'A_Const') {
      const bool = asNode(field(b[1], 'boolval'));
      return bool === undefined || field(bool, 'boolval') === true;
    }
    return true;
  });
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The text between the parentheses of `COPY ( query ) TO …`, found with PostgreSQL's own scanner. */
function copyQueryText(text: string): string | undefined {
  let tokens;
  try {
    tokens = scanSql(text).tokens.filter((t) => !t.tokenName.includes('COMMENT'));
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(text, 'utf8');
  const open = tokens[1];
  if (tokens[0]?.text.toLowerCase() !== 'copy' || open?.text !== '(') return undefined;
  let depth = 0;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === undefined) break;
    if (t.text === '(') depth++;
    if (t.text === ')' && --depth === 0) return bytes.subarray(open.end, t.start).toString('utf8');
  }
  return undefined;
}

/** How a COPY … TO STDOUT renders its rows, and a query with its result columns. */
function copyOutLayout(body: Node): CopyOut {
  let format: CopyOut['format'] = 'text';
  let header = false;
  let plain = true;
  for (const o of asList(field(body, 'options'))) {
    const u = unwrap(o);
    if (u?.[0] !== 'DefElem') {
      plain = false;
      continue;
    }
    const name = field(u[1], 'defname');
    const arg = unwrap(field(u[1], 'arg'));
    const v = arg?.[0] === 'String' ? field(arg[1], 'sval') : arg?.[0] === 'Boolean' ? (field(arg[1], 'boolval') === true ? 'true' : 'false') : undefined;
    if (name === 'format') {
      const f = typeof v === 'string' ? v.toLowerCase() : 'binary';
      format = f === 'text' || f === 'csv' ? f : 'binary';
    } else if (name === 'header') {
      header = field(u[1], 'arg') === undefined || (typeof v === 'string' && ['true', 'on', '1', 'yes'].includes(v.toLowerCase()));
      if (field(u[1], 'arg') !== undefined && typeof v !== 'string') plain = false;
    } else plain = false;
  }
  const rel = asNode(field(body, 'relation'));
  let probe: string | undefined;
  if (rel !== undefined) {
    const relname = field(rel, 'relname');
    const schema = field(rel, 'schemaname');
    const cols = strings(field(body, 'attlist'));
    if (typeof relname === 'string') {
      const table = `${typeof schema === 'string' ? `${quoteIdent(schema)}.` : ''}${quoteIdent(relname)}`;
      probe = `SELECT ${cols.length > 0 ? cols.map(quoteIdent).join(', ') : '*'} FROM ONLY ${table}`;
    }
  } else probe = undefined; // filled in by the caller from the statement's text
  return { format, header, plain, probe };
}

/** Classifies every node of one statement into the collector. */
function visitStatement(key: string, body: Node, c: Collector): void {
  const fixed = FIXED[key];
  if (fixed !== undefined) c.add(...fixed);
  if (key === 'TransactionStmt' && readWrite(field(body, 'options'))) c.add('admin');
  // ALTER ROLE / DATABASE … SET and ALTER SYSTEM carry their SET as a bare node
  const setstmt = asNode(field(body, 'setstmt'));
  if (setstmt !== undefined) visitSetting(setstmt, c);
  switch (key) {
    case 'SelectStmt': {
      c.add(field(body, 'intoClause') !== undefined ? 'write' : 'read');
      if (asList(field(body, 'lockingClause')).length > 0) c.add('write');
      // The branches of UNION / INTERSECT / EXCEPT are SELECTs too (and may carry INTO or FOR UPDATE).
      for (const branch of [field(body, 'larg'), field(body, 'rarg')]) {
        const b = asNode(branch);
        if (b !== undefined) visitStatement('SelectStmt', b, c);
      }
      break;
    }
    case 'InsertStmt':
      c.add('write');
      if (writesCatalog(body, c)) c.add('opaque');
      break;
    case 'UpdateStmt':
    case 'DeleteStmt': {
      c.add('write');
      // UPDATE pg_settings is set_config; other catalogs are not data either.
      if (writesCatalog(body, c)) c.add('opaque');
      const where = field(body, 'whereClause');
      if (where === undefined || isTautology(where, c)) c.add('destructive');
      break;
    }
    case 'MergeStmt': {
      c.add('write');
      const deletes = asList(field(body, 'mergeWhenClauses')).some((w) => {
        const u = unwrap(w);
        return u !== undefined && field(u[1], 'commandType') === 'CMD_DELETE';
      });
      if (deletes) c.add('destructive');
      break;
    }
    case 'CopyStmt': {
      const external = field(body, 'filename') !== undefined || field(body, 'is_program') === true;
      if (external) c.add('admin');
      if (field(body, 'is_from') === true) c.add('write');
      else if (!external) {
        c.add('export');
        // COPY … TO STDOUT (FORMAT binary), and the old spelling COPY … TO STDOUT BINARY
        c.copyOut = copyOutLayout(body);
        c.binaryCopyOut = c.copyOut.format === 'binary';
      }
      break;
    }
    case 'CreateTableAsStmt':
      c.add('write', 'ddl');
      break;
    case 'ExplainStmt':
      // Without ANALYZE nothing executes: the statement is a read whatever it explains.
      if (!hasAnalyze(field(body, 'options'), c)) {
        c.add('read');
        // Tables and functions still count for rules; the classes of the explained statement do not.
        // The planner runs IMMUTABLE functions while planning: the classes of calls, casts and
        // operators count; those of the statement kind do not.
        const explained = new Collector(c.searchPath);
        walkChildren(body, explained);
        for (const t of explained.tables) c.tables.add(t);
        for (const f of explained.functions) c.functions.add(f);
        for (const k of explained.callClasses) c.add(k);
        if (explained.literalSensitive) c.literalSensitive = true;
        return;
      }
      break;
    case 'PrepareStmt':
      // The prepared statement is classified now; EXECUTE of it later is opaque.
      break;
    case 'DeclareCursorStmt':
      c.add('session');
      break;
    case 'VariableSetStmt': {
      const name = field(body, 'name');
      if (typeof name === 'string') c.add(settingClass(name));
      else c.add('session');
      if (readWrite(field(body, 'args'))) c.add('admin');
      visitSetting(body, c);
      break;
    }
    case 'AlterTableStmt': {
      c.add('ddl');
      const drops = asList(field(body, 'cmds')).some((cmd) => {
        const u = unwrap(cmd);
        const sub = u === undefined ? undefined : field(u[1], 'subtype');
        return typeof sub === 'string' && /^AT_Drop/.test(sub);
      });
      if (drops) c.add('destructive');
      const owner = asList(field(body, 'cmds')).some((cmd) => {
        const u = unwrap(cmd);
        return u !== undefined && field(u[1], 'subtype') === 'AT_ChangeOwner';
      });
      if (owner) c.add('privilege');
      break;
    }
    default:
      if (fixed === undefined) c.add('opaque');
  }
  // Walk children: nested statements (CTEs, EXPLAIN ANALYZE, PREPARE, COPY (query)), relations, calls.
  walkChildren(body, c);
}

const STATEMENT_NODES = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'ExplainStmt',
  'CreateTableAsStmt',
  'DeclareCursorStmt',
]);

function walkChildren(body: Node, c: Collector): void {
  if (typeof body['relname'] === 'string') c.relation(body);
  for (const cte of asList(asNode(field(body, 'withClause'))?.['ctes'])) {
    const u = unwrap(cte);
    const name = u === undefined ? undefined : field(u[1], 'ctename');
    if (typeof name === 'string') c.cteNames.add(name);
  }
  for (const [key, child] of Object.entries(body)) {
    if (key === 'larg' || key === 'rarg') continue; // visited as statements
    if (key === 'withClause' || key === 'whereClause' || key === 'query' || key === 'ctequery' || /^[a-z]/.test(key)) {
      visitValue(child, c);
    }
  }
}

function visitValue(v: unknown, c: Collector): void {
  if (Array.isArray(v)) {
    for (const item of v) visitValue(item, c);
    return;
  }
  if (!isNode(v)) return;
  // Relations appear wrapped ({"RangeVar": …}) in lists and bare in fields such as `relation`.
  if (typeof v['relname'] === 'string') c.relation(v);
  for (const [key, child] of Object.entries(v)) {
    if (!isNode(child)) {
      if (Array.isArray(child)) visitValue(child, c);
      continue;
    }
    if (!/^[A-Z]/.test(key)) {
      visitValue(child, c);
      continue;
    }
    if (STATEMENT_NODES.has(key)) {
      visitStatement(key, child, c);
      continue;
    }
    // nested SET clauses: ALTER ROLE/DATABASE … SET, ALTER SYSTEM, CREATE/ALTER FUNCTION … SET
    if (key === 'VariableSetStmt') visitSetting(child, c);
    if (key === 'FuncCall') visitCall(child, c);
    if (key === 'A_Expr') visitOperator(child, c);
    if (key === 'TypeCast') visitCast(child, c);
    visitValue(child, c);
  }
}

/** Operators of the built-in types. Any other operator may be user-defined: it runs a function. */
export const BUILTIN_OPERATORS: ReadonlySet<string> = new Set(
  `= <> != < > <= >= + - * / % ^ || |/ ||/ @ & | # ~ << >> ~~ ~~* !~~ !~~* ~* !~ !~* @> <@ && -> ->> #> #>> #- ? ?| ?& @? @@ @@@ <-> -|- &< &> <<| |>> &<| |&> ?# ?- ?-| ?|| ## <^ >^ <<= >>= !! !!=`.split(' '),
);

function visitOperator(expr: Node, c: Collector): void {
  const names = strings(field(expr, 'name'));
  const op = names[names.length - 1] ?? '';
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  if ((schema !== undefined && schema !== 'pg_catalog') || !BUILTIN_OPERATORS.has(op)) c.call('opaque');
}

/** Types of pg_catalog. A cast to another type may run a domain CHECK or a user cast function. */
export const BUILTIN_TYPES: ReadonlySet<string> = new Set(
  `bool boolean int2 int4 int8 smallint integer int bigint float4 float8 real double numeric decimal money text varchar char bpchar name
   bytea date time timetz timestamp timestamptz interval uuid json jsonb xml inet cidr macaddr macaddr8 bit varbit tsvector tsquery
   oid regclass regproc regprocedure regtype regnamespace regrole regoper regoperator regconfig regdictionary point line lseg box path
   polygon circle int4range int8range numrange daterange tsrange tstzrange record void cstring anyelement unknown`.split(/\s+/),
);

function visitCast(cast: Node, c: Collector): void {
  const typeName = asNode(field(cast, 'typeName'));
  const names = typeName === undefined ? [] : strings(field(typeName, 'names'));
  const type = names[names.length - 1] ?? '';
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  if ((schema !== undefined && schema !== 'pg_catalog') || !BUILTIN_TYPES.has(type)) c.call('opaque');
}

/**
 * A SET, SET LOCAL or RESET of one setting. RESET ALL (and DISCARD ALL) go back to the values
 * of the startup packet, where the sidecar pinned the lexing settings: they change nothing here.
 */
function visitSetting(set: Node, c: Collector): void {
  const name = field(set, 'name');
  if (typeof name === 'string') c.setting(name);
}

function visitCall(call: Node, c: Collector): void {
  const names = strings(field(call, 'funcname'));
  const fn = classifyFunction(names);
  c.functions.add(fn.qualified);
  if (fn.qualified === 'pg_catalog.set_config') {
    const setting = constString(asList(field(call, 'args'))[0]);
    c.literalSensitive = true;
    c.setting(setting);
    c.call(setting === undefined ? 'opaque' : settingClass(setting));
    return;
  }
  c.call(fn.cls);
}

function fromNames(list: unknown, c: Collector): void {
  // DROP TABLE a.b, c: objects are lists of name parts.
  for (const obj of asList(list)) {
    const u = unwrap(obj);
    const parts = u?.[0] === 'List' ? strings(field(u[1], 'items')) : [];
    if (parts.length === 0) continue;
    const rel = parts[parts.length - 1] ?? '';
    c.table(parts.length >= 2 ? parts[parts.length - 2] : undefined, rel);
  }
}

function sliceStatement(text: string, raw: Node): string {
  const loc = field(raw, 'stmt_location');
  const len = field(raw, 'stmt_len');
  const start = typeof loc === 'number' ? loc : 0;
  // libpg-query locations count bytes of the UTF-8 text.
  const bytes = Buffer.from(text, 'utf8');
  const end = typeof len === 'number' && len > 0 ? start + len : bytes.length;
  return bytes.subarray(start, end).toString('utf8').trim();
}

export function classifyStatementNode(stmt: unknown, text: string, options: ClassifyOptions = {}): StatementInfo {
  const c = new Collector(options.searchPath);
  const u = unwrap(stmt);
  if (u === undefined) {
    c.add('opaque');
  } else {
    visitStatement(u[0], u[1], c);
    if (u[0] === 'DropStmt') fromNames(field(u[1], 'objects'), c);
  }
  if (c.classes.size === 0) c.add('opaque');
  // read and session are allowlists: a statement with any other effect is not in them.
  if ([...c.classes].some((k) => k !== 'read' && k !== 'session')) {
    c.classes.delete('read');
    c.classes.delete('session');
  }
  let copyOut = c.copyOut;
  if (copyOut !== undefined && copyOut.probe === undefined) {
    const q = copyQueryText(text);
    copyOut = { ...copyOut, probe: q };
  }
  return {
    text,
    classes: c.classes,
    tables: [...c.tables].sort(),
    functions: [...c.functions].sort(),
    known: true,
    literalSensitive: c.literalSensitive,
    lexing: [...c.lexing].sort(),
    ...(c.binaryCopyOut ? { binaryCopyOut: true as const } : {}),
    ...(copyOut !== undefined ? { copyOut } : {}),
  };
}

/** Classifies every statement of a query string. Never throws. */
export function classifySql(text: string, options: ClassifyOptions = {}): StatementInfo[] {
  if (text.trim() === '') return [];
  let parsed: { stmts?: unknown[] };
  try {
    parsed = parseSql(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return [{ text, classes: new Set(['opaque']), tables: [], functions: [], known: false, literalSensitive: false, parseError: message, lexing: [] }];
  }
  const stmts = parsed.stmts ?? [];
  if (stmts.length === 0) return [];
  return stmts.map((raw) => {
    const node = asNode(raw) ?? {};
    return classifyStatementNode(field(node, 'stmt'), sliceStatement(text, node), options);
  });
}
