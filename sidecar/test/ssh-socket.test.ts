/**
 * coalesceWrites on a real loopback TCP connection: the writes of one tick are held (corked)
 * and leave together at the end of the tick, in order; nothing is lost across ticks, at end() or
 * at a destroy() in the same tick.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { coalesceWrites } from '../src/ssh/socket.ts';

/** Runs `body` with the client end of a real loopback connection and what its peer received once closed. */
async function withConnection(body: (client: Socket, received: () => Promise<string>) => Promise<void>): Promise<void> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, noDelay: true });
  await once(client, 'connect');
  const [peer] = await accepted;
  let data = '';
  peer.on('data', (d: Buffer) => (data += d.toString('latin1')));
  const closed = new Promise((resolve) => peer.once('close', resolve));
  try {
    await body(client, async () => {
      await closed;
      return data;
    });
  } finally {
    client.destroy();
    peer.destroy();
    server.close();
  }
}

test('writes of one tick are corked until the tick ends, then leave in order', () =>
  withConnection(async (client, received) => {
    const sock = coalesceWrites(client);
    sock.write('length|');
    sock.write(Buffer.from('ciphertext|'));
    sock.write('tag;');
    assert.equal(sock.writableCorked, 1, 'held while the tick runs');
    assert.equal(sock.writableLength, 'length|ciphertext|tag;'.length);
    await new Promise((r) => setImmediate(r));
    assert.equal(sock.writableCorked, 0, 'uncorked at the end of the tick');
    sock.write('second tick;');
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 100; i++) sock.write(`${String(i)},`);
    sock.end('end');
    assert.equal(await received(), `length|ciphertext|tag;second tick;${Array.from({ length: 100 }, (_, i) => `${String(i)},`).join('')}end`);
  }));

test('a write just before a destroy in the same tick still leaves (ssh2 disconnects that way)', () =>
  withConnection(async (client, received) => {
    const sock = coalesceWrites(client);
    sock.write('DISCONNECT: protocol error');
    sock.destroy();
    assert.equal(await received(), 'DISCONNECT: protocol error');
  }));
