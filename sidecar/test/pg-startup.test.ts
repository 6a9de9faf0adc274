import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PINNED, pinnedViolation, searchPathSchemas, upstreamParameters } from '../src/pg/startup.ts';
import { readsAlike } from '../src/pg/session.ts';
import { SidecarError } from '../src/errors.ts';

function refused(params: Record<string, string>, message: RegExp): void {
  assert.throws(
    () => upstreamParameters(params),
    (err: unknown) => err instanceof SidecarError && err.code === 'NotPermitted' && message.test(err.message),
    JSON.stringify(params),
  );
}

test('the lexing settings are pinned last; UTF-8 spellings and SQL_ASCII are accepted as UTF8', () => {
  for (const enc of ['UTF8', 'utf8', 'UTF-8', 'Unicode', 'utf_8', 'SQL_ASCII', 'sql-ascii']) {
    assert.deepEqual(upstreamParameters({ user: 'a', database: 'd', client_encoding: enc }), { client_encoding: 'UTF8', standard_conforming_strings: 'on' }, enc);
  }
  assert.deepEqual(upstreamParameters({ user: 'a', application_name: 'psql', DateStyle: 'ISO', standard_conforming_strings: 'true', _pq_x: '1' }), {
    application_name: 'psql',
    datestyle: 'ISO',
    _pq_x: '1',
    ...PINNED,
  });
});

test('other client encodings, standard strings off and every channel that could set them are refused by name', () => {
  for (const enc of ['SJIS', 'BIG5', 'GBK', 'GB18030', 'UHC', 'JOHAB', 'SHIFT_JIS_2004', 'LATIN1', 'WIN1252', 'EUC_JP', 'auto', '']) {
    refused({ user: 'a', client_encoding: enc }, new RegExp(`client_encoding "${enc}" is not supported`));
  }
  refused({ user: 'a', CLIENT_ENCODING: 'SJIS' }, /client_encoding "SJIS"/);
  refused({ user: 'a', standard_conforming_strings: 'off' }, /standard_conforming_strings "off"/);
  refused({ user: 'a', Standard_Conforming_Strings: 'of' }, /standard_conforming_strings "of"/);
  refused({ user: 'a', backslash_quote: 'on' }, /changes how PostgreSQL reads statement text/);
  refused({ user: 'a', options: '-c client_encoding=SJIS' }, /"options" is not supported/);
  refused({ user: 'a', role: 'postgres' }, /class privilege/);
  refused({ user: 'a', session_authorization: 'postgres' }, /class privilege/);
  refused({ user: 'a', search_path: '"unterminated' }, /search_path ""unterminated" is not supported through Airlock: it cannot be read/);
  refused({ user: 'a', search_path: 'a,,b' }, /cannot be read/);
  refused({ user: 'a', replication: 'database' }, /replication/);
  refused({ user: 'a', default_transaction_read_only: 'off' }, /only "on" is passed/);
  refused({ user: 'a', session_replication_role: 'replica' }, /class admin/);
  assert.deepEqual(upstreamParameters({ user: 'a', options: '  ', replication: 'false', default_transaction_read_only: 'on' }), { default_transaction_read_only: 'on', ...PINNED });
});

test('a pinned setting reported with another value is a violation; other settings are not', () => {
  assert.equal(pinnedViolation('client_encoding', 'UTF8'), undefined);
  assert.equal(pinnedViolation('standard_conforming_strings', 'on'), undefined);
  assert.match(pinnedViolation('client_encoding', 'SJIS') ?? '', /client_encoding became "SJIS"/);
  assert.match(pinnedViolation('standard_conforming_strings', 'off') ?? '', /standard_conforming_strings became "off"/);
  assert.equal(pinnedViolation('application_name', 'anything'), undefined);
});

test('property: whatever the agent sends, what goes upstream pins the lexing settings, or the packet is refused', () => {
  const names = fc.constantFrom('client_encoding', 'CLIENT_ENCODING', 'standard_conforming_strings', 'options', 'application_name', 'TimeZone', 'backslash_quote', 'role', 'x.y');
  fc.assert(
    fc.property(fc.dictionary(names, fc.string({ maxLength: 12 })), (params) => {
      let out: Record<string, string>;
      try {
        out = upstreamParameters({ user: 'a', ...params });
      } catch (err) {
        return err instanceof SidecarError && err.code === 'NotPermitted';
      }
      const lexing = Object.keys(out).filter((k) => ['client_encoding', 'standard_conforming_strings', 'backslash_quote', 'options', 'role'].includes(k.toLowerCase()));
      return lexing.every((k) => k === 'client_encoding' || k === 'standard_conforming_strings') && out['client_encoding'] === 'UTF8' && out['standard_conforming_strings'] === 'on';
    }),
    { numRuns: 2000 },
  );
});

test('property: a text that reads alike has only ASCII bytes and no backslash, the bytes every client encoding reads alike', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
      const bytes = Buffer.from(s, 'utf8');
      const plain = bytes.every((b) => b < 0x80 && b !== 0x5c);
      return readsAlike(s) === plain;
    }),
    { numRuns: 5000 },
  );
  assert.equal(readsAlike("SELECT 'a' FROM t WHERE x = $1"), true);
  assert.equal(readsAlike("SELECT 'é'"), false);
  assert.equal(readsAlike("SELECT 'a\\'"), false);
});

test('search_path is passed and read as PostgreSQL reads it', () => {
  assert.deepEqual(upstreamParameters({ user: 'a', search_path: 'sales, public' }), { search_path: 'sales, public', ...PINNED });
  assert.deepEqual(searchPathSchemas('"$user", Sales ,"My ""Schema""",public', 'planner_ro'), ['planner_ro', 'sales', 'My "Schema"', 'public']);
  assert.deepEqual(searchPathSchemas('', 'u'), []);
  assert.equal(searchPathSchemas('a b', 'u'), undefined);
  assert.equal(searchPathSchemas('a,', 'u'), undefined);
  assert.equal(searchPathSchemas('""', 'u'), undefined);
});
