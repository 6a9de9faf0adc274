/**
 * The upstream SSH connection: logs in with the Secret's key or password and accepts the
 * server only when its host key is pinned in spec.ssh.hostKeyFingerprints. Failures become
 * SidecarErrors with a message that says what to fix.
 */
import { connect, type Socket } from 'node:net';
import ssh2, { type Client, type ConnectConfig } from 'ssh2';
import type { UpstreamConfig } from '../config.ts';
import { SidecarError } from '../errors.ts';
import { isPinned, sha256Fingerprint } from './fingerprint.ts';
import { CIPHERS } from './algorithms.ts';
import { coalesceWrites } from './socket.ts';

export interface UpstreamResult {
  readonly client: Client;
  readonly fingerprint: string;
}

export interface UpstreamOptions {
  readonly readyTimeoutMs?: number;
}

export function connectUpstream(cfg: UpstreamConfig, options: UpstreamOptions = {}): { promise: Promise<UpstreamResult>; client: Client } {
  const client = new ssh2.Client();
  const pinned = cfg.ssh?.hostKeyFingerprints ?? [];
  let seen: string | undefined;
  let mismatch = false;
  const creds = cfg.credentials;
  const config: ConnectConfig = {
    host: cfg.host,
    port: cfg.port,
    username: creds.username,
    ...(creds.privateKey !== undefined ? { privateKey: creds.privateKey } : {}),
    ...(creds.passphrase !== undefined ? { passphrase: creds.passphrase } : {}),
    ...(creds.password !== undefined ? { password: creds.password } : {}),
    readyTimeout: options.readyTimeoutMs ?? 20_000,
    keepaliveInterval: 15_000,
    algorithms: { cipher: [...CIPHERS] },
    hostVerifier: (key: Buffer): boolean => {
      seen = sha256Fingerprint(key);
      mismatch = !isPinned(key, pinned);
      return !mismatch;
    },
  };
  const promise = new Promise<UpstreamResult>((resolve, reject) => {
    let settled = false;
    const onError = (err: Error & { level?: string }): void => {
      if (settled) return; // later errors: the session sees the connection close
      settled = true;
      if (mismatch) {
        reject(
          new SidecarError(
            'HostKeyMismatch',
            `the host key of ${cfg.host}:${cfg.port} (${seen ?? 'unknown'}) is not pinned in spec.ssh.hostKeyFingerprints of connection ${cfg.name} (pinned: ${pinned.join(', ') || 'none'}): refusing to connect`,
          ),
        );
      } else if (err.level === 'client-authentication') {
        reject(new SidecarError('UpstreamAuthFailed', `${cfg.host}:${cfg.port} refused the credentials of connection ${cfg.name} (user ${creds.username})`));
      } else {
        reject(new SidecarError('UpstreamUnavailable', `cannot reach ${cfg.host}:${cfg.port}: ${err.message}`));
      }
    };
    const onReady = (): void => {
      settled = true;
      resolve({ client, fingerprint: seen ?? '' });
    };
    client.on('error', onError);
    client.once('ready', onReady);
  });
  let sock: Socket | undefined;
  try {
    // our socket, so that its writes are coalesced (see socket.ts); keystrokes must not wait
    // behind Nagle's algorithm for the ACK of the previous packet (OpenSSH sets TCP_NODELAY for
    // interactive sessions too)
    sock = coalesceWrites(connect({ host: cfg.host, port: cfg.port, noDelay: true }));
    client.connect({ ...config, sock });
  } catch (err) {
    sock?.destroy();
    // a key that does not parse, or another bad option
    client.emit('error', new Error(`invalid upstream configuration: ${(err as Error).message}`));
  }
  return { promise, client };
}
