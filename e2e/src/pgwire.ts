/**
 * A raw PostgreSQL protocol client for tests that need exact control of the bytes (pipelines,
 * malformed messages, missing Describes). Frontend messages come from pg-protocol's serializer;
 * backend messages are parsed with pg-protocol's parser.
 */
import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';

export { serialize };

export class RawClient {
  readonly socket: Socket;
  readonly messages: BackendMessage[] = [];
  #parser = new Parser();
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#parser.parse(Buffer.from(d), (m) => {
        this.messages.push(m);
      });
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, options: { startup?: boolean } = {}): Promise<RawClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        resolve(s);
      });
      s.once('error', reject);
    });
    const c = new RawClient(socket);
    if (options.startup !== false) {
      c.send(serialize.startup({ user: 'agent', database: 'whatever', application_name: 'rawclient' }));
      await c.until((m) => m.name === 'readyForQuery' || m.name === 'error');
    }
    return c;
  }

  send(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  /** Waits until a message (after position `from`) satisfies `pred`; returns the messages after `from` up to it. */
  async until(pred: (m: BackendMessage) => boolean, from = 0, timeoutMs = 15_000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex((m, idx) => idx >= from && pred(m));
      if (i >= 0) return this.messages.slice(from, i + 1);
      if (this.closed) throw new Error(`connection closed; got ${this.messages.slice(from).map((m) => m.name).join(',')}`);
      if (Date.now() > deadline) throw new Error(`timeout; got ${this.messages.slice(from).map((m) => m.name).join(',')}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Waits for the server to close the connection. */
  async closedByPeer(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the connection is still open');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  end(): void {
    this.socket.end(serialize.end());
  }
}
