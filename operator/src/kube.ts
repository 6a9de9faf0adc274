/** The API clients the operator uses, built once from a KubeConfig and passed by constructor. */
import {
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  OpenidApi,
  WellKnownApi,
} from '@kubernetes/client-node';
import { apiConfiguration } from '@airlock/kube';

export interface Kube {
  readonly config: KubeConfig;
  readonly customObjects: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly events: EventsV1Api;
  readonly coordination: CoordinationV1Api;
  /** SubjectAccessReviews: who else can read a credentials Secret */
  readonly authorization: AuthorizationV1Api;
  /** the service-account issuer's key set (/openid/v1/jwks) */
  readonly openid: OpenidApi;
  /** the service-account issuer's discovery document (/.well-known/openid-configuration) */
  readonly wellKnown: WellKnownApi;
}

export function kubeFromConfig(config: KubeConfig): Kube {
  const configuration = apiConfiguration(config, 'airlock-operator');
  return {
    config,
    customObjects: new CustomObjectsApi(configuration),
    core: new CoreV1Api(configuration),
    events: new EventsV1Api(configuration),
    coordination: new CoordinationV1Api(configuration),
    authorization: new AuthorizationV1Api(configuration),
    openid: new OpenidApi(configuration),
    wellKnown: new WellKnownApi(configuration),
  };
}

/** a kubeconfig file, or client-node's default (KUBECONFIG, ~/.kube/config, in-cluster) */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  if (file === undefined) config.loadFromDefault();
  else config.loadFromFile(file);
  return config;
}

/** the namespace of the kubeconfig's current context, if it names one */
export function contextNamespace(config: KubeConfig): string | undefined {
  const namespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return namespace === '' ? undefined : namespace;
}
