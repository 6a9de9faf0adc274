/**
 * The values the shell analysis works with: words after quote removal (`Arg`), where the
 * results of one analysis accumulate (`Sink`), and the checks on variable names and values
 * that can make bash run code. Pure, no I/O.
 */

/** A simple command as the analysis reports it. */
export interface SimpleCommand {
  /** argv after quote removal; argv[0] normalised: '/bin/rm' -> 'rm', "'rm'" -> 'rm', '\rm' -> 'rm' */
  readonly argv: readonly string[];
  /** argv joined by single spaces: what rule globs are matched against */
  readonly text: string;
  /**
   * true when an argument (not the program) is only known at run time: an expansion (`$x`,
   * `"$@"`, `$(...)`), brace expansion, an unquoted glob, or arguments xargs appends from its input.
   * Policy treats such a command as matching every rule that names its program.
   */
  readonly dynamic: boolean;
}

/** Where the results of one analysis (the line and every script nested in it) accumulate. */
export class Sink {
  readonly commands: SimpleCommand[] = [];
  readonly reasons: string[] = [];
  scripts = 0;
  fail(reason: string): void {
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }
  add(argv: readonly string[], dynamic: boolean): void {
    this.commands.push(Object.freeze({ argv: Object.freeze([...argv]), text: argv.join(' '), dynamic }));
  }
}

/** A simple command as parsed: its words (assignments and redirections removed). */
export interface RawCommand {
  readonly args: readonly Arg[];
  readonly stdin: Stdin;
}

export type Stdin = 'none' | 'pipe' | 'here' | 'file';

/**
 * A piece of a word. `lit` text is the value after quote removal; the other kinds keep their
 * source text (`$HOME`, `$(id)`, `$((1+2))`): their value is only known at run time.
 */
export interface Part {
  readonly kind: 'lit' | 'param' | 'subst' | 'arith';
  readonly text: string;
  readonly quoted: boolean;
}

/** A word after quote removal, as the resolver sees it. */
export interface Arg {
  readonly text: string;
  /** contains an expansion: its value is only known at run time */
  readonly dynamic: boolean;
  /** contains a command or process substitution */
  readonly subst: boolean;
  /** starts with an expansion (so it may turn out to be an option) */
  readonly leadingDynamic: boolean;
  /** unquoted glob or brace-expansion characters */
  readonly pattern: boolean;
  /** starts with an unquoted `NAME=` (an assignment when it precedes the command) */
  readonly assignment: boolean;
  /** ends with an array literal `(...)` the parser read as syntax (`a=(1 2)`), not quoted text */
  readonly arrayLiteral?: boolean;
}

const ASSIGNMENT = /^[A-Za-z_]\w*(?:\[[^\]]*\])?\+?=/;

export function toArg(parts: readonly Part[]): Arg {
  let text = '';
  let shape = ''; // unquoted literal characters; anything else as 'x'
  let prefix = ''; // the unquoted literal text the word starts with
  for (const p of parts) {
    text += p.text;
    shape += p.kind === 'lit' && !p.quoted ? p.text : 'x'.repeat(p.text.length);
    if (prefix.length === text.length - p.text.length && p.kind === 'lit' && !p.quoted) prefix += p.text;
  }
  const open = shape.indexOf('[');
  const brace = shape.indexOf('{');
  const braceEnd = shape.lastIndexOf('}');
  const braceMid = brace >= 0 && braceEnd > brace ? shape.slice(brace + 1, braceEnd) : '';
  return {
    text,
    dynamic: parts.some((p) => p.kind !== 'lit'),
    subst: parts.some((p) => p.kind === 'subst'),
    leadingDynamic: parts[0] !== undefined && parts[0].kind !== 'lit',
    // `(` can only be unquoted inside a word as part of an extglob such as @(rm|ls).
    pattern:
      /[*?(]/.test(shape) ||
      (open >= 0 && shape.indexOf(']', open + 1) > open) ||
      braceMid.includes(',') ||
      braceMid.includes('..'),
    assignment: ASSIGNMENT.test(prefix),
  };
}

/** A static argument, as wrappers see their option values. */
export function staticArg(text: string): Arg {
  return { text, dynamic: false, subst: false, leadingDynamic: false, pattern: false, assignment: false };
}

/** The argument with every `marker` standing for data only known at run time (xargs -I, find {}). */
export function withPlaceholder(arg: Arg, marker: string, path = false): Arg {
  if (marker === '' || !arg.text.includes(marker)) return arg;
  // find's `{}` is a path that starts with its (static) starting point, never an option.
  return { ...arg, dynamic: true, leadingDynamic: arg.leadingDynamic || (!path && arg.text.startsWith(marker)) };
}

/** Decodes the body of `$'...'`; undefined when it holds a code point no string can carry. */
export function decodeAnsiC(body: string): string | undefined {
  const bytes: number[] = [];
  const enc = new TextEncoder();
  const simple: Record<string, number> = { a: 7, b: 8, e: 27, E: 27, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };
  for (let i = 0; i < body.length; i++) {
    const c = body.charAt(i);
    if (c !== '\\' || i + 1 >= body.length) {
      const cp = body.codePointAt(i) ?? 0;
      const ch = String.fromCodePoint(cp);
      bytes.push(...enc.encode(ch));
      i += ch.length - 1;
      continue;
    }
    const e = body.charAt(++i);
    const digits = (re: RegExp): string => re.exec(body.slice(i + 1))?.[0] ?? '';
    const known = simple[e];
    if (known !== undefined) bytes.push(known);
    else if (/[0-7]/.test(e)) {
      const d = e + digits(/^[0-7]{0,2}/);
      bytes.push(parseInt(d, 8) & 0xff);
      i += d.length - 1;
    } else if (e === 'x' && digits(/^[0-9a-fA-F]/) !== '') {
      const d = digits(/^[0-9a-fA-F]{1,2}/);
      bytes.push(parseInt(d, 16));
      i += d.length;
    } else if ((e === 'u' || e === 'U') && digits(/^[0-9a-fA-F]/) !== '') {
      const d = digits(e === 'u' ? /^[0-9a-fA-F]{1,4}/ : /^[0-9a-fA-F]{1,8}/);
      const cp = parseInt(d, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return undefined;
      bytes.push(...enc.encode(String.fromCodePoint(cp)));
      i += d.length;
    } else if (e === 'c' && i + 1 < body.length) {
      bytes.push(body.charCodeAt(++i) & 0x1f);
    } else bytes.push(92, ...enc.encode(e));
  }
  // bash ends the string at the first NUL byte: $'r\0m' is "r".
  const nul = bytes.indexOf(0);
  return new TextDecoder().decode(new Uint8Array(nul < 0 ? bytes : bytes.slice(0, nul)));
}

/** Arithmetic that names a variable can run code: bash evaluates `a[$(cmd)]` held in a value. */
export function arithHasNames(expr: string): boolean {
  return /[A-Za-z_$`]/.test(expr.replace(/\d+#[\w@]+|\d\w*/g, ''));
}

/** A name like `a[i]` or `a[$x]` whose subscript bash evaluates (and so may run code). */
export function riskySubscript(name: string): boolean {
  const open = name.indexOf('[');
  if (open < 0) return false;
  const close = name.indexOf(']', open);
  return !/^\s*(?:-?\d+|[@*])?\s*$/.test(name.slice(open + 1, close < 0 ? undefined : close));
}

/** Variables whose values bash expands as code (prompts) or sources as a file. */
const CODE_VARIABLES = new Set(['PS0', 'PS1', 'PS2', 'PS3', 'PS4', 'PROMPT_COMMAND', 'BASH_ENV', 'ENV', 'BASHOPTS']);
/** Variables whose values other programs run as commands or load as code. */
const PROGRAM_VARIABLES = new Set([
  'LESSOPEN', 'LESSCLOSE', 'PAGER', 'MANPAGER', 'SYSTEMD_PAGER', 'EDITOR', 'VISUAL', 'SSH_ASKPASS', 'SUDO_ASKPASS', 'BROWSER',
  'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'GCONV_PATH', 'PERL5OPT', 'PYTHONSTARTUP', 'NODE_OPTIONS', 'RUBYOPT',
]);
/**
 * Git reads commands to run (pager, editor, ssh, diff and merge drivers, credential helpers,
 * hooks through `core.hooksPath`, aliases with `!`) from its configuration, and configuration
 * from its environment: every `GIT_*` variable that names a program, a configuration source or
 * where git finds its own subcommands.
 */
const GIT_VARIABLES = /^GIT_(?:CONFIG(?:_COUNT|_KEY_\d+|_VALUE_\d+|_PARAMETERS|_GLOBAL|_SYSTEM|_NOSYSTEM)?|PAGER|EDITOR|SEQUENCE_EDITOR|SSH|SSH_COMMAND|SSH_VARIANT|EXTERNAL_DIFF|ASKPASS|PROXY_COMMAND|EXEC_PATH|TEMPLATE_DIR|ALLOW_PROTOCOL|PROTOCOL_FROM_USER)$/;
/** bash's command hash table and alias table: setting a key rebinds a command name. */
const BINDING_VARIABLES = /^(?:BASH_CMDS|BASH_ALIASES)(?:\[|$)/;

/** Checks a variable name about to be set for code that runs because of it. */
export function checkVariable(name: string, sink: Sink): void {
  if (CODE_VARIABLES.has(name)) sink.fail('prompt or startup variable assignment');
  if (PROGRAM_VARIABLES.has(name) || GIT_VARIABLES.test(name)) sink.fail('variable holding a command or code');
  if (BINDING_VARIABLES.test(name)) sink.fail('BASH_CMDS or BASH_ALIASES assignment');
  // bash imports `BASH_FUNC_name%%=() { ...; }` from its environment as a function.
  if (name.startsWith('BASH_FUNC_')) sink.fail('exported function');
  if (riskySubscript(name)) sink.fail('array subscript may run code');
}

/** Checks an assignment word (`NAME=value`, `a[i]+=v`). */
export function checkAssignment(text: string, sink: Sink): void {
  checkVariable(/^[^=+]*/.exec(text)?.[0] ?? '', sink);
  // A nameref (`declare -n r=BASH_CMDS`) reaches the tables under another name.
  if (/BASH_CMDS|BASH_ALIASES/.test(text)) sink.fail('BASH_CMDS or BASH_ALIASES assignment');
}
