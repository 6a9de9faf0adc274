import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { FrontendParser, type FrontendMessage } from '../src/pg/frontend.ts';
import { ProtocolError } from '../src/pg/errors.ts';

/** A whole conversation as a client writes it, produced by pg-protocol's own serializer. */
const startup = serialize.startup({ user: 'agent', database: 'orders', application_name: 'psql', client_encoding: 'UTF8' });
const session = [
  serialize.query('SELECT 1; SELECT \'ü€\''),
  serialize.parse({ name: 's1', text: 'SELECT * FROM t WHERE id = $1', types: [23] }),
  serialize.bind({ portal: 'p1', statement: 's1', values: ['42', null, Buffer.from([0, 1, 2])] }),
  serialize.describe({ type: 'P', name: 'p1' }),
  serialize.execute({ portal: 'p1', rows: 100 }),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.flush(),
  serialize.sync(),
  serialize.copyData(Buffer.from('1\tone\n')),
  serialize.copyDone(),
  serialize.copyFail('client gave up'),
  serialize.password('secret'),
  serialize.end(),
];
const golden = Buffer.concat([startup, ...session]);

const expected: FrontendMessage[] = [
  { type: 'StartupMessage', protocolVersion: 196608, parameters: { user: 'agent', database: 'orders', application_name: 'psql', client_encoding: 'UTF8' } },
  { type: 'Query', sql: "SELECT 1; SELECT 'ü€'" },
  { type: 'Parse', name: 's1', sql: 'SELECT * FROM t WHERE id = $1', paramTypes: [23] },
  { type: 'Bind', portal: 'p1', statement: 's1', paramFormats: [0, 0, 1], params: [Buffer.from('42'), null, Buffer.from([0, 1, 2])], resultFormats: [0] },
  { type: 'Describe', target: 'P', name: 'p1' },
  { type: 'Execute', portal: 'p1', maxRows: 100 },
  { type: 'Close', target: 'S', name: 's1' },
  { type: 'Flush' },
  { type: 'Sync' },
  { type: 'CopyData', data: Buffer.from('1\tone\n') },
  { type: 'CopyDone' },
  { type: 'CopyFail', message: 'client gave up' },
  { type: 'PasswordMessage', data: Buffer.from('secret\0') },
  { type: 'Terminate' },
];

function parseAll(chunks: readonly Buffer[]): { messages: FrontendMessage[]; raws: Buffer[] } {
  const p = new FrontendParser();
  const framed = chunks.flatMap((c) => p.push(c));
  assert.equal(p.buffered, 0);
  return { messages: framed.map((f) => f.message), raws: framed.map((f) => f.raw) };
}

function normalise(m: FrontendMessage): unknown {
  return JSON.parse(JSON.stringify(m)) as unknown;
}

test('golden conversation parses to the expected messages with the exact raw bytes', () => {
  const { messages, raws } = parseAll([golden]);
  assert.deepEqual(messages.map(normalise), expected.map(normalise));
  assert.deepEqual(Buffer.concat(raws), golden, 'raw frames reassemble the input byte for byte');
});

test('the result does not depend on where the stream is split (every offset, and every pair of offsets)', () => {
  const want = expected.map(normalise);
  for (let i = 0; i <= golden.length; i++) {
    const { messages } = parseAll([golden.subarray(0, i), golden.subarray(i)]);
    assert.deepEqual(messages.map(normalise), want, `split at ${i}`);
  }
  for (let i = 0; i <= golden.length; i += 7) {
    for (let j = i; j <= golden.length; j += 5) {
      const { messages } = parseAll([golden.subarray(0, i), golden.subarray(i, j), golden.subarray(j)]);
      assert.deepEqual(messages.map(normalise), want, `split at ${i}, ${j}`);
    }
  }
  const bytes = [...golden].map((b) => Buffer.from([b]));
  assert.deepEqual(parseAll(bytes).messages.map(normalise), want, 'one byte at a time');
});

test('SSL, GSS and cancel requests are recognised before startup', () => {
  const gss = Buffer.alloc(8);
  gss.writeInt32BE(8, 0);
  gss.writeInt32BE(80877104, 4);
  const { messages } = parseAll([serialize.requestSsl(), gss, startup]);
  assert.deepEqual(messages.map((m) => m.type), ['SSLRequest', 'GSSENCRequest', 'StartupMessage']);
  const cancel = parseAll([serialize.cancel(1234, 5678)]).messages[0];
  assert.deepEqual(normalise(cancel as FrontendMessage), normalise({ type: 'CancelRequest', processId: 1234, secretKey: Buffer.from([0, 0, 0x16, 0x2e]) }));
});

function rejects(bytes: Buffer, pattern: RegExp, sqlState = '08P01'): void {
  const p = new FrontendParser();
  assert.throws(
    () => p.push(bytes),
    (e: unknown) => e instanceof ProtocolError && pattern.test(e.message) && e.sqlState === sqlState,
  );
}

test('malformed input is a precise ProtocolError', () => {
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  rejects(Buffer.concat([len(4), Buffer.alloc(4)]), /invalid length of startup packet: 4/);
  rejects(Buffer.concat([len(1_000_000), Buffer.alloc(4)]), /invalid length of startup packet: 1000000/);
  rejects(Buffer.concat([len(8), len(0x00020000)]), /unsupported frontend protocol 2\.0/);
  rejects(Buffer.concat([len(12), len(196608), Buffer.from('user')]), /unterminated string/);
  rejects(Buffer.concat([len(9), len(196608), Buffer.from([0])]), /no PostgreSQL user name/);
  rejects(Buffer.concat([startup, Buffer.from('Z'), len(4)]), /invalid frontend message type 90 \('Z'\)/);
  rejects(Buffer.concat([startup, Buffer.from('Q'), len(3)]), /invalid message length 3 for Query/);
  rejects(Buffer.concat([startup, Buffer.from('Q'), len(5), Buffer.from('x')]), /Query message has an unterminated string/);
  rejects(Buffer.concat([startup, Buffer.from('S'), len(6), Buffer.from('xy')]), /Sync message has 2 trailing bytes/);
  rejects(Buffer.concat([startup, Buffer.from('D'), len(7), Buffer.from('X'), Buffer.from('a\0')]), /Describe message has an invalid target 'X'/);
  rejects(Buffer.concat([startup, Buffer.from('B'), len(12), Buffer.from('\0\0'), Buffer.from([0, 0, 0, 1, 0xff, 0xff])]), /Bind message is truncated|negative/);
});

test('oversized messages are refused before they are buffered', () => {
  const p = new FrontendParser({ maxStartup: 10_000, maxMessage: 1024 });
  p.push(startup);
  const head = Buffer.alloc(5);
  head.write('Q');
  head.writeInt32BE(10 * 1024 * 1024, 1);
  assert.throws(() => p.push(head), (e: unknown) => e instanceof ProtocolError && e.sqlState === '54000' && /Query message of 10485760 bytes exceeds the limit of 1024/.test(e.message));
});

test('fuzz: random bytes after a valid startup either parse or raise ProtocolError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 300 }), (bytes, cut) => {
      const p = new FrontendParser({ maxStartup: 10_000, maxMessage: 4096 });
      p.push(startup);
      const data = Buffer.from(bytes);
      try {
        p.push(data.subarray(0, cut));
        p.push(data.subarray(cut));
      } catch (e) {
        assert.ok(e instanceof ProtocolError, String(e));
      }
    }),
    { numRuns: 3000 },
  );
});

test('fuzz: random valid message sequences round-trip whatever the chunking', () => {
  const message = fc.oneof(
    fc.string().map((s) => serialize.query(s.replace(/\0/g, ''))),
    fc.tuple(fc.string(), fc.string()).map(([n, t]) => serialize.parse({ name: n.replace(/\0/g, ''), text: t.replace(/\0/g, '') })),
    fc.array(fc.option(fc.string())).map((values) => serialize.bind({ values })),
    fc.constant(serialize.sync()),
    fc.uint8Array({ maxLength: 64 }).map((b) => serialize.copyData(Buffer.from(b))),
  );
  fc.assert(
    fc.property(fc.array(message, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (msgs, sizes) => {
      const stream = Buffer.concat([startup, ...msgs]);
      const chunks: Buffer[] = [];
      let pos = 0;
      for (let k = 0; pos < stream.length; k++) {
        const n = sizes[k % sizes.length] ?? 1;
        chunks.push(stream.subarray(pos, pos + n));
        pos += n;
      }
      const whole = parseAll([stream]);
      const split = parseAll(chunks);
      assert.equal(split.messages.length, msgs.length + 1);
      assert.deepEqual(split.messages.map(normalise), whole.messages.map(normalise));
      assert.deepEqual(Buffer.concat(split.raws), stream);
    }),
    { numRuns: 500 },
  );
});

/** A typed frontend message from its body. */
function typed(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function uint16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

test('counts are unsigned 16-bit, as PostgreSQL reads them: 65535 parameters, formats and types parse (golden, split at every offset)', () => {
  const n = 65535;
  const bind = typed(
    'B',
    Buffer.concat([Buffer.from('p\0s\0'), uint16(1), uint16(1), uint16(n), Buffer.concat(Array.from({ length: n }, () => Buffer.from([0xff, 0xff, 0xff, 0xff]))), uint16(n), Buffer.alloc(2 * n)]),
  );
  const types = Buffer.alloc(4 * 40000);
  for (let i = 0; i < 40000; i++) types.writeUInt32BE(i === 0 ? 0xffffffff : 25, 4 * i);
  const parse = typed('P', Buffer.concat([Buffer.from('s\0SELECT 1\0'), uint16(40000), types]));
  const stream = Buffer.concat([startup, parse, bind]);
  const check = (messages: FrontendMessage[]): void => {
    const p = messages[1];
    const b = messages[2];
    assert.ok(p?.type === 'Parse' && b?.type === 'Bind');
    assert.equal(p.paramTypes.length, 40000);
    assert.equal(p.paramTypes[0], 0xffffffff);
    assert.equal(b.params.length, n);
    assert.ok(b.params.every((x) => x === null));
    assert.deepEqual(b.paramFormats, [1]);
    assert.equal(b.resultFormats.length, n);
  };
  check(parseAll([stream]).messages);
  // every offset around the headers and counts of both messages, a sample of the long bodies
  const heads = [startup.length, startup.length + parse.length];
  const near = (i: number): boolean => heads.some((h) => i >= h && i <= h + 24) || i >= stream.length - 8;
  for (let i = startup.length; i <= stream.length; i += 1) {
    if (near(i) || i % 4099 === 0) check(parseAll([stream.subarray(0, i), stream.subarray(i)]).messages);
  }
});

test('statement text that is not UTF-8 is flagged (the session refuses it); valid text is not', () => {
  const bad = Buffer.concat([Buffer.from("SELECT E'"), Buffer.from([0x95, 0x5c]), Buffer.from("'\0")]);
  const stream = Buffer.concat([
    startup,
    typed('Q', bad),
    typed('P', Buffer.concat([Buffer.from('s\0'), bad, uint16(0)])),
    typed('Q', Buffer.from("SELECT 'é\\'\0", 'utf8')),
  ]);
  for (let i = 0; i <= stream.length; i++) {
    const [, q, p, ok] = parseAll([stream.subarray(0, i), stream.subarray(i)]).messages;
    assert.ok(q?.type === 'Query' && p?.type === 'Parse' && ok?.type === 'Query', `split at ${i}`);
    assert.equal(q.invalidUtf8, true);
    assert.equal(p.invalidUtf8, true);
    assert.equal(ok.invalidUtf8, undefined);
    assert.equal(ok.sql, "SELECT 'é\\'");
  }
});
