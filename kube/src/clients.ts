/** API clients for Airlock's processes: every call through one connection pool. */
import { ServerConfiguration, createConfiguration, setHeaderMiddleware, type Configuration, type KubeConfig, type RequestContext, type SecurityAuthentication } from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * The kubeconfig's authentication with one connection pool for every request.
 *
 * client-node 2.0.1's KubeConfig.applySecurityAuthentication builds a new undici Agent for every
 * request (createDispatcher): each API call then opens a TLS connection of its own (handshake,
 * client certificate, CA parsed again) and drops it. Under load (1,000 status writes) that was
 * most of the operator's CPU time and the latency of every call. Here the headers are still
 * applied per request (tokens rotate: token files, exec plugins), but the first dispatcher is
 * kept and every later request goes through it, so connections are kept alive and reused. The
 * TLS material (CA, client certificate) is taken once, when the first request is made.
 */
export class PooledAuthentication implements SecurityAuthentication {
  readonly #config: KubeConfig;
  #shared: Dispatcher | undefined;

  constructor(config: KubeConfig) {
    this.#config = config;
  }

  getName(): string {
    return 'kubeconfig authentication, one connection pool';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.#config.applySecurityAuthentication(context);
    const made = context.getDispatcher();
    if (made === undefined) return;
    if (this.#shared === undefined) {
      this.#shared = made;
      return;
    }
    // the Agent made for this request has no connection yet: it is dropped unused
    context.setDispatcher(this.#shared);
  }
}

/** The configuration API classes are built from (`new CoreV1Api(apiConfiguration(config, 'airlock-operator'))`): the kubeconfig's server and authentication, one connection pool, and a User-Agent. */
export function apiConfiguration(config: KubeConfig, userAgent: string): Configuration {
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  return createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: new PooledAuthentication(config) },
    middleware: [setHeaderMiddleware('User-Agent', userAgent)],
  });
}
