import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifests, type Manifest } from '@airlock/api';
import { PolicyError, SqlDecider, compileBundle, decideShell, loadSqlParser, parseDuration, selectorMatches } from '@airlock/policy';

const examples = join(import.meta.dirname, '..', '..', 'examples');

function exampleManifests(): Manifest[] {
  return readdirSync(examples)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseManifests(f, readFileSync(join(examples, f), 'utf8')).manifests);
}

function manifests(yaml: string): Manifest[] {
  const parsed = parseManifests('test.yaml', yaml);
  assert.deepEqual(parsed.errors, []);
  return [...parsed.manifests];
}

before(async () => {
  await loadSqlParser();
});

const CONN = `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: db, namespace: agents, labels: { env: prod } }
spec:
  protocol: postgres
  target: { host: 127.0.0.1, port: 5432, database: app }
  credentialsSecretRef: { name: creds }
  agents: { serviceAccounts: [planner] }
  defaultAction: DEFAULT
`;

function bundleWith(defaultAction: string, rules: string) {
  const yaml = `${CONN.replace('DEFAULT', defaultAction)}---
apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: guard, namespace: agents }
spec:
  connectionSelector: { matchLabels: { env: prod } }
  rules:
${rules}`;
  return compileBundle(manifests(yaml), { connection: 'db' });
}

test('the example policy: reads allowed, destructive blocked with the message, writes held', () => {
  const bundle = compileBundle(exampleManifests(), { connection: 'orders-db', serviceAccount: 'planner' });
  assert.deepEqual(bundle.approvalRules, ['ops-shell', 'prod-guardrails']);
  assert.deepEqual(bundle.maskingPolicies, ['pii']);
  assert.match(bundle.digest, /^sha256:[0-9a-f]{64}$/);
  const d = new SqlDecider(bundle);
  assert.equal(d.decide('SELECT * FROM orders').decision, 'Allow');
  const drop = d.decide('DROP TABLE orders');
  assert.equal(drop.decision, 'Block');
  assert.deepEqual(drop.rules, ['prod-guardrails/never-destroy']);
  assert.equal(drop.message, 'destructive statements are not allowed on production');
  const ins = d.decide('INSERT INTO public.orders VALUES (1)');
  assert.equal(ins.decision, 'RequireApproval');
  assert.deepEqual(ins.rules, ['prod-guardrails/writes-need-review']);
  assert.deepEqual(ins.approval, { approvers: { users: [], groups: ['dba'] }, required: 1, timeoutSeconds: 600, requireReason: false });
  assert.equal(d.decide('SELECT 1; DROP TABLE orders').decision, 'Block', 'the strictest statement of a multi-statement query wins');
});

test('the decision cache stays exact past its bound: texts and shapes decided again after eviction', () => {
  const bundle = compileBundle(exampleManifests(), { connection: 'orders-db', serviceAccount: 'planner' });
  const d = new SqlDecider(bundle);
  assert.equal(d.decide('DELETE FROM orders WHERE id = 1').decision, 'RequireApproval');
  assert.equal(d.decide('DROP TABLE orders').decision, 'Block');
  // many distinct shapes and texts: both caches turn over more than twice
  for (let i = 0; i < 40_000; i++) {
    const r = d.decide(i % 2 === 0 ? `SELECT c${String(i)} FROM orders WHERE id = ${String(i)}` : `SELECT * FROM t WHERE a = ${String(i)} AND b${String(i)} = 1`);
    assert.equal(r.decision, 'Allow');
  }
  assert.equal(d.decide('DELETE FROM orders WHERE id = 2').decision, 'RequireApproval', 'same shape, other literal, after eviction');
  assert.equal(d.decide('DROP TABLE orders').decision, 'Block', 'same text after eviction');
  assert.equal(d.decide('DELETE FROM orders WHERE id = 2 OR 1 = 1').decision, 'Block', 'a constant-true WHERE is another shape');
});

test('subjects: rules for another service account do not apply', () => {
  const bundle = compileBundle(exampleManifests(), { connection: 'orders-db', serviceAccount: 'someone-else' });
  assert.deepEqual(bundle.approvalRules, ['ops-shell']);
  assert.equal(new SqlDecider(bundle).decide('DROP TABLE orders').decision, 'Allow', 'defaultAction Allow of the example connection');
});

test('every class of every statement is one unit: an Allow for write does not cover destructive', () => {
  const bundle = bundleWith('Block', `    - name: writes
      match: { sql: { classes: [write, read] } }
      action: Allow
`);
  const d = new SqlDecider(bundle);
  assert.equal(d.decide('UPDATE t SET a = 1 WHERE id = 2').decision, 'Allow');
  const del = d.decide('DELETE FROM t');
  assert.equal(del.decision, 'Block');
  assert.match(del.message, /matches no rule and the defaultAction of connection db is Block/);
});

test('an Allow restricted to tables must cover every table the statement touches', () => {
  const bundle = bundleWith('Block', `    - name: safe
      match: { sql: { classes: [read], tables: ["public.safe_*"] } }
      action: Allow
`);
  const d = new SqlDecider(bundle);
  assert.equal(d.decide('SELECT * FROM safe_orders').decision, 'Allow');
  assert.equal(d.decide('SELECT * FROM safe_orders, secrets').decision, 'Block');
  assert.equal(d.decide('WITH safe_x AS (SELECT * FROM secrets) SELECT * FROM safe_x').decision, 'Block', 'a CTE name is not a table');
});

test('unparsable SQL matches every stopping rule and no Allow rule', () => {
  const bundle = bundleWith('Allow', `    - name: everything-read
      match: { sql: { classes: [read] } }
      action: Allow
    - name: hold-customers
      match: { sql: { classes: [write], tables: ["public.customers"] } }
      action: RequireApproval
      approval: { approvers: { groups: [dba] } }
`);
  assert.equal(new SqlDecider(bundle).decide('SELEC * FROM customers').decision, 'RequireApproval');
});

test('functions match by qualified glob', () => {
  const bundle = bundleWith('Allow', `    - name: no-sleep
      match: { sql: { functions: ["pg_catalog.pg_sleep*"] } }
      action: Block
      message: no sleeping
`);
  const d = new SqlDecider(bundle);
  assert.equal(d.decide('SELECT pg_sleep(10)').message, 'no sleeping');
  assert.equal(d.decide('SELECT 1').decision, 'Allow');
});

test('ssh: wrappers and obfuscations are seen through; unresolvable lines are never allowed', async () => {
  const bundle = compileBundle(exampleManifests(), { connection: 'bastion' });
  assert.equal((await decideShell(bundle, 'ls -la /var/log')).decision, 'Allow');
  const rm = await decideShell(bundle, "sudo env X=1 bash -c 'r''m -rf /'");
  assert.equal(rm.decision, 'Block');
  assert.equal(rm.message, 'this command is never run by agents on production');
  assert.equal((await decideShell(bundle, 'uptime; systemctl restart nginx')).decision, 'RequireApproval');
  assert.equal((await decideShell(bundle, 'whoami')).decision, 'RequireApproval', 'defaultAction of the example bastion');
  const hidden = await decideShell(bundle, 'echo cm0gLXJmIC8= | base64 -d | sh');
  assert.equal(hidden.decision, 'Block');
});

test('ssh: arguments known only at run time match every stopping rule of their program', async () => {
  const bundle = compileBundle(exampleManifests(), { connection: 'bastion' });
  for (const line of ['a=-rf; rm $a /', 'rm -r{f,} /', "bash -c 'rm \"$@\"' _ -rf /", 'echo / | xargs rm -rf']) {
    assert.equal((await decideShell(bundle, line)).decision, 'Block', line);
  }
  assert.equal((await decideShell(bundle, 'cat /etc/hostname')).decision, 'Allow', 'static commands are unaffected');
});

test('an unresolvable line with defaultAction Allow is still refused', async () => {
  const yaml = `apiVersion: airlock.dev/v1alpha1
kind: AgentConnection
metadata: { name: box, namespace: agents }
spec:
  protocol: ssh
  target: { host: 127.0.0.1, port: 22 }
  credentialsSecretRef: { name: creds }
  ssh: { hostKeyFingerprints: ["SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"] }
  agents: { serviceAccounts: [ops] }
  defaultAction: Allow
`;
  const bundle = compileBundle(manifests(yaml), { connection: 'box' });
  assert.equal((await decideShell(bundle, 'ls')).decision, 'Allow');
  const d = await decideShell(bundle, '$(curl -s x)');
  assert.equal(d.decision, 'Block');
  assert.match(d.message, /cannot be resolved statically/);
});

test('a missing connection and a bad pattern are precise errors', () => {
  assert.throws(() => compileBundle(exampleManifests(), { connection: 'nope' }), (e: unknown) => e instanceof PolicyError && e.code === 'ConnectionNotFound' && /AgentConnection "nope" not found/.test(e.message));
  const yaml = `${CONN.replace('DEFAULT', 'Allow')}---
apiVersion: airlock.dev/v1alpha1
kind: MaskingPolicy
metadata: { name: bad-re, namespace: agents }
spec:
  connectionSelector: {}
  rules:
    - name: broken
      match: { pattern: "(a" }
      action: { type: redact }
`;
  assert.throws(() => compileBundle(manifests(yaml), { connection: 'db' }), (e: unknown) => e instanceof PolicyError && e.code === 'InvalidPattern' && e.message.includes('bad-re/broken'));
});

test('label selectors follow Kubernetes semantics', () => {
  assert.equal(selectorMatches(undefined, { a: '1' }), false);
  assert.equal(selectorMatches({}, {}), true);
  assert.equal(selectorMatches({ matchLabels: { a: '1' } }, { a: '1', b: '2' }), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '3' }), false);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {}), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: '' }), false);
});

test('durations', () => {
  assert.equal(parseDuration('10m'), 600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('500ms'), 0.5);
  assert.throws(() => parseDuration('10 minutes'), PolicyError);
});

test('unknown tables are every table: a stopping rule restricted to tables matches DO, CALL, EXECUTE and unknown functions', () => {
  const bundle = bundleWith('Allow', `    - name: hold-customers
      match: { sql: { classes: [write, opaque], tables: ["public.customers"] } }
      action: RequireApproval
      approval: { approvers: { groups: [dba] } }
`);
  const d = new SqlDecider(bundle);
  for (const sql of ["DO $$ BEGIN DELETE FROM customers; END $$", 'CALL purge()', 'EXECUTE wipe', 'SELECT public.purge_customers()', 'SELECT * FROM orders WHERE x <<< 1']) {
    const r = d.decide(sql);
    assert.equal(r.decision, 'RequireApproval', sql);
    assert.deepEqual(r.rules, ['guard/hold-customers'], sql);
    assert.deepEqual(r.why, ['tables unknown (opaque statement): matched as touching every table and calling every function'], sql);
  }
  // known tables that the rule does not name still fall to the default, without a why
  const known = d.decide('INSERT INTO orders VALUES (1)');
  assert.equal(known.decision, 'Allow');
  assert.equal(known.why, undefined);
});

test('unknown tables never satisfy an Allow restricted to tables; unknown functions match function-restricted stopping rules', () => {
  const allow = new SqlDecider(
    bundleWith('Block', `    - name: safe
      match: { sql: { classes: [read, opaque], tables: ["public.safe_*"] } }
      action: Allow
`),
  );
  assert.equal(allow.decide('SELECT * FROM safe_orders').decision, 'Allow');
  assert.equal(allow.decide('SELECT public.anything() FROM safe_orders').decision, 'Block', 'the function may read any table');
  assert.equal(allow.decide("DO $$ BEGIN PERFORM 1; END $$").decision, 'Block');
  const fns = new SqlDecider(
    bundleWith('Allow', `    - name: no-kill
      match: { sql: { functions: ["pg_catalog.pg_terminate_backend"] } }
      action: Block
      message: no killing
`),
  );
  assert.equal(fns.decide('SELECT pg_terminate_backend(1)').decision, 'Block');
  assert.equal(fns.decide('SELECT public.helper(1)').message, 'no killing', 'an unknown function may call it');
  assert.equal(fns.decide('SELECT lower(name) FROM t').decision, 'Allow', 'known built-ins do not');
});

test('unknown agent identity: the stopping rules written for service accounts apply, their Allow rules do not', () => {
  const unknown = compileBundle(exampleManifests(), { connection: 'orders-db' });
  assert.deepEqual(unknown.approvalRules, ['ops-shell', 'prod-guardrails']);
  const drop = new SqlDecider(unknown).decide('DROP TABLE orders');
  assert.equal(drop.decision, 'Block');
  assert.deepEqual(drop.rules, ['prod-guardrails/never-destroy']);
  assert.deepEqual(drop.why, ['agent identity unknown: rule prod-guardrails/never-destroy (for service accounts planner) applies']);
  const yaml = `${CONN.replace('DEFAULT', 'Block')}---
apiVersion: airlock.dev/v1alpha1
kind: ApprovalRule
metadata: { name: planner-only, namespace: agents }
spec:
  connectionSelector: { matchLabels: { env: prod } }
  subjects: { serviceAccounts: [planner] }
  rules:
    - name: planner-writes
      match: { sql: { classes: [write] } }
      action: Allow
`;
  assert.equal(new SqlDecider(compileBundle(manifests(yaml), { connection: 'db', serviceAccount: 'planner' })).decide('INSERT INTO t VALUES (1)').decision, 'Allow');
  const anyone = new SqlDecider(compileBundle(manifests(yaml), { connection: 'db' })).decide('INSERT INTO t VALUES (1)');
  assert.equal(anyone.decision, 'Block', 'an unknown agent is granted nothing granted to planner');
  assert.match(anyone.message, /matches no rule/);
});

test('statements that change how the server reads text are blocked whatever the rules allow', () => {
  const d = new SqlDecider(
    bundleWith('Allow', `    - name: allow-all
      match: { sql: { classes: [read, session, write, admin, privilege, ddl, opaque, destructive, export] } }
      action: Allow
`),
  );
  for (const sql of [
    "SET client_encoding TO 'SJIS'",
    "SET NAMES 'BIG5'",
    "SET LOCAL Client_Encoding = 'GBK'",
    'SET standard_conforming_strings = off',
    'SET backslash_quote = on',
    'RESET client_encoding',
    "SELECT set_config('client_encoding', 'SJIS', false)",
    "SELECT 1 FROM pg_catalog.set_config('standard_conforming_strings', 'off', true)",
    "SELECT set_config(current_setting('x.name'), 'SJIS', false)",
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    "ALTER ROLE agent SET client_encoding = 'SJIS'",
    "ALTER ROLE agent IN DATABASE app RESET standard_conforming_strings",
    'ALTER DATABASE app SET standard_conforming_strings = off',
    "ALTER SYSTEM SET client_encoding = 'SJIS'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET client_encoding = 'SJIS' AS 'SELECT 1'",
    'ALTER FUNCTION f() SET standard_conforming_strings = off',
    "PREPARE p AS SELECT set_config('client_encoding', 'SJIS', false)",
    "SELECT 1; SET client_encoding = 'SJIS'",
  ]) {
    const r = d.decide(sql);
    assert.equal(r.decision, 'Block', sql);
    assert.match(r.message, /decides how the server reads statement text/, sql);
    assert.deepEqual(r.rules, [], sql);
  }
  for (const sql of ['RESET ALL', 'DISCARD ALL', "SET application_name = 'x'", 'SET escape_string_warning = off', "SELECT set_config('application_name', 'x', false)"]) {
    assert.equal(d.decide(sql).decision, 'Allow', `${sql}: RESET ALL and DISCARD ALL go back to the pinned startup values`);
  }
});

test("a session's search_path: an unqualified table counts as the table of every schema on the path", () => {
  const bundle = bundleWith('Allow', `    - name: sales-held
      match: { sql: { classes: [write], tables: ["sales.*"] } }
      action: RequireApproval
      approval: { approvers: { groups: [dba] } }
`);
  const plain = new SqlDecider(bundle);
  assert.equal(plain.decide('INSERT INTO orders VALUES (1)').decision, 'Allow', 'default path: public.orders');
  const sales = new SqlDecider(bundle, { searchPath: ['sales', 'public'] });
  const held = sales.decide('INSERT INTO orders VALUES (1)');
  assert.equal(held.decision, 'RequireApproval', 'orders may be sales.orders');
  assert.deepEqual(held.rules, ['guard/sales-held']);
  assert.equal(sales.decide('INSERT INTO public.orders VALUES (1)').decision, 'Allow', 'a qualified name is that table');
  const strict = new SqlDecider(
    bundleWith('Block', `    - name: public-reads
      match: { sql: { classes: [read], tables: ["public.*"] } }
      action: Allow
`),
    { searchPath: ['sales', 'public'] },
  );
  assert.equal(strict.decide('SELECT * FROM orders').decision, 'Block', 'an Allow for public.* does not cover sales.orders');
  assert.equal(strict.decide('SELECT * FROM public.orders').decision, 'Allow');
  assert.equal(strict.decide('SELECT * FROM pg_class').decision, 'Block', 'pg_* is pg_catalog, not public');
});

test('the digest is the same for every agent: rules scoped to other service accounts are hashed too', () => {
  const planner = compileBundle(exampleManifests(), { connection: 'orders-db', serviceAccount: 'planner' });
  const other = compileBundle(exampleManifests(), { connection: 'orders-db', serviceAccount: 'someone-else' });
  const operator = compileBundle(exampleManifests(), { connection: 'orders-db' });
  assert.notDeepEqual(planner.approvalRules, other.approvalRules, 'the example scopes a rule to service accounts');
  assert.equal(planner.digest, operator.digest);
  assert.equal(other.digest, operator.digest);
});
