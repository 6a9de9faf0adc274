/**
 * The control API's routes (express 5). Every request is authenticated (auth.ts) before it is
 * routed; ControlFailures and the services' errors become a ControlError body here and nowhere
 * else.
 *
 *   GET    /v1/bundle[?revision=&waitSeconds=]   SidecarBundle (long-poll while revision is current)
 *   POST   /v1/approvals                         ApprovalAsk → 201 ApprovalCreated
 *   GET    /v1/approvals/:name[?waitSeconds=]    ApprovalState
 *   DELETE /v1/approvals/:name                   204 (withdrawn)
 *   POST   /v1/sessions                          SessionReport → 204
 *   POST   /v1/certificates                      CertificateAsk → 200 AgentCertificates
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { CONTROL_API_PREFIX, type AgentConnection, type ApprovalRule, type ControlError, type MaskingPolicy, type PodIdentity } from '@airlock/api';
import type { Logger } from 'winston';
import type { OperatorMetrics } from '../metrics.ts';
import { authorizePod, type PodRecord, type TokenClaims, type TokenVerifier } from './auth.ts';
import { assembleBundle, memoizedJudge, type AssembledBundle, type SecretLike } from './bundle.ts';
import { parseCertificateAsk, type AgentCertificateService } from './certificates.ts';
import { ControlFailure } from './errors.ts';
import type { PodEvents } from './pod-events.ts';
import type { ApprovalsPort, SessionsPort } from './ports.ts';
import type { NamespaceSignals } from './signals.ts';
import { parseApprovalAsk, parseApprovalName, parseRevision, parseSessionReport, parseWaitSeconds } from './validate.ts';

/** what the control API reads from the informers' caches */
export interface ControlView {
  /** false until every informer it reads has synced */
  ready(): boolean;
  pod(namespace: string, name: string): PodRecord | undefined;
  connections(namespace: string): readonly AgentConnection[];
  maskingPolicies(namespace: string): readonly MaskingPolicy[];
  approvalRules(namespace: string): readonly ApprovalRule[];
  secret(namespace: string, name: string): SecretLike | undefined;
}

export interface ControlApiDeps {
  readonly verifier: TokenVerifier;
  readonly view: ControlView;
  readonly signals: NamespaceSignals;
  readonly events: PodEvents;
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  /** absent until the approvals service is wired: those routes answer 503 Unavailable */
  readonly approvals?: ApprovalsPort | undefined;
  readonly sessions?: SessionsPort | undefined;
  /** absent: POST /v1/certificates answers 503 Unavailable (the sidecar then serves the agent without TLS) */
  readonly certificates?: Pick<AgentCertificateService, 'issue'> | undefined;
  /** largest JSON body accepted */
  readonly bodyLimit?: string;
}

interface Caller {
  readonly claims: TokenClaims;
  readonly identity: PodIdentity;
  readonly granted: readonly AgentConnection[];
}

interface Context {
  readonly route: string;
  readonly aborted: AbortSignal;
  caller?: Caller;
}

/** a route's work, for an authenticated caller; `aborted` fires when the client goes away */
type Handler = (req: Request, res: Response, context: { readonly caller: Caller; readonly aborted: AbortSignal }) => Promise<void>;

/** aborted when the client goes away before the reply (ends long polls early) */
function abortOnClose(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  req.on('aborted', () => {
    controller.abort();
  });
  return controller.signal;
}

function errorBody(err: unknown): { readonly status: number; readonly body: ControlError } {
  if (err instanceof ControlFailure) return { status: err.status, body: { code: err.code, message: err.message } };
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  // the services' OperatorErrors, by their stable codes
  if (code === 'NotFound') return { status: 404, body: { code, message } };
  if (code === 'Conflict' || code === 'AlreadyExists') return { status: 409, body: { code: 'Conflict', message } };
  if (code === 'InvalidBody' || code === 'InvalidAsk') return { status: 400, body: { code: 'InvalidBody', message } };
  if (code === 'Unavailable') return { status: 503, body: { code, message } };
  // body-parser's errors
  const type = (err as { type?: unknown }).type;
  if (type === 'entity.too.large') return { status: 413, body: { code: 'BodyTooLarge', message: 'the request body is larger than the control API accepts' } };
  if (type === 'entity.parse.failed' || type === 'encoding.unsupported' || type === 'charset.unsupported') return { status: 400, body: { code: 'InvalidBody', message: `the body is not JSON: ${message}` } };
  return { status: 500, body: { code: 'Internal', message: 'internal error (see the operator log)' } };
}

export class ControlApi {
  readonly app: express.Express;
  readonly #deps: ControlApiDeps;
  readonly #judge = memoizedJudge();
  readonly #contexts = new WeakMap<Response, Context>();

  constructor(deps: ControlApiDeps) {
    this.#deps = deps;
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.set('query parser', 'simple');
    const json = express.json({ limit: deps.bodyLimit ?? '256kb', strict: true, type: () => true });
    const p = CONTROL_API_PREFIX;
    // authenticate first, then (for POSTs) read the body, then handle; errors go to the last middleware
    app.get(`${p}/bundle`, this.#auth('bundle'), this.#handle((req, res, c) => this.#bundle(req, res, c)));
    app.post(`${p}/approvals`, this.#auth('approvals.create'), json, this.#handle((req, res, c) => this.#createApproval(req, res, c)));
    app.get(`${p}/approvals/:name`, this.#auth('approvals.get'), this.#handle((req, res, c) => this.#approvalState(req, res, c)));
    app.delete(`${p}/approvals/:name`, this.#auth('approvals.withdraw'), this.#handle((req, res, c) => this.#withdraw(req, res, c)));
    app.post(`${p}/sessions`, this.#auth('sessions.report'), json, this.#handle((req, res, c) => this.#report(req, res, c)));
    app.post(`${p}/certificates`, this.#auth('certificates'), json, this.#handle((req, res, c) => this.#certificates(req, res, c)));
    app.use((req: Request, res: Response) => {
      this.#count('unknown', 404);
      res.status(404).json({ code: 'NotFound', message: `no route ${req.method} ${req.path}` } satisfies ControlError);
    });
    app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) {
        next(err);
        return;
      }
      const context = this.#contexts.get(res);
      this.#fail(res, context?.route ?? 'unknown', err, context?.caller);
    });
    this.app = app;
  }

  #count(route: string, status: number): void {
    this.#deps.metrics.controlRequests.inc({ route, code: String(status) });
  }

  /** counts the request when answered and authenticates it; the Context carries the caller on */
  #auth(route: string): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      const context: Context = { route, aborted: abortOnClose(req, res) };
      this.#contexts.set(res, context);
      res.on('finish', () => {
        this.#count(route, res.statusCode);
      });
      this.#authenticate(req).then(
        (caller) => {
          context.caller = caller;
          next();
        },
        (err: unknown) => {
          next(err);
        },
      );
    };
  }

  #handle(handler: Handler): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      const context = this.#contexts.get(res);
      const caller = context?.caller;
      if (context === undefined || caller === undefined) {
        next(new ControlFailure('Internal', 'request not authenticated'));
        return;
      }
      handler(req, res, { caller, aborted: context.aborted }).catch((err: unknown) => {
        next(err);
      });
    };
  }

  #fail(res: Response, route: string, err: unknown, caller: Caller | undefined): void {
    const { status, body } = errorBody(err);
    this.#deps.metrics.controlRefusals.inc({ code: body.code });
    const fields = { route, status, code: body.code, ...(caller === undefined ? {} : { pod: `${caller.identity.namespace}/${caller.identity.name}` }) };
    if (status >= 500) this.#deps.log.error('control API request failed', { ...fields, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    else this.#deps.log.info('control API request refused', { ...fields, message: body.message });
    if (!res.headersSent) res.status(status).json(body);
    else res.end();
  }

  async #authenticate(req: Request): Promise<Caller> {
    if (!this.#deps.view.ready()) throw new ControlFailure('NotReady', 'the operator is still filling its caches; retry shortly');
    const claims = await this.#deps.verifier.verify(req.get('authorization'));
    return this.#authorize(claims);
  }

  /** the pod and its grants, from the caches as they are now; Events on the pod for a refusal */
  #authorize(claims: TokenClaims): Caller {
    const pod = claims.pod === undefined ? undefined : this.#deps.view.pod(claims.namespace, claims.pod.name);
    try {
      return { claims, ...authorizePod(claims, pod, this.#deps.view.connections(claims.namespace)) };
    } catch (err) {
      if (err instanceof ControlFailure && pod !== undefined) {
        void this.#deps.events.warn(pod, `ControlAccess${err.code}`, 'AuthenticateSidecar', `The Airlock control API refused a request: ${err.message}.`);
      }
      throw err;
    }
  }

  #assemble(caller: Caller): AssembledBundle {
    const { namespace } = caller.identity;
    const view = this.#deps.view;
    return assembleBundle(
      caller.identity,
      {
        connections: caller.granted,
        maskingPolicies: view.maskingPolicies(namespace),
        approvalRules: view.approvalRules(namespace),
        secret: (name) => view.secret(namespace, name),
      },
      this.#judge,
    );
  }

  async #bundle(req: Request, res: Response, { caller: first, aborted }: { readonly caller: Caller; readonly aborted: AbortSignal }): Promise<void> {
    const started = performance.now();
    const revision = parseRevision(req.query['revision']);
    const waitMs = parseWaitSeconds(req.query['waitSeconds']) * 1000;
    let caller = first;
    let assembled = this.#assemble(caller);
    let waited = 0;
    if (revision !== undefined && revision === assembled.bundle.revision && waitMs > 0) {
      const deadline = performance.now() + waitMs;
      this.#deps.metrics.longPolls.inc();
      try {
        while (assembled.bundle.revision === revision && !aborted.aborted) {
          const remaining = deadline - performance.now();
          if (remaining <= 0) break;
          const sleptAt = performance.now();
          await this.#deps.signals.sleep(caller.identity.namespace, remaining, aborted);
          waited += performance.now() - sleptAt;
          // the pod may be gone or no longer granted: authorize again from the cache
          caller = this.#authorize(caller.claims);
          assembled = this.#assemble(caller);
        }
      } finally {
        this.#deps.metrics.longPolls.dec();
      }
    }
    if (aborted.aborted) return;
    if (assembled.bundle.revision !== revision) this.#reportOmitted(caller, assembled);
    this.#deps.metrics.bundleDuration.observe((performance.now() - started - waited) / 1000);
    res.status(200).json(assembled.bundle);
  }

  #reportOmitted(caller: Caller, assembled: AssembledBundle): void {
    for (const omitted of assembled.omitted) {
      this.#deps.log.warn('connection left out of a bundle', { pod: `${caller.identity.namespace}/${caller.identity.name}`, connection: omitted.name, reason: omitted.reason, message: omitted.message });
      void this.#deps.events.warn(
        caller.identity,
        `Connection${omitted.reason}`,
        'DeliverBundle',
        `AgentConnection "${omitted.name}" is left out of the sidecar's bundle, so the sidecar refuses it: ${omitted.message}`,
      );
    }
  }

  #approvals(): ApprovalsPort {
    if (this.#deps.approvals === undefined) throw new ControlFailure('Unavailable', 'approvals are not served by this operator');
    return this.#deps.approvals;
  }

  async #createApproval(req: Request, res: Response, { caller }: { readonly caller: Caller }): Promise<void> {
    const ask = parseApprovalAsk(req.body);
    if (!caller.granted.some((c) => c.metadata.name === ask.connection)) {
      throw new ControlFailure('NotGranted', `AgentConnection "${ask.connection}" does not grant pod ${caller.identity.name}`);
    }
    const created = await this.#approvals().create(caller.identity, ask);
    res.status(201).json(created);
  }

  async #approvalState(req: Request, res: Response, { caller, aborted }: { readonly caller: Caller; readonly aborted: AbortSignal }): Promise<void> {
    const name = parseApprovalName(String(req.params['name']));
    const waitMs = parseWaitSeconds(req.query['waitSeconds']) * 1000;
    const approvals = this.#approvals();
    const state = waitMs > 0 ? await approvals.wait(caller.identity, name, waitMs, aborted) : await approvals.state(caller.identity, name);
    if (aborted.aborted) return;
    res.status(200).json(state);
  }

  async #withdraw(req: Request, res: Response, { caller }: { readonly caller: Caller }): Promise<void> {
    const name = parseApprovalName(String(req.params['name']));
    await this.#approvals().withdraw(caller.identity, name);
    res.status(204).end();
  }

  async #certificates(req: Request, res: Response, { caller }: { readonly caller: Caller }): Promise<void> {
    const ask = parseCertificateAsk(req.body);
    if (this.#deps.certificates === undefined) throw new ControlFailure('Unavailable', 'agent-facing certificates are not served by this operator');
    // only the connections granted now: their target names, never another pod's
    const issued = await this.#deps.certificates.issue(caller.identity, caller.granted, ask);
    res.status(200).json(issued);
  }

  async #report(req: Request, res: Response, { caller }: { readonly caller: Caller }): Promise<void> {
    // not restricted to connections granted now: the end of a session on a connection since
    // deleted or re-labelled must still be recorded
    const report = parseSessionReport(req.body);
    if (this.#deps.sessions === undefined) throw new ControlFailure('Unavailable', 'session reports are not served by this operator');
    await this.#deps.sessions.report(caller.identity, report);
    res.status(204).end();
  }
}
