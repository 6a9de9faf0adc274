/**
 * `make images`: Airlock's container image and the test images of the end-to-end cluster, built
 * without Docker and without a registry, from files of this machine (a Debian system): the
 * workspace, its pinned Node.js, and Debian's PostgreSQL, OpenSSH and busybox-static.
 *
 * Each image is written as an OCI image layout tarball, `<out-dir>/<name>.oci.tar` (oci-layout,
 * index.json, blobs/sha256/...; gzip layers), that `ctr -n k8s.io images import` imports under
 * its full reference and that `skopeo copy oci-archive:...` or `crane push` can push.
 *
 * Builds are reproducible: the same inputs give the same manifest digest (entries sorted, one
 * mtime, SOURCE_DATE_EPOCH or 0, owners and modes normalized, no pax times, gzip without name or
 * time, a fixed config `created`).
 *
 *   node hack/images/build.ts [names...] [--out-dir dist] [--out FILE] [--pause-bin PATH]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, closeSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import { SIDECAR_UID } from '../../api/src/cluster.ts';
import { compareCodeUnits } from '../../api/src/order.ts';
import { CompileCacheError, transpileCache } from './compile-cache.ts';
import { AIRLOCK_ENV, AIRLOCK_NODE_FLAGS, COMPILE_CACHE_DIR, WORKSPACES } from './entrypoint.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const HERE = import.meta.dirname;
const REGISTRY = 'airlock.dev';
const DEFAULT_IMAGES = ['airlock', 'test-agent', 'test-postgres', 'test-sshd'] as const;
const ALL_IMAGES = [...DEFAULT_IMAGES, 'pause'] as const;
type ImageName = (typeof ALL_IMAGES)[number];
const APT_HINT = 'apt-get update && apt-get install -y postgresql postgresql-client openssh-server openssh-client busybox-static';
/** gzip level of the layers; part of what makes a digest, so fixed */
const GZIP_LEVEL = 9;

class BuildError extends Error {}

/** the users the image's compile cache serves: the image's nonroot user (operator, webhooks), the
 * injected sidecar and the capture init container (root) */
const NONROOT_UID = 65532;
const COMPILE_CACHE_UIDS = [NONROOT_UID, SIDECAR_UID, 0] as const;

// ---------------------------------------------------------------------------------------------
// The file tree of one layer

interface Owner {
  readonly uid: number;
  readonly gid: number;
}
const ROOT: Owner = { uid: 0, gid: 0 };

type Entry =
  | { readonly kind: 'dir'; mode: number; owner: Owner }
  | { readonly kind: 'file'; readonly mode: number; readonly owner: Owner; readonly source: string | Buffer }
  | { readonly kind: 'symlink'; readonly target: string };

interface FileOptions {
  readonly mode?: number;
  readonly owner?: Owner;
  /** keep what is already at that path instead of failing (busybox applets) */
  readonly ifAbsent?: boolean;
}

/** an image path without the leading slash: 'usr/bin/psql' */
function rel(p: string): string {
  const n = path.posix.normalize(`/${p}`);
  return n === '/' ? '' : n.slice(1).replace(/\/$/, '');
}

/** The files of one layer, by path; symlinks in the tree are followed when a path is placed. */
class Tree {
  readonly entries = new Map<string, Entry>();

  /** The path `p` resolves to in this tree (symlinks of its directories followed), creating
   * missing directories. */
  private canonicalDir(p: string, depth = 0): string {
    if (depth > 40) throw new BuildError(`too many symlinks resolving /${p}`);
    let cur = '';
    for (const comp of rel(p).split('/').filter((c) => c !== '')) {
      const next = cur === '' ? comp : `${cur}/${comp}`;
      const e = this.entries.get(next);
      if (e === undefined) {
        this.entries.set(next, { kind: 'dir', mode: 0o755, owner: ROOT });
        cur = next;
      } else if (e.kind === 'dir') {
        cur = next;
      } else if (e.kind === 'symlink') {
        const target = e.target.startsWith('/') ? e.target : path.posix.join('/', cur, e.target);
        cur = this.canonicalDir(target, depth + 1);
      } else {
        throw new BuildError(`/${next} is a file, not a directory`);
      }
    }
    return cur;
  }

  private place(p: string, entry: Entry, ifAbsent: boolean): string {
    const r = rel(p);
    const parent = this.canonicalDir(path.posix.dirname(r) === '.' ? '' : path.posix.dirname(r));
    const key = parent === '' ? path.posix.basename(r) : `${parent}/${path.posix.basename(r)}`;
    const old = this.entries.get(key);
    if (old !== undefined && !ifAbsent) {
      const same =
        (old.kind === 'symlink' && entry.kind === 'symlink' && old.target === entry.target) ||
        (old.kind === 'file' && entry.kind === 'file' && old.source === entry.source) ||
        (old.kind === 'dir' && entry.kind === 'dir');
      if (!same) throw new BuildError(`/${key} is placed twice`);
      if (old.kind === 'dir' && entry.kind === 'dir') {
        old.mode = entry.mode;
        old.owner = entry.owner;
      }
      return key;
    }
    if (old === undefined) this.entries.set(key, entry);
    return key;
  }

  dir(p: string, opts: { mode?: number; owner?: Owner } = {}): void {
    this.place(p, { kind: 'dir', mode: opts.mode ?? 0o755, owner: opts.owner ?? ROOT }, false);
  }

  /** a file with the contents of the host file `source`, or the bytes `source` */
  file(p: string, source: string | Buffer, opts: FileOptions = {}): void {
    this.place(p, { kind: 'file', mode: opts.mode ?? 0o644, owner: opts.owner ?? ROOT, source }, opts.ifAbsent ?? false);
  }

  /** a file with the text `content` */
  text(p: string, content: string, opts: FileOptions = {}): void {
    this.file(p, Buffer.from(content, 'utf8'), opts);
  }

  symlink(p: string, target: string, opts: { ifAbsent?: boolean } = {}): void {
    this.place(p, { kind: 'symlink', target }, opts.ifAbsent ?? false);
  }

  /**
   * The host path `hostPath`, as it is on this machine: every symlink on the way (the /lib ->
   * usr/lib of a merged /usr, libfoo.so.1 -> libfoo.so.1.2) becomes the same symlink in the
   * image, and the file it ends at is copied (a directory only created).
   */
  host(hostPath: string, depth = 0): void {
    if (depth > 40) throw new BuildError(`too many symlinks resolving ${hostPath}`);
    const parts = path.resolve(hostPath).split('/').filter((c) => c !== '');
    let cur = '';
    for (const [i, comp] of parts.entries()) {
      const p = `${cur}/${comp}`;
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st === undefined) throw new BuildError(`${p} does not exist on this machine`);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(p);
        this.symlink(p, target);
        const resolved = path.resolve(cur === '' ? '/' : cur, target);
        this.host(path.join(resolved, ...parts.slice(i + 1)), depth + 1);
        return;
      }
      cur = p;
    }
    const st = statSync(cur);
    if (st.isDirectory()) this.dir(cur);
    else if (st.isFile()) this.file(cur, cur, { mode: st.mode & 0o111 ? 0o755 : 0o644 });
    else throw new BuildError(`${cur} is neither a file nor a directory`);
  }

  /** A host directory tree as it is on this machine, with the files and directories `keep`
   * accepts (paths relative to `dir`). */
  hostTree(dir: string, keep: (relPath: string, isDir: boolean) => boolean = () => true): void {
    this.host(dir);
    const real = realpathSync(dir);
    this.hostTreeAt(real, real, keep);
  }

  /** The contents of the host directory `hostDir` at `imageDir` (symlinks kept as they are). */
  hostTreeAt(hostDir: string, imageDir: string, keep: (relPath: string, isDir: boolean) => boolean = () => true, source: (file: string) => string = (f) => f): void {
    const walk = (d: string, prefix: string): void => {
      for (const name of readdirSync(d).sort()) {
        const full = `${d}/${name}`;
        const r = prefix === '' ? name : `${prefix}/${name}`;
        const st = lstatSync(full);
        if (!keep(r, st.isDirectory())) continue;
        const at = `${imageDir}/${r}`;
        if (st.isSymbolicLink()) this.symlink(at, readlinkSync(full));
        else if (st.isDirectory()) {
          this.dir(at);
          walk(full, r);
        } else if (st.isFile()) this.file(at, source(full), { mode: st.mode & 0o111 ? 0o755 : 0o644 });
      }
    };
    this.dir(imageDir);
    walk(hostDir, '');
  }

  /** host files of this tree that are ELF objects (their shared libraries are added) */
  elfSources(): string[] {
    const out: string[] = [];
    for (const e of this.entries.values()) {
      if (e.kind === 'file' && typeof e.source === 'string' && isElf(e.source)) out.push(e.source);
    }
    return out;
  }
}

function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

/** The shared objects `ldd` resolves for an ELF file (with the dynamic loader); none when static. */
function sharedLibraries(file: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: unknown; stderr?: unknown };
    const text = `${String(e.stdout)}${String(e.stderr)}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new BuildError(`ldd ${file} failed: ${text.trim()}`);
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('linux-vdso') || t === 'statically linked') continue;
    if (t.includes('=> not found')) throw new BuildError(`${file} needs ${t.split(' ')[0] ?? t}, which this machine does not have`);
    const m = /=>\s*(\/\S+)/.exec(t) ?? /^(\/\S+)\s+\(/.exec(t);
    if (m?.[1] !== undefined) libs.push(m[1]);
  }
  return libs;
}

/** Adds to `target` every shared library the ELF files of `trees` load. */
function addSharedLibraries(target: Tree, trees: readonly Tree[], extra: readonly string[] = []): void {
  const libs = new Set<string>(extra);
  for (const t of trees) for (const f of t.elfSources()) for (const l of sharedLibraries(f)) libs.add(l);
  for (const l of [...libs].sort()) target.host(l);
}

// ---------------------------------------------------------------------------------------------
// Pieces shared by the images

function requireHost(file: string, debianPackage: string): string {
  if (!existsSync(file)) {
    throw new BuildError(`${file} is missing on this machine (Debian package ${debianPackage}); install with: ${APT_HINT}`);
  }
  return file;
}

/** The root of a Debian image: the merged-/usr symlinks as this machine has them, /tmp, /etc. */
function baseTree(): Tree {
  const t = new Tree();
  for (const d of ['bin', 'sbin', 'lib', 'lib64', 'lib32', 'libx32']) {
    const st = lstatSync(`/${d}`, { throwIfNoEntry: false });
    if (st?.isSymbolicLink() === true) t.host(`/${d}`);
  }
  t.dir('/tmp', { mode: 0o1777 });
  t.dir('/etc');
  return t;
}

interface User {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

/** /etc/passwd, /etc/group, /etc/nsswitch.conf, and each user's home directory. */
function addUsers(t: Tree, users: readonly User[], groups: readonly { name: string; gid: number }[]): void {
  const all: User[] = [{ name: 'root', uid: 0, gid: 0, home: '/root', shell: users.some((u) => u.shell === '/bin/sh') ? '/bin/sh' : '/sbin/nologin' }, ...users, { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent', shell: '/usr/sbin/nologin' }];
  t.text('/etc/passwd', `${all.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:${u.shell}`).join('\n')}\n`);
  const allGroups = [{ name: 'root', gid: 0 }, ...groups, { name: 'nogroup', gid: 65534 }];
  t.text('/etc/group', `${allGroups.map((g) => `${g.name}:x:${g.gid}:`).join('\n')}\n`);
  t.text('/etc/nsswitch.conf', 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n');
  t.dir('/root', { mode: 0o700 });
  for (const u of users) {
    if (u.home.startsWith('/home/')) t.dir(u.home, { mode: 0o755, owner: { uid: u.uid, gid: u.gid } });
  }
}

/** CA certificates where OpenSSL (and Node's --use-system-ca) look for them. */
function addCaCertificates(t: Tree): void {
  t.host(requireHost('/etc/ssl/certs/ca-certificates.crt', 'ca-certificates'));
  if (existsSync('/usr/lib/ssl/cert.pem')) t.host('/usr/lib/ssl/cert.pem');
  else t.symlink('/usr/lib/ssl/cert.pem', '/etc/ssl/certs/ca-certificates.crt');
  if (existsSync('/usr/lib/ssl/openssl.cnf')) t.host('/usr/lib/ssl/openssl.cnf');
}

/** busybox-static as /bin/busybox, with its applets as symlinks (never over a real file). */
function addBusybox(t: Tree): void {
  const bin = requireHost('/bin/busybox', 'busybox-static');
  if (sharedLibraries(bin).length > 0) throw new BuildError(`${bin} is not static; install the Debian package busybox-static (${APT_HINT})`);
  t.host(bin);
  const list = execFileSync(bin, ['--list-full'], { encoding: 'utf8' });
  for (const applet of list.split('\n').map((l) => l.trim()).filter((l) => l !== '').sort()) {
    t.symlink(`/${applet}`, '/bin/busybox', { ifAbsent: true });
  }
}

/** The single PostgreSQL major version installed from Debian (the highest, if several). */
function postgresMajor(): string {
  const dir = '/usr/lib/postgresql';
  const majors = existsSync(dir) ? readdirSync(dir).filter((d) => /^\d+$/.test(d) && existsSync(`${dir}/${d}/bin/postgres`)) : [];
  const major = majors.sort((a, b) => Number(b) - Number(a))[0];
  if (major === undefined) throw new BuildError(`PostgreSQL is not installed (Debian packages postgresql, postgresql-client); install with: ${APT_HINT}`);
  return major;
}

function workspaceVersion(): string {
  const pkg = JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new BuildError('package.json has no version');
  return pkg.version;
}

// ---------------------------------------------------------------------------------------------
// The images

interface ImageConfig {
  readonly User?: string;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly WorkingDir?: string;
  readonly ExposedPorts?: Readonly<Record<string, Record<string, never>>>;
  readonly StopSignal?: string;
  readonly Labels?: Readonly<Record<string, string>>;
}

interface ImageSpec {
  readonly name: ImageName;
  readonly repository: string;
  readonly tag: string;
  readonly layers: readonly { readonly comment: string; readonly tree: Tree }[];
  readonly config: ImageConfig;
}

interface BuildContext {
  readonly version: string;
  /** scratch directory of this run */
  readonly tmp: string;
  readonly pauseBin: string | undefined;
}

function labels(title: string, version: string, description: string): Record<string, string> {
  return {
    'org.opencontainers.image.description': description,
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.title': title,
    'org.opencontainers.image.version': version,
  };
}

// --- airlock -----------------------------------------------------------------------------------

/** production dependencies used only to build a native addon at install time */
const INSTALL_ONLY = new Set(['node-gyp', 'nan', 'node-addon-api', 'install-artifact-from-github']);

interface LockPackage {
  readonly name?: string;
  readonly version?: string;
  readonly dev?: boolean;
  readonly link?: boolean;
  readonly resolved?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>;
}

/** The real Node.js binary behind node_modules/.bin/node (the `node` package installs it from
 * node-linux-<arch>, as a copy or behind its shim). */
function workspaceNode(): string {
  const candidates = [
    `${REPO}/node_modules/node/node_modules/node-linux-${process.arch}/bin/node`,
    `${REPO}/node_modules/node-linux-${process.arch}/bin/node`,
    `${REPO}/node_modules/.bin/node`,
    `${REPO}/node_modules/node/bin/node`,
  ];
  for (const c of candidates) {
    if (!existsSync(c)) continue;
    const real = realpathSync(c);
    if (isElf(real)) return real;
  }
  throw new BuildError("the workspace's Node.js binary is missing (node_modules/node); run 'make install'");
}

/**
 * A stripped copy of the ELF file `file` in the scratch directory: `--strip-all` for an
 * executable, `--strip-unneeded` for a shared object (a Node addon); both keep the dynamic symbol
 * table that addons and the loader link through, and drop debug information (re2.node: 23 MiB
 * -> 1.5 MiB).
 */
function stripped(file: string, ctx: BuildContext, how: '--strip-all' | '--strip-unneeded'): string {
  const out = `${ctx.tmp}/stripped-${createHash('sha256').update(file).digest('hex').slice(0, 16)}-${path.basename(file)}`;
  if (existsSync(out)) return out;
  try {
    execFileSync('strip', [how, '-o', out, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new BuildError(`strip ${file} failed (Debian package binutils): ${err instanceof Error ? err.message : String(err)}`);
  }
  return out;
}

/**
 * The paths (package-lock.json keys) of the packages the workspaces need at run time: the
 * dependency closure of the workspace packages, resolved the way Node resolves them over the
 * lockfile's node_modules layout, without dev-only packages, type-only packages (@types/*),
 * install-time build tools, and optional native addons that were not built here.
 */
function productionPackages(lock: Readonly<Record<string, LockPackage>>): { packages: string[]; links: Map<string, string>; skipped: string[] } {
  const parentOf = (p: string): string | undefined => {
    if (p === '') return undefined;
    const i = p.lastIndexOf('node_modules/');
    return i <= 0 ? '' : p.slice(0, i - 1);
  };
  const resolve = (from: string, dep: string): string | undefined => {
    for (let p: string | undefined = from; p !== undefined; p = parentOf(p)) {
      const key = p === '' ? `node_modules/${dep}` : `${p}/node_modules/${dep}`;
      if (lock[key] !== undefined) return key;
    }
    return undefined;
  };
  const packages = new Set<string>();
  const links = new Map<string, string>();
  const skipped = new Set<string>();
  const queue: string[] = [...WORKSPACES];
  const seen = new Set<string>(queue);
  while (queue.length > 0) {
    const from = queue.shift();
    if (from === undefined) break;
    const pkg = lock[from];
    if (pkg === undefined) throw new BuildError(`package-lock.json has no entry "${from}"`);
    const edges: [string, boolean][] = [
      ...Object.keys(pkg.dependencies ?? {}).map((d): [string, boolean] => [d, false]),
      ...Object.keys(pkg.optionalDependencies ?? {}).map((d): [string, boolean] => [d, true]),
      ...Object.keys(pkg.peerDependencies ?? {}).map((d): [string, boolean] => [d, pkg.peerDependenciesMeta?.[d]?.optional === true]),
    ];
    for (const [dep, optional] of edges) {
      if (INSTALL_ONLY.has(dep) || dep.startsWith('@types/')) {
        skipped.add(dep);
        continue;
      }
      let key = resolve(from, dep);
      if (key === undefined || !existsSync(`${REPO}/${key}`)) {
        if (optional) continue;
        throw new BuildError(`${from === '' ? 'the workspace' : from} needs ${dep}, which is not installed; run 'make install'`);
      }
      const entry = lock[key];
      if (entry?.link === true && entry.resolved !== undefined) {
        links.set(key, entry.resolved);
        key = entry.resolved;
      } else {
        if (!nativeAddonUsable(`${REPO}/${key}`)) {
          if (optional) {
            skipped.add(`${dep} (optional native addon, not built)`);
            continue;
          }
          process.stderr.write(`images: warning: ${key} is a native addon with neither a build nor a prebuild for linux-${process.arch}; copied without one\n`);
        }
        packages.add(key);
      }
      if (!seen.has(key)) {
        seen.add(key);
        queue.push(key);
      }
    }
  }
  for (const w of WORKSPACES) {
    const link = `node_modules/@airlock/${w}`;
    if (lock[link]?.link === true) links.set(link, w);
  }
  return { packages: [...packages].filter((p) => !(WORKSPACES as readonly string[]).includes(p)).sort(), links, skipped: [...skipped].sort() };
}

/** Whether a package is not a native addon, or is one with a binary for this platform. */
function nativeAddonUsable(dir: string): boolean {
  if (!existsSync(`${dir}/binding.gyp`)) return true;
  const hasNode = (d: string): boolean => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.node'));
  return hasNode(`${dir}/build/Release`) || hasNode(`${dir}/prebuilds/linux-${process.arch}`);
}

const NODE_MODULES_SKIP_FILE = /^(readme|changelog|history|changes|contributing|authors)(\..*)?$|\.(md|markdown|map|d\.ts|d\.mts|d\.cts|ts|mts|cts|tsbuildinfo)$|^llms.*\.txt$/i;
const NATIVE_SOURCE = /\.(c|cc|cpp|cxx|h|hh|hpp|gyp|gypi)$/i;

/** One installed package's files, without documentation, type declarations, source maps,
 * dotfiles, its own node_modules (those are packages of their own), and for native addons, what
 * only their build used (C/C++ sources, vendored libraries, build intermediates, prebuilds for
 * other platforms). */
function addPackage(t: Tree, key: string, imageRoot: string, ctx: BuildContext): void {
  const dir = `${REPO}/${key}`;
  const native = existsSync(`${dir}/binding.gyp`);
  const prebuilds = `prebuilds/linux-${process.arch}`;
  t.hostTreeAt(dir, `${imageRoot}/${key}`, (r, isDir) => {
    const name = path.posix.basename(r);
    if (name.startsWith('.') || name === 'node_modules') return false;
    if (isDir) {
      if (r === 'prebuilds' || r.startsWith('prebuilds/')) return r === 'prebuilds' || r === prebuilds;
      if (!native) return true;
      if (r === 'vendor' || r === 'deps') return false;
      if (r === 'build' || r.startsWith('build/')) return r === 'build' || r === 'build/Release';
      return true;
    }
    if (native && r.startsWith('build/')) return /^build\/Release\/[^/]+\.node$/.test(r);
    if (native && NATIVE_SOURCE.test(name)) return false;
    return !NODE_MODULES_SKIP_FILE.test(name);
  }, (file) => (file.endsWith('.node') && isElf(file) ? stripped(file, ctx, '--strip-unneeded') : file));
}

function buildAirlock(ctx: BuildContext): ImageSpec {
  const runtime = baseTree();
  const node = stripped(workspaceNode(), ctx, '--strip-all');
  runtime.file('/nodejs/bin/node', node, { mode: 0o755 });
  const nonroot: User = { name: 'nonroot', uid: NONROOT_UID, gid: NONROOT_UID, home: '/home/nonroot', shell: '/sbin/nologin' };
  addUsers(runtime, [nonroot], [{ name: 'nonroot', gid: 65532 }]);
  addCaCertificates(runtime);

  const app = new Tree();
  const lock = (JSON.parse(readFileSync(`${REPO}/package-lock.json`, 'utf8')) as { packages?: Record<string, LockPackage> }).packages;
  if (lock === undefined) throw new BuildError('package-lock.json has no "packages" (lockfile v2 or later expected)');
  app.file('/app/package.json', `${REPO}/package.json`);
  for (const w of WORKSPACES) {
    const dir = `${REPO}/${w}`;
    app.file(`/app/${w}/package.json`, requireWorkspaceFile(`${dir}/package.json`));
    if (existsSync(`${dir}/src`)) {
      app.hostTreeAt(`${dir}/src`, `/app/${w}/src`, (r, isDir) => {
        const name = path.posix.basename(r);
        if (isDir) return !['test', 'tests', '__tests__', 'fixtures', 'bench'].includes(name);
        return !/\.(test|spec|bench)\.[cm]?[jt]s$/.test(name) && !NATIVE_SOURCE.test(name) && !name.startsWith('.');
      });
    }
  }
  const release = `${REPO}/native/build/Release`;
  const addons = (existsSync(release) ? readdirSync(release, { withFileTypes: true }) : []).filter((d) => d.isFile() && d.name.endsWith('.node'));
  if (addons.length === 0) throw new BuildError("native/build/Release has no .node file; run 'make install'");
  for (const a of addons) app.file(`/app/native/build/Release/${a.name}`, stripped(`${release}/${a.name}`, ctx, '--strip-unneeded'), { mode: 0o755 });
  const { packages, links } = productionPackages(lock);
  for (const key of packages) addPackage(app, key, '/app', ctx);
  for (const [link, target] of [...links].sort(([a], [b]) => compareCodeUnits(a, b))) {
    app.symlink(`/app/${link}`, path.posix.relative(path.posix.dirname(`/app/${link}`), `/app/${target}`));
  }
  addCompileCache(app);
  const capture = iptablesTree();
  addSharedLibraries(runtime, [runtime, app, capture]);

  return {
    name: 'airlock',
    repository: `${REGISTRY}/airlock`,
    tag: ctx.version,
    layers: [
      { comment: 'Node.js, its shared libraries, users, CA certificates', tree: runtime },
      { comment: 'Airlock: the workspace sources and production node_modules', tree: app },
      { comment: 'iptables (nft) for the init container that captures agent traffic', tree: capture },
    ],
    config: {
      User: '65532:65532',
      Env: ['PATH=/nodejs/bin:/usr/bin:/bin', `NODE_COMPILE_CACHE=/app/${COMPILE_CACHE_DIR}`, ...Object.entries(AIRLOCK_ENV).map(([k, v]) => `${k}=${v}`)],
      Entrypoint: ['/nodejs/bin/node', ...AIRLOCK_NODE_FLAGS, '/app/cli/src/main.ts'],
      Cmd: ['--help'],
      WorkingDir: '/app',
      Labels: labels('airlock', ctx.version, 'Airlock: the operator, the admission webhooks and the proxy sidecar (airlock operator | webhook | sidecar)'),
    },
  };
}

/**
 * The workspace's TypeScript modules, stripped, in Node's compile cache at COMPILE_CACHE_DIR, for
 * each of COMPILE_CACHE_UIDS (one directory, the others symlinks to it): see compile-cache.ts.
 */
function addCompileCache(app: Tree): void {
  const sources: string[] = [];
  for (const [p, e] of app.entries) {
    if (e.kind !== 'file' || typeof e.source !== 'string' || !p.endsWith('.ts') || p.endsWith('.d.ts') || p.includes('/node_modules/')) continue;
    if (e.source !== path.join(REPO, p.replace(/^app\//, ''))) throw new BuildError(`/${p} comes from ${e.source}, not from its place in the workspace: the compile cache would not match it`);
    sources.push(e.source);
  }
  let cache;
  try {
    cache = transpileCache({ root: REPO, node: workspaceNode(), flags: AIRLOCK_NODE_FLAGS, sources: sources.sort() });
  } catch (err) {
    if (err instanceof CompileCacheError) throw new BuildError(err.message);
    throw err;
  }
  const [owner, ...others] = COMPILE_CACHE_UIDS;
  const dir = `${cache.tag}-${String(owner)}`;
  for (const [name, contents] of cache.entries) app.file(`/app/${COMPILE_CACHE_DIR}/${dir}/${name}`, contents, { mode: 0o444 });
  for (const uid of others) app.symlink(`/app/${COMPILE_CACHE_DIR}/${cache.tag}-${String(uid)}`, dir);
}

/** The iptables extensions the traffic-capture rules use (nat REDIRECT by destination and owner). */
const XTABLES_EXTENSIONS = [
  'libxt_owner', 'libxt_REDIRECT', 'libxt_tcp', 'libxt_udp', 'libxt_standard', 'libxt_comment', 'libxt_multiport',
  'libxt_conntrack', 'libxt_mark', 'libxt_MARK', 'libxt_addrtype', 'libxt_DNAT', 'libxt_TPROXY', 'libxt_socket',
  'libipt_REJECT', 'libip6t_REJECT', 'libipt_icmp', 'libip6t_icmp6',
];

/** iptables and ip6tables (the nft variant, as the host's kernel uses) for the capture init
 * container: xtables-nft-multi under its command names and the extensions it loads. */
function iptablesTree(): Tree {
  const t = new Tree();
  const multi = requireHost('/usr/sbin/xtables-nft-multi', 'iptables');
  t.host(multi);
  for (const cmd of ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'iptables-save', 'ip6tables-save']) {
    t.symlink(`/usr/sbin/${cmd}`, 'xtables-nft-multi');
  }
  const ext = `/usr/lib/${multiarch()}/xtables`;
  for (const e of XTABLES_EXTENSIONS) t.host(requireHost(`${ext}/${e}.so`, 'iptables'));
  return t;
}

function requireWorkspaceFile(file: string): string {
  if (!existsSync(file)) throw new BuildError(`${file} is missing`);
  return file;
}

// --- test-agent ----------------------------------------------------------------------------------

function buildTestAgent(ctx: BuildContext): ImageSpec {
  const major = postgresMajor();
  const t = baseTree();
  const pgbin = `/usr/lib/postgresql/${major}/bin`;
  for (const b of ['psql', 'pg_isready']) {
    t.host(requireHost(`${pgbin}/${b}`, 'postgresql-client'));
    t.symlink(`/usr/bin/${b}`, `../lib/postgresql/${major}/bin/${b}`);
  }
  for (const b of ['ssh', 'scp', 'sftp', 'ssh-keygen']) t.host(requireHost(`/usr/bin/${b}`, 'openssh-client'));
  addCaCertificates(t);
  if (existsSync('/lib/terminfo')) t.hostTree('/lib/terminfo');
  addUsers(t, [{ name: 'agent', uid: 1000, gid: 1000, home: '/home/agent', shell: '/bin/sh' }], [{ name: 'agent', gid: 1000 }]);
  // glibc loads these with dlopen for the hosts and passwd lookups of nsswitch.conf
  const nss = ['libnss_files.so.2', 'libnss_dns.so.2', 'libresolv.so.2'].map((l) => `/lib/${multiarch()}/${l}`).filter((l) => existsSync(l));
  addBusybox(t); // last: its applets never replace a real program
  addSharedLibraries(t, [t], nss);
  return {
    name: 'test-agent',
    repository: `${REGISTRY}/test-agent`,
    tag: ctx.version,
    layers: [{ comment: 'psql, ssh, busybox, CA certificates', tree: t }],
    config: {
      User: '1000:1000',
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', 'HOME=/home/agent', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'],
      // sleeps until stopped; as PID 1 a bare `sleep` would ignore SIGTERM and hold up pod deletion
      Cmd: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; sleep infinity & wait"],
      WorkingDir: '/home/agent',
      Labels: labels('test-agent', ctx.version, 'Airlock end-to-end tests: an agent with psql and ssh'),
    },
  };
}

function multiarch(): string {
  return `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
}

// --- test-postgres -------------------------------------------------------------------------------

function buildTestPostgres(): ImageSpec {
  const major = postgresMajor();
  const t = baseTree();
  const lib = `/usr/lib/postgresql/${major}`;
  requireHost(`${lib}/bin/initdb`, 'postgresql');
  t.hostTree(`${lib}/bin`);
  // the JIT provider links LLVM (~100 MiB); the server runs without it (jit = off)
  t.hostTree(`${lib}/lib`, (r) => !r.startsWith('llvmjit') && r !== 'bitcode' && !r.startsWith('bitcode/'));
  t.hostTree(`/usr/share/postgresql/${major}`, (r) => r !== 'man' && !r.startsWith('man/'));
  t.hostTree('/usr/share/zoneinfo', (r) => r !== 'right' && !r.startsWith('right/') && r !== 'localtime');
  const postgres: User = { name: 'postgres', uid: 999, gid: 999, home: '/var/lib/postgresql', shell: '/bin/sh' };
  addUsers(t, [postgres], [{ name: 'postgres', gid: 999 }]);
  const owner = { uid: 999, gid: 999 };
  t.dir('/var/lib/postgresql', { mode: 0o755, owner });
  t.dir('/var/lib/postgresql/data', { mode: 0o700, owner });
  t.dir('/var/run/postgresql', { mode: 0o2775, owner });
  t.dir('/docker-entrypoint-initdb.d');
  t.file('/usr/local/bin/docker-entrypoint.sh', `${HERE}/test-postgres/docker-entrypoint.sh`, { mode: 0o755 });
  addBusybox(t); // last: its applets never replace a real program
  addSharedLibraries(t, [t]);
  return {
    name: 'test-postgres',
    repository: `${REGISTRY}/test-postgres`,
    tag: major,
    layers: [{ comment: `PostgreSQL ${major} from Debian, busybox`, tree: t }],
    config: {
      Env: [`PATH=/usr/lib/postgresql/${major}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, 'PGDATA=/var/lib/postgresql/data', 'TZ=Etc/UTC'],
      Entrypoint: ['/usr/local/bin/docker-entrypoint.sh'],
      Cmd: ['postgres'],
      ExposedPorts: { '5432/tcp': {} },
      StopSignal: 'SIGINT',
      Labels: labels('test-postgres', major, `Airlock end-to-end tests: PostgreSQL ${major} (POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, /docker-entrypoint-initdb.d/*.sql)`),
    },
  };
}

// --- test-sshd -----------------------------------------------------------------------------------

function buildTestSshd(ctx: BuildContext): ImageSpec {
  const t = baseTree();
  t.host(requireHost('/usr/sbin/sshd', 'openssh-server'));
  for (const f of ['/usr/lib/openssh/sshd-session', '/usr/lib/openssh/sshd-auth']) if (existsSync(f)) t.host(f);
  t.host(requireHost('/usr/lib/openssh/sftp-server', 'openssh-sftp-server'));
  for (const b of ['ssh-keygen', 'scp']) t.host(requireHost(`/usr/bin/${b}`, 'openssh-client'));
  if (existsSync('/etc/ssh/moduli')) t.host('/etc/ssh/moduli');
  t.file('/etc/ssh/sshd_config', `${HERE}/test-sshd/sshd_config`);
  t.dir('/etc/ssh/sshd_config.d');
  t.text('/etc/ssh/sshd_config.d/10-port.conf', 'Port 2222\n');
  t.dir('/run/sshd', { mode: 0o755 });
  t.dir('/home');
  t.file('/usr/local/bin/entrypoint.sh', `${HERE}/test-sshd/entrypoint.sh`, { mode: 0o755 });
  addUsers(t, [{ name: 'sshd', uid: 100, gid: 65534, home: '/run/sshd', shell: '/usr/sbin/nologin' }], []);
  addBusybox(t); // last: its applets never replace a real program
  addSharedLibraries(t, [t]);
  return {
    name: 'test-sshd',
    repository: `${REGISTRY}/test-sshd`,
    tag: ctx.version,
    layers: [{ comment: 'OpenSSH server from Debian, busybox', tree: t }],
    config: {
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin'],
      Entrypoint: ['/usr/local/bin/entrypoint.sh'],
      Cmd: ['/usr/sbin/sshd', '-D', '-e'],
      ExposedPorts: { '2222/tcp': {} },
      Labels: labels('test-sshd', ctx.version, 'Airlock end-to-end tests: OpenSSH server on port 2222 (SSH_USER, SSH_UID, SSH_AUTHORIZED_KEYS, SSH_AUTHORIZED_KEYS_FILE, SSH_HOST_KEY_DIR, SSHD_PORT)'),
    },
  };
}

// --- pause -----------------------------------------------------------------------------------------

function buildPause(ctx: BuildContext): ImageSpec {
  if (ctx.pauseBin === undefined) throw new BuildError('the pause image needs --pause-bin PATH (a static pause binary)');
  const bin = path.resolve(ctx.pauseBin);
  if (!existsSync(bin)) throw new BuildError(`--pause-bin ${bin} does not exist`);
  if (!isElf(bin)) throw new BuildError(`--pause-bin ${bin} is not an ELF binary`);
  const t = new Tree();
  t.file('/pause', bin, { mode: 0o755 });
  addSharedLibraries(t, [t]); // none for a static binary
  return {
    name: 'pause',
    repository: `${REGISTRY}/pause`,
    tag: ctx.version,
    layers: [{ comment: 'pause', tree: t }],
    config: { User: '65535:65535', Entrypoint: ['/pause'], Labels: labels('pause', ctx.version, 'Pod sandbox image') },
  };
}

const BUILDERS: Readonly<Record<ImageName, (ctx: BuildContext) => ImageSpec>> = {
  airlock: buildAirlock,
  'test-agent': buildTestAgent,
  'test-postgres': buildTestPostgres,
  'test-sshd': buildTestSshd,
  pause: buildPause,
};

// ---------------------------------------------------------------------------------------------
// Writing layers and the OCI image layout

interface Blob {
  readonly digest: string;
  readonly size: number;
  /** the file holding its bytes, or the bytes */
  readonly data: string | Buffer;
}

/** counts and hashes what passes through */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

function addEntry(pack: Pack, header: Partial<Header> & Pick<Header, 'name'>, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null): void => {
      if (err) reject(err);
      else resolve();
    };
    if (data === undefined) pack.entry(header, cb);
    else pack.entry(header, data, cb);
  });
}

/** Writes `tree` as a gzip tar layer; returns the compressed blob and the uncompressed digest. */
async function writeLayer(tree: Tree, file: string, mtime: Date): Promise<{ blob: Blob; diffId: string; uncompressed: number }> {
  const pack = tarPack();
  const plain = new Meter();
  const gz = new Meter();
  const done = pipeline(pack, plain, createGzip({ level: GZIP_LEVEL }), gz, createWriteStream(file));
  const paths = [...tree.entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const p of paths) {
    const e = tree.entries.get(p);
    if (e === undefined) continue;
    const base = { mtime, uname: '', gname: '' };
    if (e.kind === 'dir') {
      await addEntry(pack, { ...base, name: `${p}/`, type: 'directory', mode: e.mode, uid: e.owner.uid, gid: e.owner.gid });
    } else if (e.kind === 'symlink') {
      await addEntry(pack, { ...base, name: p, type: 'symlink', linkname: e.target, mode: 0o777, uid: 0, gid: 0 });
    } else {
      const data = typeof e.source === 'string' ? readFileSync(e.source) : e.source;
      await addEntry(pack, { ...base, name: p, type: 'file', mode: e.mode, uid: e.owner.uid, gid: e.owner.gid, size: data.length }, data);
    }
  }
  pack.finalize();
  await done;
  return {
    blob: { digest: `sha256:${gz.hash.digest('hex')}`, size: gz.bytes, data: file },
    diffId: `sha256:${plain.hash.digest('hex')}`,
    uncompressed: plain.bytes,
  };
}

function jsonBlob(value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, data };
}

function ociArch(): string {
  if (process.arch === 'x64') return 'amd64';
  if (process.arch === 'arm64') return 'arm64';
  throw new BuildError(`unsupported architecture ${process.arch}`);
}

interface Built {
  readonly name: ImageName;
  readonly reference: string;
  readonly digest: string;
  readonly file: string;
  readonly uncompressedBytes: number;
  readonly compressedBytes: number;
}

async function buildImage(spec: ImageSpec, out: string, ctx: BuildContext, epoch: number): Promise<Built> {
  const mtime = new Date(epoch * 1000);
  const created = mtime.toISOString().replace(/\.000Z$/, 'Z');
  const layers: { blob: Blob; diffId: string; uncompressed: number }[] = [];
  for (const [i, l] of spec.layers.entries()) layers.push(await writeLayer(l.tree, `${ctx.tmp}/${spec.name}-layer${i}.tar.gz`, mtime));
  const platform = { architecture: ociArch(), os: 'linux' };
  const config = jsonBlob({
    created,
    ...platform,
    config: spec.config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: spec.layers.map((l) => ({ created, created_by: 'hack/images/build.ts', comment: l.comment })),
  });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.blob.digest, size: l.blob.size })),
  });
  const reference = `${spec.repository}:${spec.tag}`;
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifest.digest,
          size: manifest.size,
          annotations: { 'io.containerd.image.name': reference, 'org.opencontainers.image.ref.name': spec.tag },
          platform,
        },
      ],
    }),
  );
  const blobs = new Map<string, Blob>();
  for (const b of [...layers.map((l) => l.blob), config, manifest]) blobs.set(b.digest, b);

  mkdirSync(path.dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  const pack = tarPack();
  const done = pipeline(pack, createWriteStream(partial));
  const base = { mtime: new Date(epoch * 1000), uid: 0, gid: 0, uname: '', gname: '' };
  await addEntry(pack, { ...base, name: 'blobs/', type: 'directory', mode: 0o755 });
  await addEntry(pack, { ...base, name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
  for (const digest of [...blobs.keys()].sort()) {
    const b = blobs.get(digest);
    if (b === undefined) continue;
    const data = typeof b.data === 'string' ? readFileSync(b.data) : b.data;
    await addEntry(pack, { ...base, name: `blobs/sha256/${digest.slice('sha256:'.length)}`, type: 'file', mode: 0o644, size: data.length }, data);
  }
  await addEntry(pack, { ...base, name: 'index.json', type: 'file', mode: 0o644, size: index.length }, index);
  const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await addEntry(pack, { ...base, name: 'oci-layout', type: 'file', mode: 0o644, size: layout.length }, layout);
  pack.finalize();
  await done;
  renameSync(partial, out);
  for (const l of layers) if (typeof l.blob.data === 'string') rmSync(l.blob.data, { force: true });
  return {
    name: spec.name,
    reference,
    digest: manifest.digest,
    file: out.startsWith(`${REPO}/`) ? path.relative(REPO, out) : out,
    uncompressedBytes: layers.reduce((s, l) => s + l.uncompressed, 0),
    compressedBytes: layers.reduce((s, l) => s + l.blob.size, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Command line

const USAGE = `Usage: node hack/images/build.ts [names...] [--out-dir DIR] [--out FILE] [--pause-bin PATH]

Builds container images as OCI image layout tarballs (<out-dir>/<name>.oci.tar), without Docker
and without a registry, and records them in images.json next to them (reference, manifest
digest, sizes). Import one with
  ctr -n k8s.io images import dist/airlock.oci.tar
push one with
  skopeo copy oci-archive:dist/airlock.oci.tar docker://REGISTRY/airlock:TAG

Images (default: ${DEFAULT_IMAGES.join(', ')}):
  airlock        ${REGISTRY}/airlock:<version>  Node.js 24 + the workspace; entrypoint 'airlock'
                 (args: operator | webhook | sidecar | validate ...), user 65532
  test-agent     ${REGISTRY}/test-agent:<version>  psql, ssh, busybox; sleeps; user agent (1000)
  test-postgres  ${REGISTRY}/test-postgres:<major>  Debian's PostgreSQL server; env POSTGRES_PASSWORD,
                 POSTGRES_USER, POSTGRES_DB; runs /docker-entrypoint-initdb.d/*.sql once
  test-sshd      ${REGISTRY}/test-sshd:<version>  OpenSSH server on 2222, public keys only; env
                 SSH_USER (ops), SSH_UID (1000), SSH_AUTHORIZED_KEYS or a file at
                 SSH_AUTHORIZED_KEYS_FILE, host keys from SSH_HOST_KEY_DIR or generated
  pause          ${REGISTRY}/pause:<version>  the static binary given with --pause-bin; not built
                 unless named

Options:
  --out-dir DIR     where to write (default: dist)
  --out FILE        the archive of the one image named (instead of <out-dir>/<name>.oci.tar)
  --pause-bin PATH  the static pause binary of the pause image
  -h, --help        this help

Host packages (Debian): ${APT_HINT}
Builds are reproducible (SOURCE_DATE_EPOCH sets the timestamps, default 0).
`;

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'out-dir': { type: 'string', default: 'dist' },
      out: { type: 'string' },
      'pause-bin': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const names: ImageName[] = [];
  for (const p of positionals.length > 0 ? positionals : DEFAULT_IMAGES) {
    const name = ALL_IMAGES.find((n) => n === p);
    if (name === undefined) throw new BuildError(`unknown image "${p}" (images: ${ALL_IMAGES.join(', ')})`);
    if (!names.includes(name)) names.push(name);
  }
  if (values.out !== undefined && names.length !== 1) throw new BuildError('--out needs exactly one image name');
  const outDir = path.resolve(values['out-dir']);
  const epochText = process.env.SOURCE_DATE_EPOCH;
  const epoch = epochText === undefined || epochText === '' ? 0 : Number(epochText);
  if (!Number.isInteger(epoch) || epoch < 0) throw new BuildError(`SOURCE_DATE_EPOCH=${epochText ?? ''} is not a number of seconds`);

  const tmp = mkdtempSync(path.join(tmpdir(), 'airlock-images-'));
  const built: Built[] = [];
  try {
    const ctx: BuildContext = { version: workspaceVersion(), tmp, pauseBin: values['pause-bin'] };
    for (const name of names) {
      const started = Date.now();
      const spec = BUILDERS[name](ctx);
      const out = values.out !== undefined ? path.resolve(values.out) : path.join(outDir, `${name}.oci.tar`);
      const b = await buildImage(spec, out, ctx, epoch);
      built.push(b);
      const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
      process.stdout.write(`${b.reference}\n  digest        ${b.digest}\n  uncompressed  ${mib(b.uncompressedBytes)}\n  compressed    ${mib(b.compressedBytes)}\n  file          ${b.file}  (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  const record = path.join(values.out !== undefined ? path.dirname(path.resolve(values.out)) : outDir, 'images.json');
  let images: Record<string, unknown> = {};
  if (existsSync(record)) {
    try {
      const old = JSON.parse(readFileSync(record, 'utf8')) as { images?: Record<string, unknown> };
      images = old.images ?? {};
    } catch {
      images = {};
    }
  }
  for (const b of built) {
    images[b.name] = {
      reference: b.reference,
      digest: b.digest,
      file: b.file,
      uncompressedBytes: b.uncompressedBytes,
      uncompressedMiB: Math.round((b.uncompressedBytes / 1048576) * 10) / 10,
      compressedBytes: b.compressedBytes,
      compressedMiB: Math.round((b.compressedBytes / 1048576) * 10) / 10,
    };
  }
  const sorted = Object.fromEntries(Object.entries(images).sort(([a], [b]) => compareCodeUnits(a, b)));
  mkdirSync(path.dirname(record), { recursive: true });
  writeFileSync(record, `${JSON.stringify({ images: sorted }, null, 2)}\n`);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof BuildError || (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`images: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
