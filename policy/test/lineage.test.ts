import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { alignOutputs, analyzeLineage, compileMasker, LineageCache, loadSqlParser, type ColumnLineage } from '../src/index.ts';

before(async () => {
  await loadSqlParser();
});

const C = 'public.customers';
const O = 'public.orders';

/** output column → "p:<sources> d:<sources>" or "opaque" (runs as "run(<tables>)") */
function golden(sql: string, searchPath?: readonly string[]): string[] {
  const st = analyzeLineage(sql, searchPath === undefined ? {} : { searchPath }).statements[0];
  assert.ok(st !== undefined, sql);
  if (st.outputs === undefined) return ['no outputs'];
  return st.outputs.map((o) => (o.kind === 'run' ? `run(${o.tables.join(',')}) ${show(o.lineage)}` : `${o.name} ${show(o.lineage)}`).trim());
}

function show(l: ColumnLineage): string {
  if (l.opaque) return 'opaque';
  return [l.passthrough.length > 0 ? `p:${l.passthrough.join(',')}` : '', l.derived.length > 0 ? `d:${l.derived.join(',')}` : ''].filter((x) => x !== '').join(' ');
}

const CASES: readonly (readonly [string, readonly string[]])[] = [
  ['SELECT email FROM customers', [`email p:${C}.email`]],
  ['SELECT c.email AS e FROM public.customers c', [`e p:${C}.email`]],
  ['SELECT lower(email) FROM customers', [`lower d:${C}.email`]],
  ["SELECT email || '' AS x, email::varchar(10), (email) COLLATE \"C\" FROM customers", [`x d:${C}.email`, `email d:${C}.email`, `email p:${C}.email`]],
  ['SELECT count(email), count(*), max(email), min(id) FROM customers', ['count', 'count', `max p:${C}.email`, `min p:${C}.id`]],
  ['SELECT string_agg(email, \',\'), array_agg(name ORDER BY id) FROM customers', [`string_agg d:${C}.email`, `array_agg d:${C}.name`]],
  ['SELECT first_value(email) OVER (PARTITION BY ssn ORDER BY id), lag(email, 1, name) OVER () FROM customers', [`first_value p:${C}.email`, `lag p:${C}.email,${C}.name`]],
  ['SELECT row_number() OVER (ORDER BY email) FROM customers', ['row_number']],
  ["SELECT CASE WHEN ssn LIKE '1%' THEN email ELSE 'x' END FROM customers", [`case p:${C}.email d:${C}.ssn`]],
  ['SELECT coalesce(email, name), nullif(email, ssn), greatest(email, name) FROM customers', [`coalesce p:${C}.email,${C}.name`, `nullif p:${C}.email d:${C}.ssn`, `greatest p:${C}.email,${C}.name`]],
  ['SELECT email FROM customers UNION SELECT total::text FROM orders', [`email p:${C}.email d:${O}.total`]],
  ['SELECT email, id FROM customers INTERSECT SELECT name, id FROM customers EXCEPT SELECT ssn, 1 FROM customers', [`email p:${C}.email,${C}.name,${C}.ssn`, `id p:${C}.id`]],
  ['SELECT (SELECT max(email) FROM customers) AS m', [`m p:${C}.email`]],
  ['SELECT ARRAY(SELECT email FROM customers) AS a', [`a d:${C}.email`]],
  ['SELECT EXISTS (SELECT 1 FROM customers WHERE email = $1) AS e', ['e']],
  ['SELECT x FROM (SELECT upper(email) AS x FROM customers) s', [`x d:${C}.email`]],
  ['SELECT s.* FROM (SELECT email, lower(name) FROM customers) s', [`email p:${C}.email`, `lower d:${C}.name`]],
  ['SELECT q FROM (SELECT email FROM customers) AS s(q)', [`q p:${C}.email`]],
  ['WITH w AS (SELECT email AS e FROM customers) SELECT upper(e) FROM w', [`upper d:${C}.email`]],
  ['WITH w(e) AS (SELECT email FROM customers) SELECT * FROM w', [`e p:${C}.email`]],
  ["WITH RECURSIVE r(n) AS (SELECT email FROM customers UNION ALL SELECT n || 'x' FROM r WHERE length(n) < 30) SELECT n FROM r", [`n d:${C}.email`]],
  // a name that may be correlated counts as each table in reach (orders may have an email column)
  ['SELECT o.id, x.e FROM orders o, LATERAL (SELECT email AS e FROM customers c WHERE c.id = o.customer) x', [`id p:${O}.id`, `e p:${C}.email,${O}.email`]],
  ['SELECT * FROM customers', [`run(${C})`]],
  ['SELECT c.*, lower(c.email) FROM customers c', [`run(${C})`, `lower d:${C}.email`]],
  ['SELECT c FROM customers c', [`c p:${C}.c d:${C}.*`]],
  ['SELECT row_to_json(c) FROM customers c', [`row_to_json p:${C}.c d:${C}.*`].map((s) => s.replace(`p:${C}.c `, '')).map(() => `row_to_json d:${C}.*,${C}.c`)],
  ['SELECT ROW(email, 1), ARRAY[name], json_build_object(\'k\', ssn), xmlelement(name x, email) FROM customers', [`row d:${C}.email`, `array d:${C}.name`, `json_build_object d:${C}.ssn`, `?column? d:${C}.email`]],
  ["SELECT JSON_OBJECT('a': email), JSON_ARRAY(name) FROM customers", [`?column? d:${C}.email`, `?column? d:${C}.name`]],
  ["SELECT encode(convert_to(email, 'UTF8'), 'base64'), md5(name), to_hex(length(ssn)) FROM customers", [`encode d:${C}.email`, `md5 d:${C}.name`, `to_hex d:${C}.ssn`]],
  ['SELECT email = $1 AS eq, email IS NULL AS n FROM customers', [`eq d:${C}.email`, `n d:${C}.email`]],
  ['SELECT myschema.f(email), g(id), current_setting(\'x.y\') FROM customers', ['f opaque', 'g opaque', 'current_setting']],
  ['SELECT email::mytype, email OPERATOR(myschema.===) name FROM customers', ['email opaque', '?column? opaque']],
  ['SELECT e FROM customers, generate_series(1, 2) e', [`e p:${C}.e`]],
  ["SELECT v FROM customers c, jsonb_each_text(to_jsonb(c)) AS t(k, v)", [`v p:${C}.v d:${C}.*,${C}.c`]],
  ['SELECT * FROM myfunc()', ['myfunc opaque', 'run() opaque']],
  ["VALUES (1, 'a'), (2, 'b')", ['column1', 'column2']],
  ['SELECT * FROM (VALUES (1)) v(x)', ['x']],
  ['INSERT INTO customers (email) VALUES ($1) RETURNING email, lower(name)', [`email p:${C}.email`, `lower d:${C}.name`]],
  ['UPDATE customers SET name = $1 FROM orders o WHERE o.customer = customers.id RETURNING o.total, customers.ssn', [`total p:${O}.total`, `ssn p:${C}.ssn`]],
  ['DELETE FROM customers RETURNING *', [`run(${C})`]],
  ["WITH d AS (DELETE FROM customers RETURNING email) SELECT upper(email) FROM d", [`upper d:${C}.email`]],
  ['SELECT * FROM customers JOIN orders USING (id)', [`run(${C},${O})`]],
  ['SELECT j.email FROM (customers JOIN orders ON true) AS j', [`email p:${C}.email,${O}.email`]],
  ['SELECT email FROM customers, orders', [`email p:${C}.email,${O}.email`]],
  ['SELECT (SELECT email FROM orders o WHERE o.id = c.id) FROM customers c', [`?column? p:${C}.email,${O}.email`]],
  ["COPY (SELECT lower(email) FROM customers) TO STDOUT", [`lower d:${C}.email`]],
  ['COPY customers (email, id) TO STDOUT', [`email p:${C}.email`, `id p:${C}.id`]],
  ['SELECT email FROM pg_stats', ['email p:pg_catalog.pg_stats.email']],
  ['EXPLAIN SELECT email FROM customers', ['run()']],
  ['SHOW search_path', ['run()']],
  ['CREATE TABLE t (a int)', ['no outputs']],
];

test('golden: output column → the columns it passes or is computed from', () => {
  const wrong = CASES.filter(([sql, want]) => JSON.stringify(golden(sql)) !== JSON.stringify(want)).map(([sql, want]) => `${sql}\n  want ${JSON.stringify(want)}\n  got  ${JSON.stringify(golden(sql))}`);
  assert.deepEqual(wrong, []);
});

test('unqualified names count as each schema of the search path; pg_* as pg_catalog', () => {
  assert.deepEqual(golden('SELECT lower(email) FROM customers', ['app', 'public']), ['lower d:app.customers.email,public.customers.email']);
  const st = analyzeLineage('SELECT 1 FROM customers c JOIN pg_class ON true, v_orders').statements[0];
  assert.deepEqual(st?.relations, ['pg_catalog.pg_class', 'public.customers', 'public.v_orders']);
});

test('writes: values copied into settings or NOTIFY payloads', () => {
  const st = analyzeLineage("SELECT set_config('x.y', lower(email), false), pg_notify('c', name) FROM customers").statements[0];
  assert.deepEqual([...(st?.writes.passthrough ?? []), ...(st?.writes.derived ?? [])].sort(), [`${C}.email`, `${C}.name`]);
  assert.deepEqual(analyzeLineage("SELECT set_config('x.y', 'v', false)").statements[0]?.writes.derived, []);
});

test('statements whose rows are not analysed are opaque; text that does not parse too', () => {
  for (const sql of ['FETCH ALL FROM c', 'EXECUTE p(1)', 'CALL proc()', 'SELECT FROM WHERE']) {
    const st = analyzeLineage(sql).statements[0];
    assert.equal(st?.opaqueRows, true, sql);
    assert.equal(st.reads.opaque, true, sql);
  }
});

test('reads: columns in WHERE, JOIN, ORDER BY and FILTER are read, not returned', () => {
  const st = analyzeLineage('SELECT id, count(*) FILTER (WHERE name > $1) FROM customers c JOIN orders o ON o.customer = c.id WHERE ssn = $2 GROUP BY id ORDER BY email').statements[0];
  assert.ok(st !== undefined);
  const reads = [...st.reads.passthrough, ...st.reads.derived];
  for (const c of ['ssn', 'email', 'name']) assert.ok(reads.includes(`${C}.${c}`), `${c} in ${reads.join(',')}`);
  assert.equal(show(st.outputs?.[1]?.kind === 'column' ? st.outputs[1].lineage : { passthrough: [], derived: [], opaque: true }), '');
});

test('alignment: columns from both ends, runs of unknown width in the middle; a count that does not fit is opaque', () => {
  const st = analyzeLineage('SELECT upper(name), c.*, lower(email) FROM customers c').statements[0];
  const a = alignOutputs(st?.outputs, 6).map((x) => `${show(x.lineage)}|${x.tables.join(',')}`);
  assert.deepEqual(a, [`d:${C}.name|`, `|${C}`, `|${C}`, `|${C}`, `|${C}`, `d:${C}.email|`]);
  const fixed = analyzeLineage('SELECT upper(name), lower(email) FROM customers').statements[0];
  assert.ok(alignOutputs(fixed?.outputs, 3).every((x) => x.lineage.opaque));
  assert.ok(alignOutputs(undefined, 2).every((x) => x.lineage.opaque));
});

test('the cache decides once per statement shape', () => {
  const cache = new LineageCache();
  const a = cache.of("SELECT lower(email) FROM customers WHERE id = 1 AND name = 'x'");
  const b = cache.of("SELECT lower(email) FROM customers WHERE id = 2 AND name = 'y'");
  assert.equal(a, b);
  assert.notEqual(cache.of('SELECT lower(name) FROM customers WHERE id = 1'), a);
});

test('masker: derived columns take the whole-value action of every matching rule, the strictest wins', () => {
  const m = compileMasker(
    [
      { name: 'emails', match: { columns: ['*.customers.email'] }, action: { type: 'redact' } },
      { name: 'names', match: { columns: ['*.customers.name'] }, action: { type: 'hash' } },
      { name: 'ssn', match: { columns: ['*.customers.ssn'] }, action: { type: 'null' } },
      { name: 'notes', match: { columns: ['*.customers.note'], detectors: ['email'] }, action: { type: 'partial', keepFirst: 1 } },
    ],
    Buffer.from('k'),
  );
  assert.equal(m.forLineage({ derived: [`${C}.email`] }).maskValue('anything').value, '[REDACTED]');
  assert.match(m.forLineage({ derived: [`${C}.name`] }).maskValue('x').value ?? '', /^hmac:/);
  assert.equal(m.forLineage({ derived: [`${C}.name`, `${C}.email`] }).maskValue('x').value, '[REDACTED]');
  assert.equal(m.forLineage({ derived: [`${C}.name`], passthrough: [`${C}.ssn`] }).maskValue('x').value, null);
  // a column with a detector rule: passed through, the detector applies; computed from, the whole value
  assert.equal(m.forLineage({ passthrough: [`${C}.note`] }).maskValue('see a@b.io now').value, 'see a***** now');
  assert.equal(m.forLineage({ derived: [`${C}.note`] }).maskValue('plain').value, 'p****');
  assert.equal(m.forLineage({ derived: [`${C}.*`] }).maskValue('x').value, null, 'any column of the table: the strictest of its rules');
  assert.equal(m.forLineage({ all: true }).maskValue('x').value, null);
  assert.equal(m.forLineage({ derived: [`${O}.total`] }).canMatch, false);
  assert.equal(m.strictestFor([`${C}.email`, `${C}.name`], false), 'redact');
  assert.equal(m.strictestFor([], true), 'null');
  assert.equal(m.strictestFor([`${O}.id`], false), undefined);
});

/** random expressions over a masked column: the lineage always names it (never loses it) */
test('property: any composition of expressions over a column keeps the column in the lineage', () => {
  const leaf = fc.constantFrom('email', 'c.email');
  const wrap = (e: string): fc.Arbitrary<string> =>
    fc.constantFrom(
      `lower(${e})`,
      `${e} || 'x'`,
      `(${e})::text`,
      `(${e}) COLLATE "C"`,
      `coalesce(${e}, 'z')`,
      `CASE WHEN (${e}) > 'a' THEN 1 ELSE 0 END`,
      `(SELECT ${e})`,
      `(SELECT max(${e}) FROM orders)`,
      `ARRAY[${e}]`,
      `ROW(${e})`,
      `to_json(${e})`,
      `json_build_object('k', ${e})`,
      `encode(convert_to(${e}, 'UTF8'), 'hex')`,
      `nullif(${e}, 'q')`,
      `greatest(${e}, 'a')`,
      `md5(${e})`,
      `(${e}) = 'x'`,
    );
  const expr: fc.Arbitrary<string> = fc.letrec((tie) => ({ e: fc.oneof({ depthSize: 'small' }, leaf, tie('e').chain((x) => wrap(x as string))) })).e;
  const shape = fc.constantFrom(
    (e: string) => `SELECT ${e} AS out FROM customers c`,
    (e: string) => `SELECT out FROM (SELECT ${e} AS out FROM customers c) s`,
    (e: string) => `WITH w AS (SELECT ${e} AS out FROM customers c) SELECT out FROM w`,
    (e: string) => `SELECT ${e} AS out FROM customers c UNION SELECT 'k'`,
    (e: string) => `SELECT s.out FROM orders o, LATERAL (SELECT ${e} AS out FROM customers c) s`,
  );
  fc.assert(
    fc.property(expr, shape, (e, s) => {
      const sql = s(e);
      const st = analyzeLineage(sql).statements[0];
      if (st?.outputs === undefined) return st?.opaqueRows === true;
      const out = st.outputs[st.outputs.length - 1];
      assert.ok(out !== undefined, sql);
      const l = out.lineage;
      assert.ok(l.opaque || [...l.passthrough, ...l.derived].includes(`${C}.email`), `${sql}: ${show(l)}`);
      return true;
    }),
    { numRuns: 300 },
  );
});
