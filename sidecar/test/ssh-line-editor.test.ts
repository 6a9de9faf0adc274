import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineEditor, type EnterSegment } from '../src/ssh/line-editor.ts';

function enters(input: string | readonly string[]): EnterSegment[] {
  const ed = new LineEditor();
  const chunks = typeof input === 'string' ? [input] : input;
  return chunks.flatMap((c) => ed.push(c)).filter((s): s is EnterSegment => s.kind === 'enter');
}

function line(input: string): { line: string; certain: boolean; reasons: readonly string[] } {
  const e = enters(input);
  assert.equal(e.length, 1, JSON.stringify(input));
  const [only] = e;
  assert.ok(only !== undefined);
  return { line: only.line, certain: only.certain, reasons: only.reasons };
}

test('printable text and Enter (CR or LF)', () => {
  assert.deepEqual(line('ls -la\r'), { line: 'ls -la', certain: true, reasons: [] });
  assert.equal(line('echo hi\n').line, 'echo hi');
  assert.deepEqual(
    enters('a\rb\r').map((e) => e.line),
    ['a', 'b'],
  );
});

test('editing keys rebuild the line as readline does', () => {
  assert.equal(line('lss\x7f -l\r').line, 'ls -l'); // backspace (DEL)
  assert.equal(line('lss\b -l\r').line, 'ls -l'); // ^H
  assert.equal(line('echo safe\x15rm -rf /\r').line, 'rm -rf /'); // ^U
  assert.equal(line('rm -rf /tmp/x\x17\x17ls\r').line, 'rm ls'); // ^W twice
  assert.equal(line('rm -rf /\x17\x17\x17echo\r').line, 'echo');
  assert.equal(line('cat /etc/passwd\x01\x0bls\r').line, 'ls'); // ^A ^K
  assert.equal(line('ls\x1b[D\x1b[Dx\r').line, 'xls'); // left arrows
  assert.equal(line('ls\x1bOD\x1bODx\x1bOCy\r').line, 'xlys'); // SS3 arrows
  assert.equal(line('ls\x1b[H#\x1b[F!\r').line, '#ls!'); // Home/End
  assert.equal(line('abc\x1b[D\x1b[D\x1b[3~\r').line, 'ac'); // Delete
  assert.equal(line('abc\x02\x02\x04\r').line, 'ac'); // ^B ^B ^D
  assert.equal(line('ab\x02\x06c\r').line, 'abc'); // ^F
  assert.equal(line('rm -rf /\x03ls\r').line, 'ls'); // ^C abandons the line
  assert.equal(line('ls\x0c\r').line, 'ls'); // ^L
  assert.equal(line('\x7f\x7fls\x1b[C\x1b[C\r').line, 'ls'); // edits at the edges
  assert.equal(line('echo é\x7fe\r').line, 'echo e'); // backspace removes a character, not a byte
});

test('what cannot be followed makes the line uncertain, until Enter', () => {
  assert.deepEqual(line('ech\t hi\r').reasons, ['tab completion']);
  assert.deepEqual(line('\x1b[A\r').reasons, ['history']);
  assert.equal(line('ls\x12x\r').certain, false); // ^R search
  assert.equal(line('ls\x19\r').certain, false); // ^Y yank
  assert.equal(line('\x1bbx\r').certain, false); // meta-b
  assert.equal(line('\x1b[200~rm -rf /\x1b[201~\r').certain, false); // bracketed paste
  assert.equal(line('\x1b[2~x\r').certain, false); // Insert (overwrite mode)
  // a control key inside an escape sequence still counts, and Enter is never swallowed
  assert.equal(enters('\x1b\r').length, 1);
  assert.equal(enters('\x1b[1\r').length, 1);
  assert.equal(line('\x1b[1\r').certain, false);
  // the next line starts certain again
  const e = enters('a\tb\rls\r');
  assert.deepEqual(
    e.map((x) => [x.line, x.certain]),
    [
      ['ab', false],
      ['ls', true],
    ],
  );
});

test('an overlong line is uncertain', () => {
  const ed = new LineEditor({ maxLine: 8 });
  const seg = ed.push('123456789\r').find((x) => x.kind === 'enter');
  assert.ok(seg?.kind === 'enter');
  assert.equal(seg.certain, false);
});

test('keystrokes are forwarded as they are, split only at Enter', () => {
  const ed = new LineEditor();
  assert.deepEqual(ed.push('ls\x1b[Dx\rpwd'), [
    { kind: 'data', text: 'ls\x1b[Dx' },
    { kind: 'enter', key: '\r', line: 'lxs', certain: true, reasons: [] },
    { kind: 'data', text: 'pwd' },
  ]);
});

test('property: any split of the keystrokes into chunks gives the same lines', () => {
  const key = fc.constantFrom('a', 'b', ' ', '/', '-', '\x7f', '\x15', '\x17', '\x0b', '\x01', '\x05', '\x02', '\x06', '\x1b[D', '\x1b[C', '\x1b[3~', '\x1bOH', '\t', '\x1b[A', '\r', '\n', 'é');
  fc.assert(
    fc.property(fc.array(key, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 8 }), (keys, cuts) => {
      const text = keys.join('');
      const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const chunks: string[] = [];
      let last = 0;
      for (const p of points) {
        chunks.push(text.slice(last, p));
        last = p;
      }
      chunks.push(text.slice(last));
      const whole = enters(text).map((e) => [e.line, e.certain]);
      const split = enters(chunks).map((e) => [e.line, e.certain]);
      assert.deepEqual(split, whole);
    }),
  );
});

test('property: printable text without editing keys is the line itself', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'abcxyz -/._=*\'"$é'.split('')) }), (s) => {
      assert.deepEqual(line(`${s}\r`), { line: s, certain: true, reasons: [] });
    }),
  );
});

test('property: forwarded data plus Enter keys reproduce the keystrokes exactly', () => {
  fc.assert(
    fc.property(fc.string(), (s) => {
      const ed = new LineEditor();
      const out = ed
        .push(s)
        .map((seg) => (seg.kind === 'data' ? seg.text : seg.key))
        .join('');
      assert.equal(out, s);
    }),
  );
});
