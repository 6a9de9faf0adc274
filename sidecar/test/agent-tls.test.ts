/**
 * Agent-facing TLS before the PostgreSQL session: the first request's classification (split at
 * every byte), and the negotiation on real loopback sockets with node's TLS client: upgraded with
 * a certificate, handed over untouched without one, GSSENCRequest declined first, bytes injected
 * after an SSLRequest refused. Also the renewal plan of the cluster sidecar's certificates.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { issuedFrom, nextAskIn } from '../src/cluster/identity.ts';
import { createLogger } from '../src/log.ts';
import { firstRequest, negotiateAgentTls } from '../src/pg/agent-tls.ts';

const SSL = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const GSS = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
const CANCEL_HEAD = Buffer.from([0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e]);
const STARTUP = (() => {
  const body = Buffer.from('\0\x03\0\0user\0agent\0\0', 'latin1');
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
})();

const log = createLogger('error');

describe('firstRequest', () => {
  test('SSLRequest and GSSENCRequest at every split; anything else is other at once', () => {
    for (let i = 0; i < 8; i++) {
      assert.equal(firstRequest(SSL.subarray(0, i)), 'incomplete', `ssl ${String(i)}`);
      assert.equal(firstRequest(GSS.subarray(0, i)), 'incomplete', `gss ${String(i)}`);
    }
    assert.equal(firstRequest(SSL), 'ssl');
    assert.equal(firstRequest(Buffer.concat([SSL, STARTUP])), 'ssl');
    assert.equal(firstRequest(GSS), 'gssenc');
    assert.equal(firstRequest(STARTUP), 'other');
    assert.equal(firstRequest(STARTUP.subarray(0, 4)), 'other');
    assert.equal(firstRequest(CANCEL_HEAD), 'other');
    assert.equal(firstRequest(Buffer.from([0, 0, 0, 8, 0, 3, 0, 0])), 'other');
    assert.equal(firstRequest(Buffer.from([0, 0, 0, 8, 0x04, 0xd2])), 'incomplete');
    assert.equal(firstRequest(Buffer.from([0, 0, 0, 8, 0x04, 0xd3])), 'other');
  });
});

/** a self-signed certificate for `localhost` (openssl) */
function selfSigned(): { context: SecureContext; ca: string } {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-agent-tls-'));
  const key = join(dir, 'key.pem');
  const crt = join(dir, 'crt.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { context: createSecureContext({ key: readFileSync(key), cert: readFileSync(crt) }), ca: readFileSync(crt, 'utf8') };
}

interface Handed {
  readonly socket: Socket;
  /** what the "session" read, from the moment it got the socket (it listens at once, as PgSession) */
  readonly received: Buffer[];
}

/** a listener whose connections go through negotiateAgentTls; resolves each handed-over socket */
async function listener(context: SecureContext | undefined): Promise<{ port: number; next(): Promise<Handed>; close(): void }> {
  const handed: Handed[] = [];
  const server = createServer({ highWaterMark: 1 }, (socket) => {
    negotiateAgentTls(socket, { tlsContext: () => context }, log, (s) => {
      const h: Handed = { socket: s, received: [] };
      s.on('data', (d: Buffer) => h.received.push(d));
      handed.push(h);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    next: async () => {
      for (let i = 0; i < 500; i++) {
        const h = handed.shift();
        if (h !== undefined) return h;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('no socket handed over');
    },
    close: () => {
      server.close();
    },
  };
}

async function receivedBytes(h: Handed, n: number): Promise<Buffer> {
  for (let i = 0; i < 500; i++) {
    const got = Buffer.concat(h.received);
    if (got.length >= n) return got;
    await new Promise((r) => setTimeout(r, 10));
  }
  return Buffer.concat(h.received);
}

/** the client side's next `n` bytes (fewer if the socket closes first) */
function readBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length >= n) {
        socket.off('data', onData);
        socket.pause();
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.resume();
    socket.once('error', reject);
    socket.once('close', () => {
      resolve(got);
    });
  });
}

describe('negotiateAgentTls', () => {
  test('an SSLRequest with a certificate: S, a verified handshake, then the session speaks over TLS', async () => {
    const { context, ca } = selfSigned();
    const l = await listener(context);
    try {
      const raw = netConnect(l.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.write(SSL);
      assert.deepEqual(await readBytes(raw, 1), Buffer.from('S'));
      const tls = tlsConnect({ socket: raw, servername: 'localhost', ca });
      await once(tls, 'secureConnect');
      assert.equal(tls.authorized, true);
      const h = await l.next();
      const server = h.socket;
      assert.ok(server instanceof TLSSocket);
      assert.equal(server.writableHighWaterMark, 1);
      tls.write(STARTUP);
      assert.deepEqual(await receivedBytes(h, STARTUP.length), STARTUP);
      server.write('hello');
      assert.equal((await readBytes(tls, 5)).toString(), 'hello');
      tls.destroy();
      server.destroy();
    } finally {
      l.close();
    }
  });

  test('without a certificate the socket is handed over untouched, the SSLRequest still unread', async () => {
    const l = await listener(undefined);
    try {
      const raw = netConnect(l.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.write(Buffer.concat([SSL.subarray(0, 3)]));
      await new Promise((r) => setTimeout(r, 50));
      raw.write(SSL.subarray(3));
      const h = await l.next();
      assert.ok(!(h.socket instanceof TLSSocket));
      assert.deepEqual(await receivedBytes(h, 8), SSL);
      raw.destroy();
    } finally {
      l.close();
    }
  });

  test('a StartupMessage first is handed over with its bytes, whatever the certificate', async () => {
    const { context } = selfSigned();
    const l = await listener(context);
    try {
      const raw = netConnect(l.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.write(STARTUP);
      const h = await l.next();
      assert.ok(!(h.socket instanceof TLSSocket));
      assert.deepEqual(await receivedBytes(h, STARTUP.length), STARTUP);
      raw.destroy();
    } finally {
      l.close();
    }
  });

  test('a GSSENCRequest is declined with N, then the SSLRequest is accepted', async () => {
    const { context, ca } = selfSigned();
    const l = await listener(context);
    try {
      const raw = netConnect(l.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.write(GSS);
      assert.deepEqual(await readBytes(raw, 1), Buffer.from('N'));
      raw.write(SSL);
      assert.deepEqual(await readBytes(raw, 1), Buffer.from('S'));
      const tls = tlsConnect({ socket: raw, servername: 'localhost', ca });
      await once(tls, 'secureConnect');
      assert.ok((await l.next()).socket instanceof TLSSocket);
      tls.destroy();
    } finally {
      l.close();
    }
  });

  test('bytes sent after the SSLRequest, before the handshake, close the connection', async () => {
    const { context } = selfSigned();
    const l = await listener(context);
    try {
      const raw = netConnect(l.port, '127.0.0.1');
      await once(raw, 'connect');
      raw.write(Buffer.concat([SSL, STARTUP]));
      const got = await readBytes(raw, 1);
      assert.equal(got.length, 0, 'closed without an answer');
      assert.ok(raw.destroyed || raw.readableEnded);
    } finally {
      l.close();
    }
  });
});

describe('certificate renewal plan', () => {
  const NOW = Date.UTC(2026, 11, 4, 12);
  test('renewAt from the answer; backoff on failures, capped at a minute; a day without TLS', () => {
    const issued = issuedFrom({ tls: { cert: '', ca: '', dnsNames: ['x'], ipAddresses: [], notAfter: new Date(NOW + 24 * 3_600_000).toISOString(), renewAt: new Date(NOW + 16 * 3_600_000).toISOString() } });
    assert.equal(issued.renewAt, NOW + 16 * 3_600_000);
    assert.equal(nextAskIn(NOW, issued, 0, 1000), 16 * 3_600_000);
    assert.equal(nextAskIn(NOW + 16 * 3_600_000 + 5, issued, 0, 1000), 1000, 'overdue: at once (a second)');
    assert.equal(nextAskIn(NOW, issued, 1, 1000), 1000);
    assert.equal(nextAskIn(NOW, issued, 3, 1000), 4000);
    assert.equal(nextAskIn(NOW, issued, 30, 1000), 60_000);
    assert.equal(nextAskIn(NOW, issuedFrom({ ssh: { hostKey: 'k', publicKey: 'p', hostNames: ['h'] } }), 0, 1000), 24 * 3_600_000);
    assert.equal(nextAskIn(NOW, undefined, 0, 1000), 24 * 3_600_000);
  });
});
