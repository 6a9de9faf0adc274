/**
 * What programs run besides themselves: wrappers (`sudo`, `env`, `xargs`, `find -exec`, shells
 * with `-c`, ...) with their option syntax, and the programs whose options or configuration run
 * a command (git, tar, rsync, ssh, ...). Pure, no I/O.
 */
import { checkAssignment, staticArg, withPlaceholder, type Arg, type Sink, type Stdin } from './words.ts';

/** `appended`: xargs adds arguments read from its input after these. */
export type Step = { readonly argv: readonly Arg[]; readonly appended?: boolean } | { readonly script: Arg } | { readonly reason: string };

export interface OptSpec {
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
export function scanOptions(cmd: string, args: readonly Arg[], spec: OptSpec): Scanned {
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
export const SPECS = new Map(Object.entries(SPEC_TABLE));
export const READ: OptSpec = { flags: 'ers', withArg: 'adinNptu' };

/** Shells whose `-c STR` is parsed (as bash: close enough to find the commands, or a parse error). */
export const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'yash', 'posh', 'rbash', 'fish', 'csh', 'tcsh']);
/** POSIX shells (/bin/sh is dash): no `$'...'`, so bash would split their scripts differently. */
const POSIX_SHELLS = new Set(['sh', 'dash', 'ash', 'posh']);
/** Commands that run another command given as their arguments. */
export const WRAPPERS = new Set([
  ...SHELLS, ...Object.keys(SPEC_TABLE).filter((n) => !['trap', 'mapfile'].includes(n)), 'runuser', 'builtin', 'busybox', 'find',
]);
/** Shells whose language is not bash's: their scripts cannot be read with the bash grammar. */
const FOREIGN_SHELLS = new Set(['fish', 'csh', 'tcsh']);
/**
 * Programs that run what their arguments say, with option syntax not modelled here: with any
 * argument they are unresolvable (`parallel 'rm {}' ::: *`, `systemd-run reboot`); `at` and
 * `batch` run shell commands read from standard input later.
 */
const COMMAND_RUNNERS = new Set(['parallel', 'systemd-run', 'run-parts', 'at', 'batch', 'expect', 'tmux', 'screen', 'dtach']);
/** Commands where words xargs appends can change what runs even after a static command. */
const APPEND_UNSAFE = new Set(['find', 'watch', 'su', 'runuser', 'script', 'git', 'sg', 'ip', ...COMMAND_RUNNERS]);
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
export function unwrap(name: string, args: readonly Arg[], stdin: Stdin, sink: Sink): Step[] {
  const spec = specFor(name);
  const s = spec === undefined ? undefined : scanOptions(name, args, spec);
  if (s?.error !== undefined) return [{ reason: s.error }];
  const rest = s?.rest ?? [];
  const has = (k: string): boolean => s?.opts.has(k) === true;
  const command = (argv: readonly Arg[]): Step[] => (argv.length > 0 ? [{ argv }] : []);
  const options = OPTION_COMMANDS.get(name);
  if (options !== undefined) return optionSteps(name, options, args);
  if (COMMAND_RUNNERS.has(name)) {
    if (args.length === 1 && name !== 'at' && name !== 'batch') return [];
    if ((name === 'at' || name === 'batch') && args.slice(1).some((a) => /^-[lrdcV]/.test(a.text))) return [];
    return [{ reason: `${name} runs a command given in its arguments or input` }];
  }
  if (SHELLS.has(name)) {
    if (has('help') || has('version')) return [];
    if (FOREIGN_SHELLS.has(name) && args.length > 1) return [{ reason: `script in ${name}, not bash` }];
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
      return gitSteps(args);
    case 'sg': {
      // sg GROUP [-c] COMMAND: the command is run by /bin/sh -c.
      const script = args[2]?.text === '-c' ? args[3] : args[2];
      if (args[1]?.dynamic === true || args[1]?.text.startsWith('-') === true) return [{ reason: 'dynamic argument to sg' }];
      return script === undefined ? [stdinShell(stdin)] : [{ script }];
    }
    case 'ip': {
      // ip [-n NS] netns exec NAME command...
      const at = args.findIndex((a) => a.text === 'netns');
      if (at < 0 || args[at + 1]?.text !== 'exec') return [];
      if (args.some((a) => a.dynamic)) return [{ reason: 'dynamic argument to ip' }];
      return command(args.slice(at + 3));
    }
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
          body.push(withPlaceholder(a, '{}', true));
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

// ---------------------------------------------------------------------------------------------
// Programs whose options run a command

/** What an option's value is to the program. */
type OptionUse =
  /** a command line it runs: unwrapped like `sh -c` */
  | 'script'
  /** a command it runs, or a file it runs or loads as code: the line is unresolvable */
  | 'refuse';

/**
 * A program whose options run a command, name a program, or load a file that does. Any word
 * that may turn out to be an option at run time — an unquoted glob or an expansion at the start
 * of a word (`*` matches a file named `--rsh=sh x.sh`), or words xargs appends — is
 * unresolvable for these programs: that is the wildcard-injection class.
 */
interface CommandOptions {
  /** short option letter -> use (its value attached, `-essh`, or the next word) */
  readonly short?: Readonly<Record<string, OptionUse>>;
  /** long option -> use; any prefix counts (GNU getopt and git accept unambiguous abbreviations) */
  readonly long?: Readonly<Record<string, OptionUse>>;
  /** option (`o`, `checkpoint-action`) -> the values that run something (`ssh -o ProxyCommand=...`) */
  readonly values?: Readonly<Record<string, RegExp>>;
  /** tar's old style: a first word without `-` is a bundle of short options (`tar cIf ...`) */
  readonly oldStyle?: boolean;
  /** the options change what the program does to its files but run nothing (`chmod --reference`) */
  readonly changesOnly?: boolean;
}

const SSH_OPTIONS = /^\s*(?:ProxyCommand|LocalCommand|PermitLocalCommand|KnownHostsCommand|Include|Match|PKCS11Provider|SecurityKeyProvider|ProxyUseFdpass)\b/i;
const SSH: CommandOptions = { short: { F: 'refuse', S: 'refuse' }, values: { o: SSH_OPTIONS } };

const OPTION_COMMANDS = new Map<string, CommandOptions>(Object.entries<CommandOptions>({
  tar: {
    short: { I: 'refuse', F: 'refuse' },
    long: { 'to-command': 'refuse', 'use-compress-program': 'refuse', 'info-script': 'refuse', 'new-volume-script': 'refuse', 'rsh-command': 'refuse', 'rmt-command': 'refuse' },
    values: { 'checkpoint-action': /exec/ },
    oldStyle: true,
  },
  rsync: { short: { e: 'script' }, long: { rsh: 'script', 'rsync-path': 'refuse', 'files-from': 'refuse', 'include-from': 'refuse', 'exclude-from': 'refuse' } },
  zip: { short: { T: 'refuse' }, long: { 'unzip-command': 'refuse', test: 'refuse' } },
  ssh: SSH,
  scp: SSH,
  sftp: { ...SSH, short: { F: 'refuse', S: 'refuse', D: 'refuse' } },
  tcpdump: { short: { z: 'refuse' } },
  man: { short: { P: 'refuse', H: 'refuse' }, long: { pager: 'refuse', html: 'refuse' } },
  'apt-get': { values: { o: /invoke|::exec|pager/i, option: /invoke|::exec|pager/i } },
  apt: { values: { o: /invoke|::exec|pager/i, option: /invoke|::exec|pager/i } },
  // Options that only change what the command does to its files, but still from a file name.
  chmod: { changesOnly: true },
  chown: { changesOnly: true },
  chgrp: { changesOnly: true },
  // 7-Zip also reads `@listfile` words as lists of file names.
  '7z': { changesOnly: true },
  '7za': { changesOnly: true },
  '7zr': { changesOnly: true },
}));

/** A word that may turn out to be an option (or several words) at run time. */
function mayBeOption(a: Arg): boolean {
  return a.leadingDynamic || (a.pattern && /^[*?[{]/.test(a.text));
}

/** What a program's options run: scripts to unwrap, or why the line is unresolvable. */
function optionSteps(name: string, spec: CommandOptions, args: readonly Arg[]): Step[] {
  const refuse: Step = { reason: spec.changesOnly === true ? `argument of ${name} that may expand to an option` : `${name} option that runs a command` };
  const steps: Step[] = [];
  const use = (u: OptionUse | undefined, key: string, value: Arg | undefined): void => {
    const test = spec.values?.[key];
    if (u === undefined && test === undefined) return;
    if (value === undefined || value.dynamic || u === 'refuse' || (test !== undefined && test.test(value.text))) steps.push(refuse);
    else if (u === 'script') steps.push({ script: value });
  };

  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (a === undefined || a.text === '--') break;
    if (mayBeOption(a)) return [refuse];
    const t = a.text;
    const long = /^--([^=]+)(?:=(.*))?$/s.exec(t);
    if (long !== null) {
      const n = long[1] ?? '';
      for (const key of new Set([...Object.keys(spec.long ?? {}), ...Object.keys(spec.values ?? {})])) {
        if (key.length < 2 || !key.startsWith(n)) continue;
        const value = long[2] !== undefined ? staticArg(long[2]) : args[i + 1];
        use(spec.long?.[key], key, value);
      }
      continue;
    }
    if (!(/^-[^-]/.test(t) || (spec.oldStyle === true && i === 1))) continue;
    // A bundle of short options: the first that takes a value takes the rest of the word (or the next word).
    const letters = t.startsWith('-') ? t.slice(1) : t;
    for (let j = 0; j < letters.length; j++) {
      const c = letters.charAt(j);
      if (spec.short?.[c] === undefined && spec.values?.[c] === undefined) continue;
      const value = j + 1 < letters.length ? staticArg(letters.slice(j + 1)) : args[i + 1];
      use(spec.short?.[c], c, value);
      break;
    }
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// git

/**
 * Configuration keys that never make git run a command or load code (lower case). Anything else
 * given with `-c`, `--config-env`, `git clone -c` or written by `git config` may (core.pager,
 * core.sshCommand, core.fsmonitor, core.hooksPath, diff.external, filter.*, credential.helper,
 * include.path, protocol.ext.allow, url.*.insteadOf, ...): unresolvable.
 */
const GIT_SAFE_CONFIG =
  /^(?:color\.[\w.-]+|column\.\w+|advice\.\w+|i18n\.\w+|log\.\w+|status\.\w+|blame\.\w+|tag\.\w+|versionsort\.\w+|grep\.\w+|user\.\w+|author\.\w+|committer\.\w+|feature\.\w+|init\.defaultbranch|safe\.directory|pull\.(?:rebase|ff)|push\.(?:default|autosetupremote|followtags)|fetch\.(?:prune|prunetags|parallel)|merge\.(?:ff|conflictstyle|log|stat)|rebase\.(?:autostash|autosquash|stat|updaterefs)|branch\.(?:sort|autosetupmerge|autosetuprebase)|http\.(?:sslverify|version|postbuffer)|protocol\.version|core\.(?:quotepath|autocrlf|safecrlf|eol|abbrev|filemode|ignorecase|precomposeunicode|whitespace|longpaths|symlinks|compression)|diff\.(?:renames|renamelimit|algorithm|noprefix|mnemonicprefix|context|interhunkcontext|indentheuristic|colormoved|statgraphwidth|relative)|gc\.auto|checkout\.defaultremote|help\.autocorrect)$/;

const GIT_CONFIG_REASON = 'git alias or config that runs a command';

/** Why a `key=value` git configuration may run a command, if it may. */
function gitConfigRisk(key: string, value: string | undefined): string | undefined {
  const k = key.toLowerCase();
  if (k.startsWith('alias.')) {
    // An alias is a shell command (`!...`) or more git arguments, checked like the command line's.
    if (value === undefined || /^\s*!/.test(value) || /['"\\$`]/.test(value)) return GIT_CONFIG_REASON;
    const reason = gitSteps(['git', ...value.trim().split(/\s+/)].map(staticArg)).find((s) => 'reason' in s);
    return reason !== undefined ? GIT_CONFIG_REASON : undefined;
  }
  return GIT_SAFE_CONFIG.test(k) ? undefined : GIT_CONFIG_REASON;
}

/** Options of git subcommands that run a command (`--upload-pack`, `--exec`, `rebase -x`, ...). */
const GIT_SUBCOMMANDS = new Map<string, CommandOptions>(Object.entries<CommandOptions>({
  clone: { short: { u: 'refuse' }, long: { 'upload-pack': 'refuse', template: 'refuse' } },
  fetch: { long: { 'upload-pack': 'refuse' } },
  pull: { long: { 'upload-pack': 'refuse' } },
  'ls-remote': { long: { 'upload-pack': 'refuse' } },
  'fetch-pack': { long: { 'upload-pack': 'refuse', exec: 'refuse' } },
  push: { long: { 'receive-pack': 'refuse', exec: 'refuse' } },
  'send-pack': { long: { 'receive-pack': 'refuse', exec: 'refuse' } },
  archive: { long: { exec: 'refuse' } },
  rebase: { short: { x: 'refuse' }, long: { exec: 'refuse' } },
  difftool: { short: { x: 'refuse', t: 'refuse' }, long: { extcmd: 'refuse', tool: 'refuse' } },
  mergetool: { short: { t: 'refuse' }, long: { tool: 'refuse' } },
  grep: { short: { O: 'refuse' }, long: { 'open-files-in-pager': 'refuse' } },
  'send-email': { long: { 'sendmail-cmd': 'refuse', 'to-cmd': 'refuse', 'cc-cmd': 'refuse', 'header-cmd': 'refuse', 'smtp-server': 'refuse' } },
  init: { long: { template: 'refuse' } },
}));
/** Subcommands that always run a command given to them (or a browser, or a web server). */
const GIT_RUNNERS = new Set(['filter-branch', 'instaweb', 'web--browse']);
const GIT_OPTIONS_WITH_VALUE = /^(?:-C|--git-dir|--work-tree|--namespace|--super-prefix|--list-cmds|--attr-source)$/;

/** What a git command line runs through its configuration or options. */
function gitSteps(args: readonly Arg[]): Step[] {
  const config = (text: string, env: boolean): Step[] => {
    const eq = text.indexOf('=');
    const reason = gitConfigRisk(eq < 0 ? text : text.slice(0, eq), env ? undefined : eq < 0 ? '' : text.slice(eq + 1));
    return reason === undefined ? [] : [{ reason }];
  };
  let i = 1;
  // The global options: a run-time word there could be `-c` or `--exec-path`.
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === undefined) break;
    if (a.leadingDynamic) return [{ reason: GIT_CONFIG_REASON }];
    const t = a.text;
    if (!t.startsWith('-')) break;
    const m = /^(-c|--config-env|--exec-path)(?:=(.*))?$/s.exec(t);
    if (m === null) {
      if (GIT_OPTIONS_WITH_VALUE.test(t)) i++;
      continue;
    }
    if (m[1] === '--exec-path') {
      // `--exec-path` alone prints the path; with a value, git runs its subcommands from there.
      if (m[2] !== undefined) return [{ reason: 'git option that runs a command' }];
      continue;
    }
    const value = m[2] !== undefined ? staticArg(m[2]) : args[++i];
    if (value === undefined) break;
    if (value.dynamic) return [{ reason: GIT_CONFIG_REASON }];
    const risk = config(value.text, m[1] === '--config-env');
    if (risk.length > 0) return risk;
  }
  const sub = args[i]?.text;
  if (sub === undefined) return [];
  const rest = args.slice(i);
  if (GIT_RUNNERS.has(sub)) return [{ reason: 'git option that runs a command' }];
  if ((sub === 'bisect' && rest.some((a) => a.text === 'run')) || (sub === 'submodule' && rest.some((a) => a.text === 'foreach'))) {
    return [{ reason: 'git option that runs a command' }];
  }
  if (sub === 'clone') {
    for (let j = 1; j < rest.length; j++) {
      const m = /^(?:-c|--config)(?:=(.*))?$/s.exec(rest[j]?.text ?? '');
      if (m === null) continue;
      const value = m[1] !== undefined ? staticArg(m[1]) : rest[++j];
      if (value === undefined || value.dynamic) return [{ reason: GIT_CONFIG_REASON }];
      const risk = config(value.text, false);
      if (risk.length > 0) return risk;
    }
  }
  if (sub === 'config') {
    // Writing a key (`git config [--global] key value`, `git config set key value`) configures later commands.
    const operands = rest.slice(1).filter((a) => !a.text.startsWith('-'));
    const [first, second, third] = operands;
    // `git config get|list|unset|edit|...` (git 2.46 and later) read or remove
    if (/^(?:get|list|unset|edit|rename-section|remove-section)$/.test(first?.text ?? '')) return [];
    const key = first?.text === 'set' ? second : operands.length >= 2 ? first : undefined;
    const value = first?.text === 'set' ? third : second;
    if (rest.some((a) => a.dynamic)) return [{ reason: GIT_CONFIG_REASON }];
    if (key !== undefined) return config(`${key.text}=${value?.text ?? ''}`, false);
  }
  const spec = GIT_SUBCOMMANDS.get(sub);
  if (spec === undefined) return [];
  return optionSteps('git', spec, rest);
}

/** Whether words xargs appends could change what a command runs (options, or the command itself). */
export function appendUnsafe(name: string): boolean {
  return APPEND_UNSAFE.has(name) || OPTION_COMMANDS.has(name);
}
