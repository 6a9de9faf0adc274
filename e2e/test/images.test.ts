/**
 * `make images` (hack/images/build.ts): images built twice have the same digest, and Airlock's
 * image is what the node runs: the airlock CLI as entrypoint, non-root, no shell, the iptables
 * the capture init container needs, and a compile cache that serves every module already
 * stripped of its types to each user the image runs as, from a read-only directory. Read
 * straight from the OCI layout tarballs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { SIDECAR_UID } from '@airlock/api';
import { workspaceModules } from '../../hack/images/compile-cache.ts';
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

let airlock: Map<string, Buffer> | undefined;
/** the airlock image's OCI layout files, built once */
function airlockImage(): Map<string, Buffer> {
  airlock ??= entries(build('airlock', join(work, 'airlock')).file);
  return airlock;
}

interface ImageParts {
  readonly name: string;
  readonly config: { readonly User: string; readonly Env: readonly string[]; readonly Entrypoint: readonly string[] };
  readonly layers: readonly Buffer[];
}

function imageParts(files: Map<string, Buffer>): ImageParts {
  const index = JSON.parse((files.get('index.json') ?? Buffer.from('{}')).toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  const [desc] = index.manifests;
  assert.ok(desc !== undefined);
  const manifest = JSON.parse(blob(files, desc.digest).toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(blob(files, manifest.config.digest).toString()) as { config: ImageParts['config'] };
  return { name: desc.annotations['io.containerd.image.name'] ?? '', config: config.config, layers: manifest.layers.map((l) => gunzipSync(blob(files, l.digest))) };
}

test('the airlock image: the airlock CLI as entrypoint, non-root, no shell, iptables for capture', () => {
  const { name, config, layers } = imageParts(airlockImage());
  assert.match(name, /^airlock\.dev\/airlock:\d+\.\d+\.\d+$/);
  assert.equal(config.User, '65532:65532');
  assert.deepEqual(config.Entrypoint.slice(-1), ['/app/cli/src/main.ts']);
  assert.equal(config.Entrypoint[0], '/nodejs/bin/node');

  const paths = new Set<string>();
  for (const tar of layers) {
    const list = execFileSync('tar', ['-t'], { input: tar, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    for (const p of list.split('\n')) if (p !== '') paths.add(p.replace(/\/$/, ''));
  }
  for (const p of ['nodejs/bin/node', 'app/cli/src/main.ts', 'app/node_modules/@kubernetes/client-node/package.json', 'usr/sbin/iptables', 'usr/sbin/ip6tables', 'usr/sbin/xtables-nft-multi']) {
    assert.ok(paths.has(p), `${p} is not in the image`);
  }
  for (const p of ['bin/sh', 'usr/bin/sh', 'bin/bash', 'bin/busybox']) assert.ok(!paths.has(p), `${p} is in the image: it must have no shell`);
  assert.ok(![...paths].some((p) => /\.test\.ts$|(^|\/)test\//.test(p) && p.startsWith('app/') && !p.includes('node_modules')), 'workspace tests are in the image');
});

test('the airlock image\'s compile cache serves every workspace module stripped, read-only, to the nonroot user, the sidecar\'s and root', { skip: process.getuid?.() !== 0 ? 'needs root (setpriv to the image\'s users)' : false }, () => {
  const { config, layers } = imageParts(airlockImage());
  const env = new Map(config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  assert.equal(env.get('NODE_COMPILE_CACHE_PORTABLE'), '1');
  const cacheDir = env.get('NODE_COMPILE_CACHE') ?? '';
  assert.match(cacheDir, /^\/app\//);
  // the image's files at <root>/app (the cache is portable: it keys modules by their path relative to it)
  const root = mkdtempSync(join(work, 'root-'));
  for (const d of [work, root]) chmodSync(d, 0o755); // the image's users walk to it
  for (const layer of layers) {
    const list = execFileSync('tar', ['-t'], { input: layer, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (list.split('\n').some((p) => p.startsWith('app/'))) execFileSync('tar', ['-x', '-C', root], { input: layer, maxBuffer: 64 * 1024 * 1024 });
  }
  const app = join(root, 'app');
  const modules = workspaceModules(app);
  assert.ok(modules.length > 150, `${String(modules.length)} workspace modules in the image`);
  // the entrypoint's flags (V8 tags its cache with them), the image's node (the workspace's, unstripped)
  const flags = config.Entrypoint.slice(1, -1);
  const probe = `for (const m of JSON.parse(process.env.MODULES)) await import(m);
console.log(JSON.stringify({ stripper: process.moduleLoadList.includes('NativeModule internal/deps/amaro/dist/index'), imported: JSON.parse(process.env.MODULES).length }));`;
  for (const uid of [65532, SIDECAR_UID, 0]) {
    const r = spawnSync('setpriv', [`--reuid=${String(uid)}`, `--regid=${String(uid)}`, '--clear-groups', NODE, ...flags, '--input-type=module', '-e', probe], {
      cwd: app,
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', NODE_COMPILE_CACHE: join(root, cacheDir), NODE_COMPILE_CACHE_PORTABLE: '1', MODULES: JSON.stringify(modules.map((m) => `file://${m}`)) },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { stripper: false, imported: modules.length }, `uid ${String(uid)}: Node's TypeScript stripper was loaded, so some module was not in the image's compile cache`);
  }
  // without the cache the same probe does load the stripper (the probe can fail)
  const bare = spawnSync(NODE, [...flags, '--input-type=module', '-e', probe], { cwd: app, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', MODULES: JSON.stringify([`file://${join(app, 'cli', 'src', 'errors.ts')}`]) } });
  assert.equal(bare.status, 0, bare.stderr);
  assert.equal((JSON.parse(bare.stdout) as { stripper: boolean }).stripper, true);
});
