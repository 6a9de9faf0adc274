/**
 * The PostgreSQL sidecar against a real PostgreSQL, with psql, node-postgres, pgbench and a raw
 * protocol client as agents. The sidecar runs as `airlock sidecar` (local mode), a real process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type Postgres } from '../src/postgres.ts';
import { AIRLOCK_BIN, manifestDir, startSidecar, type SidecarProcess } from '../src/sidecar.ts';
import { RawClient, serialize } from '../src/pgwire.ts';
import { recordingText } from '@airlock/api';

const CARD = '4111111111111111';
const CARD2 = '5500000000000004';

function manifests(port: number, extra: { defaultAction?: string; tls?: string; ca?: string; password?: string } = {}): string {
  return `
apiVersion: v1
kind: Secret
metadata: { name: orders-credentials, namespace: agents }
stringData: { username: agent, password: ${extra.password ?? 'agent-secret-pw'} }
${extra.ca === undefined ? '' : `---
apiVersion: v1
kind: Secret
metadata: { name: orders-ca, namespace: agents }
stringData:
  ca.crt: |
${extra.ca.split('\n').map((l) => `    ${l}`).join('\n')}
`}---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: orders, namespace: agents, labels: { env: prod, data: pii } }
spec:
  protocol: postgres
  target:
    host: 127.0.0.1
    port: ${port}
    database: orders
    tls: { mode: ${extra.tls ?? 'disable'}${extra.ca === undefined ? '' : ', caSecretRef: { name: orders-ca }'}${extra.tls === 'verify-full' ? ', serverName: localhost' : ''} }
  credentialsSecretRef: { name: orders-credentials }
  agents: { podSelector: {} }
  defaultAction: ${extra.defaultAction ?? 'Allow'}
  recording: { failurePolicy: Closed }
---
apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: pii, namespace: agents }
spec:
  connectionSelector: { matchLabels: { data: pii } }
  rules:
    - name: cards
      match: { detectors: [credit_card] }
      action: { type: partial, keepLast: 4 }
    - name: emails
      match: { columns: ["*.customers.email"] }
      action: { type: hash }
    - name: ssn-column
      match: { columns: ["*.customers.ssn"] }
      action: { type: "null" }
---
apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: guardrails, namespace: agents }
spec:
  connectionSelector: { matchLabels: { env: prod } }
  rules:
    - name: never-destroy
      match: { sql: { classes: [destructive, privilege] } }
      action: Block
      message: destructive statements are not allowed on production
    - name: payments-need-review
      match: { sql: { classes: [write], tables: ["public.payments"] } }
      action: RequireApproval
      approval: { approvers: { users: [alice], groups: [] }, required: 1, timeout: 30s }
`;
}

let postgres: Postgres;
let sidecar: SidecarProcess;
let recordings: string;
let stateDir: string;

function pgClient(config: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: sidecar.port, user: 'anyone', password: 'not-checked', database: 'whatever', ...config });
}

function psql(args: readonly string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('psql', ['-X', '-h', '127.0.0.1', '-p', String(sidecar.port), '-U', 'agent', '-d', 'orders', ...args], {
    encoding: 'utf8',
    input,
    env: { ...process.env, PGPASSWORD: 'whatever', PGCONNECT_TIMEOUT: '10' },
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function airlock(args: readonly string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(AIRLOCK_BIN, args, { encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function recordingFiles(): string[] {
  const dir = join(recordings, 'orders');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => join(dir, f)).sort() : [];
}

/** The records of a recording, also one still being written (it ends with reserved zero bytes) */
function records(path: string): Record<string, unknown>[] {
  return recordingText(readFileSync(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The recording whose session ran `text` */
function recordingWith(text: string): string {
  const f = recordingFiles().find((p) => readFileSync(p, 'utf8').includes(text));
  assert.ok(f !== undefined, `no recording contains ${text}`);
  return f;
}

/** The recording that ran `text`, once its session has ended (the sidecar notices the client left just after it exits) */
async function endedRecordingWith(text: string): Promise<string> {
  return waitFor(() => {
    const f = recordingFiles().find((p) => readFileSync(p, 'utf8').includes(text));
    return f !== undefined && readFileSync(f, 'utf8').includes('"type":"session_end"') ? f : undefined;
  }, `the ended recording with ${text}`);
}

async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pendingApproval(): string | undefined {
  const r = airlock(['approvals', 'list', '--state-dir', stateDir, '-o', 'json']);
  const list = JSON.parse(r.stdout || '[]') as { name: string }[];
  return list[0]?.name;
}

before(async () => {
  postgres = await startPostgres();
  const setup = createAgent(postgres);
  assert.equal(setup.code, 0, setup.stderr);
  const schema = postgres.psql(
    `SET ROLE agent;
     CREATE TABLE customers (id int PRIMARY KEY, name text, email text UNIQUE, ssn text, card text, card_number bigint, note jsonb);
     INSERT INTO customers VALUES
       (1, 'Alice', 'alice@example.com', '078-05-1120', '${CARD}', ${CARD}, '{"card": "${CARD}"}'),
       (2, 'Bob', 'bob@example.org', '219-09-9999', '${CARD2}', 42, '{}');
     CREATE TABLE payments (id serial PRIMARY KEY, amount int);
     CREATE TABLE events (id serial PRIMARY KEY, body text);`,
    { database: 'orders' },
  );
  assert.equal(schema.code, 0, schema.stderr);
  recordings = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
  stateDir = mkdtempSync(join(tmpdir(), 'airlock-state-'));
  const dir = manifestDir({ 'orders.yaml': manifests(postgres.port) });
  sidecar = await startSidecar({ manifests: [dir], connection: 'orders', recordingsDir: recordings, stateDir });
});

after(async () => {
  await (sidecar as SidecarProcess | undefined)?.stop();
  await (postgres as Postgres | undefined)?.stop();
});

function createAgent(server: Postgres, encryption = 'scram-sha-256'): { code: number; stderr: string } {
  const role = server.psql(`SET password_encryption = '${encryption}'; CREATE ROLE agent LOGIN PASSWORD 'agent-secret-pw'`);
  if (role.code !== 0) return role;
  return server.psql('CREATE DATABASE orders OWNER agent');
}

describe('psql', () => {
  test('masks by column and by detector; a blocked statement leaves the session usable', () => {
    const r = psql(['-At', '-F', '|'], 'SELECT id, email, ssn, card FROM customers ORDER BY id;\nDROP TABLE customers;\nSELECT count(*) FROM customers;\n');
    const out = r.stdout + r.stderr;
    for (const secret of ['alice@example.com', 'bob@example.org', '078-05-1120', CARD, CARD2]) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
    const rows = r.stdout.trim().split('\n');
    assert.match(rows[0] ?? '', /^1\|hmac:[0-9a-f]{16}\|\|\*{12}1111$/);
    assert.match(r.stderr, /ERROR: {2}airlock: destructive statements are not allowed on production/);
    assert.equal(rows.at(-1), '2', 'the statement after the blocked one ran in the same session');
    const check = postgres.psql('SELECT count(*) FROM customers', { database: 'orders' });
    assert.equal(check.stdout.trim(), '2');
  });

  test('the agent never needs the password and the listener ignores the one it sends', () => {
    const r = psql(['-At', '-c', 'SELECT current_user'], undefined);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'agent');
  });

  test('a blocked statement inside a transaction aborts it like any error', () => {
    const r = psql(['-At'], "BEGIN;\nINSERT INTO events(body) VALUES ('in-tx');\nTRUNCATE customers;\nCOMMIT;\nSELECT count(*) FROM events WHERE body = 'in-tx';\n");
    assert.match(r.stderr, /airlock: destructive statements/);
    assert.equal(r.stdout.trim().split('\n').at(-1), '0');
  });

  test('COPY out is masked; COPY in works', () => {
    const out = psql(['-At', '-c', 'COPY (SELECT id, card FROM customers ORDER BY id) TO STDOUT']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, '1\t************1111\n2\t************0004\n');
    const input = psql(['-At', '-c', 'COPY events(body) FROM STDIN'], 'copied-1\ncopied-2\n\\.\n');
    assert.equal(input.code, 0, input.stderr);
    assert.equal(postgres.psql("SELECT count(*) FROM events WHERE body LIKE 'copied-%'", { database: 'orders' }).stdout.trim(), '2');
  });

  test('error messages that quote values are masked', () => {
    const r = psql(['-At', '-c', `INSERT INTO customers(id, email) VALUES (3, 'alice@example.com')`]);
    assert.notEqual(r.code, 0);
    // the unique violation's detail quotes the key; the email column rule does not apply to text,
    // but a card number in a key would be caught by the detector
    const r2 = psql(['-At', '-c', `SELECT ('${CARD}')::int`]);
    // the server's message quotes the value; psql's own "LINE 1:" echo of the agent's query is not from the server
    const serverLine = r2.stderr.split('\n').find((l) => l.startsWith('ERROR:')) ?? '';
    assert.match(serverLine, /value "\*{12}1111" is out of range/);
  });
});

describe('node-postgres', () => {
  test('extended protocol with parameters, text and binary results, named statements re-executed', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const r = await c.query('SELECT id, email, card, card_number, note FROM customers WHERE id = $1', [1]);
      const row = r.rows[0] as { email: string; card: string; card_number: string | null; note: { card: string } };
      assert.match(row.email, /^hmac:/);
      assert.equal(row.card, '************1111');
      assert.equal(row.card_number, null, 'a masked value of a non-text type becomes NULL');
      assert.equal(row.note.card, '************1111', 'jsonb stays valid JSON');
      for (let i = 0; i < 5; i++) {
        const named = await c.query({ name: 'by-id', text: 'SELECT email, card FROM customers WHERE id = $1', values: [2] });
        assert.match((named.rows[0] as { email: string }).email, /^hmac:/);
        assert.equal((named.rows[0] as { card: string }).card, '************0004');
      }
      // node-postgres asks for binary results with `binary` on the query (missing from its type definitions)
      const binaryQuery: pg.QueryConfig = Object.assign({ text: 'SELECT card, id, email FROM customers WHERE id = 1' }, { binary: true });
      const bin = await c.query(binaryQuery);
      const b = bin.rows[0] as { card: string; email: string };
      assert.equal(b.card, '************1111');
      assert.match(b.email, /^hmac:/);
      const ok = await c.query('SELECT $1::text AS v', ['plain text']);
      assert.equal((ok.rows[0] as { v: string }).v, 'plain text');
    } finally {
      await c.end();
    }
  });

  test('a blocked statement is 42501 and the connection goes on', async () => {
    const c = pgClient();
    await c.connect();
    try {
      await assert.rejects(c.query('DELETE FROM customers'), (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /destructive statements are not allowed/);
        return true;
      });
      await assert.rejects(c.query('GRANT ALL ON customers TO public'), { code: '42501' });
      const r = await c.query('SELECT count(*)::int AS n FROM customers');
      assert.equal((r.rows[0] as { n: number }).n, 2);
    } finally {
      await c.end();
    }
  });

  test('LISTEN/NOTIFY and notices pass through', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const got = new Promise<string>((resolve) => {
        c.on('notification', (n) => {
          resolve(n.payload ?? '');
        });
      });
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.query('LISTEN airlock_test');
      const other = pgClient();
      await other.connect();
      await other.query("SELECT pg_notify('airlock_test', 'hello')");
      await other.end();
      assert.equal(await got, 'hello');
      await c.query('SET client_min_messages = notice');
      await c.query('CREATE TEMP TABLE IF NOT EXISTS t1 (x int)');
      await c.query('CREATE TEMP TABLE IF NOT EXISTS t1 (x int)');
      assert.ok(notices.some((n) => n.includes('already exists')), JSON.stringify(notices));
    } finally {
      await c.end();
    }
  });

  test('large rows and many rows', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const big = await c.query("SELECT repeat('x', 20 * 1024 * 1024) AS v, 'mail me: carol@example.com card " + CARD + "' AS w");
      assert.equal((big.rows[0] as { v: string }).v.length, 20 * 1024 * 1024);
      assert.equal((big.rows[0] as { w: string }).w, 'mail me: carol@example.com card ************1111');
      const many = await c.query('SELECT g, md5(g::text) FROM generate_series(1, 200000) g');
      assert.equal(many.rowCount, 200000);
    } finally {
      await c.end();
    }
  });

  test('a long-running query is cancelled through the sidecar', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const started = Date.now();
      const running = c.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 500));
      const info = c as unknown as { processID: number; secretKey: number };
      const cancel = await RawClient.connect(sidecar.port, { startup: false });
      const msg = Buffer.alloc(16);
      msg.writeInt32BE(16, 0);
      msg.writeInt32BE(80877102, 4);
      msg.writeInt32BE(info.processID, 8);
      msg.writeInt32BE(info.secretKey, 12);
      cancel.send(msg);
      await assert.rejects(running, { code: '57014' });
      assert.ok(Date.now() - started < 10_000);
      const after = await c.query('SELECT 1 AS one');
      assert.equal((after.rows[0] as { one: number }).one, 1);
    } finally {
      await c.end();
    }
  });
});

describe('approvals', () => {
  test('a held write runs when approved, and the approval is recorded', async () => {
    const c = pgClient();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(`${n.message} ${n.hint ?? ''}`));
    await c.connect();
    try {
      const running = c.query('INSERT INTO payments(amount) VALUES (100)');
      const name = await waitFor(pendingApproval, 'a pending approval');
      const bad = airlock(['approvals', 'approve', name, '--state-dir', stateDir, '--as', 'mallory']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /mallory is not an approver/);
      const ok = airlock(['approvals', 'approve', name, '--state-dir', stateDir, '--as', 'alice', '--reason', 'expected payment']);
      assert.equal(ok.code, 0, ok.stderr);
      const r = await running;
      assert.equal(r.rowCount, 1);
      assert.ok(notices.some((n) => n.includes('waiting for approval') && n.includes(`airlock approvals approve ${name}`)), JSON.stringify(notices));
      const rec = records(recordingWith('INSERT INTO payments(amount) VALUES (100)'));
      const approval = rec.find((x) => x['type'] === 'approval' && x['phase'] === 'Approved');
      assert.deepEqual(approval?.['reviewers'], ['alice']);
      assert.equal(approval['reason'], 'expected payment');
    } finally {
      await c.end();
    }
  });

  test('a denied write fails with 42501 and the session goes on', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const running = c.query('INSERT INTO payments(amount) VALUES (666)');
      const name = await waitFor(pendingApproval, 'a pending approval');
      const r = airlock(['approvals', 'deny', name, '--state-dir', stateDir, '--as', 'alice', '--reason', 'not today']);
      assert.equal(r.code, 0, r.stderr);
      await assert.rejects(running, (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /denied by alice: not today/);
        return true;
      });
      assert.equal(postgres.psql('SELECT count(*) FROM payments WHERE amount = 666', { database: 'orders' }).stdout.trim(), '0');
      const after = await c.query('SELECT 1 AS one');
      assert.equal(after.rowCount, 1);
    } finally {
      await c.end();
    }
  });

  test('a prepared statement held at Parse, approved, then executed', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const running = c.query({ name: 'pay', text: 'INSERT INTO payments(amount) VALUES ($1)', values: [7] });
      const name = await waitFor(pendingApproval, 'a pending approval');
      assert.equal(airlock(['approvals', 'approve', name, '--state-dir', stateDir, '--as', 'alice']).code, 0);
      assert.equal((await running).rowCount, 1);
      // the approved prepared statement runs again without a new approval
      assert.equal((await c.query({ name: 'pay', text: 'INSERT INTO payments(amount) VALUES ($1)', values: [8] })).rowCount, 1);
    } finally {
      await c.end();
    }
  });
  test('a query of several statements is held as each statement with its classes (secrets hidden, nothing else); denied, none runs', async () => {
    const c = pgClient();
    await c.connect();
    try {
      const sql = `INSERT INTO payments(amount) VALUES (4242);\nDELETE FROM payments WHERE amount = 4242 AND '${CARD}' <> ''`;
      const running = c.query(sql);
      const name = await waitFor(pendingApproval, 'a pending approval');
      const file = JSON.parse(readFileSync(join(stateDir, 'approvals', `${name}.json`), 'utf8')) as { spec: { command: string; statements: unknown } };
      assert.equal(file.spec.command, "1/2 [write] INSERT INTO payments(amount) VALUES (4242)\n2/2 [write] DELETE FROM payments WHERE amount = 4242 AND '************1111' <> ''");
      assert.deepEqual(file.spec.statements, [
        { text: 'INSERT INTO payments(amount) VALUES (4242)', classes: ['write'] },
        { text: "DELETE FROM payments WHERE amount = 4242 AND '************1111' <> ''", classes: ['write'] },
      ]);
      assert.equal(airlock(['approvals', 'deny', name, '--state-dir', stateDir, '--as', 'alice']).code, 0);
      await assert.rejects(running, (err: Error & { code?: string }) => err.code === '42501');
      assert.equal(postgres.psql('SELECT count(*) FROM payments WHERE amount = 4242', { database: 'orders' }).stdout.trim(), '0');
    } finally {
      await c.end();
    }
    const rec = records(await endedRecordingWith('VALUES (4242)'));
    const st = rec.find((r) => r['type'] === 'statement' && String(r['text']).includes('VALUES (4242)'));
    assert.deepEqual(st?.['statements'], [
      { text: 'INSERT INTO payments(amount) VALUES (4242)', classes: ['write'] },
      { text: "DELETE FROM payments WHERE amount = 4242 AND '************1111' <> ''", classes: ['write'] },
    ]);
    assert.equal(st['text'], "INSERT INTO payments(amount) VALUES (4242);\nDELETE FROM payments WHERE amount = 4242 AND '************1111' <> ''", 'the whole text too, only the card hidden');
  });
});

describe('extended protocol pipelines (raw)', () => {
  test('a blocked Parse inside a batch: error, discard until Sync, the batch rolled back, session usable', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      const from = c.messages.length;
      c.send(
        serialize.parse({ text: "INSERT INTO events(body) VALUES ('batch-1')" }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.parse({ text: 'DELETE FROM events' }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
        serialize.query('SELECT 42'),
      );
      const msgs = await c.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual(
        msgs.map((m) => m.name),
        ['parseComplete', 'bindComplete', 'commandComplete', 'error', 'readyForQuery'],
      );
      const err = msgs[3] as unknown as { code: string; message: string };
      assert.equal(err.code, '42501');
      assert.match(err.message, /destructive/);
      const next = await c.until((m) => m.name === 'readyForQuery', from + msgs.length);
      assert.ok(next.some((m) => m.name === 'dataRow'));
      assert.equal(postgres.psql("SELECT count(*) FROM events WHERE body = 'batch-1'", { database: 'orders' }).stdout.trim(), '0', 'the implicit transaction was rolled back');
    } finally {
      c.end();
    }
  });

  test('pipelined batches, named statements and portals, Execute without Describe is still masked', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      const from = c.messages.length;
      c.send(serialize.parse({ name: 's1', text: 'SELECT email, card FROM customers WHERE id = $1' }), serialize.sync());
      for (let i = 0; i < 20; i++) {
        c.send(serialize.bind({ statement: 's1', portal: 'p', values: ['1'] }), serialize.execute({ portal: 'p' }), serialize.close({ type: 'P', name: 'p' }), serialize.sync());
      }
      c.send(serialize.flush());
      const got: unknown[] = [];
      let pos = from;
      for (let i = 0; i < 21; i++) {
        const batch = await c.until((m) => m.name === 'readyForQuery', pos).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}: ${JSON.stringify(c.messages.filter((m) => m.name === 'error'))}`);
        });
        pos += batch.length;
        got.push(...batch);
      }
      const rows = got.filter((m) => (m as { name: string }).name === 'dataRow') as unknown as { fields: (string | null)[] }[];
      assert.equal(rows.length, 20);
      for (const r of rows) {
        assert.match(r.fields[0] ?? '', /^hmac:/);
        assert.equal(r.fields[1], '************1111');
      }
      assert.ok(!got.some((m) => (m as { name: string }).name === 'rowDescription'), 'the proxy’s own Describe is not shown to the agent');
    } finally {
      c.end();
    }
  });

  test('portal suspension with a row limit', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      const from = c.messages.length;
      c.send(serialize.query('BEGIN'));
      await c.until((m) => m.name === 'readyForQuery', from);
      const at = c.messages.length;
      c.send(serialize.parse({ text: 'SELECT card FROM customers ORDER BY id' }), serialize.bind({ portal: 'cur' }), serialize.describe({ type: 'P', name: 'cur' }), serialize.execute({ portal: 'cur', rows: 1 }), serialize.execute({ portal: 'cur', rows: 1 }), serialize.sync());
      const msgs = await c.until((m) => m.name === 'readyForQuery', at);
      assert.deepEqual(
        msgs.map((m) => m.name),
        ['parseComplete', 'bindComplete', 'rowDescription', 'dataRow', 'portalSuspended', 'dataRow', 'portalSuspended', 'readyForQuery'],
      );
      assert.equal((msgs[5] as unknown as { fields: string[] }).fields[0], '************0004');
    } finally {
      c.end();
    }
  });
});

describe('recordings', () => {
  test('every session is recorded, verifies, and tampering is detected', async () => {
    const r = psql(['-At', '-c', "SELECT 'recorded-marker'"]);
    assert.equal(r.code, 0, r.stderr);
    const file = await endedRecordingWith('recorded-marker');
    const rec = records(file);
    assert.deepEqual(
      rec.map((x) => x['type']),
      ['session_start', 'statement', 'result', 'session_end'],
    );
    assert.equal(rec[1]?.['decision'], 'Allow');
    assert.equal(rec[2]?.['tag'], 'SELECT 1');
    const ok = airlock(['sessions', 'verify', file]);
    assert.equal(ok.code, 0, ok.stderr);
    const show = airlock(['sessions', 'show', file]);
    assert.match(show.stdout, /recorded-marker/);
    const tampered = join(mkdtempSync(join(tmpdir(), 'airlock-tamper-')), 'x.jsonl');
    writeFileSync(tampered, readFileSync(file, 'utf8').replace('recorded-marker', 'innocent-marker'));
    const bad = airlock(['sessions', 'verify', tampered]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /record 2: hash does not match/);
  });

  test('recorded statement text is masked', async () => {
    psql(['-At', '-c', `SELECT 'card ${CARD} in text' AS marker_masked_text`]);
    const file = await endedRecordingWith('marker_masked_text');
    assert.ok(!readFileSync(file, 'utf8').includes(CARD));
  });

  test('pgbench runs through the sidecar (simple and prepared) and every transaction is recorded', async () => {
    const env = { ...process.env, PGPASSWORD: 'x' };
    // pgbench -i drops and creates tables: run directly (the policy blocks DROP), then benchmark through the sidecar
    const init = spawnSync('pgbench', ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(postgres.port), '-U', 'agent', 'orders'], { encoding: 'utf8', env: { ...env, PGPASSWORD: 'agent-secret-pw' } });
    assert.match(init.stderr + init.stdout, /done/, init.stderr);
    const before = new Set(recordingFiles());
    for (const mode of ['simple', 'prepared']) {
      const run = spawnSync('pgbench', ['-S', '-t', '200', '-c', '2', '-M', mode, '-h', '127.0.0.1', '-p', String(sidecar.port), '-U', 'agent', 'orders'], { encoding: 'utf8', env });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /number of transactions actually processed: 400\/400/);
    }
    // 2 runs × 2 clients (+ pgbench's own setup connections); each recorded its SELECTs
    await waitFor(() => (recordingFiles().filter((f) => !before.has(f)).every((f) => readFileSync(f, 'utf8').includes('"type":"session_end"')) ? true : undefined), 'the pgbench sessions to end');
    const fresh = recordingFiles().filter((f) => !before.has(f)).map(records);
    const selects = fresh.flat().filter((r) => r['type'] === 'statement' && String(r['text']).includes('pgbench_accounts') && String(r['text']).startsWith('SELECT'));
    assert.ok(selects.length >= 800, `recorded ${String(selects.length)} SELECTs`);
  });
});

describe('robustness', () => {
  test('malformed, truncated and oversized messages: ErrorResponse, closed, sidecar still serving', async () => {
    // a Bind whose declared parameter count runs past the message
    const c1 = await RawClient.connect(sidecar.port);
    const bad = Buffer.from([0x42, 0, 0, 0, 10, 0, 0, 0, 0, 0x00, 0x05]);
    c1.send(bad);
    const e1 = await c1.until((m) => m.name === 'error');
    assert.equal((e1.at(-1) as unknown as { code: string }).code, '08P01');
    await c1.closedByPeer();
    // an unknown message type
    const c2 = await RawClient.connect(sidecar.port);
    c2.send(Buffer.from([0x7a, 0, 0, 0, 4]));
    await c2.until((m) => m.name === 'error');
    await c2.closedByPeer();
    // a message claiming 2 GiB
    const c3 = await RawClient.connect(sidecar.port);
    c3.send(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]));
    const e3 = await c3.until((m) => m.name === 'error');
    assert.equal((e3.at(-1) as unknown as { code: string }).code, '54000');
    await c3.closedByPeer();
    // garbage instead of a startup packet
    const c4 = await RawClient.connect(sidecar.port, { startup: false });
    c4.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await c4.closedByPeer();
    // a truncated message then the client goes away
    const c5 = await RawClient.connect(sidecar.port);
    c5.send(Buffer.from([0x51, 0, 0, 0, 100, 0x53]));
    c5.socket.destroy();
    const r = psql(['-At', '-c', 'SELECT 7']);
    assert.equal(r.stdout.trim(), '7');
    assert.equal(sidecar.child.exitCode, null);
  });

  test('a slow reader of a 10-million-row result keeps the sidecar memory bounded', async () => {
    const c = await RawClient.connect(sidecar.port);
    c.socket.pause();
    c.socket.resume();
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${String(sidecar.pid)}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    const before = rss();
    // read slowly: pause the socket and drip
    let received = 0;
    c.socket.removeAllListeners('data');
    c.socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    c.socket.pause();
    c.send(serialize.query('SELECT g, md5(g::text) FROM generate_series(1, 10000000) g'));
    let peak = 0;
    for (let i = 0; i < 30; i++) {
      c.socket.resume();
      await new Promise((r) => setTimeout(r, 5));
      c.socket.pause();
      await new Promise((r) => setTimeout(r, 95));
      peak = Math.max(peak, rss());
    }
    assert.ok(received > 0);
    assert.ok(peak - before < 48 * 1024 * 1024, `sidecar RSS grew by ${String(peak - before)} bytes while the client was slow`);
    c.socket.destroy();
  });

  test('a result read in irregular pauses arrives intact, row by row (reads reuse one buffer: carries and pauses)', async () => {
    const c = await RawClient.connect(sidecar.port);
    const rows = 100_000;
    // rows produced in bursts of a few KiB (a short sleep every 40 rows, long rows now and then):
    // the sidecar reads small chunks, and writes that a paused client cannot take stay queued
    // the digest's digits become letters: a Luhn-valid run of digits glued to hex letters is masked
    // as a card (policy/detectors), and this test is about the relay, not the masker
    c.send(serialize.query(`SELECT g, translate(md5(g::text), '0123456789', 'ghijklmnop'), repeat(chr(65 + g % 26), CASE WHEN g % 1000 = 0 THEN 30000 ELSE g % 40 END), CASE WHEN g % 40 = 0 THEN pg_sleep(0.0001)::text END FROM generate_series(1, ${String(rows)}) g`));
    // drip: the sidecar's writes to this client queue again and again, and the upstream pauses
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % 20;
    const from = c.messages.length;
    for (let i = 0; i < 400 && !c.messages.slice(from).some((m) => m.name === 'readyForQuery'); i++) {
      c.socket.pause();
      await new Promise((r) => setTimeout(r, next()));
      c.socket.resume();
      await new Promise((r) => setTimeout(r, next() / 4));
    }
    const got = await c.until((m) => m.name === 'readyForQuery', from, 120_000);
    const data = got.filter((m) => m.name === 'dataRow') as unknown as { fields: (string | null)[] }[];
    assert.equal(data.length, rows);
    const { createHash } = await import('node:crypto');
    data.forEach((r, i) => {
      const g = i + 1;
      assert.equal(r.fields[0], String(g));
      assert.equal(r.fields[1], createHash('md5').update(String(g)).digest('hex').replace(/[0-9]/g, (d) => 'ghijklmnop'.charAt(Number(d))));
      assert.equal(r.fields[2], String.fromCharCode(65 + (g % 26)).repeat(g % 1000 === 0 ? 30000 : g % 40));
    });
    c.end();
  });

  test('an upstream restart mid-session gives a clean error, and new sessions work after', async () => {
    const c = pgClient();
    const errors: string[] = [];
    c.on('error', (err) => errors.push(err.message));
    await c.connect();
    await c.query('SELECT 1');
    await postgres.restart();
    await waitFor(() => (errors.length > 0 ? true : undefined), 'the client to see the error');
    assert.match(errors[0] ?? '', /terminating connection due to administrator command/);
    await assert.rejects(c.query('SELECT 1'));
    await c.end().catch(() => undefined);
    // a raw client idle in a session during the restart gets an ErrorResponse and a closed socket
    const raw = await RawClient.connect(sidecar.port);
    await postgres.restart();
    await raw.until((m) => m.name === 'error');
    await raw.closedByPeer();
    const r = psql(['-At', '-c', 'SELECT 8']);
    assert.equal(r.stdout.trim(), '8', r.stderr);
  });
});

describe('upstream login', () => {
  test('a wrong upstream password gives a clear error that does not contain the secret', async () => {
    const dir = manifestDir({ 'orders.yaml': manifests(postgres.port, { password: 'wrong-secret-pw' }) });
    const rec = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
    const s = await startSidecar({ manifests: [dir], connection: 'orders', recordingsDir: rec, stateDir });
    try {
      const r = spawnSync('psql', ['-X', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'agent', '-d', 'orders', '-c', 'SELECT 1'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'x' } });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /upstream login as "agent" to 127\.0\.0\.1:\d+\/orders failed: password authentication failed/);
      assert.ok(!r.stderr.includes('wrong-secret-pw'));
      assert.ok(!s.stderr().includes('wrong-secret-pw'));
    } finally {
      await s.stop();
    }
  });

  for (const method of ['md5', 'password'] as const) {
    test(`${method} authentication upstream`, async () => {
      const other = await startPostgres({ authMethod: method });
      try {
        assert.equal(createAgent(other, method === 'md5' ? 'md5' : 'scram-sha-256').code, 0);
        const dir = manifestDir({ 'orders.yaml': manifests(other.port) });
        const rec = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
        const s = await startSidecar({ manifests: [dir], connection: 'orders', recordingsDir: rec, stateDir });
        try {
          const r = spawnSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'agent', '-d', 'orders', '-c', 'SELECT current_user'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'x' } });
          assert.equal(r.stdout.trim(), 'agent', r.stderr);
        } finally {
          await s.stop();
        }
      } finally {
        await other.stop();
      }
    });
  }

  test('TLS upstream: require, verify-full with the CA, and verify-full with the wrong CA', async () => {
    const tlsPg = await startPostgres({ ssl: true });
    try {
      assert.equal(createAgent(tlsPg).code, 0);
      const ca = tlsPg.caCert ?? '';
      const cases: { tls: string; ca?: string; ok: boolean }[] = [
        { tls: 'require', ok: true },
        { tls: 'verify-full', ca, ok: true },
        { tls: 'verify-full', ca: postgres.caCert ?? (await otherCa()), ok: false },
      ];
      for (const k of cases) {
        const dir = manifestDir({ 'orders.yaml': manifests(tlsPg.port, k) });
        const rec = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
        const s = await startSidecar({ manifests: [dir], connection: 'orders', recordingsDir: rec, stateDir });
        try {
          const r = spawnSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'agent', '-d', 'orders', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'], { encoding: 'utf8', env: { ...process.env, PGPASSWORD: 'x' } });
          if (k.ok) assert.equal(r.stdout.trim(), 't', `${k.tls}: ${r.stderr}`);
          else assert.match(r.stderr, /TLS to 127\.0\.0\.1:\d+\/orders failed \(verify-full\)/);
        } finally {
          await s.stop();
        }
      }
    } finally {
      await tlsPg.stop();
    }
  });
});

async function otherCa(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-ca-'));
  await new Promise<void>((resolve, reject) => {
    const p = spawn('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=unrelated-ca', '-keyout', join(dir, 'k'), '-out', join(dir, 'c')], { stdio: 'ignore' });
    p.once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error('openssl failed'));
    });
  });
  return readFileSync(join(dir, 'c'), 'utf8');
}

describe('fail closed (the proxy in-process, real PostgreSQL)', () => {
  async function inProcess(opts: { bundle: boolean; stateDir?: string }): Promise<{ port: number; close: () => Promise<void>; recordings: string }> {
    const { parseManifests } = await import('@airlock/api');
    const { compileBundle, loadSqlParser } = await import('@airlock/policy');
    const { LocalApprovals, resolveUpstream, silentLogger, startPgProxy } = await import('@airlock/sidecar');
    await loadSqlParser();
    const parsed = parseManifests('inline.yaml', manifests(postgres.port));
    const bundle = compileBundle(parsed.manifests, { connection: 'orders' });
    const rec = mkdtempSync(join(tmpdir(), 'airlock-rec-'));
    const proxy = await startPgProxy({
      bundle: opts.bundle ? bundle : undefined,
      upstream: resolveUpstream(parsed.manifests, 'orders', 'agents'),
      listen: { host: '127.0.0.1', port: 0 },
      recordingsDir: rec,
      approvals: new LocalApprovals({ stateDir: opts.stateDir ?? stateDir }),
      log: silentLogger(),
    });
    return { port: proxy.port, close: () => proxy.close(), recordings: rec };
  }

  test('no policy bundle: every statement is refused with 42501', async () => {
    const p = await inProcess({ bundle: false });
    try {
      const c = pgClient({ port: p.port });
      await c.connect();
      await assert.rejects(c.query('SELECT 1'), (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /no policy is loaded/);
        return true;
      });
      await c.end();
    } finally {
      await p.close();
    }
  });

  test('approval backend unavailable: the held statement is refused, not forwarded', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'airlock-x-')), 'not-a-dir');
    writeFileSync(file, '');
    const p = await inProcess({ bundle: true, stateDir: file });
    try {
      const c = pgClient({ port: p.port });
      await c.connect();
      await assert.rejects(c.query('INSERT INTO payments(amount) VALUES (999)'), (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /cannot create the approval request/);
        return true;
      });
      assert.equal(postgres.psql('SELECT count(*) FROM payments WHERE amount = 999', { database: 'orders' }).stdout.trim(), '0');
      assert.equal(((await c.query('SELECT 1 AS x')).rows[0] as { x: number }).x, 1);
      await c.end();
    } finally {
      await p.close();
    }
  });

  test('recorder failure mid-session (failurePolicy Closed): refused with 42501, nothing forwarded', async () => {
    const p = await inProcess({ bundle: true });
    try {
      const c = pgClient({ port: p.port });
      await c.connect();
      await c.query("INSERT INTO events(body) VALUES ('before-failure')");
      // break the recording: close its file descriptor under the recorder
      const { closeSync, readdirSync: fds, readlinkSync } = await import('node:fs');
      const fd = fds('/proc/self/fd').map(Number).find((n) => {
        try {
          return readlinkSync(`/proc/self/fd/${String(n)}`).startsWith(p.recordings);
        } catch {
          return false;
        }
      });
      assert.ok(fd !== undefined, 'the recording is open');
      closeSync(fd);
      // a statement whose record needs more space than the recording has reserved (written through
      // a mapping, a record fails once the file cannot grow; with write(2), at once)
      const padding = 'x'.repeat(256 * 1024);
      await assert.rejects(c.query(`INSERT INTO events(body) VALUES ('after-failure') -- ${padding}`), (err: Error & { code?: string }) => {
        assert.equal(err.code, '42501');
        assert.match(err.message, /cannot write recording .* failurePolicy is Closed/);
        return true;
      });
      assert.equal(postgres.psql("SELECT count(*) FROM events WHERE body = 'after-failure'", { database: 'orders' }).stdout.trim(), '0');
      await c.end().catch(() => undefined);
    } finally {
      await p.close();
    }
  });
});

/** A startup packet with exactly these parameters (pg-protocol's appends client_encoding=UTF8). */
function startupPacket(params: Readonly<Record<string, string>>): Buffer {
  const body = Buffer.from(`${Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('')}\0`, 'utf8');
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(196608, 4);
  body.copy(out, 8);
  return out;
}

/** A simple Query message with exactly these bytes as its text. */
function rawQuery(text: Buffer): Buffer {
  const out = Buffer.alloc(6 + text.length);
  out.write('Q', 0, 'latin1');
  out.writeInt32BE(5 + text.length, 1);
  text.copy(out, 5);
  return out;
}

/**
 * Statement texts that are valid UTF-8 and one harmless SELECT when read as UTF-8, but whose
 * character's last byte starts a double-byte character with the backslash (0x5c) after it in
 * the named encoding: read there, the string ends early and a DROP runs. Each was checked
 * against PostgreSQL 15 (see the control test).
 */
const LEXING_ATTACKS: readonly { readonly encoding: string; readonly char: string }[] = [
  { encoding: 'SJIS', char: Buffer.from('c281', 'hex').toString('utf8') },
  { encoding: 'BIG5', char: Buffer.from('e5a5a5', 'hex').toString('utf8') },
  { encoding: 'GBK', char: Buffer.from('e0a081', 'hex').toString('utf8') },
];

function attackText(char: string, table: string): string {
  return `SELECT E'${char}\\'; DROP TABLE ${table}; --'`;
}

function tableExists(table: string): boolean {
  return postgres.psql(`SELECT to_regclass('public.${table}') IS NOT NULL`, { database: 'orders' }).stdout.trim() === 't';
}

describe('one text, one meaning: the server reads every statement as the sidecar does', () => {
  before(() => {
    const r = postgres.psql(
      `SET ROLE agent;
       CREATE TABLE victim (x int);
       CREATE TABLE control_victim (x int);
       CREATE FUNCTION public.sneaky_encoding(enc text) RETURNS text LANGUAGE sql AS $$ SELECT set_config('client_encoding', enc, false) $$;
       CREATE FUNCTION public.sneaky_strings() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$;`,
      { database: 'orders' },
    );
    assert.equal(r.code, 0, r.stderr);
  });

  test('control: read in the attack encoding, each text runs a hidden DROP on PostgreSQL itself', async () => {
    for (const a of LEXING_ATTACKS) {
      assert.equal(postgres.psql('CREATE TABLE IF NOT EXISTS control_victim (x int)', { database: 'orders' }).code, 0);
      const direct = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: postgres.user, password: postgres.password, database: 'orders' });
      await direct.connect();
      try {
        await direct.query(`SET client_encoding TO '${a.encoding}'`);
        await direct.query(attackText(a.char, 'control_victim'));
      } finally {
        await direct.end();
      }
      assert.equal(tableExists('control_victim'), false, `${a.encoding}: the attack text did not split on PostgreSQL, so the tests below prove nothing`);
    }
  });

  test('every client encoding PostgreSQL supports is accepted as UTF-8 or refused at startup with a clear error', async (t) => {
    const list = postgres.psql("SELECT pg_encoding_to_char(i) FROM generate_series(0, 100) i WHERE pg_encoding_to_char(i) <> '' ORDER BY i").stdout.trim().split('\n');
    assert.ok(list.length >= 40 && list.includes('SJIS') && list.includes('BIG5'), list.join(' '));
    const accepted = new Set(['UTF8', 'SQL_ASCII']);
    for (const encoding of [...list, 'unicode', 'utf-8', 'Utf_8']) {
      await t.test(encoding, async () => {
        const c = await RawClient.connect(sidecar.port, { startup: false });
        try {
          c.send(startupPacket({ user: 'agent', database: 'orders', client_encoding: encoding }));
          const msgs = await c.until((m) => m.name === 'readyForQuery' || m.name === 'error');
          const last = msgs.at(-1) as unknown as { name: string; code?: string; message?: string; severity?: string };
          if (accepted.has(encoding) || ['unicode', 'utf-8', 'Utf_8'].includes(encoding)) {
            assert.equal(last.name, 'readyForQuery', JSON.stringify(last));
            const reported = msgs.filter((m) => m.name === 'parameterStatus').map((m) => m as unknown as { parameterName: string; parameterValue: string });
            assert.equal(reported.find((p) => p.parameterName === 'client_encoding')?.parameterValue, 'UTF8');
            assert.equal(reported.find((p) => p.parameterName === 'standard_conforming_strings')?.parameterValue, 'on');
            const from = c.messages.length;
            c.send(serialize.query('SHOW client_encoding'));
            const rows = await c.until((m) => m.name === 'readyForQuery', from);
            const row = rows.find((m) => m.name === 'dataRow') as unknown as { fields: string[] };
            assert.deepEqual(row.fields, ['UTF8']);
          } else {
            assert.equal(last.name, 'error');
            assert.equal(last.severity, 'FATAL');
            assert.equal(last.code, '42501');
            assert.ok(last.message?.includes(`client_encoding "${encoding}" is not supported through Airlock`), last.message);
            assert.match(last.message ?? '', /connect with client_encoding=UTF8/);
            await c.closedByPeer();
          }
        } finally {
          c.socket.destroy();
        }
      });
    }
  });

  test('startup parameters that change how statements are read are refused, whatever their case or channel', async () => {
    const cases: Record<string, string>[] = [
      { CLIENT_ENCODING: 'SJIS' },
      { client_encoding: 'UTF8', Client_Encoding: 'BIG5' },
      { standard_conforming_strings: 'off' },
      { backslash_quote: 'on' },
      { options: '-c client_encoding=SJIS' },
      { options: '--standard-conforming-strings=off' },
      { role: 'postgres' },
      { search_path: '"evil' },
      { default_transaction_read_only: 'off' },
      { replication: 'database' },
    ];
    for (const params of cases) {
      const c = await RawClient.connect(sidecar.port, { startup: false });
      try {
        c.send(startupPacket({ user: 'agent', database: 'orders', ...params }));
        const msgs = await c.until((m) => m.name === 'readyForQuery' || m.name === 'error');
        const last = msgs.at(-1) as unknown as { name: string; code?: string; message?: string };
        assert.equal(last.name, 'error', `${JSON.stringify(params)} was accepted`);
        assert.equal(last.code, '42501');
        assert.match(last.message ?? '', /not supported through Airlock/);
        await c.closedByPeer();
      } finally {
        c.socket.destroy();
      }
    }
    // harmless settings pass through (and read-only only makes the session stricter)
    const ok = await RawClient.connect(sidecar.port, { startup: false });
    try {
      ok.send(startupPacket({ user: 'agent', database: 'orders', statement_timeout: '12345', default_transaction_read_only: 'on', options: ' ', search_path: 'nowhere, public' }));
      await ok.until((m) => m.name === 'readyForQuery');
      const from = ok.messages.length;
      ok.send(serialize.query('SHOW statement_timeout; SHOW default_transaction_read_only; SHOW search_path; SELECT email FROM customers ORDER BY id LIMIT 1'));
      const rows = (await ok.until((m) => m.name === 'readyForQuery', from)).filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields[0]);
      assert.equal(rows.length, 4);
      assert.deepEqual(rows.slice(0, 3), ['12345ms', 'on', 'nowhere, public']);
      assert.match(rows[3] ?? '', /^hmac:[0-9a-f]{16}$/, 'masking still finds the column through the search path');
    } finally {
      ok.end();
    }
  });

  test("the role's own defaults (client_encoding SJIS, standard strings off) do not reach the session: the attack is one SELECT", async () => {
    const set = postgres.psql("ALTER ROLE agent SET client_encoding = 'SJIS'; ALTER ROLE agent SET standard_conforming_strings = off");
    assert.equal(set.code, 0, set.stderr);
    try {
      for (const a of LEXING_ATTACKS) {
        const c = await RawClient.connect(sidecar.port);
        try {
          const from = c.messages.length;
          c.send(serialize.query(attackText(a.char, 'victim')));
          const msgs = await c.until((m) => m.name === 'readyForQuery', from);
          assert.deepEqual(msgs.map((m) => m.name), ['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery'], a.encoding);
          assert.equal(tableExists('victim'), true, `${a.encoding}: the hidden DROP ran`);
        } finally {
          c.end();
        }
      }
      const r = psql(['-At', '-c', 'SHOW client_encoding', '-c', 'SHOW standard_conforming_strings', '-c', 'RESET ALL', '-c', 'DISCARD ALL', '-c', 'SHOW client_encoding', '-c', 'SHOW standard_conforming_strings']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['UTF8', 'on', 'RESET', 'DISCARD ALL', 'UTF8', 'on']);
    } finally {
      postgres.psql('ALTER ROLE agent RESET client_encoding; ALTER ROLE agent RESET standard_conforming_strings');
    }
  });

  test('statements that change client_encoding or standard strings never run, whatever the rules, and the session goes on', async () => {
    const client = pgClient();
    await client.connect();
    try {
      for (const sql of [
        "SET client_encoding TO 'SJIS'",
        "SET NAMES 'BIG5'",
        "SET LOCAL client_encoding = 'GBK'",
        'SET standard_conforming_strings = off',
        'SET SESSION backslash_quote = on',
        'RESET client_encoding',
        "SELECT set_config('client_encoding', 'SJIS', false)",
        "SELECT set_config('CLIENT_ENCODING', 'SJIS', true)",
        "SELECT set_config(lower('CLIENT_ENCODING'), 'SJIS', false)",
        "UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
        "ALTER ROLE agent SET client_encoding = 'SJIS'",
        "ALTER DATABASE orders SET standard_conforming_strings = off",
        "CREATE FUNCTION public.f_enc() RETURNS int LANGUAGE sql SET client_encoding = 'SJIS' AS 'SELECT 1'",
        "DO $$ BEGIN NULL; END $$; SET client_encoding = 'SJIS'",
      ]) {
        await assert.rejects(client.query(sql), (err: Error & { code?: string }) => {
          assert.equal(err.code, '42501', sql);
          assert.match(err.message, /decides how the server reads statement text/, sql);
          return true;
        });
      }
      const r = await client.query('SHOW client_encoding');
      assert.deepEqual(r.rows, [{ client_encoding: 'UTF8' }]);
      assert.equal(postgres.psql("SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%encoding%' OR array_to_string(setconfig, ',') LIKE '%conforming%'").stdout.trim(), '0');
    } finally {
      await client.end();
    }
  });

  test('statement text that is not valid UTF-8 is refused (42501), the session goes on', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      const from = c.messages.length;
      // SJIS bytes of the attack: 0x95 0x5c is one character there, a lone byte and a backslash in UTF-8
      c.send(rawQuery(Buffer.concat([Buffer.from("SELECT E'", 'latin1'), Buffer.from([0x95, 0x5c]), Buffer.from("'; DROP TABLE victim; --'", 'latin1')])), serialize.query('SELECT 7'));
      const msgs = await c.until((m) => m.name === 'readyForQuery', from);
      const err = msgs[0] as unknown as { name: string; code: string; message: string };
      assert.equal(err.name, 'error');
      assert.equal(err.code, '42501');
      assert.match(err.message, /not valid UTF-8/);
      const next = await c.until((m) => m.name === 'readyForQuery', from + msgs.length);
      assert.deepEqual((next.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['7']);
      assert.equal(tableExists('victim'), true);
    } finally {
      c.end();
    }
  });

  test('a function that changes client_encoding ends the session before a pipelined statement is read in the new encoding', async () => {
    for (const a of LEXING_ATTACKS) {
      // simple protocol: both queries in one write
      const c = await RawClient.connect(sidecar.port);
      try {
        c.send(serialize.query(`SELECT public.sneaky_encoding('${a.encoding}')`), serialize.query(attackText(a.char, 'victim')));
        const msgs = await c.until((m) => m.name === 'error' && (m as unknown as { severity: string }).severity === 'FATAL');
        const fatal = msgs.at(-1) as unknown as { code: string; message: string };
        assert.equal(fatal.code, '42501');
        assert.match(fatal.message, new RegExp(`client_encoding became "${a.encoding}"`));
        await c.closedByPeer();
        assert.equal(tableExists('victim'), true, `${a.encoding}: the pipelined statement ran`);
      } finally {
        c.socket.destroy();
      }
    }
  });

  test('extended protocol: a text that does not read alike cannot follow an Execute in its batch; the next batch waits for ReadyForQuery', async () => {
    const a = LEXING_ATTACKS[0] as { encoding: string; char: string };
    const inBatch = await RawClient.connect(sidecar.port);
    try {
      const start = inBatch.messages.length;
      inBatch.send(
        serialize.parse({ text: "SELECT public.sneaky_encoding('SJIS')" }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.parse({ text: attackText(a.char, 'victim') }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
      );
      const msgs = await inBatch.until((m) => m.name === 'error', start);
      const err = msgs.at(-1) as unknown as { code: string; message: string; severity: string };
      assert.equal(err.severity, 'ERROR');
      assert.equal(err.code, '42501');
      assert.match(err.message, /cannot follow a Bind or Execute in the same batch/);
      // the refusal aborted the batch's implicit transaction, set_config with it: the session goes on in UTF8
      const done = await inBatch.until((m) => m.name === 'readyForQuery', start);
      const from = start + done.length;
      inBatch.send(serialize.query('SHOW client_encoding'));
      const show = await inBatch.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual((show.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['UTF8']);
      assert.equal(tableExists('victim'), true);
    } finally {
      inBatch.socket.destroy();
    }
    const across = await RawClient.connect(sidecar.port);
    try {
      across.send(
        serialize.parse({ text: 'SELECT public.sneaky_strings()' }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
        serialize.parse({ text: "SELECT 'a\\'; DROP TABLE victim; --'" }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
      );
      const msgs = await across.until((m) => m.name === 'error');
      const fatal = msgs.at(-1) as unknown as { code: string; message: string; severity: string };
      assert.equal(fatal.severity, 'FATAL');
      assert.match(fatal.message, /standard_conforming_strings became "off"/);
      await across.closedByPeer();
      assert.equal(tableExists('victim'), true);
    } finally {
      across.socket.destroy();
    }
    // a batch whose texts read alike in every encoding is not slowed down or refused
    const ok = await RawClient.connect(sidecar.port);
    try {
      const from = ok.messages.length;
      ok.send(serialize.parse({ text: 'SELECT 1' }), serialize.bind({}), serialize.execute({}), serialize.parse({ text: "SELECT 'two'" }), serialize.bind({}), serialize.execute({}), serialize.sync(), serialize.query("SELECT 'é'"));
      const first = await ok.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual(first.map((m) => m.name), ['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'readyForQuery']);
      const second = await ok.until((m) => m.name === 'readyForQuery', from + first.length);
      assert.deepEqual((second.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['é']);
    } finally {
      ok.end();
    }
  });
});

describe('reply channels, COPY and counts', () => {
  before(() => {
    const r = postgres.psql(
      `SET ROLE agent;
       CREATE TABLE guarded (x int CONSTRAINT "card ${CARD}" CHECK (x > 0));`,
      { database: 'orders' },
    );
    assert.equal(r.code, 0, r.stderr);
  });

  test('ParameterStatus values, NOTIFY payloads and every field of an ErrorResponse pass the masker', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      let from = c.messages.length;
      c.send(serialize.query(`SET application_name = 'card ${CARD}'`));
      const set = await c.until((m) => m.name === 'readyForQuery', from);
      const status = set.find((m) => m.name === 'parameterStatus') as unknown as { parameterName: string; parameterValue: string };
      assert.equal(status.parameterName, 'application_name');
      assert.equal(status.parameterValue, 'card ************1111');
      from = c.messages.length;
      c.send(serialize.query('LISTEN cards'), serialize.query(`NOTIFY cards, 'paid with ${CARD2}'`));
      const note = (await c.until((m) => m.name === 'notification', from)).at(-1) as unknown as { channel: string; payload: string };
      assert.equal(note.channel, 'cards');
      assert.equal(note.payload, 'paid with ************0004');
      from = c.messages.length;
      c.send(serialize.query('INSERT INTO guarded VALUES (-1)'));
      const err = (await c.until((m) => m.name === 'error', from)).at(-1) as unknown as Record<string, unknown>;
      assert.equal(err['code'], '23514');
      assert.equal(err['constraint'], 'card ************1111');
      assert.ok(!JSON.stringify(err).includes(CARD), JSON.stringify(err));
    } finally {
      c.end();
    }
  });

  test('column rules apply to COPY TO STDOUT of a table or a query, text and csv, in and out of a transaction', () => {
    const all = psql(['-At', '-c', 'COPY (SELECT * FROM customers ORDER BY id) TO STDOUT']);
    assert.equal(all.code, 0, all.stderr);
    for (const secret of ['alice@example.com', 'bob@example.org', '078-05-1120', '219-09-9999', CARD, CARD2]) assert.ok(!all.stdout.includes(secret), `${secret} leaked: ${all.stdout}`);
    const first = (all.stdout.split('\n')[0] ?? '').split('\t');
    assert.equal(first[0], '1');
    assert.match(first[2] ?? '', /^hmac:[0-9a-f]{16}$/, 'the email column is hashed');
    assert.equal(first[3], '\\N', 'the ssn column is null');
    assert.equal(first[4], '************1111');
    const table = psql(['-At', '-c', 'COPY customers (id, email, ssn) TO STDOUT (FORMAT csv, HEADER)']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.equal(lines[0], 'id,email,ssn');
    assert.equal(lines.length, 3);
    for (const l of lines.slice(1)) assert.match(l, /^[12],hmac:[0-9a-f]{16},$/);
    const tx = psql(['-At'], 'BEGIN;\nCOPY public.customers (email) TO STDOUT;\nSELECT 8;\nCOMMIT;\n');
    assert.equal(tx.code, 0, tx.stderr);
    assert.match(tx.stdout, /^BEGIN\nhmac:[0-9a-f]{16}\nhmac:[0-9a-f]{16}\n8\nCOMMIT\n$/);
    const options = psql(['-At', '-c', "COPY customers TO STDOUT (DELIMITER '|')", '-c', 'SELECT 9']);
    assert.match(options.stderr, /airlock: COPY TO STDOUT cannot apply column masking rules here: it sets options/);
    assert.equal(options.stdout.trim(), '9');
    assert.ok(!options.stdout.includes('alice@example.com'));
  });

  test('binary COPY TO STDOUT is refused with 42501 before it runs (every spelling); the session goes on', async () => {
    const client = pgClient();
    await client.connect();
    try {
      for (const sql of ['COPY customers TO STDOUT (FORMAT binary)', 'COPY customers TO STDOUT BINARY', 'COPY (SELECT card FROM customers) TO STDOUT WITH (FORMAT \'binary\')']) {
        await assert.rejects(client.query(sql), (err: Error & { code?: string }) => {
          assert.equal(err.code, '42501', sql);
          assert.match(err.message, /binary COPY TO STDOUT cannot be masked/);
          return true;
        });
      }
      assert.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  test('binary COPY: FROM STDIN works; TO STDOUT is refused with 42501 and ReadyForQuery (simple and extended protocol), never a FATAL', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      let from = c.messages.length;
      const body = Buffer.from('binary-row');
      const tuple = Buffer.alloc(6);
      tuple.writeInt16BE(1, 0);
      tuple.writeInt32BE(body.length, 2);
      const trailer = Buffer.alloc(2);
      trailer.writeInt16BE(-1, 0);
      const data = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8), tuple, body, trailer]);
      c.send(serialize.query('COPY events(body) FROM STDIN (FORMAT binary)'), serialize.copyData(data), serialize.copyDone());
      const ok = await c.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual(ok.map((m) => m.name), ['copyInResponse', 'commandComplete', 'readyForQuery']);
      assert.equal((ok[1] as unknown as { text: string }).text, 'COPY 1');
      for (const sql of ['COPY BINARY customers TO STDOUT', 'COPY customers TO STDOUT (FORMAT binary)', "COPY (SELECT card FROM customers) TO STDOUT (FORMAT 'binary')"]) {
        from = c.messages.length;
        c.send(serialize.query(sql));
        const refused = await c.until((m) => m.name === 'readyForQuery', from);
        assert.deepEqual(refused.map((m) => m.name), ['error', 'readyForQuery'], sql);
        assert.equal((refused[0] as unknown as { code: string }).code, '42501', sql);
        from = c.messages.length;
        c.send(serialize.parse({ text: sql }), serialize.bind({}), serialize.execute({}), serialize.sync());
        const viaExtended = await c.until((m) => m.name === 'readyForQuery', from);
        assert.deepEqual(viaExtended.map((m) => m.name), ['error', 'readyForQuery'], sql);
        assert.equal((viaExtended[0] as unknown as { code: string; severity: string }).code, '42501', sql);
      }
      from = c.messages.length;
      c.send(serialize.query('SELECT 7'));
      const next = await c.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual((next.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['7']);
      assert.ok(!c.messages.some((m) => m.name === 'error' && (m as unknown as { severity: string }).severity === 'FATAL'));
    } finally {
      c.end();
    }
  });

  test('COPY FROM STDIN with eager data (before CopyInResponse) works, and stray copy messages after a failed COPY are ignored', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      let from = c.messages.length;
      c.send(serialize.query('COPY events(body) FROM STDIN'), serialize.copyData(Buffer.from('eager-1\neager-2\n')), serialize.copyDone());
      const ok = await c.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual(ok.map((m) => m.name), ['copyInResponse', 'commandComplete', 'readyForQuery']);
      assert.equal((ok[1] as unknown as { text: string }).text, 'COPY 2');
      from = c.messages.length;
      c.send(serialize.query('COPY no_such_table FROM STDIN'), serialize.copyData(Buffer.from('x\n')), serialize.copyDone(), serialize.query('SELECT 5'));
      const failed = await c.until((m) => m.name === 'readyForQuery', from);
      assert.deepEqual(failed.map((m) => m.name), ['error', 'readyForQuery']);
      const next = await c.until((m) => m.name === 'readyForQuery', from + failed.length);
      assert.deepEqual((next.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['5']);
      assert.equal(postgres.psql("SELECT count(*) FROM events WHERE body LIKE 'eager-%'", { database: 'orders' }).stdout.trim(), '2');
    } finally {
      c.end();
    }
  });

  test('a Bind with 65535 parameters is read as PostgreSQL reads it (unsigned counts): its own error, not a FATAL', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      const from = c.messages.length;
      c.send(serialize.parse({ text: 'SELECT 1' }), serialize.bind({ values: Array.from({ length: 65535 }, () => null) }), serialize.execute({}), serialize.sync(), serialize.query('SELECT 6'));
      const batch = await c.until((m) => m.name === 'readyForQuery', from);
      const err = batch.find((m) => m.name === 'error') as unknown as { severity: string; message: string };
      assert.equal(err.severity, 'ERROR');
      assert.match(err.message, /bind message supplies 65535 parameters, but prepared statement "" requires 0/);
      const next = await c.until((m) => m.name === 'readyForQuery', from + batch.length);
      assert.deepEqual((next.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['6']);
    } finally {
      c.end();
    }
  });
});

describe('protocol state made with SQL', () => {
  test('a cursor made with SQL DECLARE and fetched with a protocol Execute is recorded and masked', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      let from = c.messages.length;
      c.send(serialize.query('BEGIN; DECLARE cur CURSOR FOR SELECT email, card FROM customers ORDER BY id'));
      await c.until((m) => m.name === 'readyForQuery', from);
      from = c.messages.length;
      c.send(serialize.execute({ portal: 'cur' }), serialize.sync());
      const msgs = await c.until((m) => m.name === 'readyForQuery', from);
      const rows = msgs.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields);
      assert.equal(rows.length, 2, JSON.stringify(msgs.map((m) => m.name)));
      assert.match(rows[0]?.[0] ?? '', /^hmac:[0-9a-f]{16}$/);
      assert.equal(rows[0]?.[1], '************1111');
      assert.ok(!JSON.stringify(rows).includes('alice@example.com'));
      assert.ok(!msgs.some((m) => m.name === 'rowDescription'), 'the description the sidecar asked for is not shown to the agent');
      from = c.messages.length;
      c.send(serialize.query('COMMIT'));
      await c.until((m) => m.name === 'readyForQuery', from);
      // a portal that does not exist: PostgreSQL's own error, the session goes on
      from = c.messages.length;
      c.send(serialize.execute({ portal: 'nope' }), serialize.sync(), serialize.query('SELECT 3'));
      const missing = await c.until((m) => m.name === 'readyForQuery', from);
      assert.match((missing.find((m) => m.name === 'error') as unknown as { message: string }).message, /portal "nope" does not exist/);
      const next = await c.until((m) => m.name === 'readyForQuery', from + missing.length);
      assert.deepEqual((next.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields, ['3']);
    } finally {
      c.end();
    }
    const rec = records(await endedRecordingWith('FETCH ALL FROM \\"cur\\"'));
    assert.ok(rec.some((r) => r['type'] === 'statement' && r['via'] === 'execute' && r['text'] === 'FETCH ALL FROM "cur"'));
  });

  test('a statement name redefined with SQL DEALLOCATE and PREPARE is masked with its new columns', async () => {
    const c = await RawClient.connect(sidecar.port);
    try {
      let from = c.messages.length;
      c.send(serialize.parse({ name: 's1', text: 'SELECT id, name FROM customers ORDER BY id' }), serialize.describe({ type: 'S', name: 's1' }), serialize.sync());
      await c.until((m) => m.name === 'readyForQuery', from);
      from = c.messages.length;
      c.send(serialize.query('DEALLOCATE s1; PREPARE s1 AS SELECT email, card FROM customers ORDER BY id'));
      await c.until((m) => m.name === 'readyForQuery', from);
      from = c.messages.length;
      c.send(serialize.bind({ statement: 's1' }), serialize.execute({}), serialize.sync());
      const msgs = await c.until((m) => m.name === 'readyForQuery', from);
      const rows = msgs.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields);
      assert.equal(rows.length, 2);
      assert.match(rows[0]?.[0] ?? '', /^hmac:[0-9a-f]{16}$/, JSON.stringify(rows));
      assert.ok(!JSON.stringify(rows).includes('alice@example.com'));
      assert.ok(!JSON.stringify(rows).includes(CARD));
    } finally {
      c.end();
    }
    // recorded as what ran (a name made with SQL), never as the text first parsed under that name
    const rec = records(await endedRecordingWith('PREPARE s1 AS SELECT email, card'));
    const executes = rec.filter((r) => r['type'] === 'statement' && r['via'] === 'execute');
    assert.deepEqual(executes.map((r) => r['text']), ['EXECUTE "s1"']);
    const result = rec.find((r) => r['type'] === 'result' && r['statement'] === executes[0]?.['id']);
    assert.equal(result?.['rows'], 2);
  });
});
