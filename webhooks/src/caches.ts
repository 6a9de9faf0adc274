/**
 * The cluster state a pod admission needs, from informers (no API call on the hot path):
 * Namespaces (their opt-in labels and capture annotations), AgentConnections, and the Services and
 * EndpointSlices of connection targets (where their endpoints listen: capture/backends.ts). A
 * namespace missing from the cache (created a moment ago) is read once from the API server.
 */
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1EndpointSlice, type V1Namespace, type V1Service } from '@kubernetes/client-node';
import { GROUP, VERSION, type AgentConnection } from '@airlock/api';
import type { Logger } from 'winston';
import { SupervisedInformer, apiConfiguration, type Clock } from '@airlock/kube';
import type { ServiceLookup } from './capture/backends.ts';

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface ClusterView extends ServiceLookup {
  /** every informer has synced since its last error */
  readonly synced: boolean;
  /** names of what has not synced yet */
  notSynced(): readonly string[];
  /** the namespace, from the cache or (on a miss) from the API server; undefined when it does not exist */
  namespace(name: string): Promise<V1Namespace | undefined>;
  /** the AgentConnections of a namespace; undefined while their informer has not synced */
  connections(namespace: string): readonly AgentConnection[] | undefined;
}

export class InformerCaches implements ClusterView {
  readonly #namespaces: SupervisedInformer<V1Namespace>;
  readonly #connections: SupervisedInformer<KubernetesObject>;
  readonly #services: SupervisedInformer<V1Service>;
  readonly #slices: SupervisedInformer<V1EndpointSlice>;
  readonly #core: CoreV1Api;

  constructor({ config, clock, log, onRestart }: { readonly config: KubeConfig; readonly clock: Clock; readonly log: Logger; readonly onRestart?: (informer: string) => void }) {
    const api = apiConfiguration(config, 'airlock-webhook');
    this.#core = new CoreV1Api(api);
    const custom = new CustomObjectsApi(api);
    this.#namespaces = new SupervisedInformer({
      name: 'namespaces',
      config,
      path: '/api/v1/namespaces',
      list: () => this.#core.listNamespace(),
      clock,
      log,
      onRestart: () => onRestart?.('namespaces'),
    });
    this.#connections = new SupervisedInformer({
      name: 'agentconnections',
      config,
      path: `/apis/${GROUP}/${VERSION}/agentconnections`,
      list: async () => (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'agentconnections' })) as KubernetesListObject<KubernetesObject>,
      clock,
      log,
      onRestart: () => onRestart?.('agentconnections'),
    });
    const discovery = new DiscoveryV1Api(api);
    this.#services = new SupervisedInformer({
      name: 'services',
      config,
      path: '/api/v1/services',
      list: () => this.#core.listServiceForAllNamespaces(),
      clock,
      log,
      onRestart: () => onRestart?.('services'),
    });
    this.#slices = new SupervisedInformer({
      name: 'endpointslices',
      config,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      list: () => discovery.listEndpointSliceForAllNamespaces(),
      clock,
      log,
      onRestart: () => onRestart?.('endpointslices'),
    });
  }

  start(): void {
    for (const i of this.#all()) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#all().map((i) => i.stop()));
  }

  #all(): readonly SupervisedInformer<KubernetesObject>[] {
    return [this.#namespaces, this.#connections, this.#services, this.#slices];
  }

  get synced(): boolean {
    return this.#all().every((i) => i.synced);
  }

  notSynced(): readonly string[] {
    return this.#all().filter((i) => !i.synced).map((i) => `informer ${i.name}`);
  }

  service(namespace: string, name: string): V1Service | undefined {
    return this.#services.cache.get(name, namespace);
  }

  endpointSlices(namespace: string, service: string): readonly V1EndpointSlice[] {
    return this.#slices.cache.list(namespace).filter((s) => s.metadata?.labels?.[SERVICE_NAME_LABEL] === service);
  }

  async namespace(name: string): Promise<V1Namespace | undefined> {
    const cached = this.#namespaces.cache.get(name);
    if (cached !== undefined) return cached;
    try {
      return await this.#core.readNamespace({ name });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  connections(namespace: string): readonly AgentConnection[] | undefined {
    if (!this.#connections.synced) return undefined;
    return this.#connections.cache.list(namespace) as unknown as readonly AgentConnection[];
  }
}
