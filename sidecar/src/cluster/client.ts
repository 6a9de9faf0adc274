/**
 * The control API client: HTTPS (node:https) to the operator, verified with Airlock's CA, each
 * request carrying the projected service-account token read again from its file (the kubelet
 * rotates it). Answers are JSON; a refusal becomes a ControlRequestError with the HTTP status and
 * the API's stable code.
 */
import { readFile } from 'node:fs/promises';
import type * as Https from 'node:https';
import type { Agent } from 'node:https';
import { CONTROL_API_PREFIX, type AgentCertificates, type ApprovalAsk, type CertificateAsk, type ApprovalCreated, type ApprovalState, type SessionReport, type SidecarBundle } from '@airlock/api';

/** node:https as its CommonJS object (an ESM import builds its facade, which loads http's lazy exports: see builtinHttp in sidecar.ts). */
function https(): typeof Https {
  return process.getBuiltinModule('node:https');
}

export class ControlRequestError extends Error {
  /** undefined: no answer (connection refused, TLS, timeout) */
  readonly status: number | undefined;
  /** the ControlError code, or `Unreachable` / `Timeout` / `InvalidReply` */
  readonly code: string;
  constructor(status: number | undefined, code: string, message: string) {
    super(message);
    this.name = 'ControlRequestError';
    this.status = status;
    this.code = code;
  }
}

export interface ControlClientOptions {
  /** https://host:port of the control API */
  readonly url: string;
  /** PEM bundle of the CA that signs the control API's certificate; undefined: the system's */
  readonly ca: string | undefined;
  readonly tokenFile: string;
  /** per request (long polls add their wait); default 15 s */
  readonly timeoutMs?: number;
}

export class ControlClient {
  readonly #url: URL;
  readonly #agent: Agent;
  readonly #tokenFile: string;
  readonly #timeoutMs: number;

  constructor(options: ControlClientOptions) {
    this.#url = new URL(options.url);
    if (this.#url.protocol !== 'https:') throw new Error(`the control URL must be https:// (got ${options.url})`);
    this.#agent = new (https().Agent)({ keepAlive: true, maxSockets: 8, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
    this.#tokenFile = options.tokenFile;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
  }

  get url(): string {
    return this.#url.origin;
  }

  /** `GET /v1/bundle`; with `revision`, waits up to `waitSeconds` for a change. */
  bundle(revision: string | undefined, waitSeconds: number, signal?: AbortSignal): Promise<SidecarBundle> {
    const q = revision === undefined ? '' : `?revision=${encodeURIComponent(revision)}&waitSeconds=${String(waitSeconds)}`;
    return this.#json<SidecarBundle>('GET', `/bundle${q}`, undefined, revision === undefined ? 0 : waitSeconds, signal);
  }

  createApproval(ask: ApprovalAsk, signal?: AbortSignal): Promise<ApprovalCreated> {
    return this.#json<ApprovalCreated>('POST', '/approvals', ask, 0, signal);
  }

  approval(name: string, waitSeconds: number, signal?: AbortSignal): Promise<ApprovalState> {
    return this.#json<ApprovalState>('GET', `/approvals/${encodeURIComponent(name)}${waitSeconds > 0 ? `?waitSeconds=${String(waitSeconds)}` : ''}`, undefined, waitSeconds, signal);
  }

  async withdrawApproval(name: string, signal?: AbortSignal): Promise<void> {
    await this.#call('DELETE', `/approvals/${encodeURIComponent(name)}`, undefined, 0, signal);
  }

  async report(report: SessionReport, signal?: AbortSignal): Promise<void> {
    await this.#call('POST', '/sessions', report, 0, signal);
  }

  /** `POST /v1/certificates`: the agent-facing TLS certificate and SSH host key */
  certificates(ask: CertificateAsk, signal?: AbortSignal): Promise<AgentCertificates> {
    return this.#json<AgentCertificates>('POST', '/certificates', ask, 0, signal);
  }

  close(): void {
    this.#agent.destroy();
  }

  async #json<T>(method: string, path: string, body: unknown, waitSeconds: number, signal: AbortSignal | undefined): Promise<T> {
    const text = await this.#call(method, path, body, waitSeconds, signal);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ControlRequestError(200, 'InvalidReply', `${method} ${CONTROL_API_PREFIX}${path}: the reply is not JSON`);
    }
  }

  async #call(method: string, path: string, body: unknown, waitSeconds: number, signal: AbortSignal | undefined): Promise<string> {
    let token: string;
    try {
      token = (await readFile(this.#tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new ControlRequestError(undefined, 'NoToken', `cannot read the service-account token ${this.#tokenFile}: ${(err as Error).message}`);
    }
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const target = new URL(`${CONTROL_API_PREFIX}${path}`, this.#url);
    const what = `${method} ${target.pathname}`;
    return new Promise<string>((resolve, reject) => {
      const req = https().request(
        target,
        {
          method,
          agent: this.#agent,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          },
          timeout: this.#timeoutMs + waitSeconds * 1000,
          ...(signal !== undefined ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', (err) => {
            reject(new ControlRequestError(undefined, 'Unreachable', `${what}: ${err.message}`));
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve(text);
              return;
            }
            let code = `HTTP${String(status)}`;
            let message = text.slice(0, 500);
            try {
              const e = JSON.parse(text) as { code?: unknown; message?: unknown };
              if (typeof e.code === 'string') code = e.code;
              if (typeof e.message === 'string') message = e.message;
            } catch {
              // not a ControlError body
            }
            reject(new ControlRequestError(status, code, `${what}: ${String(status)} ${code}: ${message}`));
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(new ControlRequestError(undefined, 'Timeout', `${what}: no answer in time`));
      });
      req.on('error', (err) => {
        reject(err instanceof ControlRequestError ? err : new ControlRequestError(undefined, signal?.aborted === true ? 'Aborted' : 'Unreachable', `${what}: ${err.message}`));
      });
      req.end(payload);
    });
  }
}
