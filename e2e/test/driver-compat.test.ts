/**
 * Driver compatibility: the pgx v5 driver's own test suite (from the Go module proxy) run twice
 * against the same real PostgreSQL, directly and through `airlock sidecar` with a policy that
 * allows everything and masks nothing. Every test that passes directly must pass through the
 * sidecar, except the few listed in KNOWN_DIFFERENCES, each with the reason it cannot.
 *
 * The counts are printed and written to bench/pgx-compat.json.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync, readFileSync, chmodSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type Postgres } from '../src/postgres.ts';
import { ROOT } from '../src/controlplane.ts';
import { manifestDir, startSidecar, type SidecarProcess } from '../src/sidecar.ts';

const PGX = 'github.com/jackc/pgx/v5';
/** pinned: the suite's expectations change with the driver */
const PGX_VERSION = 'v5.13.0';
/** the packages that talk to a server */
const PACKAGES = ['.', './pgconn', './pgtype', './pgxpool', './stdlib'];

/**
 * Tests that pass directly and cannot pass through the sidecar, by design. Keys are
 * `<package>/<Test/subtest>`; values say why.
 */
const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {
  'pgx/TestConnect': 'current_user is the upstream user of the connection\'s Secret, not the name the agent gave: the agent holds no credential',
  'pgx/TestConnSimpleProtocolRefusesNonStandardConformingStrings':
    'SET standard_conforming_strings = off is refused (42501): the sidecar pins every setting that changes how a statement is lexed (one text, one meaning)',
  'pgx/TestConnSimpleProtocolRefusesNonUTF8ClientEncoding': 'SET client_encoding is refused (42501), for the same reason',
};

/** subtest names that carry a temporary path: the same test in both runs */
function testName(pkg: string, name: string): string {
  return `${pkg.replace(PGX, 'pgx')}/${name.replace(/\/tmp\/([A-Za-z_]+)\d+\//g, '/tmp/$1*/')}`;
}

type Outcome = 'pass' | 'fail' | 'skip';

interface Run {
  readonly outcomes: ReadonlyMap<string, Outcome>;
  readonly counts: Readonly<Record<Outcome, number>>;
  readonly seconds: number;
}

function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/local/go/bin`, GOFLAGS: '-mod=mod -buildvcs=false', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
}

/** pgx's source, writable, in a temporary directory */
function pgxSource(): string {
  const r = spawnSync('go', ['mod', 'download', '-json', `${PGX}@${PGX_VERSION}`], { env: goEnv(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const dir = (JSON.parse(r.stdout) as { Dir?: string }).Dir;
  assert.ok(dir !== undefined, r.stdout);
  const copy = mkdtempSync(join(tmpdir(), 'airlock-pgx-'));
  cpSync(dir, copy, { recursive: true });
  const writable = (p: string): void => {
    const s = statSync(p);
    chmodSync(p, s.isDirectory() ? 0o755 : 0o644);
    if (s.isDirectory()) for (const e of readdirSync(p)) writable(join(p, e));
  };
  writable(copy);
  return copy;
}

function runSuite(src: string, database: string): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['test', '-json', '-count=1', '-p', '1', '-timeout', '15m', ...PACKAGES], {
      cwd: src,
      env: { ...goEnv(), PGX_TEST_DATABASE: database },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const outcomes = new Map<string, Outcome>();
    let partial = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      partial += d.toString();
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        let ev: { Action?: string; Package?: string; Test?: string };
        try {
          ev = JSON.parse(line) as typeof ev;
        } catch {
          continue;
        }
        if (ev.Test === undefined || ev.Package === undefined) continue;
        if (ev.Action === 'pass' || ev.Action === 'fail' || ev.Action === 'skip') outcomes.set(testName(ev.Package, ev.Test), ev.Action);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    child.once('close', () => {
      const counts = { pass: 0, fail: 0, skip: 0 };
      for (const o of outcomes.values()) counts[o] += 1;
      if (outcomes.size === 0) reject(new Error(`go test ran no test:\n${stderr}`));
      else resolve({ outcomes, counts, seconds: (performance.now() - started) / 1000 });
    });
  });
}

let pg: Postgres;
let sidecar: SidecarProcess;
let src: string;
let recordings: string;
let manifests: string;

before(async () => {
  pg = await startPostgres();
  assert.equal(pg.psql('CREATE DATABASE pgx_test').code, 0);
  src = pgxSource();
  // pgx's own setup (extensions, its test users), as its CI runs it
  const setup = pg.psql(readFileSync(join(src, 'testsetup', 'postgresql_setup.sql'), 'utf8').replace(/^\\set whoami .*$/m, '').replace(/^select format\('create user %I[\s\S]*?\\gexec$/m, ''), { database: 'pgx_test' });
  assert.equal(setup.code, 0, setup.stderr);
  recordings = mkdtempSync(join(tmpdir(), 'airlock-pgx-rec-'));
  manifests = manifestDir({
    'connection.yaml': `
apiVersion: v1
kind: Secret
metadata: { name: pgx-credentials, namespace: agents }
stringData: { username: ${pg.user}, password: ${pg.password} }
---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: pgx, namespace: agents }
spec:
  protocol: postgres
  target: { host: 127.0.0.1, port: ${pg.port}, database: pgx_test, tls: { mode: disable } }
  credentialsSecretRef: { name: pgx-credentials }
  agents: { podSelector: {} }
  defaultAction: Allow
`,
  });
  sidecar = await startSidecar({ manifests: [manifests], connection: 'pgx', recordingsDir: recordings, stateDir: recordings, extraArgs: ['--service-account', 'pgx'] });
});

after(async () => {
  await sidecar.stop();
  await pg.stop();
  for (const d of [src, recordings, manifests]) rmSync(d, { recursive: true, force: true });
});

test(`pgx ${PGX_VERSION}'s test suite passes through the sidecar wherever it passes directly`, { timeout: 40 * 60_000 }, async (t) => {
  const direct = await runSuite(src, `postgres://${pg.user}:${pg.password}@127.0.0.1:${pg.port}/pgx_test?sslmode=disable`);
  const proxied = await runSuite(src, `postgres://agent:unused@${sidecar.host}:${sidecar.port}/pgx_test?sslmode=disable`);
  const regressions: string[] = [];
  const known: string[] = [];
  for (const [name, outcome] of direct.outcomes) {
    if (outcome !== 'pass') continue;
    const through = proxied.outcomes.get(name);
    if (through === 'pass') continue;
    // a parent fails when one of its subtests does: count the leaves
    const hasFailingChild = [...proxied.outcomes].some(([n, o]) => n.startsWith(`${name}/`) && o !== 'pass');
    if (hasFailingChild) continue;
    (name in KNOWN_DIFFERENCES ? known : regressions).push(`${name}: ${through ?? 'not run'}${name in KNOWN_DIFFERENCES ? ` (${KNOWN_DIFFERENCES[name] ?? ''})` : ''}`);
  }
  const report = {
    driver: `${PGX}@${PGX_VERSION}`,
    packages: PACKAGES,
    direct: { ...direct.counts, seconds: Math.round(direct.seconds) },
    sidecar: { ...proxied.counts, seconds: Math.round(proxied.seconds) },
    passDirectFailThroughSidecar: regressions.length + known.length,
    knownDifferences: known,
    regressions,
  };
  writeFileSync(join(ROOT, 'bench', 'pgx-compat.json'), `${JSON.stringify(report, null, 2)}\n`);
  t.diagnostic(`direct: ${JSON.stringify(direct.counts)} in ${Math.round(direct.seconds)} s; through the sidecar: ${JSON.stringify(proxied.counts)} in ${Math.round(proxied.seconds)} s`);
  t.diagnostic(`passing directly, not through the sidecar: ${regressions.length} regressions, ${known.length} known`);
  assert.ok(direct.counts.pass > 1000, `the direct run passed only ${direct.counts.pass} tests: the setup is wrong`);
  assert.deepEqual(regressions, [], 'tests that pass directly must pass through the sidecar');
  const stale = Object.keys(KNOWN_DIFFERENCES).filter((name) => !known.some((k) => k.startsWith(`${name}: `)));
  assert.deepEqual(stale, [], 'known differences that no longer differ: remove them from KNOWN_DIFFERENCES');
});
