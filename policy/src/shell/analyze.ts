/**
 * What does an SSH command line really run? The line is parsed with the bash grammar of
 * tree-sitter-bash (`syntax.ts`), and every simple command is resolved: quote removal, program
 * names normalised, wrappers (`sudo`, `env`, `bash -c`, `xargs`, `find -exec`, ...) unwrapped
 * and the scripts they run parsed in turn (`programs.ts`).
 *
 * A line that does not parse, uses syntax the walker does not know, or whose effect depends on
 * run-time values (command substitution, a variable as the program, eval, a payload piped into a
 * shell, code hidden in arithmetic, prompt strings or a program's configuration) is
 * unresolvable: it then matches every rule. Pure, no I/O; the grammar (WASM) is loaded once by
 * `loadShellParser()`, which `analyzeShell` awaits.
 */
import { loadShellParser, parseShell, ShellSyntaxError } from './syntax.ts';
import { appendUnsafe, READ, SPECS, scanOptions, unwrap, WRAPPERS } from './programs.ts';
import { arithHasNames, checkAssignment, checkVariable, Sink, staticArg, type Arg, type SimpleCommand, type Stdin } from './words.ts';

export { loadShellParser } from './syntax.ts';
export type { SimpleCommand } from './words.ts';

export interface ShellAnalysis {
  readonly commands: readonly SimpleCommand[];
  /** true when the line cannot be resolved statically: it then matches EVERY rule */
  readonly unresolvable: boolean;
  /** why it is unresolvable (human-readable, e.g. "command substitution", "variable as program", "parse error: ...") */
  readonly reasons: readonly string[];
}

const MAX_BYTES = 64 * 1024;
/** Nested scripts (`bash -c '...'`, `watch '...'`) followed at most this deep. */
const MAX_DEPTH = 8;
/** Scripts parsed per line at most. */
const MAX_SCRIPTS = 64;
/** Wrappers (`sudo env nohup ...`) unwrapped around one command at most. */
const MAX_WRAPPERS = 16;

/** Decides what a command line runs. Never throws or rejects: on any failure the line is unresolvable. */
export async function analyzeShell(line: string): Promise<ShellAnalysis> {
  try {
    await loadShellParser();
  } catch (err) {
    return Object.freeze({ commands: Object.freeze([]), unresolvable: true, reasons: Object.freeze([`bash parser not loaded: ${message(err)}`]) });
  }
  return analyzeShellSync(line);
}

/** `analyzeShell` once `loadShellParser()` has resolved (before, every line is unresolvable). */
export function analyzeShellSync(line: string): ShellAnalysis {
  const sink = new Sink();
  try {
    analyzeScript(line, 0, sink);
  } catch (err) {
    sink.fail(`internal error: ${message(err)}`);
  }
  return Object.freeze({
    commands: Object.freeze(sink.commands),
    unresolvable: sink.reasons.length > 0,
    reasons: Object.freeze(sink.reasons),
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function analyzeScript(src: string, depth: number, sink: Sink): void {
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
  let commands;
  try {
    commands = parseShell(src, sink);
  } catch (err) {
    if (!(err instanceof ShellSyntaxError)) throw err;
    sink.fail(`${err.kind}: ${err.message}`);
    return;
  }
  for (const cmd of commands) resolve(cmd.args, cmd.stdin, depth, sink);
}

// ---------------------------------------------------------------------------------------------
// Resolution: program names and wrappers

/** Adds a command (and, recursively, what it wraps) to the sink. `appended`: see Step. */
function resolve(args: readonly Arg[], stdin: Stdin, depth: number, sink: Sink, wrappers = 0, appended = false): void {
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
  if (appended && (appendUnsafe(name) || (WRAPPERS.has(name) && steps.every((step) => 'reason' in step)))) {
    sink.fail(`arguments appended to ${name}`);
  }
  for (const step of steps) {
    if ('reason' in step) sink.fail(step.reason);
    else if ('script' in step) {
      // A glob as the script expands to whatever file names match it.
      if (step.script.dynamic || step.script.pattern) sink.fail('dynamic shell command');
      else analyzeScript(step.script.text, depth + 1, sink);
    } else if (wrappers >= MAX_WRAPPERS) sink.fail('too many wrappers');
    else resolve(step.argv, stdin, depth, sink, wrappers + 1, appended || step.appended === true);
  }
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
