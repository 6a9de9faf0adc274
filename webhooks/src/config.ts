/**
 * The two webhook configurations Airlock registers, as pure values (the Helm chart mirrors them;
 * the operator keeps their caBundle in sync):
 *
 * - MutatingWebhookConfiguration `airlock-inject`:
 *   - `namespace.inject.airlock.dev`: Pod CREATE in namespaces labelled airlock.dev/inject=enabled,
 *     except pods labelled airlock.dev/inject=false;
 *   - `pod.inject.airlock.dev`: Pod CREATE of pods labelled airlock.dev/inject=true in any other
 *     namespace;
 *   both with failurePolicy Fail (no opted-in pod is admitted without the sidecar) and a
 *   namespaceSelector that never sends kube-system or Airlock's own namespace;
 *   - `approvalrequests.airlock.dev`: ApprovalRequest CREATE/UPDATE (approval identity), Fail.
 * - ValidatingWebhookConfiguration `airlock-validate`:
 *   - `policies.airlock.dev`: AgentConnection/MaskingPolicy/ApprovalRule CREATE/UPDATE, Fail.
 *
 * Every webhook is side-effect free (sideEffects: None), so dry-run requests are sent too.
 */
import { COMPONENT_LABEL, COMPONENT_VALUE, GROUP, NAMESPACE_INJECT_LABEL, OBJECT_NAMES, POD_INJECT_LABEL, VERSION, WEBHOOK_PATHS } from '@airlock/api';

/** the label the API server sets on every namespace (Kubernetes ≥ 1.22) */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export const WEBHOOK_NAMES = {
  injectByNamespace: 'namespace.inject.airlock.dev',
  injectByPod: 'pod.inject.airlock.dev',
  approvalRequests: 'approvalrequests.airlock.dev',
  policies: 'policies.airlock.dev',
} as const;

export type WebhookTarget =
  /** the webhook's Service (in-cluster): port defaults to OBJECT_NAMES.webhookPort */
  | { readonly service: { readonly namespace: string; readonly name?: string; readonly port?: number } }
  /** a base URL, https://host:port (paths are appended) — for webhooks outside the cluster */
  | { readonly url: string };

export interface WebhookConfigurationOptions {
  /** Airlock's namespace: never sent to the pod webhooks */
  readonly airlockNamespace: string;
  readonly target: WebhookTarget;
  /** PEM bundle of the CA that signs the webhook's serving certificate */
  readonly caBundle: string;
  /** more namespaces never sent to the pod webhooks (kube-system always is excluded) */
  readonly excludedNamespaces?: readonly string[];
  /** seconds the API server waits for an answer (default 10) */
  readonly timeoutSeconds?: number;
  /**
   * reinvocationPolicy of the pod webhooks (default Never). IfNeeded would run the no-bypass
   * checks again on a pod a later webhook changed, but the API server then also re-runs its
   * ServiceAccount plugin, which adds the kube-api-access mount to the injected containers, and
   * the injection refuses a sidecar changed after injection: use it only once the injection
   * accepts that re-invocation.
   */
  readonly podReinvocationPolicy?: 'Never' | 'IfNeeded';
}

/** the fields of admissionregistration.k8s.io/v1 objects this builder sets (plain JSON, for kubectl, client-node or a chart) */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; readonly values?: readonly string[] }[];
}

export interface WebhookClientConfig {
  readonly url?: string;
  readonly service?: { readonly namespace: string; readonly name: string; readonly port: number; readonly path: string };
  /** base64 of the PEM bundle */
  readonly caBundle: string;
}

export interface RuleWithOperations {
  readonly apiGroups: readonly string[];
  readonly apiVersions: readonly string[];
  readonly operations: readonly ('CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT')[];
  readonly resources: readonly string[];
  readonly scope: 'Namespaced' | 'Cluster' | '*';
}

export interface ValidatingWebhook {
  readonly name: string;
  readonly clientConfig: WebhookClientConfig;
  readonly rules: readonly RuleWithOperations[];
  readonly namespaceSelector?: LabelSelector;
  readonly objectSelector?: LabelSelector;
  readonly admissionReviewVersions: readonly string[];
  readonly sideEffects: 'None' | 'NoneOnDryRun';
  readonly failurePolicy: 'Fail' | 'Ignore';
  readonly matchPolicy: 'Exact' | 'Equivalent';
  readonly timeoutSeconds: number;
}

export interface MutatingWebhook extends ValidatingWebhook {
  readonly reinvocationPolicy: 'Never' | 'IfNeeded';
}

interface ConfigurationMeta {
  readonly apiVersion: 'admissionregistration.k8s.io/v1';
  readonly metadata: { readonly name: string; readonly labels: Readonly<Record<string, string>> };
}

export interface MutatingWebhookConfiguration extends ConfigurationMeta {
  readonly kind: 'MutatingWebhookConfiguration';
  readonly webhooks: readonly MutatingWebhook[];
}

export interface ValidatingWebhookConfiguration extends ConfigurationMeta {
  readonly kind: 'ValidatingWebhookConfiguration';
  readonly webhooks: readonly ValidatingWebhook[];
}

export interface WebhookConfigurations {
  readonly mutating: MutatingWebhookConfiguration;
  readonly validating: ValidatingWebhookConfiguration;
}

function clientConfig(options: WebhookConfigurationOptions, path: string): WebhookClientConfig {
  const caBundle = Buffer.from(options.caBundle, 'utf8').toString('base64');
  if ('url' in options.target) return { url: `${options.target.url.replace(/\/+$/, '')}${path}`, caBundle };
  const s = options.target.service;
  return { service: { namespace: s.namespace, name: s.name ?? OBJECT_NAMES.webhookService, port: s.port ?? OBJECT_NAMES.webhookPort, path }, caBundle };
}

export function webhookConfigurations(options: WebhookConfigurationOptions): WebhookConfigurations {
  const excluded = [...new Set(['kube-system', options.airlockNamespace, ...(options.excludedNamespaces ?? [])])].sort();
  const notExcluded = { key: NAMESPACE_NAME_LABEL, operator: 'NotIn' as const, values: excluded };
  const timeoutSeconds = options.timeoutSeconds ?? 10;
  const labels = { [COMPONENT_LABEL]: COMPONENT_VALUE };
  const common = { admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', matchPolicy: 'Equivalent', timeoutSeconds } as const;
  // UPDATE too: an injected pod's Airlock containers may not change, and debug containers
  // (pods/ephemeralcontainers) obey the no-bypass rules
  const podRules: readonly RuleWithOperations[] = [
    { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'], scope: 'Namespaced' },
  ];
  const byNamespace: LabelSelector = { matchLabels: { [NAMESPACE_INJECT_LABEL]: 'enabled' }, matchExpressions: [notExcluded] };
  const otherNamespaces: LabelSelector = { matchExpressions: [notExcluded, { key: NAMESPACE_INJECT_LABEL, operator: 'NotIn', values: ['enabled'] }] };
  const podNotOptedOut: LabelSelector = { matchExpressions: [{ key: POD_INJECT_LABEL, operator: 'NotIn', values: ['false'] }] };
  const podOptedIn: LabelSelector = { matchLabels: { [POD_INJECT_LABEL]: 'true' } };
  return {
    mutating: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: OBJECT_NAMES.mutatingWebhookConfiguration, labels },
      webhooks: [
        {
          name: WEBHOOK_NAMES.injectByNamespace,
          clientConfig: clientConfig(options, WEBHOOK_PATHS.injectPods),
          rules: podRules,
          namespaceSelector: byNamespace,
          objectSelector: podNotOptedOut,
          reinvocationPolicy: options.podReinvocationPolicy ?? 'Never',
          ...common,
        },
        {
          name: WEBHOOK_NAMES.injectByPod,
          clientConfig: clientConfig(options, WEBHOOK_PATHS.injectPods),
          rules: podRules,
          namespaceSelector: otherNamespaces,
          objectSelector: podOptedIn,
          reinvocationPolicy: options.podReinvocationPolicy ?? 'Never',
          ...common,
        },
        {
          name: WEBHOOK_NAMES.approvalRequests,
          clientConfig: clientConfig(options, WEBHOOK_PATHS.approvalDecisions),
          rules: [{ apiGroups: [GROUP], apiVersions: [VERSION], operations: ['CREATE', 'UPDATE'], resources: ['approvalrequests'], scope: 'Namespaced' }],
          reinvocationPolicy: 'Never',
          ...common,
        },
      ],
    },
    validating: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: OBJECT_NAMES.validatingWebhookConfiguration, labels },
      webhooks: [
        {
          name: WEBHOOK_NAMES.policies,
          clientConfig: clientConfig(options, WEBHOOK_PATHS.validatePolicies),
          rules: [{ apiGroups: [GROUP], apiVersions: [VERSION], operations: ['CREATE', 'UPDATE'], resources: ['agentconnections', 'maskingpolicies', 'approvalrules'], scope: 'Namespaced' }],
          ...common,
        },
      ],
    },
  };
}
