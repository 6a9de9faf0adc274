/**
 * Decisions. A SQL query is split into statements; every (statement, class, table) is one unit;
 * each unit takes the strictest action of the rules matching it, or the connection's
 * defaultAction when none does; the query's decision is the strictest over its units.
 * Unknown is the strictest: a statement that could not be analysed matches every rule that is
 * not Allow; one whose tables or functions cannot be known (opaque: DO, CALL, EXECUTE, calls of
 * unknown functions) matches every stopping rule restricted to tables or functions, as touching
 * every table and calling every function; an unknown agent identity gets every stopping rule
 * written for service accounts (see bundle.ts). A statement that changes how the server splits
 * statement text (client_encoding, standard_conforming_strings, backslash_quote) never runs.
 */
import type { Action, SqlClass } from '@airlock/api';
import type { ApprovalSettings, CompiledRule, PolicyBundle } from './bundle.ts';
import { classifySql, type ClassifyOptions, type CopyOut, type StatementInfo } from './sql/classify.ts';
import { statementShape } from './sql/shape.ts';
import { analyzeShell, type ShellAnalysis } from './shell/analyze.ts';

export interface Decision {
  readonly decision: Action;
  readonly classes: readonly SqlClass[];
  /** ids (`<ApprovalRule>/<rule>`) of the rules that produced the decision */
  readonly rules: readonly string[];
  readonly message: string;
  /** for RequireApproval: what the strictest approval rule asks for */
  readonly approval?: ApprovalSettings;
  /** why rules matched what the policy could not know (unknown tables, identity, lexing) */
  readonly why?: readonly string[];
  /** a statement is COPY … TO STDOUT in the binary format (the sidecar cannot mask it) */
  readonly binaryCopyOut?: true;
  /**
   * a statement is COPY … TO STDOUT: its layout when it is the query's only statement,
   * `'unknown'` when it shares the query with others (its rows cannot be told apart)
   */
  readonly copyOut?: CopyOut | 'unknown';
}

const RANK: Readonly<Record<Action, number>> = { Allow: 0, RequireApproval: 1, Block: 2 };

function stricter(a: Action, b: Action): Action {
  return RANK[a] >= RANK[b] ? a : b;
}

interface Unit {
  readonly cls: SqlClass | undefined;
  readonly table: string | undefined;
  readonly statement: StatementInfo | undefined;
  readonly shell: ShellAnalysis | undefined;
}

function anyMatch(matchers: readonly ((s: string) => boolean)[], values: readonly string[]): boolean {
  return values.some((v) => matchers.some((m) => m(v)));
}

/** Statements whose tables and functions cannot be known: they may touch every table and call every function. */
function reachUnknown(st: StatementInfo): boolean {
  return !st.known || st.classes.has('opaque');
}

function sqlRuleMatches(rule: CompiledRule, u: Unit): boolean {
  const sql = rule.sql;
  const st = u.statement;
  if (sql === undefined || st === undefined) return false;
  // Unknown statements match every rule that could stop them, never one that would allow them.
  if (!st.known) return rule.action !== 'Allow';
  if (sql.classes !== undefined && (u.cls === undefined || !sql.classes.has(u.cls))) return false;
  // Unknown tables or functions are every table and every function: a stopping rule restricted
  // to some matches, an Allow restricted to some does not (it cannot cover what is unknown).
  const unknown = reachUnknown(st);
  if (sql.tables !== undefined && (unknown ? rule.action === 'Allow' : u.table === undefined || !sql.tables.some((m) => m(u.table ?? '')))) return false;
  if (sql.functions !== undefined && (unknown ? rule.action === 'Allow' : !anyMatch(sql.functions, st.functions))) return false;
  return true;
}

/** What a decision assumed about what it could not know, for `airlock check` and the records. */
function explain(results: readonly UnitResult[], statements: readonly StatementInfo[]): string[] {
  const why = new Set<string>();
  const rules = results.flatMap((r) => r.rules);
  const scoped = rules.some((r) => r.sql?.tables !== undefined || r.sql?.functions !== undefined);
  for (const st of statements) {
    if (!st.known && rules.length > 0) why.add('statement does not parse: matched every rule that is not Allow');
    else if (st.known && scoped && reachUnknown(st)) why.add('tables unknown (opaque statement): matched as touching every table and calling every function');
  }
  for (const rule of rules) {
    if (rule.assumedSubjects !== undefined) why.add(`agent identity unknown: rule ${rule.id} (for service accounts ${rule.assumedSubjects.join(', ')}) applies`);
  }
  return [...why];
}

interface UnitResult {
  readonly action: Action;
  readonly rules: readonly CompiledRule[];
}

function decideUnit(bundle: PolicyBundle, u: Unit, matches: (r: CompiledRule, u: Unit) => boolean): UnitResult {
  const matched = bundle.rules.filter((r) => matches(r, u));
  if (matched.length === 0) return { action: bundle.connection.defaultAction, rules: [] };
  const action = matched.map((r) => r.action).reduce(stricter);
  return { action, rules: matched.filter((r) => r.action === action) };
}

function combine(bundle: PolicyBundle, results: readonly UnitResult[], classes: readonly SqlClass[], what: string): Decision {
  let action: Action = 'Allow';
  for (const r of results) action = stricter(action, r.action);
  const deciding = results.filter((r) => r.action === action);
  const rules = [...new Set(deciding.flatMap((r) => r.rules))];
  let message: string;
  if (action === 'Allow') message = '';
  else if (rules.length > 0) {
    const first = rules[0] as CompiledRule;
    message = first.message ?? `${what} ${action === 'Block' ? 'blocked' : 'requires approval'} by rule ${first.id}`;
  } else {
    message = `${what} matches no rule and the defaultAction of connection ${bundle.connection.name} is ${action}`;
  }
  const approvalRule = action === 'RequireApproval' ? rules.find((r) => r.approval !== undefined) : undefined;
  return {
    decision: action,
    classes,
    rules: rules.map((r) => r.id),
    message,
    ...(approvalRule?.approval !== undefined ? { approval: approvalRule.approval } : {}),
  };
}

function sqlUnits(statements: readonly StatementInfo[]): Unit[] {
  return statements.flatMap((st) =>
    [...st.classes].flatMap((cls) => (st.tables.length === 0 ? [undefined] : st.tables).map((table) => ({ cls, table, statement: st, shell: undefined }))),
  );
}

/** Decides a SQL query (one or several statements). Never throws. */
export function decideStatements(bundle: PolicyBundle, statements: readonly StatementInfo[]): Decision {
  const classes = [...new Set(statements.flatMap((s) => [...s.classes]))].sort();
  const lexing = [...new Set(statements.flatMap((s) => s.lexing))].sort();
  if (lexing.length > 0) {
    // One text, one meaning: the sidecar reads statements as UTF-8 with standard strings; a
    // statement that could make the server read the next ones otherwise never runs, whatever the rules.
    const what = lexing.includes('*') ? 'may change any setting (a name known only at run time)' : `changes ${lexing.join(', ')}`;
    return {
      decision: 'Block',
      classes,
      rules: [],
      message: `statement ${what}, which decides how the server reads statement text; Airlock pins client_encoding=UTF8 and standard_conforming_strings=on and never runs it`,
      why: ['lexing settings are pinned: a statement that could change them is refused whatever the rules'],
    };
  }
  const results = sqlUnits(statements).map((u) => decideUnit(bundle, u, sqlRuleMatches));
  const d = combine(bundle, results, classes, 'statement');
  const why = explain(results.filter((r) => r.action === d.decision), statements);
  const binary = statements.some((s) => s.binaryCopyOut === true);
  const copies = statements.filter((s) => s.copyOut !== undefined);
  const copyOut = copies.length === 0 ? undefined : statements.length === 1 ? copies[0]?.copyOut : 'unknown';
  if (why.length === 0 && !binary && copyOut === undefined) return d;
  return { ...d, ...(why.length > 0 ? { why } : {}), ...(binary ? { binaryCopyOut: true as const } : {}), ...(copyOut !== undefined ? { copyOut } : {}) };
}

/** Entries per generation of each decision cache (two generations are kept). */
const CACHE_GENERATION = 8192;

/**
 * A bounded cache in two generations: lookups try the young map, then the old one (and move a
 * hit back to the young); when the young map is full it becomes the old one. Every operation is
 * O(1): no eviction scan (a Map used as a FIFO makes `keys().next()` skip every deleted slot).
 */
class GenerationCache<V> {
  #young = new Map<string, V>();
  #old = new Map<string, V>();

  get(key: string): V | undefined {
    const hit = this.#young.get(key);
    if (hit !== undefined) return hit;
    const old = this.#old.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: string, value: V): void {
    if (this.#young.size >= CACHE_GENERATION) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(key, value);
  }
}

/**
 * Per-bundle decision cache. Exact texts (prepared statements, ORMs) and statement shapes (the
 * same statement with other literal values, see sql/shape.ts) are remembered; a shape is cached
 * only when the decision did not depend on literal values and every statement parsed. A text
 * decided through its shape is not remembered as a text too: statements that differ only in
 * their literals would fill the text cache with entries seen once (a text decided in full is).
 */
export class SqlDecider {
  readonly bundle: PolicyBundle;
  readonly #byText = new GenerationCache<Decision>();
  readonly #byShape = new GenerationCache<Decision>();
  readonly #options: ClassifyOptions;

  /** `options.searchPath`: the session's search_path (one decider per distinct path: decisions depend on it) */
  constructor(bundle: PolicyBundle, options: ClassifyOptions = {}) {
    this.bundle = bundle;
    this.#options = options;
  }

  decide(text: string): Decision {
    const hit = this.#byText.get(text);
    if (hit !== undefined) return hit;
    const shape = statementShape(text);
    const shaped = shape === undefined ? undefined : this.#byShape.get(shape);
    if (shaped !== undefined) return shaped;
    const statements = classifySql(text, this.#options);
    const decision = decideStatements(this.bundle, statements);
    this.#byText.set(text, decision);
    if (shape !== undefined && statements.every((s) => s.known && !s.literalSensitive)) this.#byShape.set(shape, decision);
    return decision;
  }
}

function shellRuleMatches(rule: CompiledRule, u: Unit): boolean {
  const ssh = rule.ssh;
  const analysis = u.shell;
  if (ssh === undefined || analysis === undefined) return false;
  // A line that cannot be resolved statically matches every rule that could stop it.
  if (analysis.unresolvable) return rule.action !== 'Allow';
  if (anyMatch(ssh.commands, analysis.commands.map((c) => c.text))) return true;
  // Arguments known only at run time (variables, brace or glob expansion, xargs) could be
  // anything: such a command matches every stopping rule written for its program.
  if (rule.action === 'Allow') return false;
  const dynamicPrograms = analysis.commands.filter((c) => c.dynamic).map((c) => c.argv[0] ?? '');
  return anyMatch(ssh.programs, dynamicPrograms);
}

/** Decides one SSH command line. An unresolvable line is never allowed. */
export async function decideShell(bundle: PolicyBundle, line: string): Promise<Decision> {
  const analysis = await analyzeShell(line);
  if (analysis.unresolvable) {
    const u = decideUnit(bundle, { cls: undefined, table: undefined, statement: undefined, shell: analysis }, shellRuleMatches);
    const d = combine(bundle, [u], [], 'command');
    if (d.decision !== 'Allow') return d;
    return {
      decision: 'Block',
      classes: [],
      rules: [],
      message: `command line cannot be resolved statically (${analysis.reasons.join(', ')}); it is never allowed`,
    };
  }
  // Every simple command is one unit: each must be allowed on its own.
  const units = (analysis.commands.length === 0 ? [undefined] : analysis.commands).map((cmd) =>
    decideUnit(bundle, { cls: undefined, table: undefined, statement: undefined, shell: { ...analysis, commands: cmd === undefined ? [] : [cmd] } }, shellRuleMatches),
  );
  const d = combine(bundle, units, [], 'command');
  const why = explain(units.filter((r) => r.action === d.decision), []);
  return why.length === 0 ? d : { ...d, why };
}
