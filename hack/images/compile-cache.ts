/**
 * The part of Node's compile cache an image ships: the TypeScript modules, already stripped of
 * their types, so that a container whose root filesystem is read-only (the injected sidecar) never
 * loads Node's TypeScript stripper nor strips a module at start. Without it every sidecar start
 * stripped all ~220 modules (~0.9 s of CPU on a shared core) and kept the stripper (a WASM build of
 * swc, ~13 MiB) resident for the life of the pod.
 *
 * How Node finds an entry (src/compile_cache.cc; Node 24.21, the workspace's, has the portable mode):
 * - the cache directory NODE_COMPILE_CACHE holds one subdirectory per
 *   `<node version>-<arch>-<V8 cached-data tag, which hashes V8's flags>-<uid of the process>`;
 * - with NODE_COMPILE_CACHE_PORTABLE=1 a module is keyed by its path relative to that
 *   subdirectory, so a cache built next to the workspace serves the same tree under /app;
 * - an entry's file name is the CRC-32 (hex) of one byte, the entry type (2: stripped
 *   TypeScript), followed by that relative path; the entry is used only when the source's size and
 *   hash match those in its header.
 *
 * Only the stripped-TypeScript entries are shipped: they depend on the source alone, so the image
 * stays reproducible, while V8's code cache entries differ from one run to the next. The cache
 * is built by importing every module once with the image's Node and V8 flags; a module whose
 * entry is not found fails the build (Node's layout changed), never ships a partial cache.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { crc32 } from 'node:zlib';
import { WORKSPACES } from './entrypoint.ts';

/** the entry type of a module stripped of its types (CachedCodeType::kStrippedTypeScript) */
const STRIPPED_TYPESCRIPT = 2;

export class CompileCacheError extends Error {}

export interface TranspileCache {
  /** the subdirectory name without the uid: `v24.21.0-x64-222ce69d` */
  readonly tag: string;
  /** entry file name → contents */
  readonly entries: ReadonlyMap<string, Buffer>;
}

/** the file name of the stripped-TypeScript entry of `relativePath` (from the tagged subdirectory) */
export function entryName(relativePath: string): string {
  const key = crc32(Buffer.concat([Buffer.from([STRIPPED_TYPESCRIPT]), Buffer.from(relativePath, 'utf8')]));
  return key.toString(16).padStart(8, '0');
}

/**
 * Imports every module of `sources` (absolute paths of .ts files under `root`) in a fresh `node`
 * run with `flags`, its compile cache in a directory directly under `root`, and returns the
 * stripped-TypeScript entries of those modules: placed at `<dir>/<tag>-<uid>/` where `<dir>` is
 * directly under the directory that holds the sources' tree as `root` does, they serve those
 * modules to a process started with the same Node and flags, with NODE_COMPILE_CACHE=<dir> and
 * NODE_COMPILE_CACHE_PORTABLE=1.
 */
export function transpileCache(opts: { readonly root: string; readonly node: string; readonly flags: readonly string[]; readonly sources: readonly string[] }): TranspileCache {
  const dir = mkdtempSync(path.join(opts.root, '.compile-cache-build-'));
  try {
    const urls = opts.sources.map((s) => pathToFileURL(s).href);
    const script = `for (const url of JSON.parse(process.env.AIRLOCK_WARM_MODULES)) await import(url);`;
    const r = spawnSync(opts.node, [...opts.flags, '--input-type=module', '-e', script], {
      cwd: opts.root,
      env: { ...process.env, NODE_COMPILE_CACHE: dir, NODE_COMPILE_CACHE_PORTABLE: '1', AIRLOCK_WARM_MODULES: JSON.stringify(urls) },
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (r.status !== 0) throw new CompileCacheError(`importing the image's modules to fill the compile cache failed (${String(r.status ?? r.signal ?? r.error)}):\n${r.stderr}`);
    const tagged = readdirSync(dir);
    const [sub] = tagged;
    if (tagged.length !== 1 || sub === undefined) throw new CompileCacheError(`the compile cache ${dir} holds ${JSON.stringify(tagged)}, one tagged subdirectory was expected`);
    const tag = sub.replace(/-\d+$/, '');
    const entries = new Map<string, Buffer>();
    const missing: string[] = [];
    for (const source of opts.sources) {
      const name = entryName(path.relative(path.join(dir, sub), source));
      try {
        entries.set(name, readFileSync(path.join(dir, sub, name)));
      } catch {
        missing.push(path.relative(opts.root, source));
      }
    }
    if (missing.length > 0) {
      throw new CompileCacheError(`Node's compile cache holds no stripped entry for ${String(missing.length)} of ${String(opts.sources.length)} modules (first: ${missing.slice(0, 3).join(', ')}): its layout may have changed with Node; see hack/images/compile-cache.ts`);
    }
    return { tag, entries };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The TypeScript modules of the workspace at `root` (this checkout, or the image's /app) as the
 * image ships them (tests, fixtures and benchmarks left out). */
export function workspaceModules(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory() && !['test', 'tests', '__tests__', 'fixtures', 'bench'].includes(e.name)) walk(path.join(dir, e.name));
      else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !/\.(test|spec|bench)\.ts$/.test(e.name)) out.push(path.join(dir, e.name));
    }
  };
  for (const w of WORKSPACES) walk(path.join(root, w, 'src'));
  return out.sort();
}

/**
 * The image's compile cache for the workspace at `root` as it is on this machine, for a process
 * of `uid` started with `node` and `flags`: read-only, in a new directory directly under `root`
 * (where /app/.node-compile-cache is in the image), for benchmarks that start Airlock as its
 * image does. Pass `dir` as NODE_COMPILE_CACHE with NODE_COMPILE_CACHE_PORTABLE=1; `remove()`
 * deletes it.
 */
export function localImageCache(opts: { readonly root: string; readonly node: string; readonly flags: readonly string[]; readonly uid: number }): { readonly dir: string; readonly remove: () => void } {
  const cache = transpileCache({ root: opts.root, node: opts.node, flags: opts.flags, sources: workspaceModules(opts.root) });
  const dir = mkdtempSync(path.join(opts.root, '.compile-cache-local-'));
  const tagged = path.join(dir, `${cache.tag}-${String(opts.uid)}`);
  mkdirSync(tagged);
  for (const [name, contents] of cache.entries) writeFileSync(path.join(tagged, name), contents, { mode: 0o444 });
  for (const d of [tagged, dir]) chmodSync(d, 0o555);
  return { dir, remove: () => { rmSync(dir, { recursive: true, force: true }); } };
}
