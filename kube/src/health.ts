/** /healthz, /readyz and /metrics on a plain HTTP port. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { closeGracefully, listen } from './http.ts';

export interface Probe {
  /** names of what is not ready yet; empty when ready */
  notReady(): readonly string[];
}

export class HealthServer {
  readonly #server: Server;

  constructor({ probe, registry }: { readonly probe: Probe; readonly registry: Registry }) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const waiting = probe.notReady();
        if (waiting.length === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${waiting.join(', ')}\n`);
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': registry.contentType }).end(text);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`);
          },
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
  }

  /** listens on host:port; resolves with the bound address (port 0 picks a free one) */
  listen(host: string, port: number): Promise<AddressInfo> {
    return listen(this.#server, host, port);
  }

  /** stops listening and drops open connections (probes and scrapes are short) */
  close(): Promise<void> {
    return closeGracefully(this.#server, 0);
  }
}
