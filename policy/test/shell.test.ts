import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { analyzeShell } from '../src/shell/analyze.ts';
import { compileGlob, shellMatches } from '../src/shell/glob.ts';
import { PolicyError } from '../src/errors.ts';

interface Case {
  readonly line: string;
  /** the exact `commands[].text`, in order */
  readonly commands: readonly string[];
  /** when set, the line is unresolvable and this is one of the reasons */
  readonly reason?: string;
}

const RESOLVED: readonly Case[] = [
  // plain commands and quoting obfuscations
  { line: 'ls -la /tmp', commands: ['ls -la /tmp'] },
  { line: "'r''m' -rf /", commands: ['rm -rf /'] },
  { line: 'r\\m -rf /', commands: ['rm -rf /'] },
  { line: '\\rm -rf /', commands: ['rm -rf /'] },
  { line: '"/bin/rm" -rf /', commands: ['rm -rf /'] },
  { line: "$'\\x72m' -rf /", commands: ['rm -rf /'] },
  { line: "$'\\162\\u006d' -rf /", commands: ['rm -rf /'] },
  { line: '/usr/bin/rm -rf /', commands: ['rm -rf /'] },
  { line: './deploy.sh --now', commands: ['deploy.sh --now'] },
  { line: 'r"m" -r\'f\' "/"', commands: ['rm -rf /'] },
  { line: 'echo a\\\nb', commands: ['echo ab'] },
  { line: "echo 'it'\"'\"'s'", commands: ["echo it's"] },
  { line: "echo $'a\\tb'", commands: ['echo a\tb'] },
  // sequences, pipes, subshells, blocks
  { line: 'a; b && c || d | e & f', commands: ['a', 'b', 'c', 'd', 'e', 'f'] },
  { line: 'ls\npwd', commands: ['ls', 'pwd'] },
  { line: '(cd /tmp && rm -rf x) | { cat; }', commands: ['cd /tmp', 'rm -rf x', 'cat'] },
  { line: 'ls |& tee log', commands: ['ls', 'tee log'] },
  { line: '! grep -q x file', commands: ['grep -q x file'] },
  { line: 'time rm -rf /tmp/x', commands: ['rm -rf /tmp/x'] },
  { line: 'time -p { ls; }', commands: ['ls'] },
  { line: 'ls # rm -rf /', commands: ['ls'] },
  // compound commands and functions
  { line: 'if test -f x; then rm x; elif true; then :; else echo no; fi', commands: ['test -f x', 'rm x', 'true', ':', 'echo no'] },
  { line: 'for f in *.log; do gzip "$f"; done', commands: ['gzip $f'] },
  { line: 'while read -r l; do echo "$l"; done < list', commands: ['read -r l', 'echo $l'] },
  { line: 'until false; do break; done', commands: ['false', 'break'] },
  { line: 'case "$1" in start) run;; stop|halt) rm -rf /;; esac', commands: ['run', 'rm -rf /'] },
  { line: 'f() { rm -rf /; }; f', commands: ['rm -rf /', 'f'] },
  { line: 'function g { shutdown -h now; }', commands: ['shutdown -h now'] },
  { line: 'select x in a b; do reboot; done', commands: ['reboot'] },
  { line: 'coproc cat', commands: ['cat'] },
  { line: '[[ -f /etc/x ]] && rm /etc/x', commands: ['rm /etc/x'] },
  { line: 'cat <<EOF\nrm -rf /\nEOF\nls', commands: ['cat', 'ls'] },
  // assignments and redirections
  { line: 'FOO=bar BAZ=1 rm -rf /', commands: ['rm -rf /'] },
  { line: 'X=1', commands: [] },
  { line: 'echo hi > /etc/passwd', commands: ['echo hi'] },
  { line: '2>/dev/null >out rm -v x', commands: ['rm -v x'] },
  { line: 'ls $HOME "$HOME/x" ${TMP:-/tmp}', commands: ['ls $HOME $HOME/x ${TMP:-/tmp}'] },
  { line: 'echo $((1 + 2))', commands: ['echo $((1 + 2))'] },
  // dangerous words as mere arguments
  { line: 'echo "rm -rf /"', commands: ['echo rm -rf /'] },
  { line: "grep 'sudo' /var/log/auth.log", commands: ['grep sudo /var/log/auth.log'] },
  { line: "cat <<'EOF'\n$(rm -rf /)\nEOF", commands: ['cat'] },
  { line: 'python -c "import os; os.system(\'rm -rf /\')"', commands: ["python -c import os; os.system('rm -rf /')"] },
  { line: 'ssh db1 rm -rf /', commands: ['ssh db1 rm -rf /'] },
  // wrappers
  { line: 'sudo rm -rf /', commands: ['sudo rm -rf /', 'rm -rf /'] },
  { line: 'sudo -u root -E -- /bin/rm -rf /', commands: ['sudo -u root -E -- /bin/rm -rf /', 'rm -rf /'] },
  { line: 'sudo -l', commands: ['sudo -l'] },
  {
    line: "sudo env FOO=1 nohup timeout 5 bash -c 'rm -rf /tmp/x'",
    commands: [
      'sudo env FOO=1 nohup timeout 5 bash -c rm -rf /tmp/x',
      'env FOO=1 nohup timeout 5 bash -c rm -rf /tmp/x',
      'nohup timeout 5 bash -c rm -rf /tmp/x',
      'timeout 5 bash -c rm -rf /tmp/x',
      'bash -c rm -rf /tmp/x',
      'rm -rf /tmp/x',
    ],
  },
  { line: 'sh -c "ls; rm -rf /"', commands: ['sh -c ls; rm -rf /', 'ls', 'rm -rf /'] },
  { line: 'bash -lc "reboot"', commands: ['bash -lc reboot', 'reboot'] },
  { line: 'dash -ec reboot', commands: ['dash -ec reboot', 'reboot'] },
  { line: 'zsh -c reboot', commands: ['zsh -c reboot', 'reboot'] },
  { line: 'ksh -o pipefail -c reboot', commands: ['ksh -o pipefail -c reboot', 'reboot'] },
  { line: 'sh -c \'sh -c "rm -rf /"\'', commands: ['sh -c sh -c "rm -rf /"', 'sh -c rm -rf /', 'rm -rf /'] },
  { line: 'env -i -u HOME PATH=/bin rm x', commands: ['env -i -u HOME PATH=/bin rm x', 'rm x'] },
  { line: 'env', commands: ['env'] },
  { line: 'nohup rm -rf / &', commands: ['nohup rm -rf /', 'rm -rf /'] },
  { line: 'timeout -k 5 -s KILL 10s rm x', commands: ['timeout -k 5 -s KILL 10s rm x', 'rm x'] },
  { line: 'nice -n 10 rm x', commands: ['nice -n 10 rm x', 'rm x'] },
  { line: 'ionice -c 3 rm x', commands: ['ionice -c 3 rm x', 'rm x'] },
  { line: 'stdbuf -oL rm x', commands: ['stdbuf -oL rm x', 'rm x'] },
  { line: 'setsid -f rm x', commands: ['setsid -f rm x', 'rm x'] },
  { line: 'chroot /mnt rm x', commands: ['chroot /mnt rm x', 'rm x'] },
  { line: 'doas -u admin rm x', commands: ['doas -u admin rm x', 'rm x'] },
  { line: "su - root -c 'rm -rf /'", commands: ['su - root -c rm -rf /', 'rm -rf /'] },
  { line: 'xargs -0 -n1 rm -f', commands: ['xargs -0 -n1 rm -f', 'rm -f'] },
  { line: 'ls | xargs -I{} mv {} /tmp', commands: ['ls', 'xargs -I{} mv {} /tmp', 'mv {} /tmp'] },
  { line: "find / -name '*.tmp' -exec rm -f {} \\;", commands: ['find / -name *.tmp -exec rm -f {} ;', 'rm -f {}'] },
  {
    line: 'find . -execdir chmod 777 {} + -ok rm {} \\;',
    commands: ['find . -execdir chmod 777 {} + -ok rm {} ;', 'chmod 777 {}', 'rm {}'],
  },
  { line: "find . -exec sh -c 'rm \"$1\"' _ {} \\;", commands: ['find . -exec sh -c rm "$1" _ {} ;', 'sh -c rm "$1" _ {}', 'rm $1'] },
  { line: "watch -n 5 'df -h; rm -rf /tmp/x'", commands: ['watch -n 5 df -h; rm -rf /tmp/x', 'df -h', 'rm -rf /tmp/x'] },
  { line: 'watch -x rm x', commands: ['watch -x rm x', 'rm x'] },
  { line: '/usr/bin/time -v rm x', commands: ['time -v rm x', 'rm x'] },
  { line: 'strace -f -o /tmp/t rm x', commands: ['strace -f -o /tmp/t rm x', 'rm x'] },
  { line: 'busybox rm -rf /', commands: ['busybox rm -rf /', 'rm -rf /'] },
  { line: 'command rm x', commands: ['command rm x', 'rm x'] },
  { line: 'command -v rm', commands: ['command -v rm'] },
  { line: 'builtin echo hi', commands: ['builtin echo hi', 'echo hi'] },
  { line: 'exec -a name rm x', commands: ['exec -a name rm x', 'rm x'] },
  { line: "trap 'rm -rf /' EXIT", commands: ['trap rm -rf / EXIT', 'rm -rf /'] },
  { line: 'time -- rm -rf /', commands: ['rm -rf /'] },
  { line: 'time -p -- sudo reboot', commands: ['sudo reboot', 'reboot'] },
  { line: 'declare -a x=(1 2)', commands: ['declare -a x=(1 2)'] },
  { line: 'git -c alias.st=status st', commands: ['git -c alias.st=status st'] },
  { line: 'tar -czf a.tgz dir', commands: ['tar -czf a.tgz dir'] },
  // more wrappers
  { line: 'flock -n -w 5 /tmp/l rm -rf /', commands: ['flock -n -w 5 /tmp/l rm -rf /', 'rm -rf /'] },
  { line: "flock /tmp/l -c 'rm -rf /'", commands: ['flock /tmp/l -c rm -rf /', 'rm -rf /'] },
  { line: 'setpriv --reuid=0 --init-groups rm x', commands: ['setpriv --reuid=0 --init-groups rm x', 'rm x'] },
  { line: 'taskset -c 0,1 rm x', commands: ['taskset -c 0,1 rm x', 'rm x'] },
  { line: 'taskset 0x3 rm x', commands: ['taskset 0x3 rm x', 'rm x'] },
  { line: 'unshare -m -f --mount-proc rm x', commands: ['unshare -m -f --mount-proc rm x', 'rm x'] },
  { line: 'pkexec --user root rm x', commands: ['pkexec --user root rm x', 'rm x'] },
  { line: 'run0 -u root rm x', commands: ['run0 -u root rm x', 'rm x'] },
  { line: 'nsenter -t 1 -m -u -n rm x', commands: ['nsenter -t 1 -m -u -n rm x', 'rm x'] },
  { line: 'chrt -f 99 rm x', commands: ['chrt -f 99 rm x', 'rm x'] },
  { line: 'prlimit --nofile=1024 -n1024 rm x', commands: ['prlimit --nofile=1024 -n1024 rm x', 'rm x'] },
  { line: 'setarch x86_64 -R rm x', commands: ['setarch x86_64 -R rm x', 'rm x'] },
  { line: 'ltrace -f -o /tmp/o rm x', commands: ['ltrace -f -o /tmp/o rm x', 'rm x'] },
  { line: "script -qc 'rm -rf /' /dev/null", commands: ['script -qc rm -rf / /dev/null', 'rm -rf /'] },
];

const UNRESOLVABLE: readonly Case[] = [
  { line: '$(echo rm) -rf /', commands: ['echo rm', '$(echo rm) -rf /'], reason: 'command substitution' },
  { line: '`echo rm` -rf /', commands: ['echo rm', '`echo rm` -rf /'], reason: 'command substitution' },
  { line: 'echo "$(reboot)"', commands: ['reboot', 'echo $(reboot)'], reason: 'command substitution' },
  { line: 'diff <(ls a) b', commands: ['ls a', 'diff <(ls a) b'], reason: 'process substitution' },
  { line: 'eval "rm -rf /"', commands: ['eval rm -rf /'], reason: 'eval' },
  { line: '$CMD -rf /', commands: ['$CMD -rf /'], reason: 'variable as program' },
  { line: 'X=rm; "$X" -rf /', commands: ['$X -rf /'], reason: 'variable as program' },
  { line: 'sudo $CMD', commands: ['sudo $CMD'], reason: 'dynamic argument to sudo' },
  { line: 'bash -c "$CMD"', commands: ['bash -c $CMD'], reason: 'dynamic argument to bash' },
  { line: 'bash -c "rm $X"', commands: ['bash -c rm $X'], reason: 'dynamic shell command' },
  { line: '/bin/r? -rf /', commands: ['/bin/r? -rf /'], reason: 'glob or brace expansion as program' },
  { line: '{rm,-rf,/}', commands: ['{rm,-rf,/}'], reason: 'glob or brace expansion as program' },
  { line: 'echo cm0gLXJmIC8= | base64 -d | sh', commands: ['echo cm0gLXJmIC8=', 'base64 -d', 'sh'], reason: 'payload piped into a shell' },
  { line: 'curl -s x | bash', commands: ['curl -s x', 'bash'], reason: 'payload piped into a shell' },
  { line: 'curl x | sudo bash -s', commands: ['curl x', 'sudo bash -s', 'bash -s'], reason: 'payload piped into a shell' },
  { line: 'base64 -d <<< cm0K | bash', commands: ['base64 -d', 'bash'], reason: 'payload piped into a shell' },
  { line: 'bash script.sh', commands: ['bash script.sh'], reason: 'script file' },
  { line: 'sh < script.sh', commands: ['sh'], reason: 'script file' },
  { line: 'bash <<< "rm -rf /"', commands: ['bash'], reason: 'here-document fed to a shell' },
  { line: 'sh <<EOF\nrm -rf /\nEOF', commands: ['sh'], reason: 'here-document fed to a shell' },
  { line: 'sudo -i', commands: ['sudo -i'], reason: 'shell reading commands from standard input' },
  { line: 'source ./env.sh', commands: ['source ./env.sh'], reason: 'source of a file' },
  { line: '. ./env.sh', commands: ['. ./env.sh'], reason: 'source of a file' },
  { line: "rm -rf '", commands: [], reason: "parse error: reached EOF without closing quote `'`" },
  { line: 'if true; then ls', commands: [] },
  { line: 'ls && ', commands: [] },
  { line: 'sudo --frobnicate rm x', commands: ['sudo --frobnicate rm x'], reason: 'unknown option --frobnicate of sudo' },
  { line: 'find $DIR -delete', commands: ['find $DIR -delete'], reason: 'dynamic find arguments' },
  { line: "find . -exec sh -c 'rm {}' \\;", commands: ['find . -exec sh -c rm {} ;', 'sh -c rm {}'], reason: 'dynamic shell command' },
  { line: 'ls | xargs -I% sh -c %', commands: ['ls', 'xargs -I% sh -c %', 'sh -c %'], reason: 'dynamic argument to sh' },
  { line: 'env -S "rm -rf /"', commands: ['env -S rm -rf /'], reason: 'env -S split string' },
  { line: "a='x[$(rm -rf /)]'; echo $((a))", commands: ['echo $((a))'], reason: 'arithmetic on variables' },
  { line: "x='$(reboot)'; echo ${x@P}", commands: ['echo ${x@P}'], reason: 'prompt expansion' },
  { line: 'echo ${!ref}', commands: ['echo ${!ref}'], reason: 'indirect expansion' },
  { line: "printf -v 'a[$(reboot)]' x", commands: ['printf -v a[$(reboot)] x'], reason: 'array subscript may run code' },
  { line: "PS4='$(reboot)' bash -xc true", commands: ['bash -xc true', 'true'], reason: 'prompt or startup variable assignment' },
  { line: "env 'BASH_FUNC_ls%%=() { reboot; }' bash -c ls", commands: ['env BASH_FUNC_ls%%=() { reboot; } bash -c ls', 'bash -c ls', 'ls'], reason: 'exported function' },
  { line: "alias ls='rm -rf /'", commands: ['alias ls=rm -rf /'], reason: 'alias definition' },
  { line: 'hash -p /bin/rm ls; ls -rf /', commands: ['hash -p /bin/rm ls', 'ls -rf /'], reason: 'hash -p rebinds a command name' },
  { line: 'echo ok\0rm -rf /', commands: [], reason: 'NUL character' },
  { line: `echo ${'a'.repeat(70_000)}`, commands: [], reason: 'too long' },
  // xargs appending words to a wrapper that has no command of its own
  { line: 'echo rm -rf / | xargs env', commands: ['echo rm -rf /', 'xargs env', 'env'], reason: 'arguments appended to env' },
  { line: 'echo shutdown -h now | xargs sudo', commands: ['echo shutdown -h now', 'xargs sudo', 'sudo'], reason: 'arguments appended to sudo' },
  // rebinding command names through bash's tables
  { line: 'BASH_CMDS[ls]=/bin/rm; ls -rf /', commands: ['ls -rf /'], reason: 'BASH_CMDS or BASH_ALIASES assignment' },
  { line: 'BASH_ALIASES=([ls]="rm -rf /")', commands: [], reason: 'BASH_CMDS or BASH_ALIASES assignment' },
  { line: "declare -A BASH_ALIASES='([ls]=reboot)'", commands: ['declare -A BASH_ALIASES=([ls]=reboot)'], reason: 'BASH_CMDS or BASH_ALIASES assignment' },
  { line: 'declare -n r=BASH_CMDS', commands: ['declare -n r=BASH_CMDS'], reason: 'BASH_CMDS or BASH_ALIASES assignment' },
  { line: 'read BASH_CMDS[ls]', commands: ['read BASH_CMDS[ls]'], reason: 'BASH_CMDS or BASH_ALIASES assignment' },
  { line: 'shopt -s expand_aliases', commands: ['shopt -s expand_aliases'], reason: 'expand_aliases' },
  // a quoted array value is parsed as code
  { line: "declare -a 'x=($(rm -rf /))'", commands: ['declare -a x=($(rm -rf /))'], reason: 'array value parsed as code' },
  { line: "local -A 'x=([a]=`reboot`)'", commands: ['local -A x=([a]=`reboot`)'], reason: 'array value parsed as code' },
  { line: "typeset -a 'x=$y'", commands: ['typeset -a x=$y'], reason: 'array value parsed as code' },
  // dash has no $'...': it would split the script differently from bash
  { line: `sh -c "echo $'a' ; reboot"`, commands: ["sh -c echo $'a' ; reboot"], reason: "$'...' in a POSIX shell script" },
  { line: `dash -c "echo $'x'"`, commands: ["dash -c echo $'x'"], reason: "$'...' in a POSIX shell script" },
  // variables whose value other programs run
  { line: "LESSOPEN='|reboot %s' less f", commands: ['less f'], reason: 'variable holding a command or code' },
  { line: 'env LD_PRELOAD=/tmp/x.so ls', commands: ['env LD_PRELOAD=/tmp/x.so ls', 'ls'], reason: 'variable holding a command or code' },
  { line: 'export GIT_SSH_COMMAND=reboot', commands: ['export GIT_SSH_COMMAND=reboot'], reason: 'variable holding a command or code' },
  { line: 'sudo PAGER=reboot git log', commands: ['sudo PAGER=reboot git log', 'git log'], reason: 'variable holding a command or code' },
  { line: 'run0 --setenv=NODE_OPTIONS=-r/x node', commands: ['run0 --setenv=NODE_OPTIONS=-r/x node', 'node'], reason: 'variable holding a command or code' },
  // commands that run code given in options
  { line: "git -c 'alias.x=!rm -rf /' x", commands: ['git -c alias.x=!rm -rf / x'], reason: 'git alias or config that runs a command' },
  { line: 'git --config-env=alias.x=V x', commands: ['git --config-env=alias.x=V x'], reason: 'git alias or config that runs a command' },
  { line: 'tar -cf a.tar --checkpoint=1 --checkpoint-action=exec=reboot .', commands: ['tar -cf a.tar --checkpoint=1 --checkpoint-action=exec=reboot .'], reason: 'tar option that runs a command' },
  { line: 'tar -xf a.tar --to-command=reboot', commands: ['tar -xf a.tar --to-command=reboot'], reason: 'tar option that runs a command' },
  { line: 'tar -cI reboot -f a.tar .', commands: ['tar -cI reboot -f a.tar .'], reason: 'tar option that runs a command' },
  { line: 'tar --use-compress=reboot -cf a .', commands: ['tar --use-compress=reboot -cf a .'], reason: 'tar option that runs a command' },
  { line: 'tar cf a.tar *', commands: ['tar cf a.tar *'], reason: 'tar option that runs a command' },
  { line: 'echo x | xargs tar cf a.tar', commands: ['echo x', 'xargs tar cf a.tar', 'tar cf a.tar'], reason: 'arguments appended to tar' },
  { line: 'unshare -m', commands: ['unshare -m'], reason: 'shell reading commands from standard input' },
];

for (const c of RESOLVED) {
  test(`resolves ${JSON.stringify(c.line)}`, async () => {
    const a = await analyzeShell(c.line);
    assert.deepEqual(a.reasons, []);
    assert.equal(a.unresolvable, false);
    assert.deepEqual(
      a.commands.map((cmd) => cmd.text),
      c.commands,
    );
    for (const cmd of a.commands) assert.equal(cmd.text, cmd.argv.join(' '));
  });
}

for (const c of UNRESOLVABLE) {
  test(`unresolvable ${JSON.stringify(c.line.slice(0, 60))}`, async () => {
    const a = await analyzeShell(c.line);
    assert.equal(a.unresolvable, true);
    assert.ok(a.reasons.length > 0);
    if (c.reason !== undefined) assert.ok(a.reasons.includes(c.reason), `reasons ${JSON.stringify(a.reasons)}`);
    // Nested scripts past the depth limit still report what they saw; only check shallow ones.
    if (c.commands.length > 0 || c.reason !== undefined) {
      assert.deepEqual(
        a.commands.map((cmd) => cmd.text),
        c.commands,
      );
    }
  });
}

test('dynamic: arguments only known at run time', async () => {
  const dynamic = async (line: string): Promise<(readonly [string, boolean])[]> => {
    const a = await analyzeShell(line);
    assert.equal(a.unresolvable, false, `reasons ${JSON.stringify(a.reasons)}`);
    return a.commands.map((c) => [c.text, c.dynamic] as const);
  };
  assert.deepEqual(await dynamic('rm -rf /'), [['rm -rf /', false]]);
  assert.deepEqual(await dynamic('rm -r{f,} /'), [['rm -r{f,} /', true]]);
  assert.deepEqual(await dynamic('a=-rf; rm $a /'), [['rm $a /', true]]);
  assert.deepEqual(await dynamic('set -- -rf /; rm "$@"'), [['set -- -rf /', false], ['rm $@', true]]);
  assert.deepEqual(await dynamic('rm /tmp/*.log'), [['rm /tmp/*.log', true]]);
  assert.deepEqual(await dynamic("rm '/tmp/*.log'"), [['rm /tmp/*.log', false]]);
  assert.deepEqual(await dynamic("bash -c 'rm \"$@\"' _ -rf /"), [['bash -c rm "$@" _ -rf /', false], ['rm $@', true]]);
  // xargs without -I appends the words it reads; the wrapper's own words are static.
  assert.deepEqual(await dynamic('echo / | xargs rm -rf'), [['echo /', false], ['xargs rm -rf', false], ['rm -rf', true]]);
  assert.deepEqual(await dynamic('xargs sudo rm'), [['xargs sudo rm', false], ['sudo rm', true], ['rm', true]]);
  assert.deepEqual(await dynamic('ls | xargs -I{} mv {} /tmp'), [['ls', false], ['xargs -I{} mv {} /tmp', false], ['mv {} /tmp', true]]);
});

test('mapfile -C runs its callback as code', async () => {
  const a = await analyzeShell("mapfile -C 'reboot' -c 1 < f");
  assert.equal(a.unresolvable, false);
  assert.deepEqual(
    a.commands.map((c) => c.text),
    ['mapfile -C reboot -c 1', 'reboot'],
  );
});

test('a parse error names the problem', async () => {
  const a = await analyzeShell('if true; then ls');
  assert.match(a.reasons[0] ?? '', /^parse error: /);
});

test('nested shells deeper than the limit are unresolvable', async () => {
  let line = 'reboot';
  for (let i = 0; i < 9; i++) line = `sh -c ${shellQuote(line)}`;
  const a = await analyzeShell(line);
  assert.equal(a.unresolvable, true);
  assert.ok(a.reasons.includes('nesting too deep'));
});

test('argv[0] is normalised and argv keeps word boundaries', async () => {
  const a = await analyzeShell('"/usr/local/bin/my tool" "a b" c');
  const [cmd] = a.commands;
  assert.ok(cmd !== undefined);
  assert.deepEqual(cmd.argv, ['my tool', 'a b', 'c']);
  assert.equal(cmd.text, 'my tool a b c');
});

test('the analysis is frozen', async () => {
  const a = await analyzeShell('ls');
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.commands) && Object.isFrozen(a.commands[0]));
});

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// globs

test('compileGlob: star matches any run, spaces and slashes included', () => {
  const m = compileGlob('rm -rf *');
  assert.equal(m('rm -rf /'), true);
  assert.equal(m('rm -rf /tmp'), true);
  assert.equal(m('rm -rf /tmp/a b'), true);
  assert.equal(m('rm -rf '), true);
  assert.equal(m('rm -rf'), false);
  assert.equal(m('rm -r /'), false);
  assert.equal(compileGlob('shutdown*')('shutdown -h now'), true);
  assert.equal(compileGlob('shutdown*')('shutdown'), true);
  assert.equal(compileGlob('*reboot*')('sudo reboot now'), true);
  assert.equal(compileGlob('a*b*c')('axxbyyc'), true);
  assert.equal(compileGlob('a*b*c')('axxbyy'), false);
});

test('compileGlob: whole-string literal matching', () => {
  assert.equal(compileGlob('sudo *')('sudoedit x'), false);
  assert.equal(compileGlob('sudo *')('sudo x'), true);
  assert.equal(compileGlob('ls')('ls'), true);
  assert.equal(compileGlob('ls')('ls -la'), false);
  assert.equal(compileGlob('ls')('als'), false);
  assert.equal(compileGlob('')(''), true);
  assert.equal(compileGlob('')('x'), false);
});

test('compileGlob: ? matches exactly one character (a code point)', () => {
  const m = compileGlob('r?');
  assert.equal(m('rm'), true);
  assert.equal(m('r'), false);
  assert.equal(m('rmx'), false);
  assert.equal(m('r🚀'), true);
});

test('compileGlob: backslash escapes', () => {
  const m = compileGlob('echo \\*');
  assert.equal(m('echo *'), true);
  assert.equal(m('echo x'), false);
  assert.equal(compileGlob('a\\?')('a?'), true);
  assert.equal(compileGlob('a\\?')('ab'), false);
  assert.equal(compileGlob('a\\\\b')('a\\b'), true);
});

test('compileGlob: a malformed pattern throws PolicyError InvalidGlob', () => {
  assert.throws(
    () => compileGlob('rm \\'),
    (err: unknown) => err instanceof PolicyError && err.code === 'InvalidGlob',
  );
});

test('compileGlob: no backtracking blowup', () => {
  const m = compileGlob(`${'*a'.repeat(200)}b`);
  const start = performance.now();
  assert.equal(m('a'.repeat(20_000)), false);
  assert.ok(performance.now() - start < 2_000);
});

test('shellMatches: any command against any glob; unresolvable matches everything', async () => {
  const globs = [compileGlob('rm *'), compileGlob('reboot')];
  assert.equal(shellMatches(globs, await analyzeShell('ls; sudo rm -rf /')), true);
  assert.equal(shellMatches(globs, await analyzeShell('echo "rm -rf /"')), false);
  assert.equal(shellMatches(globs, await analyzeShell('ls -la')), false);
  assert.equal(shellMatches(globs, await analyzeShell('$(echo ls)')), true);
  assert.equal(shellMatches([compileGlob('nothing')], await analyzeShell('eval x')), true);
  assert.equal(shellMatches([], await analyzeShell('ls')), false);
});

// ---------------------------------------------------------------------------------------------
// properties

const SHELL_PIECES = [
  ' ', ' ', ';', '&', '&&', '||', '|', '(', ')', '{ ', ' }', "'", '"', '\\', '$', '`', '$(', '${', '}', '$((', '))', '<', '>', '<<', '<<<',
  '<(', 'EOF', '\n', '#', '=', '*', '?', '[', ']', '[[ ', ' ]]', 'if ', 'then ', 'fi', 'for ', 'in ', 'do ', 'done', 'case ', 'esac', ';;',
  'function ', 'f()', '!', 'time ', "$'", '\\x72', 'rm', '-rf', '/', 'sudo ', 'bash -c ', 'env ', 'xargs ', 'find . -exec ', '{}', '\\;', 'é', '🚀',
];
const shellish = fc.array(fc.constantFrom(...SHELL_PIECES), { maxLength: 20 }).map((a) => a.join(''));
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)), maxLength: 40 });

async function wellFormed(line: string): Promise<void> {
  const a = await analyzeShell(line);
  assert.equal(typeof a.unresolvable, 'boolean');
  assert.equal(a.unresolvable, a.reasons.length > 0);
  for (const c of a.commands) assert.equal(c.text, c.argv.join(' '));
}

test('analyzeShell never throws on random strings', async () => {
  await fc.assert(fc.asyncProperty(fc.string({ maxLength: 40 }), wellFormed), { numRuns: 150 });
});

test('analyzeShell never throws on random full-Unicode strings', async () => {
  await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), utf16), wellFormed), { numRuns: 150 });
});

test('analyzeShell never throws on strings of shell metacharacters', async () => {
  await fc.assert(fc.asyncProperty(shellish, wellFormed), { numRuns: 300 });
});

test('analyzeShell stays bounded on large hostile input', async () => {
  for (const line of ['a;'.repeat(30_000), '$('.repeat(3_000) + ')'.repeat(3_000), '{ '.repeat(2_000) + 'ls;' + ' }'.repeat(2_000), 'sudo '.repeat(5_000) + 'ls']) {
    const start = performance.now();
    await wellFormed(line);
    assert.ok(performance.now() - start < 10_000);
  }
});

test('compileGlob on random patterns: PolicyError or a matcher that never throws', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('*', '?', '\\', 'a', 'b', ' ', '/', 'é'), maxLength: 20 }), fc.string({ maxLength: 30 }), (pattern, text) => {
      let match: (t: string) => boolean;
      try {
        match = compileGlob(pattern);
      } catch (err) {
        assert.ok(err instanceof PolicyError && err.code === 'InvalidGlob');
        return;
      }
      assert.equal(typeof match(text), 'boolean');
      assert.equal(typeof match(pattern), 'boolean');
    }),
    { numRuns: 1000 },
  );
});

test('a literal pattern matches exactly its own text', () => {
  const literal = fc.string({ maxLength: 20 }).filter((s) => !/[*?\\]/.test(s));
  fc.assert(
    fc.property(literal, fc.string({ maxLength: 20 }), (pattern, other) => {
      const match = compileGlob(pattern);
      assert.equal(match(pattern), true);
      assert.equal(match(other), other === pattern);
    }),
    { numRuns: 1000 },
  );
});
