import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DETECTORS, type Detector } from '@airlock/api';
import { PolicyError } from '../src/errors.ts';
import { detect } from '../src/mask/detectors.ts';
import { REDACTED, compileMasker, type Masker, type MaskRuleSpec } from '../src/mask/masker.ts';

const KEY = new TextEncoder().encode('test-hash-key');
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const jwtOf = (header: string, payload: string, sig = 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'): string =>
  `${b64url(header)}.${b64url(payload)}${sig === '' ? '.' : `.${sig}`}`;
const JWT = jwtOf('{"alg":"HS256","typ":"JWT"}', '{"sub":"1234567890","name":"John Doe","iat":1516239022}');
const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq4\nq0Zt9Lw==\n-----END RSA PRIVATE KEY-----';
const GHP = `ghp_${'aB3'.repeat(12)}`;
const GH_PAT = `github_pat_${'11ABCDEFG0'.repeat(2)}01_${'xY9'.repeat(19)}Zz`;

type Action = MaskRuleSpec['action']['type'];
const rule = (name: string, match: MaskRuleSpec['match'], type: Action = 'redact', keep: { keepFirst?: number; keepLast?: number } = {}): MaskRuleSpec => ({
  name,
  match,
  action: { type, ...keep },
});
const everything = (type: Action = 'redact'): Masker => compileMasker([rule('all', { detectors: DETECTORS }, type)], KEY);

/** The text of each span detect() finds. */
const found = (text: string, d: Detector): string[] => detect(text, d).map((s) => text.slice(s.start, s.end));
/** The found spans, without those inside a longer found span (a phone's national part, an IPv6's IPv4 tail). */
const outermost = (text: string, d: Detector): string[] => {
  const spans = detect(text, d);
  return spans.filter((s) => !spans.some((o) => o !== s && o.start <= s.start && s.end <= o.end)).map((s) => text.slice(s.start, s.end));
};

// ---------------------------------------------------------------------------------------------
// Detector tables: each valid value is found exactly (also inside a sentence); invalid ones not.

const TABLE: Record<Detector, { valid: string[]; invalid: string[] }> = {
  email: {
    valid: ['john.doe@example.com', 'a+tag@sub.example.co.uk', 'x_y%z@xn--bcher-kva.de', 'josé@exämple.de', 'O\'Brien@example.org'.slice(2)],
    invalid: ['john@localhost', 'john@example.c', '@example.com', 'john@-example.com', 'john@example.123', 'not an email @ all'],
  },
  credit_card: {
    valid: [
      '4111 1111 1111 1111', '4111111111111111', '4111-1111-1111-1111', '5555 5555 5555 4444', '2223003122003222',
      '378282246310005', '3782 822463 10005', '6011111111111117', '6500000000000002', '3530111333300000',
      '30569309025904', '4222222222222',
    ],
    invalid: [
      '4111 1111 1111 1112', '4111111111111112', '1234567812345670', '0000 0000 0000 0000', '41111111111111111111',
      '5555555555554444555', '4111  1111 1111 1111',
    ],
  },
  iban: {
    valid: [
      'GB82 WEST 1234 5698 7654 32', 'GB82WEST12345698765432', 'DE89 3704 0044 0532 0130 00', 'FR14 2004 1010 0505 0001 3M02 606',
      'NL91ABNA0417164300', 'BE68539007547034', 'CH9300762011623852957', 'gb82west12345698765432',
    ],
    invalid: [
      'GB82 WEST 1234 5698 7654 33', 'GB83WEST12345698765432', 'GB82WEST1234569876543', 'XX82WEST12345698765432',
      'GB82 WEST 1234 5698 7654 3', 'GB82 WEST12 3456 9876 5432',
    ],
  },
  us_ssn: {
    valid: ['078-05-1120', '123-45-6789', '899-99-9999'],
    invalid: ['000-12-3456', '666-12-3456', '900-12-3456', '999-12-3456', '123-00-4567', '123-45-0000', '123456789', '12-345-6789', '123-45-67890'],
  },
  phone: {
    valid: ['+1 (555) 123-4567', '+44 20 7946 0958', '+4915112345678', '+33 1-23-45-67-89', '(555) 123-4567', '(555)123-4567', '555-123-4567', '555.123.4567'],
    invalid: ['2024-01-15', '12345678901', '+12345', '+0123456789', '+1234567890123456789', '155-123-4567', '10.20.30.40', '555-1234', '1.5+12345678'],
  },
  ip_address: {
    valid: [
      '10.0.0.1', '255.255.255.255', '0.0.0.0', '::1', '2001:db8::1', 'fe80::1ff:fe23:4567:890a', '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
      '::ffff:192.0.2.1', '2001:db8::',
    ],
    invalid: [
      '256.1.1.1', '1.2.3', '1.2.3.4.5', '1.2.3.256', '12:30:45', 'std::vector', '1:2:3:4:5:6:7:8:9', 'gggg::1', '::',
      '00:1a:2b:3c:4d:5e', '2001:db8::1::2', '12345::1',
    ],
  },
  jwt: {
    valid: [JWT, jwtOf('{"alg":"none"}', '{"sub":"x"}', ''), jwtOf('{\n "alg": "RS256"\n}', '{"a":1}')],
    invalid: [
      jwtOf('{"typ":"JWT"}', '{"sub":"x"}'), // no alg
      jwtOf('{"alg":"HS256"}', '[1,2]'), // payload not an object
      `${b64url('{"alg":"HS256"')}.${b64url('{"sub":"x"}')}.sig`, // header not JSON
      'eyJhbGciOiJIUzI1NiJ9', // one segment
      'version 1.2.3 e.g. ex.eyes',
    ],
  },
  aws_access_key: {
    valid: ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A', 'AROAJ2UCCR6DPCEXAMPL'],
    invalid: ['AKIAIOSFODNN7EXAMPL', 'ABCDIOSFODNN7EXAMPLE', 'AKIAiosfodnn7example', 'AKIAIOSFODNN1EXAMPLE'],
  },
  github_token: {
    valid: [GHP, `gho_${'z'.repeat(36)}`, `ghs_${'0'.repeat(36)}`, GH_PAT],
    invalid: [`ghp_${'a'.repeat(35)}`, `ghx_${'a'.repeat(36)}`, `github_pat_${'a'.repeat(40)}`],
  },
  slack_token: {
    valid: ['xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', 'xoxp-1234567890-1234567890-1234567890-abcdef0123', 'xoxa-2-1234567890'],
    invalid: ['xoxq-1234567890-abc', 'xoxb-123', 'xoxb-12345678'],
  },
  private_key: {
    valid: [
      PEM,
      '-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----',
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----',
    ],
    invalid: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----', 'BEGIN PRIVATE KEY'],
  },
  url_credentials: { valid: [], invalid: ['https://example.com/path@x', 'https://user@host/', 'mailto:a@b.com', 'ssh://:@host'] },
  bearer_token: { valid: [], invalid: ['Bearer short', 'Bearer\nabcdefghijklmnopqrstuvwxyz', 'Bearer:abcdefghijklmnopqrstuvwxyz'] },
};

for (const d of DETECTORS) {
  test(`detector ${d}: valid values are found exactly, invalid ones are not`, () => {
    for (const v of TABLE[d].valid) {
      assert.deepEqual(outermost(v, d), [v], `${d} alone: ${JSON.stringify(v)}`);
      const sentence = `see: ${v}, then "${v}".\n(${v})`;
      const spans = outermost(sentence, d);
      assert.equal(spans.filter((s) => s === v).length, 3, `${d} in a sentence: ${JSON.stringify(v)} → ${JSON.stringify(spans)}`);
    }
    for (const v of TABLE[d].invalid) {
      assert.deepEqual(found(` ${v} `, d), [], `${d} must not find ${JSON.stringify(v)}`);
    }
  });
}

test('url_credentials finds only the password, bearer_token only the token', () => {
  const cases: [string, string][] = [
    ['postgres://admin:s3cret@db.example.com:5432/app', 's3cret'],
    ['redis://:pw0rd@cache:6379', 'pw0rd'],
    ['DATABASE_URL="mysql://u:p@ss:w@rd@host/db"', 'p@ss:w@rd'],
    ['see https://bob:hunter2@example.com/x?y=1#z.', 'hunter2'],
  ];
  for (const [text, password] of cases) assert.deepEqual(found(text, 'url_credentials'), [password], text);
  const token = 'abcDEF0123456789-_.~+/xyz==';
  assert.deepEqual(found(`Authorization: Bearer ${token}`, 'bearer_token'), [token]);
  assert.deepEqual(found(`authorization: bearer\t${JWT}\r\n`, 'bearer_token'), [JWT]);
  assert.deepEqual(found(`{"token":"Bearer ${token}"}`, 'bearer_token'), [token]);
});

test('values glued to letters, `_`, `=` or other word characters are found (documented boundary rule)', () => {
  const cases: [string, Detector, string[]][] = [
    ['x4111111111111111y', 'credit_card', ['4111111111111111']],
    ['x4539148803436467', 'credit_card', ['4539148803436467']],
    ['card4539-1488-0343-6467end', 'credit_card', ['4539-1488-0343-6467']],
    ['id_4111111111111111', 'credit_card', ['4111111111111111']],
    ['pan=4111 1111 1111 1111_x', 'credit_card', ['4111 1111 1111 1111']],
    ['card:4111111111111111.', 'credit_card', ['4111111111111111']],
    ['ibanDE89370400440532013000', 'iban', ['DE89370400440532013000']],
    ['ibanDE89370400440532013000end', 'iban', ['DE89370400440532013000']],
    ['ibanDE89370400440532013000123', 'iban', ['DE89370400440532013000']],
    ['1AKIAIOSFODNN7EXAMPLE', 'aws_access_key', ['AKIAIOSFODNN7EXAMPLE']],
    ['xGB82WEST12345698765432y', 'iban', ['GB82WEST12345698765432']],
    ['acct_DE89 3704 0044 0532 0130 00x', 'iban', ['DE89 3704 0044 0532 0130 00']],
    ['a078-05-1120b', 'us_ssn', ['078-05-1120']],
    ['tel+4915112345678x', 'phone', ['+4915112345678']],
    ['call555-123-4567now', 'phone', ['555-123-4567']],
    ['host10.0.0.1x', 'ip_address', ['10.0.0.1']],
    ['xjohn@example.com1', 'email', ['xjohn@example.com']],
    ['xAKIAIOSFODNN7EXAMPLE', 'aws_access_key', ['AKIAIOSFODNN7EXAMPLE']],
    ['key_AKIAIOSFODNN7EXAMPLEZZ', 'aws_access_key', ['AKIAIOSFODNN7EXAMPLE']],
    ['AWS_KEY=AKIAIOSFODNN7EXAMPLE', 'aws_access_key', ['AKIAIOSFODNN7EXAMPLE']],
    [`TOKEN_${GHP}_end`, 'github_token', [GHP]],
    [`x${GHP}`, 'github_token', [GHP]],
    ['SLACKxoxb-123456789012-1234567890123-AbCd', 'slack_token', ['xoxb-123456789012-1234567890123-AbCd']],
    [`authBearer ${'a1'.repeat(10)}`, 'bearer_token', ['a1'.repeat(10)]],
    [`jwt=x${JWT}`, 'jwt', [JWT]],
    [`tok${JWT}`, 'jwt', [JWT]],
    [`a-${JWT}_`, 'jwt', [`${JWT}_`]],
  ];
  for (const [text, d, want] of cases) assert.deepEqual(outermost(text, d), want, `${d} in ${JSON.stringify(text)}`);
});

test('what would continue a value still stops it: digits next to numbers, code next to IPv6', () => {
  assert.deepEqual(found('14111111111111111', 'credit_card'), []); // a 17-digit number
  assert.deepEqual(found('41111111111111110', 'credit_card'), []);
  assert.deepEqual(found('1078-05-1120', 'us_ssn'), []);
  assert.deepEqual(found('1+4915112345678', 'phone'), []);
  assert.deepEqual(found('v1.10.0.0.1', 'ip_address'), []);
  assert.deepEqual(found('1DE89370400440532013001', 'iban'), []); // the mod-97 check still applies
  assert.deepEqual(found('std::vector<int> Foo::Bar std::cout', 'ip_address'), []);
  assert.deepEqual(found('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'credit_card'), []);
});

test('card digits are checked at group boundaries, so neighbouring numbers do not hide a card', () => {
  assert.deepEqual(found('ref 12 4111 1111 1111 1111 qty 2', 'credit_card'), ['4111 1111 1111 1111']);
  assert.deepEqual(found('2024 4111 1111 1111 1111', 'credit_card'), ['4111 1111 1111 1111']);
  assert.deepEqual(found('4111 1111 1111 1111 2', 'credit_card'), ['4111 1111 1111 1111']);
  assert.deepEqual(found('phone +44 20 7946 0958 2024', 'phone'), ['+44 20 7946 0958']);
});

test('an unterminated private key block runs to the end of the text', () => {
  const text = 'key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\nmore';
  assert.deepEqual(found(text, 'private_key'), [text.slice(5)]);
  const mismatched = '-----BEGIN RSA PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\ntail';
  assert.deepEqual(found(mismatched, 'private_key'), [mismatched]);
});

test('benign text is untouched: same string, nothing masked', () => {
  const m = everything();
  const texts = [
    'The quick brown fox jumps over the lazy dog. Version 1.2.3, build 2024-01-15T10:00:00Z, took 1234ms.',
    'total 48\ndrwxr-xr-x  2 root root 4096 Jan 15 10:00 .\n-rw-r--r--  1 root root  220 Jan 15 10:00 .bashrc\n',
    'SELECT id, name FROM users WHERE id = 12345 AND created > now() - interval \'2 days\';',
    'PID 12345 rss=1048576 order #987654321 sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '',
  ];
  for (const t of texts) {
    const r = m.maskText(t);
    assert.equal(r.masked, 0, t);
    assert.equal(r.text, t);
    const v = m.maskValue('public.t.c', t);
    assert.equal(v.value, t);
    assert.deepEqual([v.masked, v.rules], [0, []]);
  }
});

// ---------------------------------------------------------------------------------------------
// Masker semantics

test('redact replaces each detected span with the marker and keeps the rest byte-identical', () => {
  const m = compileMasker([rule('pii', { detectors: ['email', 'us_ssn'] })], KEY);
  const r = m.maskText('mail john@example.com, ssn 078-05-1120.');
  assert.deepEqual(r, { text: `mail ${REDACTED}, ssn ${REDACTED}.`, masked: 2 });
  assert.deepEqual(m.maskValue(undefined, 'to: john@example.com'), { value: `to: ${REDACTED}`, masked: 1, rules: ['pii'] });
});

test('partial keeps keepFirst/keepLast characters, stars the rest, never the whole value', () => {
  const m = compileMasker(
    [
      rule('card', { detectors: ['credit_card'] }, 'partial', { keepLast: 4 }),
      rule('mail', { detectors: ['email'] }, 'partial', { keepFirst: 2, keepLast: 4 }),
      rule('short', { columns: ['public.users.pin'] }, 'partial', { keepFirst: 2, keepLast: 2 }),
      rule('emoji', { columns: ['public.users.nick'] }, 'partial', { keepFirst: 1 }),
    ],
    KEY,
  );
  assert.equal(m.maskText('card 4111 1111 1111 1111 ok').text, 'card ***************1111 ok');
  assert.equal(m.maskText('jo@example.com').text, 'jo********.com');
  assert.equal(m.maskValue('public.users.pin', '1234').value, '****');
  assert.equal(m.maskValue('public.users.pin', '12345').value, '12*45');
  assert.equal(m.maskValue('public.users.nick', '😀😀x').value, '😀**');
  assert.equal(m.maskValue('public.users.pin', '').value, '');
});

test('hash is hmac: + 16 hex chars, deterministic, keyed, and distinct per value', () => {
  const rules = [rule('h', { detectors: ['email'] }, 'hash'), rule('hc', { columns: ['*.customers.id'] }, 'hash')];
  const a = compileMasker(rules, KEY);
  const b = compileMasker(rules, KEY);
  const other = compileMasker(rules, new TextEncoder().encode('another key'));
  const v1 = a.maskValue(undefined, 'x john@example.com y').value;
  assert.match(v1 ?? '', /^x hmac:[0-9a-f]{16} y$/);
  assert.equal(b.maskValue(undefined, 'x john@example.com y').value, v1, 'same key, same hash (joins still work)');
  assert.notEqual(other.maskValue(undefined, 'x john@example.com y').value, v1, 'the key matters');
  assert.notEqual(a.maskValue(undefined, 'x jane@example.com y').value, v1, 'the value matters');
  assert.equal(a.maskValue('public.customers.id', '42').value, a.maskValue('s.customers.id', '42').value);
  assert.match(a.maskValue('public.customers.id', '').value ?? '', /^hmac:[0-9a-f]{16}$/);
});

test('null: the whole value becomes SQL NULL; free text shows the marker', () => {
  const m = compileMasker([rule('n', { detectors: ['us_ssn'] }, 'null'), rule('col', { columns: ['public.users.secret'] }, 'null')], KEY);
  assert.deepEqual(m.maskValue('public.users.notes', 'ssn 078-05-1120 on file'), { value: null, masked: 1, rules: ['n'] });
  assert.deepEqual(m.maskValue('public.users.secret', 'anything'), { value: null, masked: 1, rules: ['col'] });
  assert.deepEqual(m.maskValue('public.users.secret', ''), { value: null, masked: 1, rules: ['col'] });
  assert.deepEqual(m.maskText('ssn 078-05-1120 on file'), { text: `ssn ${REDACTED} on file`, masked: 1 });
  assert.deepEqual(m.maskValue('public.users.notes', 'nothing here'), { value: 'nothing here', masked: 0, rules: [] });
});

test('overlapping spans merge and the union takes the strongest action (null > redact > hash > partial)', () => {
  const text = 'contact secret-john@example.com now';
  const partialMail = rule('mail', { detectors: ['email'] }, 'partial', { keepFirst: 1 });
  const hashWord = rule('word', { pattern: 'secret-[a-z]+' }, 'hash');
  const m1 = compileMasker([partialMail, hashWord], KEY);
  // email "secret-john@example.com" and pattern "secret-john" overlap: one hashed union
  const r1 = m1.maskValue(undefined, text);
  assert.match(r1.value ?? '', /^contact hmac:[0-9a-f]{16} now$/);
  assert.deepEqual([r1.masked, r1.rules], [1, ['mail', 'word']]);
  const m2 = compileMasker([partialMail, hashWord, rule('red', { pattern: 'n@ex' })], KEY);
  assert.deepEqual(m2.maskValue(undefined, text), { value: `contact ${REDACTED} now`, masked: 1, rules: ['mail', 'word', 'red'] });
  const m3 = compileMasker([rule('red', { pattern: 'john' }), rule('nul', { pattern: 'example' }, 'null')], KEY);
  assert.deepEqual(m3.maskValue(undefined, text), { value: null, masked: 2, rules: ['red', 'nul'] });
  // the weaker partial never reveals more than the strictest partial rule would
  const m4 = compileMasker(
    [rule('a', { detectors: ['email'] }, 'partial', { keepFirst: 4, keepLast: 1 }), rule('b', { pattern: 'john@' }, 'partial', { keepFirst: 2, keepLast: 3 })],
    KEY,
  );
  assert.equal(m4.maskValue(undefined, 'john@example.com').value, 'jo*************m');
  // adjacent (non-overlapping) spans stay separate
  const m5 = compileMasker([rule('x', { pattern: 'ab' }), rule('y', { pattern: 'cd' }, 'hash')], KEY);
  const r5 = m5.maskValue(undefined, 'abcd');
  assert.match(r5.value ?? '', /^\[REDACTED\]hmac:[0-9a-f]{16}$/);
  assert.equal(r5.masked, 2);
});

test('a whole-value match and spans in the same value: strongest action over the whole value', () => {
  const m = compileMasker(
    [rule('col', { columns: ['*.users.email'] }, 'partial', { keepFirst: 2 }), rule('ssn', { detectors: ['us_ssn'] }), rule('mail', { detectors: ['email'] }, 'hash')],
    KEY,
  );
  assert.deepEqual(m.maskValue('public.users.email', 'zz 078-05-1120'), { value: REDACTED, masked: 1, rules: ['col', 'ssn'] });
  assert.match(m.maskValue('public.users.email', 'a@example.com').value ?? '', /^hmac:[0-9a-f]{16}$/);
  assert.deepEqual(m.maskValue('public.users.email', 'plain'), { value: 'pl***', masked: 1, rules: ['col'] });
});

test('column globs: * within one name part, ? one character, case-sensitive', () => {
  const m = compileMasker(
    [rule('a', { columns: ['*.customers.email'] }), rule('b', { columns: ['public.users.*'] }), rule('c', { columns: ['s?.t.c*de'] })],
    KEY,
  );
  const masks = (col: string | undefined): boolean => m.forColumn(col).canMatch && m.maskValue(col, 'v').value === REDACTED;
  assert.ok(masks('public.customers.email'));
  assert.ok(masks('crm.customers.email'));
  assert.ok(!masks('a.b.customers.email'));
  assert.ok(!masks('customers.email'));
  assert.ok(!masks('public.customers.emails'));
  assert.ok(!masks('public.Customers.email'));
  assert.ok(masks('public.users.password'));
  assert.ok(!masks('public.users'));
  assert.ok(!masks('other.users.password'));
  assert.ok(masks('s1.t.code'));
  assert.ok(masks('s1.t.cde'));
  assert.ok(masks('s1.t.c-x-de'));
  assert.ok(!masks('s.t.code'));
  assert.ok(!masks('s12.t.code'));
  assert.ok(!masks(undefined));
  // the same answer the second time (plans are cached per column)
  assert.ok(masks('public.customers.email'));
  assert.ok(!masks('a.b.customers.email'));
});

test('columns + detectors: only the detected spans, only in matching columns', () => {
  const m = compileMasker([rule('notes', { columns: ['*.*.notes'], detectors: ['email', 'phone'] })], KEY);
  assert.deepEqual(m.maskValue('public.orders.notes', 'call 555-123-4567 or a@b.io'), {
    value: `call ${REDACTED} or ${REDACTED}`,
    masked: 2,
    rules: ['notes'],
  });
  assert.equal(m.maskValue('public.orders.comment', 'a@b.io').value, 'a@b.io');
  assert.equal(m.maskValue('public.orders.notes', 'no contact').value, 'no contact');
  assert.equal(m.maskText('a@b.io').text, 'a@b.io', 'column rules never apply to free text');
  assert.equal(m.forColumn('public.orders.comment').canMatch, false);
  assert.equal(m.forColumn('public.orders.notes').canMatch, true);
});

test('columns + pattern, and several detectors/patterns in one match (any of them)', () => {
  const m = compileMasker(
    [rule('p', { columns: ['public.t.*'], pattern: 'tok_[0-9]+' }), rule('any', { detectors: ['us_ssn', 'aws_access_key'] }, 'hash')],
    KEY,
  );
  assert.equal(m.maskValue('public.t.x', 'a tok_123 b').value, `a ${REDACTED} b`);
  assert.equal(m.maskValue('public.u.x', 'a tok_123 b').value, 'a tok_123 b');
  assert.match(m.maskText('078-05-1120 AKIAIOSFODNN7EXAMPLE').text, /^hmac:[0-9a-f]{16} hmac:[0-9a-f]{16}$/);
});

test('detectors and patterns without columns apply to every value and to free text', () => {
  const m = compileMasker([rule('d', { detectors: ['email'] }), rule('p', { pattern: '(?i)password=\\S+' })], KEY);
  for (const col of ['public.a.b', 'x.y.z', undefined]) {
    assert.ok(m.forColumn(col).canMatch);
    assert.equal(m.maskValue(col, 'x@y.io PASSWORD=hunter2').value, `${REDACTED} ${REDACTED}`);
  }
  assert.equal(m.maskText('x@y.io password=hunter2\n').text, `${REDACTED} ${REDACTED}\n`);
});

test('forColumn(…).canMatch is false exactly when no rule can touch the column', () => {
  const none = compileMasker([], KEY);
  assert.equal(none.forColumn('public.users.email').canMatch, false);
  assert.equal(none.forColumn(undefined).canMatch, false);
  assert.deepEqual(none.maskText('a@b.io'), { text: 'a@b.io', masked: 0 });
  const cols = compileMasker([rule('c', { columns: ['public.users.email'] })], KEY);
  assert.equal(cols.forColumn('public.users.email').canMatch, true);
  assert.equal(cols.forColumn('public.users.name').canMatch, false);
  assert.equal(cols.forColumn(undefined).canMatch, false);
  assert.equal(everything().forColumn('anything.at.all').canMatch, true);
});

test('rules lists the rules that masked something, in rule order; masked counts merged spans', () => {
  const m = compileMasker([rule('z-first', { pattern: 'bbb' }), rule('a-second', { detectors: ['email'] }), rule('unused', { pattern: 'zzz' })], KEY);
  assert.deepEqual(m.maskValue(undefined, 'x@y.io bbb x@y.io'), { value: `${REDACTED} ${REDACTED} ${REDACTED}`, masked: 3, rules: ['z-first', 'a-second'] });
  const many = compileMasker(
    Array.from({ length: 40 }, (_, i) => rule(`r${i}`, { pattern: `k${i}v` })),
    KEY,
  );
  assert.deepEqual(many.maskValue(undefined, 'k39v k3v k35v').rules, ['r3', 'r35', 'r39']);
});

test('user patterns are RE2: an invalid pattern is a PolicyError naming the rule', () => {
  for (const pattern of ['(a', '(a)\\1', '(?<=a)b', 'a{2000}']) {
    assert.throws(
      () => compileMasker([rule('ok', { pattern: 'x' }), rule('bad-rule', { pattern })], KEY),
      (err: unknown) => err instanceof PolicyError && err.code === 'InvalidPattern' && err.message.startsWith('rule "bad-rule": '),
      pattern,
    );
  }
  // catastrophic for a backtracking engine, linear for RE2
  const m = compileMasker([rule('evil', { pattern: '(a+)+!' })], KEY);
  const t0 = performance.now();
  assert.equal(m.maskValue(undefined, `${'a'.repeat(50_000)}!`).masked, 1);
  assert.ok(performance.now() - t0 < 2000);
});

test('an invalid column glob or rule is a PolicyError', () => {
  for (const glob of ['customers.email', 'a..b', 'a.b.c.d', 'a.b.[c]', 'a.b.c\\d', '']) {
    assert.throws(
      () => compileMasker([rule('g', { columns: [glob] })], KEY),
      (err: unknown) => err instanceof PolicyError && err.code === 'InvalidGlob' && err.message.includes('rule "g"'),
      glob,
    );
  }
  assert.throws(() => compileMasker([rule('e', {})], KEY), (err: unknown) => err instanceof PolicyError && err.code === 'InvalidInput');
  assert.throws(
    () => compileMasker([rule('k', { columns: ['a.b.c'] }, 'partial', { keepFirst: -1 })], KEY),
    (err: unknown) => err instanceof PolicyError && err.code === 'InvalidInput',
  );
});

test('free text: patterns match within a line; values: across lines', () => {
  const m = compileMasker([rule('pair', { pattern: 'foo\\s+bar' }), rule('line', { pattern: '^id=\\d+$' }), rule('start', { pattern: '\\Aabc' })], KEY);
  assert.equal(m.maskText('foo bar\nfoo\nbar').text, `${REDACTED}\nfoo\nbar`);
  assert.equal(m.maskValue(undefined, 'foo\nbar').value, REDACTED);
  assert.equal(m.maskText('x\nid=42\nid=4x').text, `x\n${REDACTED}\nid=4x`);
  assert.equal(m.maskValue(undefined, 'x\nid=42').value, 'x\nid=42', 'values are not multi-line');
  assert.equal(m.maskText('abc\nabc').text, `${REDACTED}\n${REDACTED}`, '\\A is the start of each line in free text');
});

test('empty and zero-length pattern matches are ignored', () => {
  const m = compileMasker([rule('e', { pattern: 'x*' })], KEY);
  assert.deepEqual(m.maskText('a😀b xx c'), { text: `a😀b ${REDACTED} c`, masked: 1 });
});

// ---------------------------------------------------------------------------------------------
// Streaming

const streamed = (m: Masker, chunks: readonly string[], maxHeld?: number): string => {
  const s = m.stream(maxHeld === undefined ? {} : { maxHeld });
  return chunks.map((c) => s.push(c)).join('') + s.end();
};

test('stream: complete lines are emitted at once, the last partial line at end()', () => {
  const m = everything();
  const s = m.stream();
  assert.equal(s.push('mail a@b.io\nand c@d'), `mail ${REDACTED}\n`);
  assert.equal(s.push('.io'), '');
  assert.equal(s.end(), `and ${REDACTED}`);
  assert.equal(s.masked, 2);
  assert.equal(s.push('again x@y.io\n'), `again ${REDACTED}\n`, 'end() resets the stream');
});

test('stream: a private key block is held back until its END line', () => {
  const m = everything();
  const s = m.stream();
  assert.equal(s.push('before\n-----BEGIN RSA PRIVATE KEY-----\n'), 'before\n');
  assert.equal(s.push('MIIEowIBAAKCAQEA7bq4\n'), '');
  assert.equal(s.push('-----END RSA PRIVATE KEY-----\nafter\n'), `${REDACTED}\nafter\n`);
  assert.equal(s.end(), '');
});

test('stream: overlong lines are emitted in parts as maskText masks them; overlong key blocks are suppressed', () => {
  const m = everything();
  const long = `${'x'.repeat(100)} AKIAIOSFODNN7EXAMPLE ${'y'.repeat(100)}`;
  assert.equal(streamed(m, [long, '\nnext a@b.io\n'], 64), `${'x'.repeat(100)} ${REDACTED} ${'y'.repeat(100)}\nnext ${REDACTED}\n`);
  const s = m.stream({ maxHeld: 64 });
  assert.notEqual(s.push(long), '', 'a long line is not held whole');
  const body = Array.from({ length: 20 }, () => 'MIIEowIBAAKCAQEA7bq4q0Zt9Lw').join('\n');
  const text = `ok\n-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY----- tail\nlast AKIAIOSFODNN7EXAMPLE\n`;
  for (const size of [1, 7, 100]) {
    const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];
    assert.equal(streamed(m, chunks, 128), `ok\n${REDACTED}\nlast ${REDACTED}\n`, `chunks of ${size}`);
  }
  // in one chunk the whole block is there at once: nothing needs holding, the output is maskText's
  assert.equal(streamed(m, [text], 128), m.maskText(text).text);
  // a long line whose tail opens a key block: the block is suppressed through its END line
  const tricky = `${'z'.repeat(200)} -----BEGIN EC PRIVATE KEY-----\nsecretbody\n-----END EC PRIVATE KEY-----\nvisible\n`;
  const out = streamed(m, [tricky.slice(0, 150), tricky.slice(150)], 64);
  assert.ok(!out.includes('secretbody'));
  assert.ok(out.endsWith('\nvisible\n'));
  // an unterminated block at end of stream is masked to the end
  assert.equal(streamed(m, ['a\n-----BEGIN PRIVATE KEY-----\nabc\n', 'def']), `a\n${REDACTED}`);
});

// ---------------------------------------------------------------------------------------------
// Properties

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 200 }),
  fc.string({ unit: fc.constantFrom('4', '1', '0', ' ', '-', '.', ':', '@', 'a', 'A', 'e', 'y', 'J', '+', '(', ')', '\n', '/', '_', 'x'), maxLength: 200 }),
);

const propertyMasker = compileMasker(
  [
    rule('all', { detectors: DETECTORS }, 'redact'),
    rule('cols', { columns: ['*.t.*'] }, 'partial', { keepFirst: 1, keepLast: 1 }),
    rule('pat', { pattern: '[a-z]+\\s[0-9]+|^x.*y$' }, 'hash'),
  ],
  KEY,
);

test('property: random input never throws', () => {
  fc.assert(
    fc.property(anyText, (text) => {
      for (const d of DETECTORS) {
        for (const s of detect(text, d)) assert.ok(s.start >= 0 && s.start < s.end && s.end <= text.length);
      }
      propertyMasker.maskText(text);
      propertyMasker.maskValue('s.t.c', text);
      propertyMasker.maskValue(undefined, text);
      streamed(propertyMasker, [text.slice(0, 7), text.slice(7)], 32);
    }),
    { numRuns: 500 },
  );
});

const digits = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...Array.from('0123456789')), minLength: n, maxLength: n });

/** Completes a card number with its Luhn check digit. */
function withLuhn(body: string): string {
  let sum = 0;
  for (let i = body.length - 1, double = true; i >= 0; i--, double = !double) {
    const d = Number(body[i]) * (double ? 2 : 1);
    sum += d > 9 ? d - 9 : d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

const card = fc
  .tuple(
    // an IIN prefix of each brand, with one of its lengths
    fc.constantFrom<[string, number]>(
      ['4', 16], ['4', 13], ['4', 19], ['51', 16], ['55', 16], ['2221', 16], ['2720', 16], ['34', 15],
      ['37', 15], ['6011', 16], ['65', 19], ['644', 16], ['35', 17], ['36', 14], ['30', 15],
    ),
    fc.constantFrom('', ' ', '-'),
  )
  .chain(([[prefix, len], sep]) =>
    digits(len - prefix.length - 1).map((body) => {
      const number = withLuhn(prefix + body);
      return sep === '' ? number : (number.match(/.{1,4}/g) ?? []).join(sep);
    }),
  );
const email = fc
  .tuple(fc.stringMatching(/^[a-z0-9]([a-z0-9._+-]{0,15}[a-z0-9])?$/), fc.stringMatching(/^[a-z0-9]{1,12}$/), fc.stringMatching(/^[a-z]{2,6}$/))
  .map(([local, domain, tld]) => `${local}@${domain}.${tld}`);
const ssn = fc
  .tuple(fc.integer({ min: 1, max: 899 }).filter((a) => a !== 666), fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9999 }))
  .map(([a, g, s]) => `${String(a).padStart(3, '0')}-${String(g).padStart(2, '0')}-${String(s).padStart(4, '0')}`);
const awsKey = fc
  .tuple(
    fc.constantFrom('AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'AIPA', 'ANPA', 'ANVA'),
    fc.string({ unit: fc.constantFrom(...Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')), minLength: 16, maxLength: 16 }),
  )
  .map(([p, rest]) => p + rest);

/** A valid IBAN: BBAN of the country's format (a bank code of letters, then digits), check digits computed (98 - mod97). */
const iban = fc
  .tuple(fc.constantFrom<[string, string, number]>(['DE', '', 18], ['FR', '', 23], ['NL', 'ABNA', 10], ['GB', 'WEST', 14], ['BE', '', 12], ['ES', '', 20]), fc.boolean())
  .chain(([[cc, bank, n], spaced]) =>
    digits(n).map((account) => {
      const bban = bank + account;
      const numeric = Array.from(`${bban}${cc}00`).map((ch) => (/[A-Z]/.test(ch) ? String(ch.charCodeAt(0) - 55) : ch)).join('');
      const mod = Array.from(numeric).reduce((r, ch) => (r * 10 + Number(ch)) % 97, 0);
      const value = `${cc}${String(98 - mod).padStart(2, '0')}${bban}`;
      return spaced ? (value.match(/.{1,4}/g) ?? []).join(' ') : value;
    }),
  );

const secretOf: Record<string, fc.Arbitrary<string>> = { card, email, ssn, awsKey, iban, jwt: fc.constant(JWT), github: fc.constant(GHP) };
const filler = fc.string({ unit: 'binary', maxLength: 40 });

test('property: generated secrets are detected and never survive masking', () => {
  const redact = everything();
  const partial = compileMasker([rule('p', { detectors: DETECTORS }, 'partial', { keepFirst: 2, keepLast: 4 })], KEY);
  const nulls = everything('null');
  for (const [kind, secret] of Object.entries(secretOf)) {
    fc.assert(
      fc.property(filler, secret, filler, fc.constantFrom(' ', '\n', '\t', '"', '(', ': '), (before, value, after, sep) => {
        const text = `${before}${sep}${value}${sep === '(' ? ')' : sep}${after}`;
        const masked = redact.maskText(text).text;
        assert.ok(!masked.includes(value), `${kind} ${JSON.stringify(value)} survived in ${JSON.stringify(masked)}`);
        assert.ok(!(partial.maskText(text).text).includes(value), `${kind} survived partial`);
        assert.equal(nulls.maskValue('a.b.c', text).value, null);
        assert.ok(!streamed(redact, [text.slice(0, text.length >> 1), text.slice(text.length >> 1)]).includes(value));
      }),
      { numRuns: 150 },
    );
  }
});

test('property: streaming is invariant to chunk splits', () => {
  const m = compileMasker(
    [
      rule('all', { detectors: DETECTORS }),
      rule('h', { detectors: ['email'] }, 'hash'),
      rule('p', { detectors: ['credit_card'] }, 'partial', { keepLast: 4 }),
      rule('pat', { pattern: '^[a-z]+\\s[0-9]+|k\\s+v' }, 'hash'),
    ],
    KEY,
  );
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '\n', ' ', '\r\n', 'k\nv', 'k  v', 'abc 123', '-----BEGIN RSA PRIVATE KEY-----', '-----END RSA PRIVATE KEY-----',
        '-----BEGIN PRIVATE KEY-----\n', '-----END PRIVATE KEY-----\n', '-----BEGIN ', 'PRIVATE KEY-----', 'Bearer ', '://u:', '@h/',
      ),
    },
    { weight: 2, arbitrary: fc.oneof(...Object.values(secretOf)) },
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 12 }), (pieces, cutsRaw) => {
      const text = pieces.join('');
      const cuts = [...new Set(cutsRaw.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const chunks = [0, ...cuts].map((c, i) => text.slice(c, [...cuts, text.length][i]));
      assert.equal(streamed(m, chunks), m.maskText(text).text);
    }),
    { numRuns: 1000 },
  );
});

test('property: streaming one character at a time equals maskText', () => {
  const m = everything('hash');
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('\n', PEM, 'a@b.io', '078-05-1120 ')), { maxLength: 20 }), (pieces) => {
      const text = pieces.join('');
      assert.equal(streamed(m, Array.from({ length: text.length }, (_, i) => text.charAt(i))), m.maskText(text).text);
    }),
    { numRuns: 200 },
  );
});

test('property: over the held-text limit the stream still leaks nothing it would mask', () => {
  const m = everything();
  const secret = fc.oneof(...Object.values(secretOf));
  const piece = fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 50 }) },
    { weight: 2, arbitrary: secret.map((v) => ({ secret: v })) },
    { weight: 1, arbitrary: fc.constantFrom({ secret: PEM }, { secret: '-----BEGIN PRIVATE KEY-----\nUNTERMINATEDBODY' }) },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(piece, fc.constantFrom(' ', '\n')), { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 16, max: 300 }), (parts, cutsRaw, maxHeld) => {
      const text = parts.map(([p, sep]) => (typeof p === 'string' ? p : ` ${p.secret} `) + sep).join('');
      // what must not show: each secret; of a key block, its body
      const body = (v: string): string => (v === PEM ? 'MIIEowIBAAKCAQEA7bq4' : v.replace('-----BEGIN PRIVATE KEY-----\n', ''));
      const secrets = parts.flatMap(([p]) => (typeof p === 'string' ? [] : [body(p.secret)]));
      const cuts = [...new Set(cutsRaw.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const chunks = [0, ...cuts].map((c, i) => text.slice(c, [...cuts, text.length][i]));
      const out = streamed(m, chunks, maxHeld);
      for (const v of secrets) {
        assert.ok(!m.maskText(text).text.includes(v), `maskText leaks ${v}`);
        assert.ok(!out.includes(v), `stream (maxHeld ${maxHeld}) leaks ${JSON.stringify(v)}: ${JSON.stringify(out)}`);
      }
    }),
    { numRuns: 500 },
  );
});

test('requiredLiteral: a literal every match contains, or null when unsure', async () => {
  const { requiredLiteral } = await import('../src/mask/masker.ts');
  assert.equal(requiredLiteral('EMP-[0-9]{6}'), 'EMP-');
  assert.equal(requiredLiteral('token=\\w+'), 'token=');
  assert.equal(requiredLiteral('abc*'), 'ab');
  assert.equal(requiredLiteral('ab?c'), null);
  assert.equal(requiredLiteral('ab{0,3}'), null);
  assert.equal(requiredLiteral('abc+'), 'abc');
  assert.equal(requiredLiteral('EMP|XYZ'), null);
  assert.equal(requiredLiteral('(?i)emp-[0-9]+'), null);
  assert.equal(requiredLiteral('emp(?i)x'), null);
  assert.equal(requiredLiteral('[0-9]+'), null);
  assert.equal(requiredLiteral('.*secret'), null);
});

test('the hash action is HMAC-SHA256 with the key (first 16 hex digits)', async () => {
  const { createHmac } = await import('node:crypto');
  for (const key of [Buffer.from('k'), Buffer.alloc(64, 7), Buffer.alloc(100, 9)]) {
    const m = compileMasker([{ name: 'h', match: { columns: ['*.*.email'] }, action: { type: 'hash' } }], key);
    const want = `hmac:${createHmac('sha256', key).update('alice@example.com').digest('hex').slice(0, 16)}`;
    assert.equal(m.maskValue('public.users.email', 'alice@example.com').value, want);
  }
});
