/**
 * Mapped append-only files (src/recording.c): content exact across the reservation's growth,
 * zero padding until close, records that survive a killed writer, and errors (an existing
 * path, a closed file, no space) that are thrown, never a crash.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { openMappedFile } from '../src/index.ts';

const dir = (): string => mkdtempSync(join(tmpdir(), 'airlock-native-'));
const withoutPadding = (b: Buffer): Buffer => {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
};

test('appended texts are the file, exactly, once closed: UTF-8 of every width, across the reservation growing', () => {
  const path = join(dir(), 'r.jsonl');
  const f = openMappedFile(path);
  assert.ok(f !== undefined, 'the addon is built');
  const parts: string[] = [];
  for (let i = 0; i < 5000; i++) parts.push(`{"seq":${String(i)},"text":"é€😀 ${'x'.repeat(i % 300)}"}\n`);
  parts.push('y'.repeat(20 * 1024 * 1024), '\n'); // one text larger than a whole growth step
  for (const p of parts) f.append(p);
  const want = Buffer.from(parts.join(''));
  assert.equal(f.size, want.length);
  const open = readFileSync(path);
  assert.ok(open.length >= want.length, 'reserved space is part of the file while it is open');
  assert.ok(open.subarray(0, want.length).equals(want));
  assert.ok(open.subarray(want.length).every((b) => b === 0), 'the rest is zeros');
  f.close();
  assert.ok(readFileSync(path).equals(want));
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('property: any texts appended read back as their concatenation', () => {
  const d = dir();
  let n = 0;
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 2000 }), { maxLength: 40 }), (texts) => {
      const path = join(d, `p${String(n++)}`);
      const f = openMappedFile(path);
      assert.ok(f !== undefined);
      for (const t of texts) f.append(t);
      f.close();
      assert.ok(readFileSync(path).equals(Buffer.from(texts.join(''))));
    }),
    { numRuns: 200 },
  );
});

test('a record appended before the writer is killed (SIGKILL) is in the file', () => {
  const path = join(dir(), 'killed.jsonl');
  const script = `
    import { openMappedFile } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    const f = openMappedFile(${JSON.stringify(path)});
    for (let i = 0; i < 1000; i++) f.append('{"seq":' + i + '}\\n');
    process.kill(process.pid, 'SIGKILL');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(r.signal, 'SIGKILL');
  const text = withoutPadding(readFileSync(path)).toString('utf8');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 1000);
  assert.equal(lines[999], '{"seq":999}');
});

test('errors are thrown: an existing path, a closed file, no space left (file size limit)', () => {
  const d = dir();
  const existing = join(d, 'exists');
  writeFileSync(existing, 'x');
  assert.throws(() => openMappedFile(existing), { code: 'AIRLOCK_RECORDING', message: /cannot create recording .*exists: File exists/ });
  assert.throws(() => openMappedFile(join(d, 'no', 'such', 'dir')), { code: 'AIRLOCK_RECORDING', message: /No such file or directory/ });
  const f = openMappedFile(join(d, 'closed'));
  assert.ok(f !== undefined);
  f.append('a');
  f.close();
  f.close(); // closing twice is harmless
  assert.throws(() => {
    f.append('b');
  }, { code: 'AIRLOCK_RECORDING', message: /closed/ });
  // a 1 MiB file size limit (ulimit -f, in KiB blocks here): reserving beyond it fails with EFBIG
  const full = join(d, 'full');
  const script = `
    import { openMappedFile } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    process.on('SIGXFSZ', () => {});
    const f = openMappedFile(${JSON.stringify(full)});
    try { for (let i = 0; i < 100000; i++) f.append('x'.repeat(100)); console.log('no error'); }
    catch (e) { console.log(e.code, e.message); }`;
  const r = spawnSync('bash', ['-c', `ulimit -f 1024; exec "$0" --input-type=module -e "$1"`, process.execPath, script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^AIRLOCK_RECORDING cannot extend recording: File too large/);
});

test('a long recording does not stay resident: written pages leave the process, their content stays in the file', () => {
  const path = join(dir(), 'long.jsonl');
  const script = `
    import { openMappedFile } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    import { readFileSync } from 'node:fs';
    const rss = () => Number(/RssFile:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) + Number(/RssShmem:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    const f = openMappedFile(${JSON.stringify(path)});
    const line = 'r'.repeat(299) + '\\n';
    const before = rss();
    for (let i = 0; i < 200000; i++) f.append(line);
    console.log(rss() - before);
    f.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const grownKiB = Number(r.stdout.trim());
  assert.ok(grownKiB < 16384, `60 MB written, the file-backed resident memory grew by ${String(grownKiB)} KiB`);
  const text = readFileSync(path, 'utf8');
  assert.equal(text.length, 60_000_000);
  assert.equal(text, 'r'.repeat(299).concat('\n').repeat(200000));
});
