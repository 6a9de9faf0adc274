/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677) for the sidecar's upstream login. Pure: the
 * caller moves the messages; node:crypto does the maths. No channel binding (`n,,`), as
 * PostgreSQL accepts over plain TCP and TLS alike.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramError(`malformed SCRAM attribute "${part.slice(0, 20)}"`);
    out.set(part.slice(0, 1), part.slice(2));
  }
  return out;
}

/** username is sent as given (PostgreSQL ignores it and uses the startup user). */
export class ScramClient {
  readonly #password: string;
  readonly #clientFirstBare: string;
  readonly #nonce: string;
  #serverSignature: Buffer | undefined;

  constructor(password: string, options: { nonce?: string; username?: string } = {}) {
    this.#password = password.normalize('NFKC');
    this.#nonce = options.nonce ?? randomBytes(18).toString('base64');
    const user = (options.username ?? '').replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.#clientFirstBare = `n=${user},r=${this.#nonce}`;
  }

  /** The SASLInitialResponse payload. */
  clientFirst(): string {
    return `n,,${this.#clientFirstBare}`;
  }

  /** Takes the server-first message; returns the client-final message. */
  clientFinal(serverFirst: string): string {
    const attrs = attributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || salt === undefined || !Number.isInteger(iterations) || iterations < 1) throw new ScramError('server-first message lacks nonce, salt or iteration count');
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) throw new ScramError('server nonce does not extend the client nonce');
    if (iterations > 10_000_000) throw new ScramError(`iteration count ${iterations} is unreasonably high`);
    const salted = pbkdf2Sync(this.#password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.#serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Verifies the server-final message: the server proves it knew the password too. */
  verify(serverFinal: string): void {
    const attrs = attributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw new ScramError(`server rejected the SCRAM exchange: ${error}`);
    const v = attrs.get('v');
    if (v === undefined || this.#serverSignature === undefined) throw new ScramError('server-final message lacks the server signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.#serverSignature.length || !timingSafeEqual(got, this.#serverSignature)) throw new ScramError('server signature does not match: the server does not know the password');
  }
}

/** PostgreSQL's MD5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`;
}
