/**
 * Decisions. A SQL query is split into statements; every (statement, class, table) is one unit;
 * each unit takes the strictest action of the rules matching it, or the connection's
 * defaultAction when none does; the query's decision is the strictest over its units.
 * A statement that could not be analysed matches every rule that is not Allow.
 */
import type { Action, SqlClass } from '@airlock/api';
import type { ApprovalSettings, CompiledRule, PolicyBundle } from './bundle.ts';
import { classifySql, type StatementInfo } from './sql/classify.ts';
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

function sqlRuleMatches(rule: CompiledRule, u: Unit): boolean {
  const sql = rule.sql;
  const st = u.statement;
  if (sql === undefined || st === undefined) return false;
  // Unknown statements match every rule that could stop them, never one that would allow them.
  if (!st.known) return rule.action !== 'Allow';
  if (sql.classes !== undefined && (u.cls === undefined || !sql.classes.has(u.cls))) return false;
  if (sql.tables !== undefined && (u.table === undefined || !sql.tables.some((m) => m(u.table ?? '')))) return false;
  if (sql.functions !== undefined && !anyMatch(sql.functions, st.functions)) return false;
  return true;
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
  const results = sqlUnits(statements).map((u) => decideUnit(bundle, u, sqlRuleMatches));
  return combine(bundle, results, classes, 'statement');
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

  constructor(bundle: PolicyBundle) {
    this.bundle = bundle;
  }

  decide(text: string): Decision {
    const hit = this.#byText.get(text);
    if (hit !== undefined) return hit;
    const shape = statementShape(text);
    const shaped = shape === undefined ? undefined : this.#byShape.get(shape);
    if (shaped !== undefined) return shaped;
    const statements = classifySql(text);
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
  return combine(bundle, units, [], 'command');
}
