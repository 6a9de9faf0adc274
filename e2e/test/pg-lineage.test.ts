/**
 * Masking that follows the data: result columns computed from masked columns (expressions,
 * casts, COLLATE, aggregates, windows, CASE/COALESCE, set operations, subqueries, LATERAL,
 * constructors, encoding functions, views) never return a clear fixture value, through psql,
 * node-postgres (simple and extended protocol, text and binary results) against a real
 * PostgreSQL through the real sidecar. Random expressions are generated with fast-check.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { startPostgres, type Postgres } from '../src/postgres.ts';
import { manifestDir, startSidecar, type SidecarProcess } from '../src/sidecar.ts';

const EMAIL = 'zelda.secret@example.com';
const NAME = 'Quintavius Marblemouth';
const SSN = '987-65-4329';
const FIXTURES = [EMAIL, NAME, SSN, 'quintavius', 'marblemouth', 'zelda.secret', '987-65', '65-4329'];

function manifests(port: number, unknownLineage?: string): string {
  return `
apiVersion: v1
kind: Secret
metadata: { name: creds, namespace: agents }
stringData: { username: agent, password: agent-secret-pw }
---
apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: orders, namespace: agents, labels: { data: pii } }
spec:
  protocol: postgres
  target: { host: 127.0.0.1, port: ${port}, database: orders, tls: { mode: disable } }
  credentialsSecretRef: { name: creds }
  agents: { podSelector: {} }
  defaultAction: Allow
  recording: { failurePolicy: Closed }
---
apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: pii, namespace: agents }
spec:
  connectionSelector: { matchLabels: { data: pii } }
${unknownLineage === undefined ? '' : `  unknownLineage: ${unknownLineage}\n`}  rules:
    - name: emails
      match: { columns: ["*.customers.email"] }
      action: { type: redact }
    - name: names
      match: { columns: ["*.customers.name"] }
      action: { type: hash }
    - name: ssn
      match: { columns: ["*.customers.ssn"] }
      action: { type: "null" }
`;
}

let postgres: Postgres;
let sidecar: SidecarProcess;

before(async () => {
  postgres = await startPostgres();
  const role = postgres.psql("CREATE ROLE agent LOGIN PASSWORD 'agent-secret-pw'");
  assert.equal(role.code, 0, role.stderr);
  const db = postgres.psql('CREATE DATABASE orders OWNER agent');
  assert.equal(db.code, 0, db.stderr);
  const schema = postgres.psql(
    `SET ROLE agent;
     CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, note text);
     INSERT INTO customers VALUES (1, '${NAME}', '${EMAIL}', '${SSN}', 'plain note');
     CREATE TABLE orders (id int, customer int, total int);
     INSERT INTO orders VALUES (10, 1, 99);
     CREATE VIEW v_customers AS SELECT id, email AS contact FROM customers;
     CREATE FUNCTION leak(int) RETURNS text LANGUAGE sql AS 'SELECT email FROM customers WHERE id = $1';`,
    { database: 'orders' },
  );
  assert.equal(schema.code, 0, schema.stderr);
  const dir = manifestDir({ 'orders.yaml': manifests(postgres.port) });
  sidecar = await startSidecar({ manifests: [dir], connection: 'orders', recordingsDir: mkdtempSync(join(tmpdir(), 'airlock-lineage-')) });
});

after(async () => {
  await (sidecar as SidecarProcess | undefined)?.stop();
  await (postgres as Postgres | undefined)?.stop();
});

function psql(input: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('psql', ['-X', '-At', '-F', '|', '-h', '127.0.0.1', '-p', String(sidecar.port), '-U', 'agent', '-d', 'orders'], {
    encoding: 'utf8',
    input,
    env: { ...process.env, PGPASSWORD: 'x', PGCONNECT_TIMEOUT: '10' },
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** raw values: strings in text format, Buffers in binary */
const raw = { getTypeParser: () => (v: string | Buffer): string | Buffer => v };

function client(): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: sidecar.port, user: 'agent', password: 'x', database: 'orders', types: raw as unknown as pg.CustomTypesConfig });
}

function leaks(text: string): string | undefined {
  const lower = text.toLowerCase();
  return FIXTURES.find((f) => lower.includes(f.toLowerCase()));
}

/** A value computed from masked columns: NULL or a mask marker (redact, hash; as a JSON string for json). */
const MASKED = new RegExp(`^${String.fromCharCode(1)}?"?(\\[REDACTED\\]|hmac:[0-9a-f]{16})"?$`);

function assertMasked(value: unknown, sql: string): void {
  if (value === null) return;
  const text = Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'string' ? value : JSON.stringify(value);
  assert.equal(leaks(text), undefined, `${sql} leaked ${JSON.stringify(text)}`);
  assert.match(text, MASKED, `${sql}: ${JSON.stringify(text)} is not masked as a whole`);
}

// ---------------------------------------------------------------------------------------------
// Random expressions over a masked column

const column = fc.constantFrom('email', 'name', 'ssn', 'c.email', 'c.name', 'c.ssn');
const wrap = (inner: string): fc.Arbitrary<string> => {
  // every function gets text: the composition always type-checks
  const e = `(${inner})::text`;
  return fc.constantFrom(
    `lower(${e})`,
    `upper(${e})`,
    `${e} || ''`,
    `'<' || ${e} || '>'`,
    `concat(${e}, 'x')`,
    `concat_ws(',', 'a', ${e})`,
    `(${e})::varchar`,
    `CAST(${e} AS text)`,
    `(${e}) COLLATE "C"`,
    `coalesce(${e}, 'none')`,
    `nullif(${e}, 'zzz')`,
    `greatest(${e}, '')`,
    `CASE WHEN ${e} IS NOT NULL THEN ${e} ELSE 'n' END`,
    `CASE WHEN length(${e}) > 3 THEN 'long' ELSE 'short' END`,
    `(SELECT ${e})`,
    `reverse(${e})`,
    `substr(${e}, 2)`,
    `md5(${e})`,
    `encode(convert_to(${e}, 'UTF8'), 'base64')`,
    `encode(convert_to(${e}, 'UTF8'), 'hex')`,
    `convert_to(${e}, 'UTF8')`,
    `to_json(${e})`,
    `json_build_object('k', ${e})`,
    `jsonb_build_array(${e})`,
    `ARRAY[${e}]`,
    `ROW(${e}, 1)`,
    `xmlelement(name x, ${e})`,
    `length(${e})`,
    `${e} = 'zzz'`,
    `replace(${e}, 'a', 'b')`,
    `format('%s!', ${e})`,
    `translate(${e}, 'abc', 'xyz')`,
    `split_part(${e}, '@', 1)`,
    `regexp_replace(${e}, '(.)', '\\1 ', 'g')`,
    `to_hex(length(${e}))`,
    `string_to_array(${e}, '.')`,
  );
};
const expression: fc.Arbitrary<string> = fc.letrec((tie) => ({
  expr: fc.oneof({ depthSize: 'small', withCrossShrink: true }, column, tie('expr').chain((e) => wrap(e as string))),
})).expr;
/** a statement returning the expression, in one of many shapes */
const statement = fc.tuple(expression, fc.nat(11)).map(([e, shape]) => {
  switch (shape) {
    case 0:
      return `SELECT ${e} FROM customers c`;
    case 1:
      return `SELECT x FROM (SELECT ${e} AS x FROM customers c) s`;
    case 2:
      return `WITH w AS (SELECT ${e} AS x FROM customers c) SELECT x FROM w`;
    case 3:
      return `SELECT ${e} FROM customers c UNION ALL SELECT 'k'::text FROM customers c WHERE false`.replace(`SELECT ${e} FROM`, `SELECT (${e})::text FROM`);
    case 4:
      return `SELECT o.id, s.x FROM orders o, LATERAL (SELECT ${e} AS x FROM customers c WHERE c.id = o.customer) s`;
    case 5:
      return `SELECT (SELECT (${e})::text FROM customers c LIMIT 1)`;
    case 6:
      return `SELECT max((${e})::text) FROM customers c`;
    case 7:
      return `SELECT string_agg((${e})::text, ',') FROM customers c`;
    case 8:
      return `SELECT first_value((${e})::text) OVER (ORDER BY c.id) FROM customers c`;
    case 9:
      return `SELECT array_agg(${e}) FROM customers c`;
    case 10:
      return `SELECT c.id, ${e} AS x, c.* FROM customers c`;
    default:
      return `SELECT to_jsonb(t) FROM (SELECT ${e} AS x FROM customers c) t`;
  }
});

/** the columns that must be masked: every column but id (whose value is no secret) */
function checkRow(row: unknown[], fields: readonly { name: string }[], sql: string): void {
  row.forEach((v, i) => {
    const name = fields[i]?.name ?? '';
    if (name === 'id' || name === 'note') {
      if (v !== null) assert.equal(leaks(Buffer.isBuffer(v) ? v.toString('utf8') : JSON.stringify(v)), undefined, `${sql} leaked in ${name}`);
      return;
    }
    assertMasked(v, sql);
  });
}

/** statements run and statements that failed (a property where most statements fail proves little) */
const counts = { run: 0, failed: 0 };

async function runChecked(c: pg.Client, sql: string, binary: boolean): Promise<void> {
  counts.run += 1;
  const config: pg.QueryConfig = Object.assign({ text: sql, rowMode: 'array' }, binary ? { binary: true, queryMode: 'extended' } : {});
  try {
    const r = await c.query(config);
    assert.ok(r.rows.length > 0, `${sql} returned no rows`);
    for (const row of r.rows as unknown[][]) checkRow(row, r.fields, sql);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    counts.failed += 1;
    if (process.env['LINEAGE_DEBUG'] !== undefined) console.log('FAILED', sql, (err as Error).message);
    // an error (a type the expression does not fit) must not quote a value either
    const e = err as pg.DatabaseError;
    const all = [e.message, e.detail, e.hint, e.where, e.internalQuery].filter((x) => x !== undefined).join(' ');
    assert.equal(leaks(all), undefined, `${sql}: the error leaked: ${all}`);
  }
}

describe('random expressions over masked columns never return a clear value', () => {
  test('node-postgres, simple protocol (text)', async () => {
    const c = client();
    await c.connect();
    try {
      await fc.assert(fc.asyncProperty(statement, async (sql) => runChecked(c, sql, false)), { numRuns: 120 });
    } finally {
      await c.end();
    }
  });

  test('node-postgres, extended protocol with binary results', async () => {
    const c = client();
    await c.connect();
    try {
      // queryMode 'extended': Parse/Bind (binary result formats)/Describe/Execute/Sync
      await fc.assert(fc.asyncProperty(statement, async (sql) => runChecked(c, sql, true)), { numRuns: 120 });
      const r = await c.query(Object.assign({ text: 'SELECT lower(email), name || $1, array_agg(ssn) OVER () FROM customers c WHERE id = $2', values: ['!', 1], rowMode: 'array' }, { binary: true, queryMode: 'extended' }));
      checkRow(r.rows[0] as unknown[], r.fields, 'parameterised');
      // masked by what each column derives from (not all NULL, as unknown lineage would be)
      const [lower, named, ssns] = r.rows[0] as (Buffer | null)[];
      assert.equal(lower?.toString('utf8'), '[REDACTED]');
      assert.match(named?.toString('utf8') ?? '', /^hmac:[0-9a-f]{16}$/);
      assert.equal(ssns, null);
      // binary arrays and records are decoded for detectors; a masked one is NULL
      const b = await c.query(Object.assign({ text: 'SELECT ARRAY[id, id], ROW(note, id), ARRAY[name] FROM customers c', rowMode: 'array' }, { binary: true, queryMode: 'extended' }));
      const [ids, rec, names] = b.rows[0] as (Buffer | null)[];
      assert.ok(ids !== null && rec !== null, 'values of unmasked columns pass in binary');
      assert.equal(names, null);
    } finally {
      await c.end();
    }
  });

  test('most generated statements ran (the properties checked real rows)', () => {
    assert.ok(counts.run >= 200, String(counts.run));
    assert.ok(counts.failed * 20 < counts.run, `${String(counts.failed)} of ${String(counts.run)} failed`);
  });

  test('psql (simple protocol, text), one session for many statements', () => {
    const sqls = fc.sample(statement, { numRuns: 80, seed: 42 });
    const r = psql(sqls.map((s) => `${s};`).join('\n'));
    assert.equal(leaks(r.stdout + r.stderr), undefined, `psql leaked:\n${r.stdout}\n${r.stderr}`);
  });
});

describe('shapes', () => {
  test('plain columns and values computed from nothing masked stay clear; direct masked columns keep their rules', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query({ text: "SELECT id, note, count(*) OVER (), upper('abc'), c.email, c.name, c.ssn FROM customers c", rowMode: 'array' });
      const row = r.rows[0] as unknown[];
      assert.deepEqual(row.slice(0, 4), ['1', 'plain note', '1', 'ABC']);
      assert.equal(row[4], '[REDACTED]');
      assert.match(String(row[5]), /^hmac:[0-9a-f]{16}$/);
      assert.equal(row[6], null);
      const n = await c.query({ text: 'SELECT count(email), max(customers.id), sum(total) FROM customers JOIN orders ON orders.customer = customers.id', rowMode: 'array' });
      assert.deepEqual(n.rows[0], ['1', '1', '99']);
    } finally {
      await c.end();
    }
  });

  test('several masked columns in one value: the strictest action (null > redact > hash)', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query({ text: 'SELECT name || email, email || ssn, name || note, coalesce(name, email) FROM customers', rowMode: 'array' });
      const [a, b, d, e] = r.rows[0] as unknown[];
      assert.equal(a, '[REDACTED]', 'hash and redact: redact');
      assert.equal(b, null, 'redact and null: null');
      assert.match(String(d), /^hmac:[0-9a-f]{16}$/, 'hash alone');
      assert.equal(e, '[REDACTED]', 'either value may pass through: the strictest');
    } finally {
      await c.end();
    }
  });

  test('a view, a function Airlock does not know and whole-row references are masked with every column rule', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query({ text: 'SELECT contact, lower(contact), leak(1), c FROM v_customers, customers c', rowMode: 'array' });
      const row = r.rows[0] as unknown[];
      for (const v of row) assert.equal(v, null, `${JSON.stringify(row)}: unknown lineage gets the strictest action (null)`);
    } finally {
      await c.end();
    }
  });

  test('an error that would quote a masked value is withheld; the session goes on', async () => {
    const c = client();
    await c.connect();
    try {
      await assert.rejects(c.query('SELECT email::int FROM customers'), (err: pg.DatabaseError) => {
        assert.equal(err.code, '22P02');
        assert.match(err.message, /withheld/);
        assert.equal(leaks(`${err.message} ${err.detail ?? ''}`), undefined);
        return true;
      });
      await assert.rejects(c.query("SELECT 1 FROM customers WHERE ssn::int > 0"), (err: pg.DatabaseError) => leaks(err.message) === undefined && err.code === '22P02');
      await assert.rejects(c.query('SELECT nosuchcolumn FROM customers'), /column "nosuchcolumn" does not exist/, 'messages that quote no value are kept');
      const ok = await c.query({ text: 'SELECT 1', rowMode: 'array' });
      assert.deepEqual(ok.rows, [['1']]);
    } finally {
      await c.end();
    }
  });

  test('values copied into a setting or a NOTIFY payload are refused; settings and system views read as usual', async () => {
    const c = client();
    await c.connect();
    try {
      for (const sql of ["SELECT set_config('x.leak', email, false) FROM customers", "SELECT pg_notify('chan', upper(name)) FROM customers"]) {
        await assert.rejects(c.query(sql), (err: pg.DatabaseError) => err.code === '42501' && /masking cannot follow/.test(err.message), sql);
      }
      const r = await c.query({ text: "SELECT current_setting('client_encoding'), set_config('x.ok', 'v', false), (SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid())", rowMode: 'array' });
      assert.deepEqual(r.rows, [['UTF8', 'v', '1']]);
      const show = await c.query({ text: 'SHOW x.ok', rowMode: 'array' });
      assert.deepEqual(show.rows, [['v']]);
    } finally {
      await c.end();
    }
  });

  test('COPY (query) TO STDOUT follows lineage too', () => {
    const r = psql("COPY (SELECT id, lower(email), name || '' FROM customers) TO STDOUT;\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(leaks(r.stdout), undefined, r.stdout);
    assert.match(r.stdout, /^1\t\[REDACTED\]\thmac:[0-9a-f]{16}$/m);
  });

  test('RETURNING of a write and a data-modifying CTE are masked', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query({ text: "WITH u AS (UPDATE customers SET note = note WHERE id = 1 RETURNING upper(email) AS e, name) SELECT e, name || '' FROM u", rowMode: 'array' });
      const [e, n] = r.rows[0] as unknown[];
      assert.equal(e, '[REDACTED]');
      assert.match(String(n), /^hmac:/);
      const d = await c.query({ text: "UPDATE customers SET note = note WHERE id = 1 RETURNING lower(ssn), email", rowMode: 'array' });
      assert.deepEqual(d.rows[0], [null, '[REDACTED]']);
    } finally {
      await c.end();
    }
  });
});

describe('unknownLineage: Refuse', () => {
  test('a statement with a column of unknown lineage is refused with 42501 before it runs; known lineage is masked; the session goes on', async () => {
    const dir = manifestDir({ 'orders.yaml': manifests(postgres.port, 'Refuse') });
    const strict = await startSidecar({ manifests: [dir], connection: 'orders', recordingsDir: mkdtempSync(join(tmpdir(), 'airlock-lineage-')) });
    const c = new pg.Client({ host: '127.0.0.1', port: strict.port, user: 'agent', password: 'x', database: 'orders', types: raw as unknown as pg.CustomTypesConfig });
    await c.connect();
    try {
      for (const sql of ['SELECT leak(1)', 'FETCH ALL FROM some_cursor', 'SELECT * FROM leak(1) AS t(x)']) {
        await assert.rejects(c.query(sql), (err: pg.DatabaseError) => {
          assert.equal(err.code, '42501', sql);
          assert.match(err.message, /unknownLineage: Refuse/);
          return true;
        });
      }
      const r = await c.query({ text: 'SELECT lower(email), id FROM customers', rowMode: 'array' });
      assert.deepEqual(r.rows, [['[REDACTED]', '1']]);
    } finally {
      await c.end();
      await strict.stop();
    }
  });
});
