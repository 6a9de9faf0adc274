/**
 * Who is calling: the projected service-account token of a sidecar (audience `airlock.dev`),
 * verified with jose against the API server's issuer keys (no TokenReview per call), then bound
 * to a live, injected pod of the cache with the same uid and service account, which an
 * AgentConnection of its namespace grants. Every refusal is a ControlFailure with a stable code.
 */
import { CONTROL_AUDIENCE, type AgentConnection, type PodIdentity } from '@airlock/api';
import { errors, jwtVerify } from 'jose';
import type { Clock } from '@airlock/kube';
import { ControlFailure } from './errors.ts';
import { grantedConnections } from './grant.ts';
import type { IssuerKeys } from './issuer.ts';

/** what the cache keeps of a pod */
export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  /** from the injected annotation: the capture mode and the connections the sidecar serves */
  readonly capture?: string;
  readonly connections?: readonly string[];
}

/** the kubernetes.io claims of a verified token */
export interface TokenClaims {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly pod: { readonly name: string; readonly uid: string } | undefined;
}

/** clock skew tolerated on exp, nbf and iat */
export const CLOCK_SKEW_SECONDS = 30;

function bearer(header: string | undefined): string {
  const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header ?? '');
  if (match?.[1] === undefined) throw new ControlFailure('MissingToken', 'an Authorization: Bearer header with the projected service-account token (audience airlock.dev) is required');
  return match[1];
}

function claimsOf(payload: Record<string, unknown>): TokenClaims {
  const k8s = payload['kubernetes.io'] as { namespace?: unknown; pod?: { name?: unknown; uid?: unknown }; serviceaccount?: { name?: unknown } } | undefined;
  const namespace = k8s?.namespace;
  const serviceAccount = k8s?.serviceaccount?.name;
  if (typeof namespace !== 'string' || typeof serviceAccount !== 'string') throw new ControlFailure('InvalidToken', 'the token is not a Kubernetes service-account token (no kubernetes.io claims)');
  const pod = k8s?.pod;
  return {
    namespace,
    serviceAccount,
    pod: pod !== undefined && typeof pod.name === 'string' && typeof pod.uid === 'string' ? { name: pod.name, uid: pod.uid } : undefined,
  };
}

export class TokenVerifier {
  readonly #keys: IssuerKeys;
  readonly #clock: Clock;

  constructor({ keys, clock }: { readonly keys: IssuerKeys; readonly clock: Clock }) {
    this.#keys = keys;
    this.#clock = clock;
  }

  async verify(authorization: string | undefined): Promise<TokenClaims> {
    const token = bearer(authorization);
    const issuer = await this.#keys.issuer();
    try {
      const { payload } = await jwtVerify(token, this.#keys.key, {
        issuer,
        audience: CONTROL_AUDIENCE,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(this.#clock.now()),
        algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'],
        requiredClaims: ['exp', 'iat'],
      });
      return claimsOf(payload);
    } catch (err) {
      throw tokenFailure(err);
    }
  }
}

function tokenFailure(err: unknown): unknown {
  if (err instanceof ControlFailure) return err;
  if (err instanceof errors.JWTExpired) return new ControlFailure('TokenExpired', 'the token has expired', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return new ControlFailure('WrongAudience', `the token's audience is not "${CONTROL_AUDIENCE}"`, { cause: err });
    if (err.claim === 'iss') return new ControlFailure('WrongIssuer', "the token was not issued by this cluster's service-account issuer", { cause: err });
    if (err.claim === 'nbf' || err.claim === 'iat') return new ControlFailure('TokenNotYetValid', `the token is not valid yet (${err.claim})`, { cause: err });
    return new ControlFailure('InvalidToken', `the token's ${err.claim} claim is invalid: ${err.message}`, { cause: err });
  }
  if (err instanceof errors.JWKSNoMatchingKey) return new ControlFailure('InvalidToken', "the token is signed by a key the cluster's issuer does not publish", { cause: err });
  if (err instanceof errors.JWSSignatureVerificationFailed) return new ControlFailure('InvalidToken', "the token's signature does not verify", { cause: err });
  if (err instanceof errors.JOSEError) return new ControlFailure('InvalidToken', `the token is not a valid JWT: ${err.message}`, { cause: err });
  return err;
}

/**
 * The pod a verified token speaks for, and the connections granting it; pure. `pod` is the cache's
 * pod of the token's namespace and pod name.
 */
export function authorizePod(claims: TokenClaims, pod: PodRecord | undefined, connections: readonly AgentConnection[]): { readonly identity: PodIdentity; readonly granted: AgentConnection[] } {
  const bound = claims.pod;
  if (bound === undefined) throw new ControlFailure('NotPodBound', 'the token is not bound to a pod: use the projected token mounted into the sidecar');
  const where = `${claims.namespace}/${bound.name}`;
  // the cache holds only pods with a sidecar (pod-cache.ts): one without is not there either
  if (pod === undefined) throw new ControlFailure('PodNotFound', `no pod ${where} with an Airlock sidecar exists (deleted, or not injected)`);
  if (pod.uid !== bound.uid) throw new ControlFailure('PodUidMismatch', `the token was issued for pod ${where} with uid ${bound.uid}, but the pod of that name has uid ${pod.uid}`);
  if (pod.serviceAccount !== claims.serviceAccount) {
    throw new ControlFailure('ServiceAccountMismatch', `the token is for service account "${claims.serviceAccount}", but pod ${where} runs as "${pod.serviceAccount}"`);
  }
  const identity: PodIdentity = { namespace: pod.namespace, name: pod.name, uid: pod.uid, serviceAccount: pod.serviceAccount };
  const granted = grantedConnections(connections, pod);
  if (granted.length === 0) {
    throw new ControlFailure('NotGranted', `no AgentConnection in namespace "${pod.namespace}" grants pod ${bound.name} (service account "${pod.serviceAccount}", its labels): see spec.agents`);
  }
  return { identity, granted };
}
