import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeGracefully, listen } from '../src/http.ts';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function slowServer(delayMs: number): ReturnType<typeof createServer> {
  return createServer((_req, res) => {
    setTimeout(() => {
      res.end('done');
    }, delayMs).unref();
  });
}

test('closeGracefully lets an in-flight request finish within the grace period and refuses new connections', async () => {
  const server = slowServer(200);
  const { port } = await listen(server, '127.0.0.1', 0);
  const inFlight = get(port, '/');
  await sleep(50);
  const closed = closeGracefully(server, 5000);
  await assert.rejects(get(port, '/'), { code: 'ECONNREFUSED' });
  assert.deepEqual(await inFlight, { status: 200, body: 'done' });
  await closed;
});

test('closeGracefully drops what is still open when the grace period ends', async () => {
  const server = slowServer(60_000);
  const { port } = await listen(server, '127.0.0.1', 0);
  const inFlight = get(port, '/');
  await sleep(50);
  const started = Date.now();
  await closeGracefully(server, 100);
  assert.ok(Date.now() - started < 5000);
  await assert.rejects(inFlight);
});

test('closeGracefully of a server that is not listening resolves; listen resolves the bound address', async () => {
  const server = slowServer(0);
  await closeGracefully(server, 1000);
  const address = await listen(server, '127.0.0.1', 0);
  assert.equal(address.address, '127.0.0.1');
  assert.ok(address.port > 0);
  await closeGracefully(server, 0);
});
