/**
 * The control API's HTTPS listener (node:https around the express app). The serving certificate
 * comes from the certificate manager (the airlock-control-tls Secret) or from files (cert-manager
 * mounts, tests); a new one replaces the old with setSecureContext, without dropping connections.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { RequestListener } from 'node:http';
import type { Logger } from 'winston';
import { closeGracefully, listen, type Clock } from '@airlock/kube';

export interface TlsMaterial {
  /** PEM: the serving certificate (and its chain) */
  readonly cert: string;
  /** PEM: its private key */
  readonly key: string;
}

export class ControlServer {
  readonly #server: Server;
  #tls: TlsMaterial;

  constructor({ app, tls }: { readonly app: RequestListener; readonly tls: TlsMaterial }) {
    this.#tls = tls;
    this.#server = createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, app);
    // long polls last up to MAX_WAIT_SECONDS; keep-alive lets a sidecar reuse its connection
    this.#server.keepAliveTimeout = 75_000;
    this.#server.requestTimeout = 120_000;
  }

  /** swaps the serving certificate for new connections; a no-op when it did not change */
  setTls(tls: TlsMaterial): boolean {
    if (tls.cert === this.#tls.cert && tls.key === this.#tls.key) return false;
    this.#server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
    this.#tls = tls;
    return true;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listen(this.#server, host, port);
  }

  /** long polls were woken before close; anything left is cut after a grace period */
  close(): Promise<void> {
    return closeGracefully(this.#server, 2000);
  }
}

/** tls.crt and tls.key of a directory (a mounted kubernetes.io/tls Secret) */
export async function readTlsDir(dir: string): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readFile(join(dir, 'tls.crt'), 'utf8'), readFile(join(dir, 'tls.key'), 'utf8')]);
  return { cert, key };
}

/**
 * Reads the directory again every `intervalMs` and hands a changed pair to `onChange` (kubelet
 * swaps a mounted Secret's files atomically through a symlink, so a poll sees old or new, never
 * half). Returns the function that stops it.
 */
export function watchTlsDir({ dir, clock, log, intervalMs = 30_000, onChange }: { readonly dir: string; readonly clock: Clock; readonly log: Logger; readonly intervalMs?: number; readonly onChange: (tls: TlsMaterial) => void }): () => void {
  let cancel: () => void = () => undefined;
  let stopped = false;
  const tick = (): void => {
    readTlsDir(dir).then(
      (tls) => {
        if (!stopped) onChange(tls);
      },
      (err: unknown) => {
        log.warn('control API certificate not re-read', { dir, error: err instanceof Error ? err.message : String(err) });
      },
    ).finally(() => {
      if (!stopped) cancel = clock.setTimer(intervalMs, tick);
    });
  };
  cancel = clock.setTimer(intervalMs, tick);
  return () => {
    stopped = true;
    cancel();
  };
}
