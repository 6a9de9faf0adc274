/**
 * The HTTP side: an express 5 app serving AdmissionReview v1 at the WEBHOOK_PATHS over HTTPS
 * (node:https, certificate swappable at run time). /healthz, /readyz and /metrics are
 * @airlock/kube's HealthServer.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'winston';
import { WEBHOOK_PATHS } from '@airlock/api';
import { closeGracefully, listen, parseHostPort, type HostPort } from '@airlock/kube';
import { parseAdmissionReview, reviewResponse, type AdmissionRequest, type AdmissionVerdict } from './admission.ts';
import { WebhookError } from './errors.ts';
import type { WebhookMetrics, WebhookName } from './metrics.ts';

export type AdmissionHandler = (request: AdmissionRequest) => AdmissionVerdict | Promise<AdmissionVerdict>;
export type Handlers = Readonly<Record<WebhookName, AdmissionHandler>>;

const ROUTES: readonly (readonly [WebhookName, string])[] = [
  ['pods', WEBHOOK_PATHS.injectPods],
  ['approvalrequests', WEBHOOK_PATHS.approvalDecisions],
  ['policies', WEBHOOK_PATHS.validatePolicies],
];

/** largest AdmissionReview accepted (the API server's own request limit is 3 MiB of object) */
const BODY_LIMIT = '8mb';

function problem(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ code, message });
}

/** --listen and --metrics-addr as host and port */
export function parseAddress(text: string): HostPort {
  const address = parseHostPort(text);
  if (address === undefined) throw new WebhookError('InvalidAddress', `address "${text}" is not host:port`);
  return address;
}

export function admissionApp({ handlers, metrics, log }: { readonly handlers: Handlers; readonly metrics: WebhookMetrics; readonly log: Logger }): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: BODY_LIMIT, type: () => true, strict: true }));
  for (const [webhook, path] of ROUTES) {
    const handler = handlers[webhook];
    app.post(path, async (req: Request, res: Response) => {
      const started = performance.now();
      let request: AdmissionRequest;
      try {
        request = parseAdmissionReview(req.body);
      } catch (err) {
        if (!(err instanceof WebhookError)) throw err;
        metrics.requests.inc({ webhook, result: 'error' });
        log.warn('malformed admission review', { webhook, error: err.message });
        problem(res, 400, err.code, `malformed AdmissionReview: ${err.message}`);
        return;
      }
      let verdict: AdmissionVerdict;
      try {
        verdict = await handler(request);
      } catch (err) {
        // an unexpected failure refuses the request (fail closed) and says so
        log.error('admission handler failed', { webhook, uid: request.uid, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        metrics.requests.inc({ webhook, result: 'error' });
        verdict = { allowed: false, code: 500, reason: 'InternalError', message: `Airlock's webhook failed to decide: ${err instanceof Error ? err.message : String(err)}` };
      }
      const result = !verdict.allowed ? 'denied' : verdict.patch !== undefined && verdict.patch.length > 0 ? 'patched' : 'allowed';
      res.status(200).json(reviewResponse(request.uid, verdict));
      metrics.requests.inc({ webhook, result });
      metrics.latency.observe({ webhook }, (performance.now() - started) / 1000);
      const fields = {
        webhook,
        uid: request.uid,
        operation: request.operation,
        kind: request.kind.kind,
        namespace: request.namespace,
        name: request.name,
        user: request.userInfo.username,
        dryRun: request.dryRun,
        result,
        ...(verdict.allowed ? {} : { message: verdict.message }),
      };
      if (verdict.allowed) log.debug('admission', fields);
      else log.info('admission', fields);
    });
  }
  app.use((req: Request, res: Response) => {
    problem(res, req.method === 'POST' ? 404 : 405, 'NotFound', `no webhook at ${req.method} ${req.path}; paths: ${ROUTES.map(([, p]) => `POST ${p}`).join(', ')}`);
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') problem(res, 400, 'InvalidReview', `malformed AdmissionReview: the body is not JSON: ${e.message ?? ''}`);
    else if (e.type === 'entity.too.large') problem(res, 413, 'InvalidReview', `malformed AdmissionReview: the body exceeds ${BODY_LIMIT}`);
    else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) problem(res, e.status, 'InvalidReview', `malformed AdmissionReview: ${e.message ?? ''}`);
    else {
      log.error('request failed', { error: e.message });
      problem(res, 500, 'InternalError', 'internal error');
    }
  });
  return app;
}

export class AdmissionServer {
  readonly #server: HttpsServer;

  constructor(app: express.Express) {
    // no certificate until setSecureContext(): handshakes fail (and /readyz says why) until then
    this.#server = createHttpsServer({ minVersion: 'TLSv1.2' }, app);
    this.#server.keepAliveTimeout = 30_000;
  }

  setCertificate(pair: { readonly cert: Buffer; readonly key: Buffer }): void {
    this.#server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listen(this.#server, host, port);
  }

  close(graceMs = 10_000): Promise<void> {
    return closeGracefully(this.#server, graceMs);
  }
}
