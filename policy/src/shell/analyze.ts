/**
 * What does an SSH command line really run? The line is checked with the real bash grammar
 * (sh-syntax, a WASM build of mvdan/sh) and walked by the small recursive-descent parser below,
 * which keeps what policy needs: every simple command after quote removal, with wrappers
 * (`sudo`, `env`, `bash -c`, `xargs`, `find -exec`, ...) unwrapped.
 *
 * sh-syntax only exports the top level of its syntax tree (statement spans, no command nodes),
 * so it is the gate: a line it rejects is a parse error, and a line where the two parsers
 * disagree on where the top-level statements start is unresolvable. Anything this parser does
 * not understand, and anything whose effect depends on run-time values (command substitution,
 * a variable as the program, eval, a payload piped into a shell, code hidden in arithmetic or
 * prompt strings), makes the line unresolvable: it then matches every rule. Pure, no I/O.
 */
import { LangVariant, parse } from 'sh-syntax';

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

export interface ShellAnalysis {
  readonly commands: readonly SimpleCommand[];
  /** true when the line cannot be resolved statically: it then matches EVERY rule */
  readonly unresolvable: boolean;
  /** why it is unresolvable (human-readable, e.g. "command substitution", "variable as program", "parse error: ...") */
  readonly reasons: readonly string[];
}

const MAX_BYTES = 64 * 1024;
/** Nested scripts (`bash -c '...'`, backticks, `watch '...'`) followed at most this deep. */
const MAX_DEPTH = 8;
/** Scripts parsed per line at most (each costs a WASM parse). */
const MAX_SCRIPTS = 64;
/** Syntactic nesting (subshells, blocks, `${...}`) the parser follows at most. */
const MAX_NESTING = 256;
/** Wrappers (`sudo env nohup ...`) unwrapped around one command at most. */
const MAX_WRAPPERS = 16;

/** Decides what a command line runs. Never throws: on any failure the line is unresolvable. */
export async function analyzeShell(line: string): Promise<ShellAnalysis> {
  const sink = new Sink();
  try {
    await analyzeScript(line, 0, sink);
  } catch (err) {
    sink.fail(`internal error: ${err instanceof Error ? err.message : String(err)}`);
  }
  return Object.freeze({
    commands: Object.freeze(sink.commands),
    unresolvable: sink.reasons.length > 0,
    reasons: Object.freeze(sink.reasons),
  });
}

// ---------------------------------------------------------------------------------------------
// Driver

/** Where the results of one analysis (the line and every script nested in it) accumulate. */
class Sink {
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

async function analyzeScript(src: string, depth: number, sink: Sink): Promise<void> {
  if (depth > MAX_DEPTH) {
    sink.fail('nesting too deep');
    return;
  }
  if (++sink.scripts > MAX_SCRIPTS) {
    sink.fail('too many nested scripts');
    return;
  }
  if (Buffer.byteLength(src, 'utf8') > MAX_BYTES) {
    sink.fail('too long');
    return;
  }
  // A C string cannot carry NUL; what would run is ambiguous, so refuse to guess.
  if (src.includes('\0')) {
    sink.fail('NUL character');
    return;
  }
  let starts: number[];
  try {
    const file = await parse(src, { variant: LangVariant.LangBash, keepComments: false });
    starts = file.Stmts.map((s) => s.Pos.Offset);
  } catch (err) {
    sink.fail(`parse error: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const parser = new Parser(src, sink, depth, true);
  try {
    parser.parseScript();
  } catch (err) {
    sink.fail(`unsupported syntax: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  if (!sameOffsets(utf8Offsets(src, parser.starts), starts)) sink.fail('parser disagreement');
  for (const cmd of parser.commands) await resolve(cmd.args, cmd.stdin, depth, sink);
}

function sameOffsets(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Converts UTF-16 indexes (ascending) to the UTF-8 byte offsets the Go parser reports. */
function utf8Offsets(src: string, indexes: readonly number[]): number[] {
  const out: number[] = [];
  let bytes = 0;
  let i = 0;
  for (const target of indexes) {
    for (; i < target; i++) {
      const c = src.charCodeAt(i);
      const next = src.charCodeAt(i + 1);
      if (c < 0x80) bytes += 1;
      else if (c < 0x800) bytes += 2;
      else if (c >= 0xd800 && c < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
        bytes += 4; // a surrogate pair is one 4-byte character
        i++;
      } else bytes += 3; // BMP character, or a lone surrogate encoded as U+FFFD
    }
    out.push(bytes);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Words

/** Where a command's standard input comes from: only used to explain why a shell is unresolvable. */
type Stdin = 'none' | 'pipe' | 'here' | 'file';

/**
 * A piece of a word. `lit` text is the value after quote removal; the other kinds keep their
 * source text (`$HOME`, `$(id)`, `$((1+2))`): their value is only known at run time.
 */
interface Part {
  readonly kind: 'lit' | 'param' | 'subst' | 'arith';
  readonly text: string;
  readonly quoted: boolean;
}

/** A word after quote removal, as the resolver sees it. */
interface Arg {
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

function toArg(parts: readonly Part[]): Arg {
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
function staticArg(text: string): Arg {
  return { text, dynamic: false, subst: false, leadingDynamic: false, pattern: false, assignment: false };
}

/** The argument with every `marker` standing for data only known at run time (xargs -I, find {}). */
function withPlaceholder(arg: Arg, marker: string): Arg {
  if (marker === '' || !arg.text.includes(marker)) return arg;
  return { ...arg, dynamic: true, leadingDynamic: arg.leadingDynamic || arg.text.startsWith(marker) };
}

/** Decodes the body of `$'...'`; undefined when it holds a code point no string can carry. */
function decodeAnsiC(body: string): string | undefined {
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
function arithHasNames(expr: string): boolean {
  return /[A-Za-z_$`]/.test(expr.replace(/\d+#[\w@]+|\d\w*/g, ''));
}

/** A name like `a[i]` or `a[$x]` whose subscript bash evaluates (and so may run code). */
function riskySubscript(name: string): boolean {
  const open = name.indexOf('[');
  if (open < 0) return false;
  const close = name.indexOf(']', open);
  return !/^\s*(?:-?\d+|[@*])?\s*$/.test(name.slice(open + 1, close < 0 ? undefined : close));
}

/** Variables whose values bash expands as code (prompts) or sources as a file. */
const CODE_VARIABLES = new Set(['PS0', 'PS1', 'PS2', 'PS3', 'PS4', 'PROMPT_COMMAND', 'BASH_ENV', 'ENV', 'BASHOPTS']);
/** Variables whose values other programs run as commands or load as code. */
const PROGRAM_VARIABLES = new Set([
  'LESSOPEN', 'LESSCLOSE', 'PAGER', 'GIT_PAGER', 'MANPAGER', 'SYSTEMD_PAGER', 'EDITOR', 'VISUAL', 'GIT_EDITOR', 'GIT_SSH_COMMAND', 'GIT_SSH',
  'GIT_EXTERNAL_DIFF', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'GCONV_PATH', 'PERL5OPT', 'PYTHONSTARTUP', 'NODE_OPTIONS',
]);
/** bash's command hash table and alias table: setting a key rebinds a command name. */
const BINDING_VARIABLES = /^(?:BASH_CMDS|BASH_ALIASES)(?:\[|$)/;

/** Checks a variable name about to be set for code that runs because of it. */
function checkVariable(name: string, sink: Sink): void {
  if (CODE_VARIABLES.has(name)) sink.fail('prompt or startup variable assignment');
  if (PROGRAM_VARIABLES.has(name)) sink.fail('variable holding a command or code');
  if (BINDING_VARIABLES.test(name)) sink.fail('BASH_CMDS or BASH_ALIASES assignment');
  // bash imports `BASH_FUNC_name%%=() { ...; }` from its environment as a function.
  if (name.startsWith('BASH_FUNC_')) sink.fail('exported function');
  if (riskySubscript(name)) sink.fail('array subscript may run code');
}

/** Checks an assignment word (`NAME=value`, `a[i]+=v`). */
function checkAssignment(text: string, sink: Sink): void {
  checkVariable(/^[^=+]*/.exec(text)?.[0] ?? '', sink);
  // A nameref (`declare -n r=BASH_CMDS`) reaches the tables under another name.
  if (/BASH_CMDS|BASH_ALIASES/.test(text)) sink.fail('BASH_CMDS or BASH_ALIASES assignment');
}

// ---------------------------------------------------------------------------------------------
// Parser

/** A simple command as parsed: its words (assignments and redirections removed). */
interface RawCommand {
  readonly args: readonly Arg[];
  readonly stdin: Stdin;
}

interface Heredoc {
  readonly delimiter: string;
  readonly quoted: boolean;
  readonly stripTabs: boolean;
}

const OPERATORS = ['&&', '||', ';;&', ';;', ';&', '|&', '&>>', '&>', '<<<', '<<-', '<<', '<&', '<>', '>>', '>&', '>|', ';', '&', '|', '(', ')', '<', '>', '\n'];
const REDIRECTS = new Set(['<<<', '<<-', '<<', '<&', '<>', '>>', '>&', '>|', '&>>', '&>', '<', '>']);
const CASE_ENDS = new Set([';;', ';&', ';;&']);
const END = '(?=[ \\t\\n;&|()<>]|$)';
const KEYWORD = new RegExp(`(?:if|then|elif|else|fi|while|until|for|select|in|do|done|case|esac|function|coproc|time|\\[\\[|\\]\\]|\\})${END}|[{!](?=[ \\t\\n]|$)`, 'y');
const CLOSERS = new Set(['then', 'elif', 'else', 'fi', 'do', 'done', 'esac', '}', ']]']);
const FD_PREFIX = /(?:\d+|\{[A-Za-z_]\w*\})(?=[<>])/y;

/**
 * Recursive descent over the bash grammar subset that matters: lists, and-or lists, pipelines,
 * compound commands, functions, simple commands, redirections, here-documents and every kind of
 * quoting and expansion inside words. It throws on anything it does not understand.
 */
class Parser {
  readonly commands: RawCommand[] = [];
  /** start offsets of the top-level statements, to compare with sh-syntax */
  readonly starts: number[] = [];
  private readonly src: string;
  private readonly sink: Sink;
  private readonly depth: number;
  private readonly top: boolean;
  private pos = 0;
  private nesting = 0;
  private pending: Heredoc[] = [];

  constructor(src: string, sink: Sink, depth: number, top: boolean, commands?: RawCommand[]) {
    this.src = src;
    this.sink = sink;
    this.depth = depth;
    this.top = top;
    if (commands !== undefined) this.commands = commands;
  }

  parseScript(): void {
    this.parseList('none', () => false, this.top);
    if (this.pos < this.src.length) throw new SyntaxError(`unexpected ${JSON.stringify(this.src.charAt(this.pos))} at ${this.pos}`);
  }

  // --- lexical helpers ---

  private peek(n = 0): string {
    return this.src.charAt(this.pos + n);
  }

  private at(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  private op(): string | undefined {
    return OPERATORS.find((o) => this.at(o));
  }

  private keyword(): string | undefined {
    KEYWORD.lastIndex = this.pos;
    return KEYWORD.exec(this.src)?.[0];
  }

  private isKeyword(...words: string[]): boolean {
    const k = this.keyword();
    return k !== undefined && words.includes(k);
  }

  private expectKeyword(word: string): void {
    if (this.keyword() !== word) throw new SyntaxError(`expected ${word} at ${this.pos}`);
    this.pos += word.length;
  }

  private expect(ch: string): void {
    this.skipBlanks();
    if (this.peek() !== ch) throw new SyntaxError(`expected ${ch} at ${this.pos}`);
    this.pos++;
  }

  /** Blanks, line continuations and comments (a `#` at a token boundary). */
  private skipBlanks(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t') this.pos++;
      else if (c === '\\' && this.peek(1) === '\n') this.pos += 2;
      else if (c === '#') {
        const nl = this.src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? this.src.length : nl;
      } else return;
    }
  }

  /** Blanks and newlines; here-document bodies start after the newline that ends their line. */
  private skipNewlines(): void {
    for (;;) {
      this.skipBlanks();
      if (this.peek() !== '\n') return;
      this.pos++;
      this.readHeredocs();
    }
  }

  /** True when a word starts here (an operator does not, except `<(` and `>(`). */
  private atWord(): boolean {
    if (this.at('<(') || this.at('>(')) return true;
    const c = this.peek();
    return c !== '' && c !== ' ' && c !== '\t' && this.op() === undefined;
  }

  private enter(): void {
    if (++this.nesting > MAX_NESTING) throw new SyntaxError('nesting too deep');
  }

  // --- grammar ---

  private parseList(stdin: Stdin, isEnd: () => boolean, top = false): void {
    for (;;) {
      this.skipNewlines();
      if (this.pos >= this.src.length || isEnd()) return;
      if (top) this.starts.push(this.pos);
      this.parseAndOr(stdin);
      this.skipBlanks();
      const op = this.op();
      if (op === ';' || op === '&') this.pos++;
      else if (op !== '\n') return;
    }
  }

  private parseAndOr(stdin: Stdin): void {
    this.parsePipeline(stdin);
    for (;;) {
      this.skipBlanks();
      const op = this.op();
      if (op !== '&&' && op !== '||') return;
      this.pos += 2;
      this.skipNewlines();
      this.parsePipeline(stdin);
    }
  }

  private parsePipeline(stdin: Stdin): void {
    this.parseCommand(stdin);
    for (;;) {
      this.skipBlanks();
      const op = this.op();
      if (op !== '|' && op !== '|&') return;
      this.pos += op.length;
      this.skipNewlines();
      this.parseCommand('pipe');
    }
  }

  private parseCommand(stdin: Stdin): void {
    this.enter();
    try {
      // `time [-p]` and `!` prefix a pipeline; both may stand alone (`time;`).
      for (let kw = this.keyword(); kw === 'time' || kw === '!'; kw = this.keyword()) {
        this.pos += kw.length;
        this.skipBlanks();
        if (kw === 'time' && /-p(?=[ \t\n;&|()<>]|$)/y.test(this.src.slice(this.pos, this.pos + 3))) this.pos += 2;
        this.skipBlanks();
        // bash's `time` also takes `--` before the pipeline (`time -p -- rm x`).
        if (kw === 'time' && /--(?=[ \t\n;&|()<>]|$)/y.test(this.src.slice(this.pos, this.pos + 3))) this.pos += 2;
        this.skipBlanks();
        const op = this.op();
        if (this.pos >= this.src.length || (op !== undefined && op !== '(' && !REDIRECTS.has(op) && !this.atWord())) return;
      }
      const kw = this.keyword();
      if (this.at('((')) this.parseArith(2, '))');
      else if (this.peek() === '(') {
        this.pos++;
        this.parseList(stdin, () => this.peek() === ')');
        this.expect(')');
      } else if (kw !== undefined && CLOSERS.has(kw)) throw new SyntaxError(`unexpected ${kw} at ${this.pos}`);
      else if (kw === undefined || !this.parseCompound(kw, stdin)) {
        this.parseSimple(stdin);
        return;
      }
      this.parseRedirects();
    } finally {
      this.nesting--;
    }
  }

  /** The compound commands that start with a keyword; false when `kw` starts none. */
  private parseCompound(kw: string, stdin: Stdin): boolean {
    const body = (...ends: string[]): void => {
      this.parseList(stdin, () => this.isKeyword(...ends));
    };
    switch (kw) {
      case 'if':
        this.pos += 2;
        body('then');
        this.expectKeyword('then');
        body('elif', 'else', 'fi');
        while (this.isKeyword('elif')) {
          this.pos += 4;
          body('then');
          this.expectKeyword('then');
          body('elif', 'else', 'fi');
        }
        if (this.isKeyword('else')) {
          this.pos += 4;
          body('fi');
        }
        this.expectKeyword('fi');
        return true;
      case 'while':
      case 'until':
        this.pos += kw.length;
        body('do');
        this.parseDoGroup(stdin);
        return true;
      case 'for':
      case 'select':
        this.pos += kw.length;
        this.skipBlanks();
        if (this.at('((')) this.parseArith(2, '))');
        else {
          checkVariable(this.readWord().text, this.sink);
          this.skipNewlines();
          if (this.isKeyword('in')) {
            this.pos += 2;
            this.skipBlanks();
            while (this.atWord()) {
              this.readWord();
              this.skipBlanks();
            }
          }
        }
        this.skipBlanks();
        if (this.peek() === ';') this.pos++;
        this.skipNewlines();
        this.parseDoGroup(stdin);
        return true;
      case 'case':
        this.parseCase(stdin);
        return true;
      case 'function':
        this.pos += 8;
        this.skipBlanks();
        this.readWord();
        this.parseFunctionBody(stdin);
        return true;
      case '{':
        this.pos++;
        body('}');
        this.expectKeyword('}');
        return true;
      case '[[':
        this.pos += 2;
        this.parseTest();
        return true;
      case 'coproc':
        this.pos += 6;
        this.skipBlanks();
        // `coproc NAME { ...; }`: a name is only allowed before a compound command.
        if (/[A-Za-z_]\w*[ \t]+(?:[({]|(?:if|while|until|for|select|case)(?=[ \t\n;&|()<>]|$)|\[\[)/y.test(this.src.slice(this.pos))) this.readWord();
        this.skipBlanks();
        this.parseCommand(stdin);
        return true;
      default:
        return false;
    }
  }

  private parseDoGroup(stdin: Stdin): void {
    if (this.isKeyword('{')) {
      this.pos++;
      this.parseList(stdin, () => this.isKeyword('}'));
      this.expectKeyword('}');
      return;
    }
    this.expectKeyword('do');
    this.parseList(stdin, () => this.isKeyword('done'));
    this.expectKeyword('done');
  }

  private parseCase(stdin: Stdin): void {
    this.pos += 4;
    this.skipBlanks();
    this.readWord();
    this.skipNewlines();
    this.expectKeyword('in');
    for (;;) {
      this.skipNewlines();
      if (this.isKeyword('esac')) break;
      if (this.peek() === '(') this.pos++;
      for (;;) {
        this.skipBlanks();
        this.readWord();
        this.skipBlanks();
        if (this.op() !== '|') break;
        this.pos++;
      }
      this.expect(')');
      this.parseList(stdin, () => this.isKeyword('esac') || CASE_ENDS.has(this.op() ?? ''));
      const end = this.op();
      if (end !== undefined && CASE_ENDS.has(end)) this.pos += end.length;
    }
    this.pos += 4;
  }

  /** After a function's name: optional `()`, then the body (a compound command). */
  private parseFunctionBody(stdin: Stdin): void {
    this.skipBlanks();
    if (this.peek() === '(') {
      this.pos++;
      this.expect(')');
    }
    this.skipNewlines();
    this.parseCommand(stdin);
  }

  /** `[[ ... ]]`: no commands inside, but arithmetic operators and `-v` may evaluate code. */
  private parseTest(): void {
    const tokens: Arg[] = [];
    for (;;) {
      this.skipNewlines();
      if (this.isKeyword(']]')) break;
      const op = this.op();
      if (op !== undefined && !this.atWord()) {
        this.pos += op.length;
        tokens.push(staticArg(op));
      } else if (this.atWord()) tokens.push(this.readWord());
      else throw new SyntaxError('unterminated [[');
    }
    this.pos += 2;
    tokens.forEach((t, i) => {
      const next = tokens[i + 1];
      if (/^-(?:eq|ne|lt|le|gt|ge)$/.test(t.text)) {
        for (const operand of [tokens[i - 1], next]) {
          if (operand !== undefined && (operand.dynamic || arithHasNames(operand.text))) this.sink.fail('arithmetic on variables');
        }
      }
      if (t.text === '-v' && next !== undefined && (next.dynamic || riskySubscript(next.text))) this.sink.fail('array subscript may run code');
    });
  }

  /** Arithmetic after `((`, `$((` or `$[`: reads to the matching close, checks for names. */
  private parseArith(open: number, close: '))' | ']'): void {
    const start = (this.pos += open);
    let depth = 0;
    const discard: Part[] = [];
    for (;;) {
      const c = this.peek();
      if (c === '') throw new SyntaxError('unterminated arithmetic');
      if (depth === 0 && this.at(close)) break;
      if (c === '(' || c === '[') depth++;
      else if (c === ')' || c === ']') depth--;
      if (c === '$') this.readDollar(discard, true);
      else if (c === '`') this.readBacktick(discard, true);
      else if (c === '"') this.readDouble(discard);
      else this.pos += c === '\\' ? 2 : 1;
    }
    const expr = this.src.slice(start, this.pos);
    this.pos += close.length;
    if (arithHasNames(expr)) this.sink.fail('arithmetic on variables');
  }

  private parseSimple(stdin: Stdin): void {
    const words: Arg[] = [];
    let input = stdin;
    for (;;) {
      this.skipBlanks();
      const redirection = this.redirection();
      if (redirection !== undefined) {
        input = this.parseRedirect(redirection) ?? input;
        continue;
      }
      if (!this.atWord()) {
        // `name() compound`: a function definition.
        if (this.peek() === '(' && words.length === 1) {
          this.parseFunctionBody(stdin);
          return;
        }
        break;
      }
      const word = this.readWord();
      if (words.length === 0 && word.assignment) checkAssignment(word.text, this.sink);
      else words.push(word);
      // `a=(1 2)` and `declare -a a=(1 2)`: an array literal follows a word ending in `=`.
      if (this.peek() === '(' && word.text.endsWith('=')) {
        const raw = this.parseArrayLiteral();
        if (words.at(-1) === word) words[words.length - 1] = { ...word, text: word.text + raw, arrayLiteral: true };
      }
    }
    if (words.length > 0) this.commands.push({ args: words, stdin: input });
  }

  private parseArrayLiteral(): string {
    const start = this.pos++;
    for (;;) {
      this.skipNewlines();
      if (this.peek() === ')') break;
      if (!this.atWord()) throw new SyntaxError('unterminated array');
      this.readWord();
    }
    this.pos++;
    return this.src.slice(start, this.pos);
  }

  /** The redirection starting here (`>`, `2>&1`, `{fd}<`), if one does; `<(` is a word. */
  private redirection(): { readonly fd: string | undefined; readonly op: string } | undefined {
    FD_PREFIX.lastIndex = this.pos;
    const fd = FD_PREFIX.exec(this.src)?.[0];
    const at = this.pos + (fd?.length ?? 0);
    const op = OPERATORS.find((o) => this.src.startsWith(o, at));
    if (op === undefined || !REDIRECTS.has(op) || /^[<>]\(/.test(this.src.slice(at, at + 2))) return undefined;
    return { fd, op };
  }

  /** The redirections after a compound command. */
  private parseRedirects(): void {
    for (;;) {
      this.skipBlanks();
      const r = this.redirection();
      if (r === undefined) return;
      this.parseRedirect(r);
    }
  }

  /** One redirection; returns how it feeds standard input, if it does. */
  private parseRedirect({ fd, op }: { readonly fd: string | undefined; readonly op: string }): Stdin | undefined {
    this.pos += (fd?.length ?? 0) + op.length;
    this.skipBlanks();
    if (!this.atWord()) throw new SyntaxError(`missing word after ${op}`);
    const start = this.pos;
    const target = this.readWord();
    const toStdin = fd === undefined || fd === '0';
    if (op === '<<' || op === '<<-') {
      const raw = this.src.slice(start, this.pos);
      this.pending.push({ delimiter: target.text, quoted: /['"\\]/.test(raw), stripTabs: op === '<<-' });
      return toStdin ? 'here' : undefined;
    }
    if (op === '<<<') return toStdin ? 'here' : undefined;
    return (op === '<' || op === '<>' || op === '<&') && toStdin ? 'file' : undefined;
  }

  /** Reads the bodies of the here-documents of the line just ended; expands unquoted ones. */
  private readHeredocs(): void {
    const docs = this.pending;
    this.pending = [];
    for (const doc of docs) {
      let body = '';
      while (this.pos < this.src.length) {
        const nl = this.src.indexOf('\n', this.pos);
        const end = nl < 0 ? this.src.length : nl;
        let line = this.src.slice(this.pos, end);
        this.pos = nl < 0 ? end : end + 1;
        if (doc.stripTabs) line = line.replace(/^\t+/, '');
        if (line === doc.delimiter) break;
        body += line + '\n';
      }
      // An unquoted here-document expands `$(...)`, backticks and arithmetic like "...".
      if (!doc.quoted) new Parser(body, this.sink, this.depth, false, this.commands).scanExpansions();
    }
  }

  /** Scans text with double-quote rules (a here-document body) for expansions. */
  private scanExpansions(): void {
    const discard: Part[] = [];
    while (this.pos < this.src.length) {
      const c = this.peek();
      if (c === '$') this.readDollar(discard, true);
      else if (c === '`') this.readBacktick(discard, true);
      else this.pos += c === '\\' ? 2 : 1;
    }
  }

  // --- words ---

  /** Reads one word (pos at its first character). */
  private readWord(): Arg {
    const parts: Part[] = [];
    const lit = (text: string, quoted: boolean): void => {
      parts.push({ kind: 'lit', text, quoted });
    };
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === '' || c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === ')') break;
      if ((c === '<' || c === '>') && this.peek(1) === '(') {
        const from = this.pos;
        this.pos += 2;
        this.parseNested();
        parts.push({ kind: 'subst', text: this.src.slice(from, this.pos), quoted: false });
        this.sink.fail('process substitution');
      } else if (c === '<' || c === '>') break;
      else if (c === '(') {
        // Only an extglob (`@(a|b)`, `!(x)`) has an unquoted `(` inside a word.
        const prev = parts.at(-1);
        if (prev?.kind !== 'lit' || prev.quoted || !/[@!+*?]$/.test(prev.text)) break;
        lit(this.readExtglob(), false);
      } else if (c === '\\') {
        if (this.peek(1) === '\n') this.pos += 2;
        else {
          lit(this.peek(1) === '' ? '\\' : this.peek(1), true);
          this.pos += 2;
        }
      } else if (c === "'") {
        const end = this.src.indexOf("'", this.pos + 1);
        if (end < 0) throw new SyntaxError('unterminated quote');
        lit(this.src.slice(this.pos + 1, end), true);
        this.pos = end + 1;
      } else if (c === '"') this.readDouble(parts);
      else if (c === '$' && this.peek(1) === "'") this.readAnsiC(parts);
      else if (c === '$' && this.peek(1) === '"') {
        this.pos++; // $"..." (locale translation) is "..." here
        this.readDouble(parts);
      } else if (c === '$') this.readDollar(parts, false);
      else if (c === '`') this.readBacktick(parts, false);
      else {
        lit(c, false);
        this.pos++;
      }
    }
    if (this.pos === start) throw new SyntaxError(`expected a word at ${this.pos}`);
    return toArg(parts);
  }

  private readExtglob(): string {
    const start = this.pos;
    let depth = 0;
    do {
      const c = this.peek();
      if (c === '') throw new SyntaxError('unterminated extglob');
      if (c === '(') depth++;
      else if (c === ')') depth--;
      this.pos += c === '\\' ? 2 : 1;
    } while (depth > 0);
    return this.src.slice(start, this.pos);
  }

  /** `"..."` (pos at the quote): literal text, `\` before $ ` " \ newline, and expansions. */
  private readDouble(parts: Part[]): void {
    this.pos++;
    for (;;) {
      const c = this.peek();
      if (c === '') throw new SyntaxError('unterminated double quote');
      if (c === '"') break;
      if (c === '\\' && this.peek(1) !== '' && '$`"\\\n'.includes(this.peek(1))) {
        if (this.peek(1) !== '\n') parts.push({ kind: 'lit', text: this.peek(1), quoted: true });
        this.pos += 2;
      } else if (c === '$') this.readDollar(parts, true);
      else if (c === '`') this.readBacktick(parts, true);
      else {
        parts.push({ kind: 'lit', text: c, quoted: true });
        this.pos++;
      }
    }
    this.pos++;
  }

  /** `$'...'` (pos at `$`): ANSI-C quoting. */
  private readAnsiC(parts: Part[]): void {
    const start = this.pos;
    let i = this.pos + 2;
    while (i < this.src.length && this.src.charAt(i) !== "'") i += this.src.charAt(i) === '\\' ? 2 : 1;
    if (i >= this.src.length) throw new SyntaxError('unterminated $\'');
    this.pos = i + 1;
    const value = decodeAnsiC(this.src.slice(start + 2, i));
    // An undecodable escape leaves the value unknown, like an expansion.
    parts.push(value === undefined ? { kind: 'param', text: this.src.slice(start, this.pos), quoted: true } : { kind: 'lit', text: value, quoted: true });
  }

  /** `$...` (pos at `$`): parameter, command substitution or arithmetic; else a literal `$`. */
  private readDollar(parts: Part[], quoted: boolean): void {
    const start = this.pos;
    const next = this.peek(1);
    if (this.at('$((')) {
      this.parseArith(3, '))');
      parts.push({ kind: 'arith', text: this.src.slice(start, this.pos), quoted });
    } else if (next === '[') {
      this.parseArith(2, ']');
      parts.push({ kind: 'arith', text: this.src.slice(start, this.pos), quoted });
    } else if (next === '(') {
      this.pos += 2;
      this.parseNested();
      this.sink.fail('command substitution');
      parts.push({ kind: 'subst', text: this.src.slice(start, this.pos), quoted });
    } else if (next === '{') {
      this.readBraceParam(quoted);
      parts.push({ kind: 'param', text: this.src.slice(start, this.pos), quoted });
    } else if (/[A-Za-z_]/.test(next)) {
      this.pos++;
      while (/\w/.test(this.peek())) this.pos++;
      parts.push({ kind: 'param', text: this.src.slice(start, this.pos), quoted });
    } else if (next !== '' && '0123456789@*#?$!-'.includes(next)) {
      this.pos += 2;
      parts.push({ kind: 'param', text: this.src.slice(start, this.pos), quoted });
    } else {
      this.pos++;
      parts.push({ kind: 'lit', text: '$', quoted });
    }
  }

  /** The commands of `$(...)` or `<(...)` (pos after the opening parenthesis). */
  private parseNested(): void {
    this.enter();
    this.parseList('none', () => this.peek() === ')');
    this.expect(')');
    this.nesting--;
  }

  /** `${...}` (pos at `$`). Indirection, `@P` and evaluated subscripts/offsets may run code. */
  private readBraceParam(inDouble: boolean): void {
    this.enter();
    const start = (this.pos += 2);
    const discard: Part[] = [];
    for (;;) {
      const c = this.peek();
      if (c === '') throw new SyntaxError('unterminated ${');
      if (c === '}') break;
      if (c === "'" && !inDouble) {
        const end = this.src.indexOf("'", this.pos + 1);
        if (end < 0) throw new SyntaxError('unterminated quote');
        this.pos = end + 1;
      } else if (c === '"') this.readDouble(discard);
      else if (c === '$') this.readDollar(discard, true);
      else if (c === '`') this.readBacktick(discard, true);
      else this.pos += c === '\\' ? 2 : 1;
    }
    const body = this.src.slice(start, this.pos++);
    this.nesting--;
    // `${!x}` uses x's value as a name (with a subscript, code); `${!pre*}`, `${!a[@]}` list names.
    if (/^!(?!$|#$|[A-Za-z_]\w*(?:[*@]|\[[*@]\])$)/.test(body)) this.sink.fail('indirect expansion');
    if (/@P$/.test(body)) this.sink.fail('prompt expansion');
    const m = /^[#!]?(?:[A-Za-z_]\w*|\d+|[@*#?$!-])(\[[^\]]*\])?(.*)$/s.exec(body);
    if (m?.[1] !== undefined && riskySubscript(m[1])) this.sink.fail('array subscript may run code');
    const rest = m?.[2] ?? '';
    if (/^:[^-=+?]/.test(rest) && arithHasNames(rest.slice(1))) this.sink.fail('arithmetic on variables');
  }

  /** `` `...` `` (pos at the backtick): the old command substitution, parsed as its own script. */
  private readBacktick(parts: Part[], inDouble: boolean): void {
    const start = this.pos++;
    let inner = '';
    for (;;) {
      const c = this.peek();
      if (c === '') throw new SyntaxError('unterminated backtick');
      if (c === '`') break;
      const n = this.peek(1);
      if (c === '\\' && (n === '`' || n === '\\' || n === '$' || (inDouble && n === '"'))) {
        inner += n;
        this.pos += 2;
      } else {
        inner += c;
        this.pos++;
      }
    }
    this.pos++;
    this.sink.fail('command substitution');
    parts.push({ kind: 'subst', text: this.src.slice(start, this.pos), quoted: inDouble });
    // Best effort: the inner commands are reported too (the line is unresolvable anyway).
    if (this.depth < MAX_DEPTH) {
      try {
        new Parser(inner, this.sink, this.depth + 1, false, this.commands).parseScript();
      } catch {
        // unresolvable already
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Resolution: program names and wrappers

/** `appended`: xargs adds arguments read from its input after these. */
type Step = { readonly argv: readonly Arg[]; readonly appended?: boolean } | { readonly script: Arg } | { readonly reason: string };

/** Adds a command (and, recursively, what it wraps) to the sink. `appended`: see Step. */
async function resolve(args: readonly Arg[], stdin: Stdin, depth: number, sink: Sink, wrappers = 0, appended = false): Promise<void> {
  const prog = args[0];
  if (prog === undefined) return;
  const rest = args.slice(1).map((a) => a.text);
  const dynamic = appended || args.slice(1).some((a) => a.dynamic || a.pattern);
  if (prog.dynamic || prog.pattern) {
    // A command substitution was reported where it was found.
    if (prog.pattern) sink.fail('glob or brace expansion as program');
    else if (!prog.subst) sink.fail('variable as program');
    sink.add([prog.text, ...rest], dynamic);
    return;
  }
  const slash = prog.text.lastIndexOf('/');
  const name = slash >= 0 && slash < prog.text.length - 1 ? prog.text.slice(slash + 1) : prog.text;
  sink.add([name, ...rest], dynamic);
  checkBuiltin(name, args, sink);
  const steps = unwrap(name, args, stdin, sink);
  // Appended words could be the wrapped command, options that change what runs, or file names
  // that turn into options (tar's --to-command).
  if (appended && (APPEND_UNSAFE.has(name) || (WRAPPERS.has(name) && steps.every((step) => 'reason' in step)))) {
    sink.fail(`arguments appended to ${name}`);
  }
  for (const step of steps) {
    if ('reason' in step) sink.fail(step.reason);
    else if ('script' in step) {
      if (step.script.dynamic) sink.fail('dynamic shell command');
      else await analyzeScript(step.script.text, depth + 1, sink);
    } else if (wrappers >= MAX_WRAPPERS) sink.fail('too many wrappers');
    else await resolve(step.argv, stdin, depth, sink, wrappers + 1, appended || step.appended === true);
  }
}

/** Options of a wrapper: short flags, short options taking a value, long options. */
interface OptSpec {
  readonly flags?: string;
  readonly withArg?: string;
  /** short options whose value, if any, is attached (`-i{}`, `-hhost`) */
  readonly optArg?: string;
  /** long name -> its short option, or '' (a flag, `=value` optional) or ':' (takes a value) */
  readonly long?: Readonly<Record<string, string>>;
  /** `-5` style numbers are flags (nice) */
  readonly numeric?: boolean;
  /** `+o` style options too (shells) */
  readonly plus?: boolean;
  /** options may follow operands (GNU getopt permutation: su) */
  readonly permute?: boolean;
}

interface Scanned {
  /** option key -> its value (short letter, or long name for long-only options) */
  readonly opts: Map<string, Arg | undefined>;
  /** the operands: the wrapped command and its arguments */
  readonly rest: readonly Arg[];
  readonly error?: string;
}

/**
 * Reads a wrapper's options, stopping at the first operand (or `--`). An unknown option or an
 * option that is only known at run time makes the line unresolvable: guessing whether it takes a
 * value would shift which word is the wrapped program.
 */
function scanOptions(cmd: string, args: readonly Arg[], spec: OptSpec): Scanned {
  const opts = new Map<string, Arg | undefined>();
  const operands: Arg[] = [];
  const fail = (error: string): Scanned => ({ opts, rest: [], error });
  const has = (set: string | undefined, c: string): boolean => c !== '' && set?.includes(c) === true;
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (a === undefined) break;
    const t = a.text;
    const isOption = t.length > 1 && (t.startsWith('-') || (spec.plus === true && t.startsWith('+')));
    // A word known only at run time could be an option, an option's value or the command.
    if (a.dynamic && (a.leadingDynamic || isOption)) return fail(`dynamic argument to ${cmd}`);
    if (t === '--' || !isOption) {
      const tail = args.slice(t === '--' ? i + 1 : i);
      if (spec.permute !== true || t === '--') return { opts, rest: [...operands, ...tail] };
      operands.push(a);
      continue;
    }
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      const long = t.slice(2, eq < 0 ? undefined : eq);
      const key = spec.long !== undefined && Object.hasOwn(spec.long, long) ? spec.long[long] : undefined;
      if (key === undefined) return fail(`unknown option ${t} of ${cmd}`);
      const takesValue = key === ':' || has(spec.withArg, key);
      const k = key === '' || key === ':' ? long : key;
      if (eq >= 0) opts.set(k, staticArg(t.slice(eq + 1)));
      else if (takesValue) {
        const v = args[++i];
        if (v === undefined || v.dynamic) return fail(`missing or dynamic value for ${t} of ${cmd}`);
        opts.set(k, v);
      } else opts.set(k, undefined);
      continue;
    }
    for (let j = 1; j < t.length; j++) {
      const c = t.charAt(j);
      if (spec.numeric === true && /\d/.test(c)) continue;
      if (has(spec.withArg, c) || has(spec.optArg, c)) {
        let value: Arg | undefined = j + 1 < t.length ? staticArg(t.slice(j + 1)) : undefined;
        if (value === undefined && has(spec.withArg, c)) {
          value = args[++i];
          if (value === undefined || value.dynamic) return fail(`missing or dynamic value for -${c} of ${cmd}`);
        }
        opts.set(c, value);
        break;
      }
      if (!has(spec.flags, c)) return fail(`unknown option -${c} of ${cmd}`);
      opts.set(c, undefined);
    }
  }
  return { opts, rest: operands };
}

const HELP = { help: '', version: '' };
const SPEC_TABLE: Record<string, OptSpec> = {
  sudo: {
    flags: 'AbEeHiKklnPSsVvBN',
    withArg: 'ugpCrtTUDRac',
    optArg: 'h',
    long: {
      user: 'u', group: 'g', prompt: 'p', 'close-from': 'C', role: 'r', type: 't', 'command-timeout': 'T', 'other-user': 'U',
      chdir: 'D', chroot: 'R', 'auth-type': 'a', 'login-class': 'c', host: ':', askpass: 'A', background: 'b', 'preserve-env': '',
      edit: 'e', 'set-home': 'H', login: 'i', 'remove-timestamp': 'K', 'reset-timestamp': 'k', list: 'l', 'non-interactive': 'n',
      'preserve-groups': 'P', stdin: 'S', shell: 's', version: 'V', validate: 'v', bell: 'B', help: 'h',
    },
  },
  doas: { flags: 'nsL', withArg: 'uCa' },
  env: {
    flags: 'i0v',
    withArg: 'uCSPa',
    long: {
      'ignore-environment': 'i', null: '0', unset: 'u', chdir: 'C', 'split-string': 'S', debug: 'v', argv0: 'a',
      'block-signal': '', 'default-signal': '', 'ignore-signal': '', 'list-signal-handling': '', ...HELP,
    },
  },
  nohup: { long: HELP },
  timeout: { flags: 'v', withArg: 'ks', long: { 'kill-after': 'k', signal: 's', 'preserve-status': '', foreground: '', verbose: 'v', ...HELP } },
  nice: { withArg: 'n', long: { adjustment: 'n', ...HELP }, numeric: true },
  ionice: { flags: 'tV', withArg: 'cnpPu', long: { class: 'c', classdata: 'n', pid: 'p', pgid: 'P', uid: 'u', ignore: 't', ...HELP } },
  stdbuf: { withArg: 'ioe', long: { input: 'i', output: 'o', error: 'e', ...HELP } },
  setsid: { flags: 'cfw', long: { ctty: 'c', fork: 'f', wait: 'w', ...HELP } },
  chroot: { long: { userspec: ':', groups: ':', 'skip-chdir': '', ...HELP } },
  time: { flags: 'pvaqV', withArg: 'fo', long: { portability: 'p', verbose: 'v', append: 'a', quiet: 'q', format: 'f', output: 'o', ...HELP } },
  strace: {
    flags: 'cCdDfFhiknqrtTvVwxyzZY',
    withArg: 'abeEIoOpPsSuUX',
    long: {
      'follow-forks': 'f', 'output-separately': '', 'summary-only': 'c', summary: 'C', trace: 'e', signal: ':', status: ':', 'trace-path': 'P',
      output: 'o', attach: 'p', 'string-limit': 's', user: 'u', env: 'E', 'no-abbrev': 'v', quiet: '', 'decode-fds': '', 'stack-trace': 'k', ...HELP,
    },
  },
  xargs: {
    flags: '0prtxo',
    withArg: 'adEILnPsJRS',
    optArg: 'eil',
    long: {
      null: '0', interactive: 'p', 'no-run-if-empty': 'r', verbose: 't', exit: 'x', 'open-tty': 'o', 'arg-file': 'a', delimiter: 'd',
      'max-lines': 'l', 'max-args': 'n', 'max-procs': 'P', 'max-chars': 's', eof: 'e', replace: 'i', 'process-slot-var': ':', 'show-limits': '', ...HELP,
    },
  },
  watch: {
    flags: 'bceCghptxwrfv',
    withArg: 'nq',
    optArg: 'd',
    long: {
      interval: 'n', differences: 'd', chgexit: 'g', errexit: 'e', beep: 'b', color: 'c', 'no-color': 'C', 'no-title': 't', exec: 'x',
      precise: 'p', 'no-wrap': 'w', 'no-rerun': 'r', follow: 'f', equexit: 'q', help: 'h', version: 'v',
    },
  },
  su: {
    flags: 'lmpfPhVT',
    withArg: 'csgGwu',
    long: {
      command: 'c', 'session-command': 'c', shell: 's', group: 'g', 'supp-group': 'G', login: 'l', 'preserve-environment': 'p',
      'whitelist-environment': 'w', pty: 'P', fast: 'f', user: 'u', ...HELP,
    },
    permute: true,
  },
  shell: {
    flags: 'abcefhiklmnprstuvxBCDEHPT',
    withArg: 'oO',
    plus: true,
    long: {
      login: '', norc: '', noprofile: '', posix: '', restricted: '', verbose: '', debugger: '', 'dump-strings': '', 'dump-po-strings': '',
      noediting: '', 'pretty-print': '', rcfile: ':', 'init-file': ':', ...HELP,
    },
  },
  flock: {
    flags: 'sexnoFuhV',
    withArg: 'wE',
    long: {
      shared: 's', exclusive: 'x', unlock: 'u', nonblock: 'n', nb: 'n', timeout: 'w', wait: 'w', 'conflict-exit-code': 'E', close: 'o', 'no-fork': 'F',
      verbose: '', ...HELP,
    },
  },
  setpriv: {
    flags: 'dhV',
    long: {
      dump: 'd', nnp: '', 'no-new-privs': '', 'inh-caps': ':', 'ambient-caps': ':', 'bounding-set': ':', ruid: ':', euid: ':', rgid: ':', egid: ':',
      reuid: ':', regid: ':', 'clear-groups': '', 'keep-groups': '', 'init-groups': '', groups: ':', securebits: ':', pdeathsig: ':',
      'selinux-label': ':', 'apparmor-profile': ':', 'landlock-access': ':', 'landlock-rule': ':', 'reset-env': '', ...HELP,
    },
  },
  taskset: { flags: 'apchV', long: { 'all-tasks': 'a', pid: 'p', 'cpu-list': 'c', ...HELP } },
  unshare: {
    flags: 'fhVmuinpCTUrc',
    withArg: 'RwSGl',
    long: {
      mount: '', uts: '', ipc: '', net: '', pid: '', user: '', cgroup: '', time: '', fork: 'f', 'kill-child': '', 'mount-proc': '', propagation: ':',
      setgroups: ':', 'map-user': ':', 'map-group': ':', 'map-users': ':', 'map-groups': ':', 'map-auto': '', 'map-root-user': 'r',
      'map-current-user': 'c', 'keep-caps': '', root: 'R', wd: 'w', setuid: 'S', setgid: 'G', 'load-interp': 'l', monotonic: ':', boottime: ':', ...HELP,
    },
  },
  pkexec: { withArg: 'u', long: { user: 'u', 'disable-internal-agent': '', 'keep-cwd': '', ...HELP } },
  run0: {
    flags: 'hVi',
    withArg: 'ugD',
    long: {
      'no-ask-password': '', machine: ':', unit: ':', property: ':', description: ':', slice: ':', 'slice-inherit': '', user: 'u', group: 'g',
      nice: ':', chdir: 'D', setenv: ':', background: ':', 'shell-prompt-prefix': ':', lightweight: ':', pty: '', pipe: '', area: ':',
      'via-shell': '', empower: '', ...HELP,
    },
  },
  nsenter: {
    flags: 'ahVeFZ',
    withArg: 'tSG',
    optArg: 'muinpCUTrwW',
    long: {
      all: 'a', target: 't', mount: 'm', uts: 'u', ipc: 'i', net: 'n', pid: 'p', cgroup: 'C', user: 'U', time: 'T', setuid: 'S', setgid: 'G',
      'preserve-credentials': '', root: 'r', wd: 'w', wdns: 'W', env: 'e', 'no-fork': 'F', 'follow-context': 'Z', 'join-cgroup': '',
      'user-parent': '', 'keep-caps': '', ...HELP,
    },
  },
  chrt: {
    flags: 'abdfiompRrvhV',
    withArg: 'TPD',
    long: {
      'all-tasks': 'a', batch: 'b', deadline: 'd', fifo: 'f', idle: 'i', other: 'o', rr: 'r', 'reset-on-fork': 'R', 'sched-runtime': 'T',
      'sched-period': 'P', 'sched-deadline': 'D', pid: 'p', max: 'm', verbose: 'v', ...HELP,
    },
  },
  prlimit: {
    flags: 'hV',
    withArg: 'po',
    optArg: 'cdefilmnqrstuvxy',
    long: {
      pid: 'p', output: 'o', noheadings: '', raw: '', verbose: '', core: 'c', data: 'd', nice: 'e', fsize: 'f', sigpending: 'i', memlock: 'l',
      rss: 'm', nofile: 'n', msgqueue: 'q', rtprio: 'r', stack: 's', cpu: 't', nproc: 'u', as: 'v', locks: 'x', rttime: 'y', ...HELP,
    },
  },
  setarch: {
    flags: 'vhV3BFILRSTXZ',
    long: {
      'addr-no-randomize': 'R', 'fdpic-funcptrs': 'F', 'mmap-page-zero': 'Z', 'addr-compat-layout': 'L', 'read-implies-exec': 'X', '32bit': 'B',
      'short-inode': 'I', 'whole-seconds': 'S', 'sticky-timeouts': 'T', '3gb': '3', '4gb': '', 'uname-2.6': '', verbose: 'v', list: '', ...HELP,
    },
  },
  ltrace: {
    flags: 'bcCfhiLrStTV',
    withArg: 'aADeFlnopsuwx',
    long: { align: 'a', demangle: 'C', debug: 'D', config: 'F', library: 'l', output: 'o', where: 'w', indent: 'n', 'no-signals': 'b', ...HELP },
  },
  script: {
    flags: 'aefqhV',
    withArg: 'cEBIOTm',
    optArg: 't',
    long: {
      append: 'a', command: 'c', echo: 'E', return: 'e', flush: 'f', force: '', 'log-io': 'B', 'log-in': 'I', 'log-out': 'O', 'log-timing': 'T',
      'logging-format': 'm', quiet: 'q', timing: 't', ...HELP,
    },
    permute: true,
  },
  command: { flags: 'pvV' },
  exec: { flags: 'cl', withArg: 'a' },
  trap: { flags: 'lpP' },
  mapfile: { flags: 't', withArg: 'dnOsuCc' },
};
const SPECS = new Map(Object.entries(SPEC_TABLE));
const READ: OptSpec = { flags: 'ers', withArg: 'adinNptu' };

/** Shells whose `-c STR` is parsed (as bash: close enough to find the commands, or a parse error). */
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'yash', 'posh', 'rbash', 'fish', 'csh', 'tcsh']);
/** POSIX shells (/bin/sh is dash): no `$'...'`, so bash would split their scripts differently. */
const POSIX_SHELLS = new Set(['sh', 'dash', 'ash', 'posh']);
/** Commands that run another command given as their arguments. */
const WRAPPERS = new Set([
  ...SHELLS, ...Object.keys(SPEC_TABLE).filter((n) => !['trap', 'mapfile'].includes(n)), 'runuser', 'builtin', 'busybox', 'find',
]);
/** Commands where words xargs appends can change what runs even after a static command. */
const APPEND_UNSAFE = new Set(['find', 'watch', 'su', 'runuser', 'script', 'git', 'tar']);
const FIND_EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir']);

/** The option syntax of a wrapper (aliases share one). */
function specFor(name: string): OptSpec | undefined {
  if (SHELLS.has(name)) return SPECS.get('shell');
  return SPECS.get(name === 'runuser' ? 'su' : name === 'readarray' ? 'mapfile' : name);
}


/** Why a shell reading its commands from standard input cannot be resolved. */
function stdinShell(stdin: Stdin): Step {
  const reason = { pipe: 'payload piped into a shell', here: 'here-document fed to a shell', file: 'script file', none: 'shell reading commands from standard input' }[stdin];
  return { reason };
}

/** Skips the `NAME=value` words env and sudo take before the command (any name), checking them. */
function skipAssignments(args: readonly Arg[], sink: Sink): readonly Arg[] {
  let i = 0;
  for (const a of args) {
    if (a.leadingDynamic || !/^[^=]+=/.test(a.text)) break;
    checkAssignment(a.text, sink);
    i++;
  }
  return args.slice(i);
}

/** What a command runs besides itself. */
function unwrap(name: string, args: readonly Arg[], stdin: Stdin, sink: Sink): Step[] {
  const spec = specFor(name);
  const s = spec === undefined ? undefined : scanOptions(name, args, spec);
  if (s?.error !== undefined) return [{ reason: s.error }];
  const rest = s?.rest ?? [];
  const has = (k: string): boolean => s?.opts.has(k) === true;
  const command = (argv: readonly Arg[]): Step[] => (argv.length > 0 ? [{ argv }] : []);
  if (SHELLS.has(name)) {
    if (has('help') || has('version')) return [];
    if (args.some((a) => a.text === 'expand_aliases')) return [{ reason: 'expand_aliases' }];
    const operands = rest[0]?.text === '-' ? rest.slice(1) : rest;
    if (has('c')) {
      const script = operands[0];
      if (script === undefined) return [{ reason: 'shell without its command string' }];
      return POSIX_SHELLS.has(name) && script.text.includes("$'") ? [{ reason: "$'...' in a POSIX shell script" }] : [{ script }];
    }
    return operands.length > 0 && !has('s') ? [{ reason: 'script file' }] : [stdinShell(stdin)];
  }
  switch (name) {
    case 'sudo': {
      // -e edits files, -l/-v/-K/-V/-h do not run anything.
      if (['e', 'l', 'v', 'K', 'V', 'h'].some(has)) return [];
      const argv = skipAssignments(rest, sink);
      // `sudo -s` / `sudo -i` without a command is a root shell reading standard input.
      if (argv.length === 0) return has('s') || has('i') ? [stdinShell(stdin)] : [];
      return [{ argv }];
    }
    case 'doas':
      if (has('C') || has('L')) return [];
      return rest.length === 0 && has('s') ? [stdinShell(stdin)] : command(rest);
    case 'env': {
      if (has('S')) return [{ reason: 'env -S split string' }];
      const tail = rest[0]?.text === '-' ? rest.slice(1) : rest;
      return command(skipAssignments(tail, sink));
    }
    case 'timeout':
      return command(rest.slice(1));
    case 'chroot':
      return rest.length === 1 ? [stdinShell(stdin)] : command(rest.slice(1));
    case 'ionice':
      return has('p') || has('P') || has('u') ? [] : command(rest);
    case 'flock': {
      // flock [opts] FILE cmd... | flock [opts] FILE -c STR | flock [opts] FD
      const flag = rest[1]?.text;
      const script = rest[2];
      if (flag === '-c' || flag === '--command') return script === undefined ? [] : [{ script }];
      return command(rest.slice(1));
    }
    case 'taskset':
      return has('p') ? [] : command(rest.slice(1));
    case 'chrt':
      if (has('p') || has('m')) return [];
      // The priority is optional for policies that do not use one (newer util-linux).
      return command(/^\d+$/.test(rest[0]?.text ?? '') ? rest.slice(1) : rest);
    case 'prlimit':
      return has('p') ? [] : command(rest);
    case 'setpriv':
      return command(rest);
    case 'run0': {
      const env = s?.opts.get('setenv');
      if (env !== undefined) checkAssignment(env.text, sink);
      return rest.length === 0 ? [stdinShell(stdin)] : command(rest);
    }
    case 'unshare':
    case 'pkexec':
    case 'nsenter':
      // Without a command they start a shell.
      return rest.length === 0 ? [stdinShell(stdin)] : command(rest);
    case 'setarch': {
      // setarch ARCH [opts] [cmd...]: the architecture comes before the options.
      const arch = args[1];
      if (arch === undefined || arch.dynamic) return [{ reason: 'dynamic argument to setarch' }];
      if (arch.text.startsWith('-')) return [];
      const t = scanOptions(name, [args[0] ?? arch, ...args.slice(2)], SPECS.get('setarch') ?? {});
      if (t.error !== undefined) return [{ reason: t.error }];
      return t.rest.length === 0 ? [stdinShell(stdin)] : command(t.rest);
    }
    case 'script': {
      const c = s?.opts.get('c');
      if (c !== undefined) return [{ script: c }];
      return has('help') || has('version') ? [] : [stdinShell(stdin)];
    }
    case 'git':
      return gitRunsConfigCode(args) ? [{ reason: 'git alias or config that runs a command' }] : [];
    case 'tar':
      return tarRunsCommand(args) ? [{ reason: 'tar option that runs a command' }] : [];
    case 'ltrace':
    case 'strace':
    case 'nohup':
    case 'nice':
    case 'stdbuf':
    case 'setsid':
    case 'time':
    case 'exec':
      return command(rest);
    case 'command':
      return has('v') || has('V') ? [] : command(rest);
    case 'builtin':
      return command(args.slice(args[1]?.text === '--' ? 2 : 1));
    case 'busybox':
      return args[1]?.text.startsWith('-') === true ? [] : command(args.slice(1));
    case 'xargs': {
      // The replacement string stands for input data: where it appears the value is unknown.
      const marker = s?.opts.get('I')?.text ?? (has('i') ? (s?.opts.get('i')?.text ?? '{}') : '');
      const argv = rest.map((a) => withPlaceholder(a, marker));
      // Without a replacement string, xargs appends the words it reads to the command.
      return argv.length > 0 ? [{ argv, appended: marker === '' }] : [];
    }
    case 'find': {
      // Any run-time word could expand to `-exec ... ;` (or end one early).
      if (args.some((a) => a.dynamic)) return [{ reason: 'dynamic find arguments' }];
      const steps: Step[] = [];
      for (let i = 1; i < args.length; i++) {
        if (!FIND_EXEC.has(args[i]?.text ?? '')) continue;
        const body: Arg[] = [];
        for (i++; i < args.length; i++) {
          const a = args[i];
          if (a === undefined || a.text === ';' || (a.text === '+' && body.at(-1)?.text === '{}')) break;
          body.push(withPlaceholder(a, '{}'));
        }
        steps.push(...command(body));
      }
      return steps;
    }
    case 'watch': {
      if (has('x')) return command(rest);
      if (rest.length === 0) return [];
      // watch hands its operands, joined by spaces, to `sh -c`.
      const text = rest.map((a) => a.text).join(' ');
      if (text.includes("$'")) return [{ reason: "$'...' in a POSIX shell script" }];
      return [{ script: { ...staticArg(text), dynamic: rest.some((a) => a.dynamic) } }];
    }
    case 'su':
    case 'runuser': {
      const c = s?.opts.get('c');
      if (c !== undefined) return [{ script: c }];
      const operands = rest.filter((a) => a.text !== '-');
      if (name === 'runuser' && has('u')) return command(operands);
      return operands.length > 1 ? [{ reason: 'script file' }] : [stdinShell(stdin)];
    }
    case 'eval':
      return [{ reason: 'eval' }];
    case 'source':
    case '.':
      return [{ reason: 'source of a file' }];
    case 'trap': {
      if (has('l') || has('p') || has('P')) return [];
      const action = rest[0];
      return rest.length >= 2 && action !== undefined && action.text !== '-' && action.text !== '' ? [{ script: action }] : [];
    }
    case 'mapfile':
    case 'readarray': {
      const callback = s?.opts.get('C');
      return callback === undefined ? [] : [{ script: callback }];
    }
    default:
      return [];
  }
}

/** `git -c alias.x='!cmd'` (or `--config-env`) defines a subcommand that runs a shell command. */
function gitRunsConfigCode(args: readonly Arg[]): boolean {
  // Only the options before the subcommand configure git; a run-time word there could be `-c`.
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (a === undefined || a.leadingDynamic) return true;
    if (!a.text.startsWith('-')) return false;
    const m = /^(-c|--config-env)(?:=(.*))?$/s.exec(a.text);
    if (m !== null) {
      const value = m[2] !== undefined ? staticArg(m[2]) : args[++i];
      if (value === undefined) return false;
      if (value.dynamic || (/^alias\./i.test(value.text) && (m[1] === '--config-env' || /^[^=]*=\s*!/.test(value.text)))) return true;
    } else if (/^(?:-C|--git-dir|--work-tree|--namespace|--super-prefix|--exec-path)$/.test(a.text)) i++;
  }
  return false;
}

/** GNU tar options that run a program (long options may be abbreviated to any unique prefix). */
function tarRunsCommand(args: readonly Arg[]): boolean {
  const LONG = ['to-command', 'use-compress-program', 'info-script', 'new-volume-script', 'rsh-command', 'rmt-command'];
  return args.slice(1).some((a, i) => {
    // A word only known at run time (`*` expanding to a file named `--to-command=...`) could be any option.
    if (a.leadingDynamic || (a.pattern && /^[*?[{]/.test(a.text))) return true;
    const t = a.text;
    if (t.includes('--checkpoint-action=exec') || LONG.some((o) => t.includes(`--${o}`))) return true;
    const long = /^--([^=]+)(?:=(.*))?$/s.exec(t);
    if (long !== null) {
      const n = long[1] ?? '';
      if (LONG.some((o) => o.startsWith(n))) return true;
      return n.length > 'checkpoint'.length && 'checkpoint-action'.startsWith(n) && /exec/.test(long[2] ?? '');
    }
    // Short options (`-I prog`, `-F script`), also bundled: `-cIf`, or the old style `tar cIf ...`.
    return (/^-[^-]/.test(t) || (i === 0 && !t.startsWith('-'))) && /[IF]/.test(t.slice(0, t.search(/[^A-Za-z-]|$/)));
  });
}

const DECLARATIONS = new Set(['declare', 'typeset', 'local', 'readonly', 'export']);

/**
 * Builtins that evaluate text given as data: a variable name with a subscript (`a[$(cmd)]`) is
 * evaluated as arithmetic, which runs command substitutions held in the text.
 */
function checkBuiltin(name: string, args: readonly Arg[], sink: Sink): void {
  const checkName = (a: Arg | undefined): void => {
    if (a?.dynamic === true) sink.fail('dynamic variable name');
    else if (a !== undefined) checkVariable(a.text, sink);
  };
  const after = (flag: string): Arg | undefined => args[args.findIndex((a) => a.text === flag) + 1];
  const operands = args.slice(1).filter((a) => a.leadingDynamic || !/^[-+]./.test(a.text));
  if (DECLARATIONS.has(name)) {
    const flags = args.slice(1).filter((a) => !a.leadingDynamic && /^[-+]./.test(a.text)).map((a) => a.text).join('');
    if (/i/.test(flags) && name !== 'export') sink.fail('integer attribute');
    for (const a of operands) {
      // `declare "$x"` may turn out to be an option; with -a, a dynamic value is re-parsed as code.
      if ((a.leadingDynamic && name !== 'export') || (/[aA]/.test(flags) && a.dynamic)) sink.fail('dynamic declaration');
      // A quoted array value (`declare -a 'x=($(cmd))'`, or `(...)` for a name already an array) is parsed as code.
      const value = a.text.slice(a.text.indexOf('=') + 1);
      if (a.text.includes('=') && a.arrayLiteral !== true && ((/[aA]/.test(flags) && /[($`]/.test(value)) || (value.startsWith('(') && /[$`]/.test(value)))) {
        sink.fail('array value parsed as code');
      }
      checkAssignment(a.text, sink);
      const eq = a.text.indexOf('=');
      if (/n/.test(flags) && eq >= 0) checkName(staticArg(a.text.slice(eq + 1)));
    }
    return;
  }
  switch (name) {
    case 'let':
      if (args.slice(1).some((a) => a.dynamic || arithHasNames(a.text))) sink.fail('arithmetic on variables');
      return;
    case 'unset':
    case 'getopts':
      (name === 'unset' ? operands : operands.slice(1)).forEach(checkName);
      return;
    case 'read':
    case 'mapfile':
    case 'readarray': {
      const s = scanOptions(name, args, name === 'read' ? READ : (SPECS.get('mapfile') ?? {}));
      if (s.error !== undefined) sink.fail(s.error);
      checkName(s.opts.get('a'));
      s.rest.forEach(checkName);
      return;
    }
    case 'printf':
      if (args[1]?.text === '-v') checkName(args[2]);
      return;
    case 'wait':
      if (args.some((a) => a.text === '-p')) checkName(after('-p'));
      return;
    case 'test':
    case '[':
      args.forEach((a, i) => {
        if (a.text === '-v') checkName(args[i + 1]);
      });
      return;
    case 'shopt':
      if (args.some((a) => a.dynamic || a.text === 'expand_aliases')) sink.fail('expand_aliases');
      return;
    case 'alias':
      if (operands.some((a) => a.text.includes('='))) sink.fail('alias definition');
      return;
    case 'hash':
      if (args.some((a) => /^-\w*p/.test(a.text))) sink.fail('hash -p rebinds a command name');
      return;
    case 'enable':
      if (args.some((a) => /^-\w*f/.test(a.text))) sink.fail('enable -f loads code');
      return;
    case 'compgen':
    case 'complete':
      if (args.some((a) => /^-\w*C/.test(a.text))) sink.fail('completion command');
      return;
  }
}
