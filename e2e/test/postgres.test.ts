import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type Postgres } from '../src/postgres.ts';

let pg: Postgres;

before(async () => {
  pg = await startPostgres();
});

after(async () => {
  await pg.stop();
});

test('the harness runs a real PostgreSQL on loopback with SCRAM authentication', () => {
  const r = pg.psql('SELECT version(); SHOW password_encryption; SHOW listen_addresses');
  assert.equal(r.code, 0, r.stderr);
  const [version, enc, listen] = r.stdout.trim().split('\n');
  assert.match(version ?? '', /^PostgreSQL \d+/);
  assert.equal(enc, 'scram-sha-256');
  assert.equal(listen, '127.0.0.1');
  const hba = pg.psql("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' LIMIT 1");
  assert.equal(hba.stdout.trim(), 'scram-sha-256');
});
