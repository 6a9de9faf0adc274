import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseManifests } from '@airlock/api';
import { compileBundle, decideShell } from '@airlock/policy';
import { analyzeShell, analyzeShellSync, loadShellParser } from '../src/shell/analyze.ts';

/** [line, the reason it is unresolvable] */
const UNRESOLVABLE: readonly (readonly [string, string])[] = [
  // git: configuration from the environment
  ['GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.pager GIT_CONFIG_VALUE_0=reboot git log', 'variable holding a command or code'],
  ['env GIT_CONFIG_PARAMETERS="\'core.pager\'=\'reboot\'" git log', 'variable holding a command or code'],
  ['GIT_EXTERNAL_DIFF=/tmp/x git diff', 'variable holding a command or code'],
  ['GIT_PAGER=reboot git log', 'variable holding a command or code'],
  ['export GIT_SSH_COMMAND=reboot; git fetch', 'variable holding a command or code'],
  ['sudo GIT_EDITOR=reboot git commit', 'variable holding a command or code'],
  ['GIT_CONFIG_GLOBAL=/tmp/evil git status', 'variable holding a command or code'],
  ['GIT_EXEC_PATH=/tmp git status', 'variable holding a command or code'],
  // git: configuration and options on the command line
  ['git -c core.pager=reboot log', 'git alias or config that runs a command'],
  ["git -c core.sshCommand='sh -c reboot' fetch", 'git alias or config that runs a command'],
  ['git -c core.fsmonitor=/tmp/x status', 'git alias or config that runs a command'],
  ['git -c include.path=/tmp/evil status', 'git alias or config that runs a command'],
  ['git -c protocol.ext.allow=always clone ext::x', 'git alias or config that runs a command'],
  ["git -c 'alias.x=!reboot' x", 'git alias or config that runs a command'],
  ["git -c 'alias.x=push --receive-pack=reboot' x", 'git alias or config that runs a command'],
  ['git --config-env=core.pager=V log', 'git alias or config that runs a command'],
  ['git --config-env core.editor=V commit', 'git alias or config that runs a command'],
  ['git -c "$X" log', 'git alias or config that runs a command'],
  ['git $OPT log', 'git alias or config that runs a command'],
  ['git clone -c core.sshCommand=reboot h:r', 'git alias or config that runs a command'],
  ['git config core.pager reboot', 'git alias or config that runs a command'],
  ['git config --global alias.st \'!reboot\'', 'git alias or config that runs a command'],
  ['git config set core.hooksPath /tmp/hooks', 'git alias or config that runs a command'],
  ['git --exec-path=/tmp/evil status', 'git option that runs a command'],
  ['git clone --upload-pack=reboot h:r', 'git option that runs a command'],
  ['git clone -u reboot h:r', 'git option that runs a command'],
  ['git fetch --upload=reboot origin', 'git option that runs a command'],
  ['git ls-remote --upload-pack reboot origin', 'git option that runs a command'],
  ['git push --receive-pack=reboot origin', 'git option that runs a command'],
  ['git push --exec=reboot origin', 'git option that runs a command'],
  ['git archive --remote=h:r --exec=reboot HEAD', 'git option that runs a command'],
  ['git rebase -x reboot main', 'git option that runs a command'],
  ['git difftool --extcmd=reboot', 'git option that runs a command'],
  ['git grep -Oreboot x', 'git option that runs a command'],
  ['git bisect run reboot', 'git option that runs a command'],
  ['git submodule foreach reboot', 'git option that runs a command'],
  ["git filter-branch --tree-filter 'reboot' HEAD", 'git option that runs a command'],
  // wildcard injection: a word that may expand to an option of a program whose options run commands
  ['rsync -av * dst:', 'rsync option that runs a command'],
  ['rsync -av $SRC dst:', 'rsync option that runs a command'],
  ['rsync --rsync-path=reboot a h:b', 'rsync option that runs a command'],
  ['chmod 644 *', 'argument of chmod that may expand to an option'],
  ['chown root:root *.conf', 'argument of chown that may expand to an option'],
  ['chgrp -R adm ?x', 'argument of chgrp that may expand to an option'],
  ['zip out.zip *', 'zip option that runs a command'],
  ['zip -TT reboot out.zip f', 'zip option that runs a command'],
  ['zip --unzip-command reboot -T out.zip f', 'zip option that runs a command'],
  ['7z a out.7z *', 'argument of 7z that may expand to an option'],
  ['scp * h:/tmp', 'scp option that runs a command'],
  ['scp -o ProxyCommand=reboot f h:', 'scp option that runs a command'],
  ['scp -S reboot f h:', 'scp option that runs a command'],
  ['ssh -oProxyCommand=reboot h', 'ssh option that runs a command'],
  ["ssh -o 'LocalCommand reboot' -o PermitLocalCommand=yes h", 'ssh option that runs a command'],
  ['ssh -F /tmp/cfg h', 'ssh option that runs a command'],
  ['sftp -D /tmp/x h', 'sftp option that runs a command'],
  ['tar -czf a.tgz *', 'tar option that runs a command'],
  ['tar --info=reboot -cf a.tar d', 'tar option that runs a command'],
  ['tcpdump -w x -z reboot', 'tcpdump option that runs a command'],
  ['man -P reboot ls', 'man option that runs a command'],
  ['apt-get -o APT::Update::Pre-Invoke::=reboot update', 'apt-get option that runs a command'],
  ['ls | xargs rsync', 'arguments appended to rsync'],
  ['ls | xargs chmod 600', 'arguments appended to chmod'],
  // payloads run by other programs
  ['parallel reboot ::: a', 'parallel runs a command given in its arguments or input'],
  ["parallel 'rm {}' ::: *", 'parallel runs a command given in its arguments or input'],
  ['echo reboot | at now', 'at runs a command given in its arguments or input'],
  ['systemd-run reboot', 'systemd-run runs a command given in its arguments or input'],
  ["fish -c 'reboot'", 'script in fish, not bash'],
  ['csh -c reboot', 'script in csh, not bash'],
  ['tcsh -c reboot', 'script in tcsh, not bash'],
  ['flock /tmp/l -c "$CMD"', 'dynamic shell command'],
  ['script -c "$CMD" /dev/null', 'missing or dynamic value for -c of script'],
  ['su -c "$CMD"', 'missing or dynamic value for -c of su'],
  ['busybox sh -c "$CMD"', 'dynamic argument to sh'],
  ['watch "$CMD"', 'dynamic argument to watch'],
  ['{ ls; } >f extra', 'unsupported syntax: words after a redirection of compound_statement'],
  // where tree-sitter-bash and bash disagree, the line is refused rather than guessed
  ['a &\\\n& b', 'unsupported syntax: line continuation inside a token'],
  ['cat <<EOF \\\n | sh\nx\nEOF', 'unsupported syntax: line continuation with a here-document'],
  ['exec 3<>/dev/tcp/h/1', 'parse error: unexpected ">" at 1:8'],
  // found by comparing with the former parser on random lines: the grammar would miss these
  ['r``m -rf /', 'unsupported syntax: an expansion the grammar did not see in "``"'],
  ['cat <<EOF\n`reboot`\nEOF', 'unsupported syntax: an expansion the grammar did not see in "`reboot`\\n"'],
  ['x$2>/dev/null -rf /', 'variable as program'],
  ['\\x72]$2> }!2>if { ', 'unsupported syntax: file descriptor joined to a word at 6'],
  ['2>}\\x72sudo }', 'unsupported syntax: "2>}\\\\x72sudo" is one word to bash'],
  ['[b\\<] x', 'parse error: unexpected "[b\\\\<]" at 1:1'],
  ['then reboot', 'parse error: unexpected `then`'],
  ['ls; } ; reboot', 'parse error: unexpected `}`'],
  ['ls;; reboot', 'parse error: unexpected ;;'],
  ['bash -c *.sh', 'dynamic shell command'],
  ['ls \\\n\\\n-la', 'unsupported syntax: consecutive line continuations'],
];

for (const [line, reason] of UNRESOLVABLE) {
  test(`unresolvable: ${JSON.stringify(line)}`, async () => {
    const a = await analyzeShell(line);
    assert.equal(a.unresolvable, true, line);
    assert.ok(a.reasons.includes(reason), `reasons ${JSON.stringify(a.reasons)}`);
  });
}

/** [line, the commands it runs]: payloads unwrapped, safe forms still resolved. */
const RESOLVED: readonly (readonly [string, readonly string[]])[] = [
  ['flock /tmp/l -c reboot', ['flock /tmp/l -c reboot', 'reboot']],
  ["flock -x /tmp/l --command 'ls; reboot'", ['flock -x /tmp/l --command ls; reboot', 'ls', 'reboot']],
  ['script -q -c reboot /dev/null', ['script -q -c reboot /dev/null', 'reboot']],
  ['script --command=reboot', ['script --command=reboot', 'reboot']],
  ['su root --command=reboot', ['su root --command=reboot', 'reboot']],
  ['su -l bob -c reboot', ['su -l bob -c reboot', 'reboot']],
  ['runuser -u bob -- reboot', ['runuser -u bob -- reboot', 'reboot']],
  ['runuser -l bob -c reboot', ['runuser -l bob -c reboot', 'reboot']],
  ['watch -n 1 -- reboot now', ['watch -n 1 -- reboot now', 'reboot now']],
  ["busybox sh -c 'reboot'", ['busybox sh -c reboot', 'sh -c reboot', 'reboot']],
  ['busybox ash -c reboot', ['busybox ash -c reboot', 'ash -c reboot', 'reboot']],
  ["dash -c 'ls | reboot'", ['dash -c ls | reboot', 'ls', 'reboot']],
  ['zsh -c reboot', ['zsh -c reboot', 'reboot']],
  ['ksh -c reboot', ['ksh -c reboot', 'reboot']],
  ["sg wheel -c 'ls; reboot'", ['sg wheel -c ls; reboot', 'ls', 'reboot']],
  ['ip netns exec blue reboot', ['ip netns exec blue reboot', 'reboot']],
  ["rsync -avz -e 'ssh -p 2222' src/ h:dst/", ['rsync -avz -e ssh -p 2222 src/ h:dst/', 'ssh -p 2222']],
  ["rsync --rsh='sh -c reboot' a h:b", ['rsync --rsh=sh -c reboot a h:b', 'sh -c reboot', 'reboot']],
  // what stays allowed
  ['git log --oneline -5', ['git log --oneline -5']],
  ['git -c color.ui=never -C /srv/app status', ['git -c color.ui=never -C /srv/app status']],
  ['git -c alias.st=status st', ['git -c alias.st=status st']],
  ['git config --get core.pager', ['git config --get core.pager']],
  ['git config user.name bob', ['git config user.name bob']],
  ['git config get core.pager', ['git config get core.pager']],
  ['git add -u', ['git add -u']],
  ['git --exec-path', ['git --exec-path']],
  ['rsync -av ./* dst/', ['rsync -av ./* dst/']],
  ['chmod 644 -- *', ['chmod 644 -- *']],
  ['chown root /etc/app/*.conf', ['chown root /etc/app/*.conf']],
  ['ssh -o Port=2222 h uptime', ['ssh -o Port=2222 h uptime']],
  ['zip -r out.zip dir', ['zip -r out.zip dir']],
  ['tar -czf a.tgz dir', ['tar -czf a.tgz dir']],
  ['apt-get -o Dpkg::Options::=--force-confold install x', ['apt-get -o Dpkg::Options::=--force-confold install x']],
  ['at -l', ['at -l']],
  ['ls *', ['ls *']],
  // where tree-sitter-bash and bash disagree, the line is read as bash reads it
  ['r\\\nm -rf /', ['rm -rf /']],
  ['ls \\\n  -la', ['ls -la']],
  ['echo "a\\\nb" \'c\\\nd\'', ['echo ab c\\\nd']],
  ['rm {fd}>/dev/null -rf /', ['rm -rf /']],
  // tree-sitter-bash puts the words after a redirection's target into the redirection
  ['rm >/dev/null -rf /', ['rm -rf /']],
  ['rm >a -rf 2>b /', ['rm -rf /']],
  ['cat <<EOF -n\nx\nEOF', ['cat -n']],
  ['cat < f -n | wc', ['cat -n', 'wc']],
  ['sh < f -c reboot', ['sh -c reboot', 'reboot']],
  ['cat 0</etc/hostname', ['cat']],
  ['coproc cat', ['cat']],
  ['coproc X { ls; }', ['ls']],
  ['time -p { ls; }; time', ['ls']],
  ['X=1 time ls', ['time ls', 'ls']],
  ['\\time ls', ['time ls', 'ls']],
  ['cat <<EOF && rm x\nbody\nEOF\nls', ['cat', 'rm x', 'ls']],
  ['[ -f x ] && rm x', ['[ -f x ]', 'rm x']],
  ['"rm"\\{a,b}', ['rm{a,b}']],
  ['a\\;b x\\{y', ['a;b x{y']],
  ['0>x rm -rf /', ['rm -rf /']],
  ["cat <<'EOF'\n`reboot`\nEOF", ['cat']],
  ['echo $', ['echo $']],
  ['{}', ['{}']],
  ['!rm -rf /', ['!rm -rf /']],
  ['echo 🚀 "é$x"', ['echo 🚀 é$x']],
];

for (const [line, commands] of RESOLVED) {
  test(`resolves: ${JSON.stringify(line)}`, async () => {
    const a = await analyzeShell(line);
    assert.deepEqual(a.reasons, []);
    assert.deepEqual(
      a.commands.map((c) => c.text),
      commands,
    );
  });
}

test('a payload piped into a shell after a here-document is still a payload', async () => {
  const a = await analyzeShell('cat <<EOF | sh\nreboot\nEOF');
  assert.ok(a.reasons.includes('payload piped into a shell'), JSON.stringify(a.reasons));
  const b = await analyzeShell('a | sh < f');
  assert.ok(b.reasons.includes('script file'), JSON.stringify(b.reasons));
});

test('every line above is refused under a policy that allows everything', async () => {
  const yaml = `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: box, namespace: agents, labels: { env: dev } }
spec:
  protocol: ssh
  target: { host: 127.0.0.1, port: 22 }
  credentialsSecretRef: { name: creds }
  ssh: { hostKeyFingerprints: ["SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"] }
  agents: { serviceAccounts: [ops] }
  defaultAction: Allow
---
apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: all, namespace: agents }
spec:
  connectionSelector: {}
  rules:
    - name: anything
      match: { ssh: { commands: ["*"] } }
      action: Allow
`;
  const parsed = parseManifests('t.yaml', yaml);
  assert.deepEqual(parsed.errors, []);
  const bundle = compileBundle([...parsed.manifests], { connection: 'box' });
  assert.equal((await decideShell(bundle, 'git log')).decision, 'Allow');
  for (const [line] of UNRESOLVABLE) assert.equal((await decideShell(bundle, line)).decision, 'Block', line);
});

test('analyzeShellSync decides like analyzeShell once the parser is loaded', async () => {
  await loadShellParser();
  await loadShellParser(); // idempotent
  for (const [line] of [...UNRESOLVABLE, ...RESOLVED]) assert.deepEqual(analyzeShellSync(line), await analyzeShell(line), line);
});

test('property: a line continuation inside a word is removed, as bash does', async () => {
  const word = fc.stringMatching(/^[a-z0-9_./-]{2,12}$/);
  await fc.assert(
    fc.asyncProperty(word, fc.nat(), fc.array(word, { maxLength: 3 }), async (w, at, rest) => {
      const cut = 1 + (at % (w.length - 1));
      const line = [`${w.slice(0, cut)}\\\n${w.slice(cut)}`, ...rest].join(' ');
      const a = await analyzeShell(line);
      const name = w.includes('/') && !w.endsWith('/') ? w.slice(w.lastIndexOf('/') + 1) : w;
      assert.equal(a.commands[0]?.text, [name, ...rest].join(' '), line);
    }),
    { numRuns: 300 },
  );
});
