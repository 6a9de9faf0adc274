/**
 * `make images` (hack/images/build.ts): images built twice have the same digest, and Airlock's
 * image is what the node runs: the airlock CLI as entrypoint, non-root, no shell, the iptables
 * the capture init container needs. Read straight from the OCI layout tarballs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ROOT } from '../src/controlplane.ts';

const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BUILD = join(ROOT, 'hack', 'images', 'build.ts');
const work = mkdtempSync(join(tmpdir(), 'airlock-images-test-'));
after(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Builds one image into `dir` and returns the digest it reports in images.json. */
function build(name: string, dir: string): { digest: string; file: string } {
  const r = spawnSync(NODE, [BUILD, name, '--out-dir', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const images = (JSON.parse(readFileSync(join(dir, 'images.json'), 'utf8')) as { images: Record<string, { digest: string }> }).images;
  const digest = images[name]?.digest;
  assert.ok(digest !== undefined, `images.json lists no ${name}`);
  return { digest, file: join(dir, `${name}.oci.tar`) };
}

/** The files of an OCI layout tarball, by name. */
function entries(tarball: string): Map<string, Buffer> {
  const dir = mkdtempSync(join(work, 'x-'));
  execFileSync('tar', ['-xf', tarball, '-C', dir]);
  const names = execFileSync('tar', ['-tf', tarball], { encoding: 'utf8' }).split('\n').filter((n) => n !== '' && !n.endsWith('/'));
  return new Map(names.map((n) => [n, readFileSync(join(dir, n))]));
}

function blob(files: Map<string, Buffer>, digest: string): Buffer {
  const b = files.get(`blobs/sha256/${digest.replace(/^sha256:/, '')}`);
  assert.ok(b !== undefined, `blob ${digest} missing`);
  return b;
}

test('building an image twice gives the same digest and the same bytes', () => {
  const first = build('test-agent', join(work, 'a'));
  const second = build('test-agent', join(work, 'b'));
  assert.match(first.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(second.digest, first.digest);
  assert.ok(readFileSync(first.file).equals(readFileSync(second.file)), 'the two tarballs differ');
});

test('the airlock image: the airlock CLI as entrypoint, non-root, no shell, iptables for capture', () => {
  const { file } = build('airlock', join(work, 'airlock'));
  const files = entries(file);
  const index = JSON.parse((files.get('index.json') ?? Buffer.from('{}')).toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  const [desc] = index.manifests;
  assert.ok(desc !== undefined);
  assert.match(desc.annotations['io.containerd.image.name'] ?? '', /^airlock\.dev\/airlock:\d+\.\d+\.\d+$/);
  const manifest = JSON.parse(blob(files, desc.digest).toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(blob(files, manifest.config.digest).toString()) as { config: { User: string; Entrypoint: string[] } };
  assert.equal(config.config.User, '65532:65532');
  assert.deepEqual(config.config.Entrypoint.slice(-1), ['/app/cli/src/main.ts']);
  assert.equal(config.config.Entrypoint[0], '/nodejs/bin/node');

  const paths = new Set<string>();
  for (const layer of manifest.layers) {
    const tar = gunzipSync(blob(files, layer.digest));
    const list = execFileSync('tar', ['-t'], { input: tar, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    for (const p of list.split('\n')) if (p !== '') paths.add(p.replace(/\/$/, ''));
  }
  for (const p of ['nodejs/bin/node', 'app/cli/src/main.ts', 'app/node_modules/@kubernetes/client-node/package.json', 'usr/sbin/iptables', 'usr/sbin/ip6tables', 'usr/sbin/xtables-nft-multi']) {
    assert.ok(paths.has(p), `${p} is not in the image`);
  }
  for (const p of ['bin/sh', 'usr/bin/sh', 'bin/bash', 'bin/busybox']) assert.ok(!paths.has(p), `${p} is in the image: it must have no shell`);
  assert.ok(![...paths].some((p) => /\.test\.ts$|(^|\/)test\//.test(p) && p.startsWith('app/') && !p.includes('node_modules')), 'workspace tests are in the image');
});
