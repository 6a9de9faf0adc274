import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { KubeConfig, type V1ResourceRequirements } from '@kubernetes/client-node';
import { systemClock } from '@airlock/kube';
import { InformerCaches, Webhook, WebhookError, jsonLogger, parseAddress } from '@airlock/webhooks';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const WEBHOOK_HELP = `Usage: airlock webhook --sidecar-image <image> --control-url <url> [options]

Runs Airlock's admission webhooks (AdmissionReview v1 over HTTPS):
  POST /mutate/pods               injects the airlock-proxy sidecar into opted-in pods, and
                                  refuses opted-in pods that could bypass it (no-bypass)
  POST /mutate/approvalrequests   records approval decisions made with
                                  kubectl annotate approvalrequest <name> airlock.dev/decision=approve|deny
                                  under the reviewer's authenticated identity (signed)
  POST /validate/policies         refuses AgentConnections, MaskingPolicies and ApprovalRules that
                                  'airlock validate' refuses, and warns about risky ones
Namespaces and AgentConnections are watched (informers), so an admission makes no API call.
The serving certificate (tls.crt, tls.key) and the approval key are reloaded when their files
change (a rotated Secret), without a restart. Serves /healthz, /readyz (ready once the
informers have synced and a certificate is loaded) and /metrics on --metrics-addr. Logs are
JSON lines on stderr. SIGINT/SIGTERM stop accepting, let in-flight admissions finish, exit 0.

Options:
  --listen <host:port>            HTTPS address of the webhooks (default 0.0.0.0:9443)
  --tls-dir <dir>                 serving certificate: tls.crt and tls.key
                                  (default /etc/airlock/webhook-tls)
  --metrics-addr <host:port>      /healthz, /readyz, /metrics over HTTP (default 0.0.0.0:9090)
  --sidecar-image <image>         image of the injected sidecar (required)
  --sidecar-image-pull-policy <p> Always, IfNotPresent or Never (default: Kubernetes' default)
  --sidecar-resources <json>      the sidecar's resources, as a Kubernetes ResourceRequirements in
                                  JSON, e.g. '{"requests":{"cpu":"50m","memory":"64Mi"}}'
                                  (default: requests cpu 50m, memory 64Mi; limits memory 256Mi)
  --default-capture <mode>        transparent (default) or explicit, where neither the pod nor its
                                  namespace says (annotation airlock.dev/capture)
  --control-url <url>             https URL of the operator's control API, given to sidecars (required)
  --control-ca-file <file>        PEM bundle of the control API's CA, given to sidecars
                                  (default <tls-dir>/ca.crt)
  --approval-key-file <file>      HMAC key that signs recorded decisions, 32+ bytes
                                  (default /etc/airlock/approval-key/key)
  --airlock-namespace <ns>        Airlock's own namespace, never injected (default $POD_NAMESPACE)
  --cluster-domain <domain>       the cluster's DNS domain, to know a target that is a Service by
                                  its name (default cluster.local)
  --kubeconfig <file>             kubeconfig to use (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --log-level <level>             error, warn, info or debug (default info)
  -h, --help                      show this help

Exit status: 0 after a clean stop; 2 on bad options; 1 when it cannot serve.
`;

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
type PullPolicy = (typeof PULL_POLICIES)[number];

function address(text: string, flag: string): { readonly host: string; readonly port: number } {
  try {
    return parseAddress(text);
  } catch (err) {
    if (err instanceof WebhookError) throw new CliError('InvalidArgument', `${flag}: ${err.message}`);
    throw err;
  }
}

/** --sidecar-resources: a ResourceRequirements object whose quantities are strings or numbers */
function sidecarResources(text: string): V1ResourceRequirements {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError('InvalidArgument', `--sidecar-resources is not JSON: ${text}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(parsed)) throw new CliError('InvalidArgument', '--sidecar-resources must be a JSON object with requests and/or limits');
  for (const [key, value] of Object.entries(parsed)) {
    if (key !== 'requests' && key !== 'limits') throw new CliError('InvalidArgument', `--sidecar-resources: unknown field "${key}" (requests, limits)`);
    if (!isObject(value)) throw new CliError('InvalidArgument', `--sidecar-resources: ${key} must be an object of quantities`);
    for (const [name, q] of Object.entries(value)) {
      if (typeof q !== 'string' && typeof q !== 'number') throw new CliError('InvalidArgument', `--sidecar-resources: ${key}.${name} must be a quantity such as "50m" or "64Mi"`);
    }
  }
  return parsed;
}

export async function webhookCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      listen: { type: 'string' },
      'tls-dir': { type: 'string' },
      'metrics-addr': { type: 'string' },
      'sidecar-image': { type: 'string' },
      'sidecar-image-pull-policy': { type: 'string' },
      'sidecar-resources': { type: 'string' },
      'default-capture': { type: 'string' },
      'control-url': { type: 'string' },
      'control-ca-file': { type: 'string' },
      'approval-key-file': { type: 'string' },
      'airlock-namespace': { type: 'string' },
      'cluster-domain': { type: 'string' },
      kubeconfig: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(WEBHOOK_HELP);
    return 0;
  }
  const listen = address(values.listen ?? '0.0.0.0:9443', '--listen');
  const metrics = address(values['metrics-addr'] ?? '0.0.0.0:9090', '--metrics-addr');
  const image = values['sidecar-image'];
  if (image === undefined || image === '') throw new CliError('MissingArgument', '--sidecar-image <image> is required (the image of the injected sidecar)');
  const controlUrl = values['control-url'];
  if (controlUrl === undefined) throw new CliError('MissingArgument', '--control-url <url> is required (the operator\'s control API, e.g. https://airlock-operator.airlock-system.svc:8443)');
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(controlUrl);
  } catch {
    throw new CliError('InvalidArgument', `--control-url: "${controlUrl}" is not a URL`);
  }
  if (parsedUrl.protocol !== 'https:') throw new CliError('InvalidArgument', `--control-url: "${controlUrl}" must be https`);
  const pullPolicy = values['sidecar-image-pull-policy'];
  if (pullPolicy !== undefined && !(PULL_POLICIES as readonly string[]).includes(pullPolicy)) {
    throw new CliError('InvalidArgument', `--sidecar-image-pull-policy must be one of ${PULL_POLICIES.join(', ')} (got "${pullPolicy}")`);
  }
  const capture = values['default-capture'];
  if (capture !== undefined && capture !== 'transparent' && capture !== 'explicit') throw new CliError('InvalidArgument', `--default-capture must be transparent or explicit (got "${capture}")`);
  const resources = values['sidecar-resources'] === undefined ? undefined : sidecarResources(values['sidecar-resources']);
  const airlockNamespace = values['airlock-namespace'] ?? process.env['POD_NAMESPACE'];
  if (airlockNamespace === undefined || airlockNamespace === '') throw new CliError('MissingArgument', '--airlock-namespace <ns> is required when POD_NAMESPACE is not set (Airlock\'s own namespace is never injected)');
  const logLevel = values['log-level'] ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) throw new CliError('InvalidArgument', `--log-level must be error, warn, info or debug (got "${logLevel}")`);
  const tlsDir = values['tls-dir'] ?? '/etc/airlock/webhook-tls';

  const config = new KubeConfig();
  try {
    if (values.kubeconfig === undefined) config.loadFromDefault();
    else config.loadFromFile(values.kubeconfig);
  } catch (err) {
    throw new CliError('InvalidKubeconfig', `cannot load the kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (config.getCurrentCluster() === null) throw new CliError('InvalidKubeconfig', 'the kubeconfig names no current cluster');

  const log = jsonLogger(logLevel);
  const holder: { webhook?: Webhook } = {};
  const caches = new InformerCaches({
    config,
    clock: systemClock,
    log,
    onRestart: (informer) => holder.webhook?.metrics.informerRestarts.inc({ informer }),
  });
  const webhook = new Webhook({
    view: caches,
    clock: systemClock,
    log,
    options: {
      listen,
      metrics,
      tlsDir,
      controlCaFile: values['control-ca-file'] ?? join(tlsDir, 'ca.crt'),
      approvalKeyFile: values['approval-key-file'] ?? '/etc/airlock/approval-key/key',
      sidecar: {
        image,
        controlUrl,
        ...(pullPolicy === undefined ? {} : { imagePullPolicy: pullPolicy as PullPolicy }),
        ...(resources === undefined ? {} : { resources }),
        ...(capture === undefined ? {} : { defaultCapture: capture }),
      },
      airlockNamespace,
      ...(values['cluster-domain'] !== undefined ? { clusterDomain: values['cluster-domain'] } : {}),
    },
  });
  holder.webhook = webhook;
  caches.start();
  try {
    await webhook.start();
  } catch (err) {
    await caches.stop();
    const e = err as NodeJS.ErrnoException;
    throw new CliError('ListenFailed', `cannot serve: ${e.message}`, 1);
  }
  const signal = await new Promise<string>((resolve) => {
    const stop = (name: string): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(name);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  log.info('stopping', { signal });
  await webhook.stop();
  await caches.stop();
  log.info('stopped');
  await new Promise<void>((resolve) => log.on('finish', resolve).end());
  return 0;
}
