/**
 * The API server's service-account issuer: its OIDC discovery document (`issuer`) and key set
 * (JWKS), read through the operator's own kube client (`/.well-known/openid-configuration`,
 * `/openid/v1/jwks`; the default ClusterRole system:service-account-issuer-discovery allows
 * every service account), kept in memory, and read again when a token names a key the set does
 * not hold (the API server rotated its signing key), at most once per `minRefreshMs`.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Clock } from '@airlock/kube';
import { ControlFailure } from './errors.ts';

export interface IssuerSource {
  /** the discovery document: JSON text or parsed (client-node 2.0.1 parses it although it types it as a string) */
  discovery(): Promise<unknown>;
  /** the JWKS: JSON text or parsed */
  keySet(): Promise<unknown>;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;
type Key = Awaited<ReturnType<KeyResolver>>;

interface Loaded {
  readonly issuer: string;
  readonly resolve: KeyResolver;
  readonly at: number;
}

function parseJson(text: unknown, what: string): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ControlFailure('IssuerUnavailable', `the API server's ${what} is not JSON`, { cause: err });
  }
}

export class IssuerKeys {
  readonly #source: IssuerSource;
  readonly #clock: Clock;
  readonly #minRefreshMs: number;
  #loaded: Loaded | undefined;
  #loading: Promise<Loaded> | undefined;

  constructor({ source, clock, minRefreshMs = 10_000 }: { readonly source: IssuerSource; readonly clock: Clock; readonly minRefreshMs?: number }) {
    this.#source = source;
    this.#clock = clock;
    this.#minRefreshMs = minRefreshMs;
  }

  /** the issuer tokens must name (`iss`) */
  async issuer(): Promise<string> {
    return (await this.#current()).issuer;
  }

  /** jose's key resolver: the matching key, reloading the set once when the token's kid is unknown */
  readonly key = async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<Key> => {
    const loaded = await this.#current();
    try {
      return await loaded.resolve(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || this.#clock.now() - loaded.at < this.#minRefreshMs) throw err;
      return (await this.#reload()).resolve(header, token);
    }
  };

  async #current(): Promise<Loaded> {
    return this.#loaded ?? this.#reload();
  }

  #reload(): Promise<Loaded> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #load(): Promise<Loaded> {
    let discoveryText: unknown;
    let keySetText: unknown;
    try {
      [discoveryText, keySetText] = await Promise.all([this.#source.discovery(), this.#source.keySet()]);
    } catch (err) {
      throw new ControlFailure('IssuerUnavailable', `cannot read the API server's service-account issuer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const discovery = (parseJson(discoveryText, 'OIDC discovery document') ?? {}) as { issuer?: unknown };
    if (typeof discovery.issuer !== 'string' || discovery.issuer === '') throw new ControlFailure('IssuerUnavailable', "the API server's OIDC discovery document names no issuer");
    const keySet = parseJson(keySetText, 'JWKS') as JSONWebKeySet;
    let resolve: KeyResolver;
    try {
      resolve = createLocalJWKSet(keySet);
    } catch (err) {
      throw new ControlFailure('IssuerUnavailable', `the API server's JWKS is invalid: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#loaded = { issuer: discovery.issuer, resolve, at: this.#clock.now() };
    return this.#loaded;
  }
}
