/**
 * Detectors find secrets glued to letters, digits, `_` or `=` (issue 15, item 7) through the
 * real sidecar: a real PostgreSQL (result values over the simple and the extended protocol, the
 * statement text in the recording) and a real sshd (command output written in pieces, so a
 * secret straddles the SSH channel's chunks at every offset).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type Postgres } from '../src/postgres.ts';
import { manifestDir, startSidecar, type SidecarProcess } from '../src/sidecar.ts';
import { sshClient, startSshd, type Sshd } from '../src/sshd.ts';

const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const JWT = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url('{"sub":"42"}')}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;
const GHP = `ghp_${'aB3'.repeat(12)}`;

/** [glued text, the secret in it that must never reach the agent or the recording] */
const GLUED: readonly (readonly [string, string])[] = [
  ['x4539148803436467', '4539148803436467'],
  ['card4539-1488-0343-6467end', '4539-1488-0343-6467'],
  ['ibanDE89370400440532013000', 'DE89370400440532013000'],
  ['acctGB82WEST12345698765432x', 'GB82WEST12345698765432'],
  ['AWS_KEY_AKIAIOSFODNN7EXAMPLEzz', 'AKIAIOSFODNN7EXAMPLE'],
  [`token=${GHP}_end`, GHP],
  [`jwt${JWT}`, JWT],
  ['ssn078-05-1120x', '078-05-1120'],
];

const MASKING = `
apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: secrets, namespace: agents }
spec:
  connectionSelector: { matchLabels: { env: test } }
  rules:
    - name: secrets
      match: { detectors: [credit_card, iban, aws_access_key, github_token, jwt, us_ssn] }
      action: { type: redact }
`;

function recordingsOf(dir: string, connection: string): string {
  const d = join(dir, connection);
  if (!existsSync(d)) return '';
  return readdirSync(d)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(d, f), 'utf8'))
    .join('\n');
}

async function waitFor(fn: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL: glued secrets in values and statement text', () => {
  let postgres: Postgres;
  let sidecar: SidecarProcess;
  let recordings: string;
  let manifests: string;

  before(async () => {
    postgres = await startPostgres();
    for (const sql of ["CREATE ROLE agent LOGIN PASSWORD 'agent-pw'", 'CREATE DATABASE app OWNER agent']) {
      const r = postgres.psql(sql);
      assert.equal(r.code, 0, r.stderr);
    }
    const rows = GLUED.map(([text], i) => `(${String(i)}, '${text}')`).join(', ');
    const t = postgres.psql(`SET ROLE agent; CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES ${rows};`, { database: 'app' });
    assert.equal(t.code, 0, t.stderr);
    recordings = mkdtempSync(join(tmpdir(), 'airlock-glued-rec-'));
    manifests = manifestDir({
      'app.yaml': `
apiVersion: v1
kind: Secret
metadata: { name: creds, namespace: agents }
stringData: { username: agent, password: agent-pw }
---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: app, namespace: agents, labels: { env: test } }
spec:
  protocol: postgres
  target: { host: 127.0.0.1, port: ${String(postgres.port)}, database: app, tls: { mode: disable } }
  credentialsSecretRef: { name: creds }
  agents: { podSelector: {} }
  defaultAction: Allow
---${MASKING}`,
    });
    sidecar = await startSidecar({ manifests: [manifests], connection: 'app', recordingsDir: recordings });
  });

  after(async () => {
    await (sidecar as SidecarProcess | undefined)?.stop();
    await (postgres as Postgres | undefined)?.stop();
    rmSync(recordings, { recursive: true, force: true });
    rmSync(manifests, { recursive: true, force: true });
  });

  /** raw values: strings in text format, Buffers in binary */
  const raw = { getTypeParser: () => (v: string | Buffer): string | Buffer => v };
  const client = async (): Promise<pg.Client> => {
    const c = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'agent', database: 'app', password: 'x', types: raw as unknown as pg.CustomTypesConfig });
    await c.connect();
    return c;
  };
  const bodies = async (c: pg.Client, config: pg.QueryConfig): Promise<string[]> =>
    (await c.query<[unknown, string | Buffer]>(Object.assign({ rowMode: 'array' }, config))).rows.map((r) => String(r[1]));

  test('result values with glued secrets are masked, simple and extended protocol, text and binary', async () => {
    const c = await client();
    try {
      const simple = await bodies(c, { text: 'SELECT id, body FROM notes ORDER BY id' });
      const extended = await bodies(c, { text: 'SELECT id, body FROM notes WHERE id >= $1 ORDER BY id', values: [0] });
      const binaryQuery: pg.QueryConfig = Object.assign({ text: 'SELECT id, body FROM notes ORDER BY id' }, { binary: true, queryMode: 'extended' });
      const binary = await bodies(c, binaryQuery);
      assert.equal(simple.length, GLUED.length);
      for (const [i, [glued, secret]] of GLUED.entries()) {
        for (const [how, body] of [['simple', simple[i]], ['extended', extended[i]], ['binary', binary[i]]] as const) {
          assert.ok(body !== undefined && !body.includes(secret), `${how}: ${glued} came back as ${String(body)}`);
          assert.ok(body.includes('[REDACTED]'), `${how}: ${body}`);
        }
      }
    } finally {
      await c.end();
    }
  });

  test('a glued secret in the statement text is masked in the recording; the rest of the statement stays', async () => {
    const c = await client();
    try {
      const literals = GLUED.map(([text]) => `'${text}'`).join(', ');
      const r = await c.query<Record<string, string>>(`SELECT 'glued-marker', ${literals}`);
      const values = Object.values(r.rows[0] ?? {});
      for (const [, secret] of GLUED) assert.ok(!values.some((v) => v.includes(secret)), `${secret} in ${JSON.stringify(values)}`);
    } finally {
      await c.end();
    }
    await waitFor(() => recordingsOf(recordings, 'app').includes('glued-marker'), 'the recording of the statement');
    const text = recordingsOf(recordings, 'app');
    for (const [, secret] of GLUED) assert.ok(!text.includes(JSON.stringify(secret).slice(1, -1)), `${secret} is in the recording`);
    assert.match(text, /SELECT 'glued-marker', 'x\[REDACTED\]', 'card\[REDACTED\]end'/);
  });
});

describe('SSH: glued secrets in output written in pieces', () => {
  let sshd: Sshd;
  let sidecar: SidecarProcess;
  let recordings: string;
  let manifests: string;

  before(async () => {
    sshd = await startSshd();
    recordings = mkdtempSync(join(tmpdir(), 'airlock-glued-ssh-rec-'));
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'box-credentials', namespace: 'agents' }, stringData: { username: sshd.user, privateKey: sshd.clientKey } };
    const conn = {
      apiVersion: 'airlock.dev/v1alpha1',
      kind: 'AgentConnection',
      metadata: { name: 'box', namespace: 'agents', labels: { env: 'test' } },
      spec: {
        protocol: 'ssh',
        target: { host: sshd.host, port: sshd.port },
        credentialsSecretRef: { name: 'box-credentials' },
        ssh: { hostKeyFingerprints: [sshd.hostKeyFingerprint] },
        agents: { serviceAccounts: ['ops-bot'] },
        defaultAction: 'Allow',
      },
    };
    manifests = manifestDir({ 'box.yaml': `${[secret, conn].map((m) => JSON.stringify(m)).join('\n---\n')}\n---${MASKING}` });
    sidecar = await startSidecar({ manifests: [manifests], connection: 'box', recordingsDir: recordings });
  });

  after(async () => {
    await (sidecar as SidecarProcess | undefined)?.stop();
    await (sshd as Sshd | undefined)?.stop();
    rmSync(recordings, { recursive: true, force: true });
    rmSync(manifests, { recursive: true, force: true });
  });

  test('a glued secret split across output writes at every offset is masked, in the output and the recording', async () => {
    for (const [glued, secret] of GLUED.slice(0, 4)) {
      // one command per split offset: the two halves leave sshd in separate writes (a pause between)
      const parts = Array.from({ length: glued.length - 1 }, (_, k) => `printf '%s' '${glued.slice(0, k + 1)}'; sleep 0.02; printf '%s\\n' '${glued.slice(k + 1)}'`);
      const r = await sshClient(sidecar.port, [parts.join('; ')], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, glued.length - 1, r.stdout);
      for (const line of lines) {
        assert.ok(!line.includes(secret), `${glued}: ${line}`);
        assert.ok(line.includes('[REDACTED]'), line);
      }
    }
    const text = recordingsOf(recordings, 'box');
    for (const [, secret] of GLUED.slice(0, 4)) assert.ok(!text.includes(secret), `${secret} is in the recording`);
  });

  test('glued secrets in one line longer than the held limit (64 KiB), without blanks, are masked', async () => {
    // 9,000 q's glued to each item (the stream masker emits such a line in windows while it streams)
    const items = GLUED.map(([glued]) => `'${glued}'`).join(' ');
    const cmd = `for s in ${items}; do head -c 9000 /dev/zero | tr '\\0' q; printf ';%s;' "$s"; done; echo`;
    const r = await sshClient(sidecar.port, [cmd], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 64 * 1024, String(r.stdout.length));
    for (const [glued, secret] of GLUED) assert.ok(!r.stdout.includes(secret), `${glued} leaked`);
    assert.equal(r.stdout.split('[REDACTED]').length - 1, GLUED.length, r.stdout.replace(/q{20,}/g, 'q…'));
  });
});
