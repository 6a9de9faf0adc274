/**
 * The bash syntax tree of a command line, from tree-sitter-bash (a WASM build of the maintained
 * tree-sitter grammar, run by web-tree-sitter), walked into what policy needs: every simple
 * command with its words after quote removal, and where its standard input comes from.
 *
 * The grammar is loaded once (`loadShellParser()`, async: it compiles WASM); parsing and walking
 * are synchronous and pure. Tree-sitter recovers from errors instead of failing, so any ERROR or
 * MISSING node is a parse error, and any node kind the walker does not know is unsupported: the
 * caller makes the line unresolvable. Where tree-sitter-bash reads bash differently, the line is
 * adjusted before parsing without moving any offset (the walker reads every word from the
 * original text):
 *
 * - `time` and `coproc` are reserved words to bash but plain command names to the grammar
 *   (`time -p { ls; }` would split at the braces): in command position they are blanked out,
 *   with `time`'s `-p` and `--` and a `coproc` name before a compound command, and the line is
 *   parsed again. bash runs the same commands either way.
 * - `{` is a reserved word only as a whole word; the grammar also takes `{rm,ls}` for a group.
 *   A `{` followed by a word character is read as the letter `x` (same token class), so the
 *   word stays a word; its text (and so its brace expansion) comes from the original.
 * - An fd number or `{var}` written against a redirection (`cat 0<f`, `exec {fd}>x`) is a
 *   redirection to bash, sometimes an argument to the grammar: such words are dropped.
 * - The grammar puts the words after a redirection's target into the redirection
 *   (`rm >/dev/null -rf /`, `cat <<EOF -n`); bash reads them as arguments, and so does the walker.
 * - A backslash-newline inside a word joins it (`r\<newline>m` is `rm`); the grammar reads a blank.
 */
import { createRequire } from 'node:module';
import { Language, Parser, type Node, type Tree } from 'web-tree-sitter';
import {
  arithHasNames,
  checkAssignment,
  checkVariable,
  decodeAnsiC,
  riskySubscript,
  staticArg,
  toArg,
  type Arg,
  type Part,
  type RawCommand,
  Sink,
  type Stdin,
} from './words.ts';

let parser: Parser | undefined;
let loading: Promise<void> | undefined;

/** Loads the bash grammar (WASM). Idempotent; await it once before `parseShell`. */
export function loadShellParser(): Promise<void> {
  loading ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-bash/tree-sitter-bash.wasm');
    const p = new Parser();
    p.setLanguage(await Language.load(wasm));
    parser = p;
  })();
  return loading;
}

/** A line that cannot be walked: a parse error, or syntax the walker does not support. */
export class ShellSyntaxError extends Error {
  readonly kind: 'parse error' | 'unsupported syntax';
  constructor(kind: 'parse error' | 'unsupported syntax', message: string) {
    super(message);
    this.kind = kind;
  }
}

/** Syntactic nesting (subshells, blocks, `${...}`, words in words) the walker follows at most. */
const MAX_NESTING = 256;
/** Re-parses after blanking `time` / `coproc` keywords, at most. */
const MAX_ROUNDS = 8;

/**
 * The simple commands of one script, in order (a command substitution's commands before the
 * command that contains it). Checks that make the line unresolvable are reported to `sink`.
 * Throws ShellSyntaxError when the script does not parse or uses syntax the walker does not know.
 */
export function parseShell(src: string, sink: Sink): RawCommand[] {
  if (parser === undefined) throw new ShellSyntaxError('unsupported syntax', 'the bash parser is not loaded (loadShellParser)');
  let copy = prepare(src);
  for (let round = 0; ; round++) {
    const tree: Tree | null = parser.parse(copy);
    if (tree === null) throw new ShellSyntaxError('parse error', 'the parser gave no tree');
    try {
      const root = tree.rootNode;
      if (root.hasError) throw new ShellSyntaxError('parse error', parseErrorMessage(src, root));
      const walker = new Walker(src, copy);
      try {
        walker.statement(root, 'none');
      } catch (err) {
        // before `time`/`coproc` are blanked the grammar may split what follows (`time { ls; }`)
        if (!(err instanceof ShellSyntaxError) || walker.keywords.length === 0) throw err;
      }
      if (walker.keywords.length === 0) {
        for (const r of walker.scratch.reasons) sink.fail(r);
        return walker.commands;
      }
      if (round >= MAX_ROUNDS) throw new ShellSyntaxError('unsupported syntax', 'too many time/coproc keywords');
      copy = blank(copy, walker.keywords);
    } finally {
      tree.delete();
    }
  }
}

/** The text tree-sitter parses: same length and offsets as `src`, see the module comment. */
function prepare(src: string): string {
  return braceWords(src.includes('\\\n') ? continuations(src) : src);
}

/** `{` followed by a word character is not a reserved word: read it as a letter. */
function braceWords(src: string): string {
  return src.includes('{') ? src.replace(/(?<!\$)\{(?=[^\s;&|()<>])/g, 'x') : src;
}

const METACHARACTERS = /[|&;()<>$`]/;

/**
 * bash removes a backslash-newline (outside single quotes) before it splits words: `r\<newline>m`
 * is `rm`. Tree-sitter-bash reads it as a blank. Between blanks it becomes blanks; inside a word,
 * two letters (the word's text, read from the original, drops the pair); next to an operator or a
 * `$`, or in a line with a here-document, it is refused.
 */
function continuations(src: string): string {
  if (src.includes('<<')) throw new ShellSyntaxError('unsupported syntax', 'line continuation with a here-document');
  let out = '';
  let from = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src.charAt(i);
    if (c === "'" && src.charAt(i - 1) !== '$') {
      const end = src.indexOf("'", i + 1);
      i = end < 0 ? src.length : end;
    } else if (c === '#' && (i === 0 || /[\s;&|()]/.test(src.charAt(i - 1)))) {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl;
    } else if (c === '\\' && src.charAt(i + 1) === '\n') {
      if (src.startsWith('\\\n', i + 2)) throw new ShellSyntaxError('unsupported syntax', 'consecutive line continuations');
      const before = src.charAt(i - 1);
      const after = src.charAt(i + 2);
      let fill = '  ';
      if (i > 0 && !/\s/.test(before) && after !== '' && !/\s/.test(after)) {
        if (METACHARACTERS.test(before) || METACHARACTERS.test(after)) throw new ShellSyntaxError('unsupported syntax', 'line continuation inside a token');
        fill = 'xx';
      }
      out += src.slice(from, i) + fill;
      from = i + 2;
      i++;
    } else if (c === '\\') i++;
  }
  return out + src.slice(from);
}

function blank(src: string, ranges: readonly (readonly [number, number])[]): string {
  let out = src;
  for (const [from, to] of ranges) out = out.slice(0, from) + ' '.repeat(to - from) + out.slice(to);
  return out;
}

/** Node kinds that are statements whose named children are all statements. */
const CONTAINERS = new Set(['program', 'do_group', 'subshell', 'list', 'negated_command', 'if_statement', 'elif_clause', 'else_clause', 'while_statement']);
/** Node kinds of a word or a piece of one. */
const EXPANSIONS = new Set(['simple_expansion', 'expansion', 'command_substitution', 'process_substitution', 'arithmetic_expansion']);
const STATEMENTS = new Set(['pipeline', 'command', 'list', 'redirected_statement', 'subshell', 'compound_statement', 'negated_command']);
const REDIRECTS = new Set(['file_redirect', 'heredoc_redirect', 'herestring_redirect']);
const CASE_ENDS = new Set([';;', ';&', ';;&']);
const RESERVED = new Set(['then', 'else', 'elif', 'fi', 'do', 'done', 'esac', '}', '{', '[[', ']]', 'in', 'case', 'if', 'while', 'until', 'for', 'select', 'function']);
const FD_WORD = /^(?:\d+|\{[A-Za-z_]\w*\})$/;
const FD_BEFORE = /(?:^|[\s;&|()])(\d+|\{[A-Za-z_]\w*\})$/;
const BLANKS = /^(?:[ \t]|\\\n)*$/;

class Walker {
  readonly commands: RawCommand[] = [];
  /** `time` / `coproc` keywords (with their options) to blank out before parsing again */
  readonly keywords: (readonly [number, number])[] = [];
  /** reasons found on this parse; kept only if the parse is final */
  readonly scratch = new Sink();
  private readonly src: string;
  private readonly copy: string;
  private nesting = 0;

  constructor(src: string, copy: string) {
    this.src = src;
    this.copy = copy;
  }

  private get sink(): Sink {
    return this.scratch;
  }

  private fail(reason: string): void {
    this.scratch.fail(reason);
  }

  private text(node: Node): string {
    return this.src.slice(node.startIndex, node.endIndex);
  }

  private enter(): void {
    if (++this.nesting > MAX_NESTING) throw new ShellSyntaxError('unsupported syntax', 'nesting too deep');
  }

  // --- statements ---

  statement(node: Node, stdin: Stdin): void {
    this.enter();
    try {
      this.statementKind(node, stdin);
    } finally {
      this.nesting--;
    }
  }

  private statementKind(node: Node, stdin: Stdin): void {
    const type = node.type;
    // The grammar takes a case terminator outside `case` for a separator; bash does not.
    if (type !== 'case_item' && node.children.some((c) => !c.isNamed && CASE_ENDS.has(c.type))) throw new ShellSyntaxError('parse error', `unexpected ${node.children.find((c) => CASE_ENDS.has(c.type))?.type ?? ';;'}`);
    // `!x` is one word to bash; the grammar reads `! x`.
    if (type === 'negated_command' && !/^![ \t\n]/.test(this.text(node))) throw new ShellSyntaxError('unsupported syntax', '`!` joined to a word');
    if (CONTAINERS.has(type)) {
      for (const c of node.namedChildren) this.statement(c, stdin);
      return;
    }
    switch (type) {
      case 'comment':
        return;
      case 'command':
        this.command(node, stdin);
        return;
      case 'pipeline': {
        // A pipeline that continues a here-document's line (`cat <<EOF | sh`) starts with `|`.
        const first = node.firstChild?.isNamed === false ? 'pipe' : stdin;
        node.namedChildren.forEach((c, i) => {
          this.statement(c, i === 0 ? first : 'pipe');
        });
        return;
      }
      case 'redirected_statement':
        this.redirected(node, stdin);
        return;
      case 'compound_statement':
        if (node.firstChild?.type === '((') this.arithmetic(node, 2, 2);
        else for (const c of node.namedChildren) this.statement(c, stdin);
        return;
      case 'declaration_command':
      case 'unset_command':
        this.declaration(node, stdin);
        return;
      case 'test_command':
        this.test(node, stdin);
        return;
      case 'variable_assignment':
        checkAssignment(this.assignment(node).text, this.sink);
        return;
      case 'variable_assignments':
        for (const c of node.namedChildren) this.statement(c, stdin);
        return;
      case 'for_statement': {
        const variable = node.childForFieldName('variable');
        if (variable !== null) checkVariable(this.text(variable), this.sink);
        for (const v of node.childrenForFieldName('value')) this.word(v);
        const body = node.childForFieldName('body');
        if (body !== null) this.statement(body, stdin);
        return;
      }
      case 'c_style_for_statement':
        for (const field of ['initializer', 'condition', 'update']) {
          for (const c of node.childrenForFieldName(field)) {
            if (arithHasNames(this.text(c))) this.fail('arithmetic on variables');
            this.scan(c);
          }
        }
        this.statement(this.field(node, 'body'), stdin);
        return;
      case 'case_statement':
        this.word(this.field(node, 'value'));
        for (const item of node.namedChildren) {
          if (item.type !== 'case_item') continue;
          for (let i = 0; i < item.childCount; i++) {
            const c = item.child(i);
            if (c === null || !c.isNamed) continue;
            if (item.fieldNameForChild(i) === 'value') this.word(c);
            else this.statement(c, stdin);
          }
        }
        return;
      case 'function_definition':
        this.statement(this.field(node, 'body'), stdin);
        return;
      default:
        throw new ShellSyntaxError('unsupported syntax', type);
    }
  }

  private field(node: Node, name: string): Node {
    const c = node.childForFieldName(name);
    if (c === null) throw new ShellSyntaxError('unsupported syntax', `${node.type} without ${name}`);
    return c;
  }

  /** A simple command: assignments and redirections before, the name, the arguments (and redirections) after. */
  private command(node: Node, stdin: Stdin, extra: readonly Node[] = []): void {
    const words = new Words(this);
    let input = stdin;
    let end = node.startIndex;
    const children = node.children;
    let prev: Node | undefined;
    for (const c of children) {
      // Everything in a command is a named node; blanks and line continuations in between.
      if ((!c.isNamed && c.type !== '$') || !BLANKS.test(this.src.slice(end, c.startIndex))) throw new ShellSyntaxError('unsupported syntax', `unexpected ${JSON.stringify(this.text(c))} in a command`);
      if (prev !== undefined && c.startIndex === prev.endIndex) this.adjacent(prev, c);
      end = c.endIndex;
      prev = c;
      const type = c.type;
      if (type === 'variable_assignment') checkAssignment(this.assignment(c).text, this.sink);
      else if (REDIRECTS.has(type)) {
        input = this.redirectInput(c) ?? input;
        for (const w of extraWords(c)) words.add(w);
        this.redirect(c);
      } else if (FD_WORD.test(this.text(c)) && /[<>]/.test(this.src.charAt(c.endIndex))) {
        // `0<f`, `{fd}>x`: the word is the redirection's file descriptor (also before the name)
      } else if (type === 'command_name') {
        const name = c.firstNamedChild;
        if (name === null) throw new ShellSyntaxError('unsupported syntax', 'command without a name');
        const raw = this.copy.slice(name.startIndex, name.endIndex);
        if (c === children[0] && name.type === 'word' && (raw === 'time' || raw === 'coproc')) this.keyword(raw, name.endIndex);
        // A reserved word that ends or continues a compound command cannot start one in bash.
        else if (RESERVED.has(this.text(name))) throw new ShellSyntaxError('parse error', `unexpected \`${this.text(name)}\``);
        words.add(name);
      } else words.add(c);
    }
    for (const w of extra) words.add(w);
    const args = words.args();
    if (args.length > 0) this.commands.push({ args, stdin: input });
  }

  /**
   * Two parts of a command with no blank between them: words are one word (Words merges them),
   * a word may end at a redirection operator (`a>b`); anything else is where the grammar split
   * one of bash's words (`>a\;b`, `x$2>f`, `a=b\;c`), refused.
   */
  private adjacent(prev: Node, next: Node): void {
    const word = (n: Node): boolean => n.type !== 'variable_assignment' && !REDIRECTS.has(n.type);
    if (word(prev) && word(next)) return;
    if (REDIRECTS.has(next.type) && next.childForFieldName('descriptor') === null && !/^[\d{]/.test(this.text(next))) return;
    throw new ShellSyntaxError('unsupported syntax', `${JSON.stringify(this.text(prev) + this.text(next))} is one word to bash`);
  }

  /** Records `time [-p] [--]` or `coproc [NAME]` (in command position) to be blanked out. */
  private keyword(word: string, at: number): void {
    let end = at;
    const skip = (re: RegExp): boolean => {
      const m = re.exec(this.copy.slice(end));
      if (m === null) return false;
      end += m[0].length;
      return true;
    };
    if (word === 'time') {
      skip(/^[ \t]+-p(?=[ \t\n;&|()<>]|$)/);
      skip(/^[ \t]+--(?=[ \t\n;&|()<>]|$)/);
    } else skip(/^[ \t]+[A-Za-z_]\w*(?=[ \t]+(?:[({]|(?:if|while|until|for|select|case)(?=[ \t\n;&|()<>]|$)|\[\[))/);
    this.keywords.push([at - word.length, end]);
  }

  private redirected(node: Node, stdin: Stdin): void {
    const body = node.childForFieldName('body');
    let input = stdin;
    const redirects = node.namedChildren.filter((c) => c.id !== body?.id);
    const extra: Node[] = [];
    for (const r of redirects) {
      if (!REDIRECTS.has(r.type)) throw new ShellSyntaxError('unsupported syntax', r.type);
      // `x$2>f`: bash's word is `x$2`; the grammar reads `x$` and a redirection of fd 2.
      if (r.startIndex > 0 && /^[\d{]/.test(this.text(r)) && !/[\s;&|()<>]/.test(this.src.charAt(r.startIndex - 1))) {
        throw new ShellSyntaxError('unsupported syntax', `file descriptor joined to a word at ${r.startIndex}`);
      }
      input = this.redirectInput(r) ?? input;
      extra.push(...extraWords(r));
    }
    if (body !== null) {
      if (extra.length > 0) {
        // `rm >/dev/null -rf /`: the words after the target are rm's arguments.
        if (body.type !== 'command') throw new ShellSyntaxError('unsupported syntax', `words after a redirection of ${body.type}`);
        this.command(body, input, extra);
      } else if (body.type === 'pipeline') {
        // `a | b < f`: the redirection is b's
        const parts = body.namedChildren;
        parts.forEach((c, i) => {
          this.statement(c, i === parts.length - 1 ? input : i === 0 ? stdin : 'pipe');
        });
      } else this.statement(body, body.type === 'command' || body.type === 'declaration_command' || body.type === 'unset_command' || body.type === 'test_command' ? input : stdin);
    }
    for (const r of redirects) this.redirect(r);
  }

  /** How a redirection feeds standard input, if it does. */
  private redirectInput(node: Node): Stdin | undefined {
    const descriptor = node.childForFieldName('descriptor');
    const fd = descriptor !== null ? this.text(descriptor) : FD_BEFORE.exec(this.src.slice(Math.max(0, node.startIndex - 64), node.startIndex))?.[1];
    if (fd !== undefined && fd !== '0') return undefined;
    if (node.type === 'heredoc_redirect' || node.type === 'herestring_redirect') return 'here';
    const op = node.children.find((c) => !c.isNamed)?.type ?? '';
    return op === '<' || op === '<>' || op === '<&' ? 'file' : undefined;
  }

  /** Walks a redirection's target and a here-document's expansions (not its extra words). */
  private redirect(node: Node): void {
    const extra = new Set(extraWords(node).map((w) => w.id));
    let piped = false;
    for (const c of node.children) {
      if (!c.isNamed) {
        piped = c.type === '|' || c.type === '|&';
        continue;
      }
      const type = c.type;
      if (extra.has(c.id) || type === 'heredoc_start' || type === 'heredoc_end' || type === 'file_descriptor') continue;
      if (type === 'heredoc_body') {
        const start = node.children.find((d) => d.type === 'heredoc_start');
        if (start === undefined || !/['"\\]/.test(this.text(start))) this.heredocBody(c);
      } else if (REDIRECTS.has(type)) this.redirect(c);
      else if (node.type === 'heredoc_redirect' && STATEMENTS.has(type)) {
        // `cat <<EOF | sh`, `cat <<EOF && ls`: what follows the here-document's start on its line
        this.statement(c, piped ? 'pipe' : 'none');
      } else this.word(c);
    }
  }

  /**
   * An unquoted here-document's body: expanded like "..." (the grammar finds `$x` and `$(...)`,
   * not every backquote: any expansion left in its literal text is refused).
   */
  private heredocBody(body: Node): void {
    let pos = body.startIndex;
    for (const e of body.namedChildren) {
      unexpanded(this.src.slice(pos, e.startIndex));
      if (e.type === 'heredoc_content') unexpanded(this.text(e));
      else this.word(e);
      pos = e.endIndex;
    }
    unexpanded(this.src.slice(pos, body.endIndex));
  }

  /** `declare`, `export`, `local`, `readonly`, `typeset`, `unset`: a command whose words include assignments. */
  private declaration(node: Node, stdin: Stdin): void {
    const words = new Words(this);
    let input = stdin;
    for (const c of node.children) {
      if (!c.isNamed) words.addArg(staticArg(c.type));
      else if (c.type === 'variable_assignment') words.addArg(this.assignment(c));
      else if (REDIRECTS.has(c.type)) {
        input = this.redirectInput(c) ?? input;
        for (const w of extraWords(c)) words.add(w);
        this.redirect(c);
      } else if (c.type !== 'comment') words.add(c);
    }
    this.commands.push({ args: words.args(), stdin: input });
  }

  /** `[[ ... ]]` runs nothing but may evaluate arithmetic; `[ ... ]` is the `[` command. */
  private test(node: Node, stdin: Stdin): void {
    const tokens: Arg[] = [];
    const collect = (n: Node): void => {
      for (const c of n.children) {
        if (!c.isNamed) tokens.push(staticArg(c.type));
        else if (c.type === 'test_operator') tokens.push(staticArg(this.text(c)));
        else if (c.type === 'unary_expression' || c.type === 'binary_expression' || c.type === 'parenthesized_expression' || c.type === 'ternary_expression' || c.type === 'postfix_expression') collect(c);
        else tokens.push(this.word(c));
      }
    };
    this.enter();
    try {
      collect(node);
    } finally {
      this.nesting--;
    }
    const open = tokens[0]?.text;
    // `[` and `[[` open a test only as whole words (`[b<]` is a glob), and close likewise.
    const text = this.text(node);
    if ((open === '[' || open === '[[') && (!/^\[\[?[ \t\n]/.test(text) || !/[ \t\n]\]\]?$/.test(text))) throw new ShellSyntaxError('unsupported syntax', `${JSON.stringify(text)} is not a test`);
    if (open === '[') {
      this.commands.push({ args: tokens, stdin });
      return;
    }
    if (open === '((') {
      this.arithmetic(node, 2, 2);
      return;
    }
    tokens.forEach((t, i) => {
      const next = tokens[i + 1];
      if (/^-(?:eq|ne|lt|le|gt|ge)$/.test(t.text)) {
        for (const operand of [tokens[i - 1], next]) {
          if (operand !== undefined && (operand.dynamic || arithHasNames(operand.text))) this.fail('arithmetic on variables');
        }
      }
      if (t.text === '-v' && next !== undefined && (next.dynamic || riskySubscript(next.text))) this.fail('array subscript may run code');
    });
  }

  /** `(( ... ))`, `$(( ... ))`, `$[ ... ]`: arithmetic that names a variable can run code. */
  private arithmetic(node: Node, open: number, close: number): void {
    const t = this.text(node);
    if (arithHasNames(t.slice(open, t.length - close))) this.fail('arithmetic on variables');
    this.scan(node);
  }

  /** Finds the expansions anywhere below a node that is not a word (arithmetic, subscripts). */
  private scan(node: Node): void {
    this.enter();
    try {
      for (const c of node.namedChildren) {
        if (EXPANSIONS.has(c.type)) this.word(c);
        else this.scan(c);
      }
    } finally {
      this.nesting--;
    }
  }

  // --- words ---

  /** `NAME=value`, `a[i]+=v`, `a=(1 2)` as one word (its value after quote removal). */
  private assignment(node: Node): Arg {
    const parts: Part[] = [];
    let array = false;
    let pos = node.startIndex;
    for (const c of node.namedChildren) {
      this.unquoted(this.src.slice(pos, c.startIndex), parts);
      if (c.type === 'variable_name') parts.push({ kind: 'lit', text: this.text(c), quoted: false });
      else if (c.type === 'subscript') {
        // The subscript's text (`a[$i]`) is checked as a name; its expansions run.
        parts.push({ kind: 'lit', text: this.text(c), quoted: false });
        this.scan(c);
      } else if (c.type === 'array') {
        array = true;
        parts.push({ kind: 'lit', text: this.text(c), quoted: true });
        this.scan(c);
      } else this.parts(c, parts);
      pos = c.endIndex;
    }
    this.unquoted(this.src.slice(pos, node.endIndex), parts);
    const arg = toArg(parts);
    return array ? { ...arg, arrayLiteral: true } : arg;
  }

  /** A word (or any piece of one) as an Arg. */
  private word(node: Node): Arg {
    const parts: Part[] = [];
    this.parts(node, parts);
    return toArg(parts);
  }

  parts(node: Node, out: Part[]): void {
    this.enter();
    try {
      this.partsKind(node, out);
    } finally {
      this.nesting--;
    }
  }

  private partsKind(node: Node, out: Part[]): void {
    const text = this.text(node);
    switch (node.type) {
      case 'word':
      case 'number':
      case 'variable_name':
      case 'special_variable_name':
      case 'extglob_pattern':
      case 'brace_expression':
      case 'regex':
      case 'test_operator':
        this.unquoted(text, out);
        return;
      case 'raw_string':
        out.push({ kind: 'lit', text: text.slice(1, -1), quoted: true });
        return;
      case '$':
        // a `$` that starts no expansion is itself (`echo $`)
        out.push({ kind: 'lit', text: '$', quoted: false });
        return;
      case 'ansi_c_string': {
        const value = decodeAnsiC(text.slice(2, -1));
        // An undecodable escape leaves the value unknown, like an expansion.
        out.push(value === undefined ? { kind: 'param', text, quoted: true } : { kind: 'lit', text: value, quoted: true });
        return;
      }
      case 'string':
      case 'translated_string':
        this.doubleQuoted(node, out);
        return;
      case 'concatenation': {
        let pos = node.startIndex;
        for (const c of node.namedChildren) {
          this.unquoted(this.src.slice(pos, c.startIndex), out);
          this.parts(c, out);
          pos = c.endIndex;
        }
        this.unquoted(this.src.slice(pos, node.endIndex), out);
        return;
      }
      case 'simple_expansion':
        out.push({ kind: 'param', text, quoted: false });
        return;
      case 'expansion':
        this.braceParam(text);
        this.scan(node);
        out.push({ kind: 'param', text, quoted: false });
        return;
      case 'command_substitution':
        this.fail('command substitution');
        for (const c of node.namedChildren) this.statement(c, 'none');
        out.push({ kind: 'subst', text, quoted: false });
        return;
      case 'process_substitution':
        this.fail('process substitution');
        for (const c of node.namedChildren) this.statement(c, 'none');
        out.push({ kind: 'subst', text, quoted: false });
        return;
      case 'arithmetic_expansion':
        this.arithmetic(node, text.startsWith('$((') ? 3 : 2, text.startsWith('$((') ? 2 : 1);
        out.push({ kind: 'arith', text, quoted: false });
        return;
      default:
        throw new ShellSyntaxError('unsupported syntax', node.type);
    }
  }

  /** Unquoted text of a word: `\x` is a quoted x, `\` newline disappears. */
  private unquoted(text: string, out: Part[]): void {
    if (text === '') return;
    unexpanded(text);
    if (!text.includes('\\')) {
      out.push({ kind: 'lit', text, quoted: false });
      return;
    }
    let run = '';
    for (let i = 0; i < text.length; i++) {
      const c = text.charAt(i);
      if (c !== '\\') {
        run += c;
        continue;
      }
      if (run !== '') out.push({ kind: 'lit', text: run, quoted: false });
      run = '';
      const n = text.charAt(++i);
      if (n !== '\n') out.push({ kind: 'lit', text: n === '' ? '\\' : n, quoted: true });
    }
    if (run !== '') out.push({ kind: 'lit', text: run, quoted: false });
  }

  /** `"..."` (and `$"..."`): literal text with `\` before $ ` " \ newline, and expansions. */
  private doubleQuoted(node: Node, out: Part[]): void {
    const text = this.text(node);
    const open = text.startsWith('$"') ? 2 : 1;
    if (!text.endsWith('"') || text.length < open + 1) throw new ShellSyntaxError('unsupported syntax', 'string');
    let pos = node.startIndex + open;
    const literal = (s: string): void => {
      unexpanded(s);
      if (s !== '') out.push({ kind: 'lit', text: s.replace(/\\([$`"\\\n])/g, (_, c: string) => (c === '\n' ? '' : c)), quoted: true });
    };
    for (const c of node.namedChildren) {
      if (c.startIndex < pos) continue;
      literal(this.src.slice(pos, c.startIndex));
      if (c.type === 'string_content') literal(this.text(c));
      else if (c.type === 'string') this.doubleQuoted(c, out);
      else {
        const inner: Part[] = [];
        this.parts(c, inner);
        for (const p of inner) out.push({ ...p, quoted: true });
      }
      pos = c.endIndex;
    }
    literal(this.src.slice(pos, node.endIndex - 1));
  }

  /** `${...}`: indirection, `@P` and evaluated subscripts or offsets may run code. */
  private braceParam(text: string): void {
    if (!text.startsWith('${')) return;
    const body = text.slice(2, -1);
    // `${!x}` uses x's value as a name (with a subscript, code); `${!pre*}`, `${!a[@]}` list names.
    if (/^!(?!$|#$|[A-Za-z_]\w*(?:[*@]|\[[*@]\])$)/.test(body)) this.fail('indirect expansion');
    if (/@P$/.test(body)) this.fail('prompt expansion');
    const m = /^[#!]?(?:[A-Za-z_]\w*|\d+|[@*#?$!-])(\[[^\]]*\])?(.*)$/s.exec(body);
    if (m?.[1] !== undefined && riskySubscript(m[1])) this.fail('array subscript may run code');
    const rest = m?.[2] ?? '';
    if (/^:[^-=+?]/.test(rest) && arithHasNames(rest.slice(1))) this.fail('arithmetic on variables');
  }
}

/**
 * Literal text (unquoted or in double quotes) holds no expansion: where an unescaped backquote
 * or `$name`, `${`, `$(` shows in it, the grammar missed one (`r\`\`m` is `rm` to bash).
 */
function unexpanded(text: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '\\') i++;
    else if (c === '`' || (c === '$' && /[A-Za-z_{(0-9@*#?$!-]/.test(text.charAt(i + 1)))) {
      throw new ShellSyntaxError('unsupported syntax', `an expansion the grammar did not see in ${JSON.stringify(text)}`);
    }
  }
}

/**
 * Words tree-sitter-bash puts into a redirection that bash reads as more arguments of the
 * command: after a file redirection's target (`>/dev/null -rf /`), after a here-document's start.
 */
function extraWords(node: Node): Node[] {
  if (node.type === 'heredoc_redirect') return node.childrenForFieldName('argument');
  if (node.type !== 'file_redirect') return [];
  // A destination right after the target (no blank between) is more of the target's word.
  const [target, ...rest] = node.childrenForFieldName('destination');
  let end = target?.endIndex ?? 0;
  const extra: Node[] = [];
  for (const d of rest) {
    if (d.startIndex !== end || extra.length > 0) extra.push(d);
    end = d.endIndex;
  }
  return extra;
}

/**
 * The words of a command as bash splits them: nodes with no blank between them are one word
 * (the grammar splits `"rm"\{a,b}` or `a\;b` after some escapes; bash does not).
 */
class Words {
  readonly #walker: { parts(node: Node, out: Part[]): void };
  readonly #words: (Part[] | Arg)[] = [];
  #end = -1;

  constructor(walker: { parts(node: Node, out: Part[]): void }) {
    this.#walker = walker;
  }

  add(node: Node): void {
    const last = this.#words.at(-1);
    if (node.startIndex === this.#end && Array.isArray(last)) this.#walker.parts(node, last);
    else {
      const parts: Part[] = [];
      this.#walker.parts(node, parts);
      this.#words.push(parts);
    }
    this.#end = node.endIndex;
  }

  addArg(arg: Arg): void {
    this.#words.push(arg);
    this.#end = -1;
  }

  args(): Arg[] {
    return this.#words.map((w) => (Array.isArray(w) ? toArg(w) : w));
  }
}

// ---------------------------------------------------------------------------------------------
// Parse errors

/** A message for a tree with errors: an unclosed quote, or the first token the grammar rejected. */
function parseErrorMessage(src: string, root: Node): string {
  const quote = unclosedQuote(src);
  if (quote !== undefined) return `reached EOF without closing quote \`${quote}\``;
  const bad = firstError(root);
  if (bad === undefined) return 'syntax error';
  const at = position(src, bad.startIndex);
  if (bad.isMissing) return `missing ${bad.type} at ${at}`;
  const token = src.slice(bad.startIndex, Math.min(bad.endIndex, bad.startIndex + 20)).trim();
  return token === '' ? `unexpected end of input at ${at}` : `unexpected ${JSON.stringify(token)} at ${at}`;
}

function firstError(node: Node): Node | undefined {
  if (node.isError || node.isMissing) return node;
  for (const c of node.children) if (c.hasError || c.isMissing) return firstError(c) ?? c;
  return undefined;
}

function position(src: string, index: number): string {
  const before = src.slice(0, index);
  const line = before.split('\n').length;
  return `${line}:${index - before.lastIndexOf('\n')}`;
}

/** The quote character a line leaves open, if any (for the message only). */
function unclosedQuote(src: string): string | undefined {
  let i = 0;
  const close = (q: string, escapes: boolean): boolean => {
    for (i++; i < src.length; i++) {
      const c = src.charAt(i);
      if (escapes && c === '\\') i++;
      else if (c === q) return true;
    }
    return false;
  };
  for (; i < src.length; i++) {
    const c = src.charAt(i);
    if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /[\s;&|()]/.test(src.charAt(i - 1)))) {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl;
    } else if (c === "'" && !(src.charAt(i - 1) === '$' ? close("'", true) : close("'", false))) return "'";
    else if ((c === '"' || c === '`') && !close(c, true)) return c;
  }
  return undefined;
}
