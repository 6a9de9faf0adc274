import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDuration } from '@airlock/policy';
import { systemClock } from '@airlock/kube';
import { Operator, OperatorError, contextNamespace, jsonLogger, kubeFromConfig, loadKubeConfig, parseAddress } from '@airlock/operator';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const OPERATOR_HELP = `Usage: airlock operator [options]

Runs the Airlock operator against a cluster: watches AgentConnections, MaskingPolicies,
ApprovalRules and Secrets, and keeps their status and conditions up to date (Ready,
CredentialsResolved, PolicyCompiled), with an Event on every condition transition; decides
ApprovalRequests from their signed decisions, and deletes AgentSessions past their retention.
Every replica serves the control API to sidecars over HTTPS (bundles, approvals, session
reports; see docs/operator.md). Only the leader reconciles and writes certificates.
Serves /healthz, /readyz (ready once every informer has synced and the control API listens)
and /metrics (Prometheus).
Logs are JSON lines on stderr. SIGINT/SIGTERM stop it: informers stop, queued work drains,
a held Lease is released; exit 0. A leader that loses its Lease stops and exits 1.

Options:
  --kubeconfig <file>       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --metrics-addr <host:port> where /healthz, /readyz and /metrics listen (default 127.0.0.1:8080;
                            port 0 picks a free one)
  --resync-period <dur>     how often every object is reconciled again (default 10m)
  --access-check-period <dur>
                            how long the answer to "which ServiceAccounts of the namespace can
                            read this connection's credentials Secret" (SubjectAccessReviews,
                            condition CredentialsIsolated) is trusted (default 5m; 0 turns it off)
  --workers <n>             reconciles running at once (default 8; one key never runs twice at once)
  --log-level <level>       error, warn, info or debug (default info)
  --leader-elect            reconcile only while holding a coordination.k8s.io Lease, so that
                            several replicas can run: the others keep warm caches and take over
  --leader-election-namespace <ns>
                            namespace of the Lease (default POD_NAMESPACE, else the
                            kubeconfig context's namespace, else default)
  --leader-election-id <name>
                            name of the Lease (default airlock-operator)
  --control-addr <host:port> where the control API listens, HTTPS (default 0.0.0.0:8443;
                            "off" serves none)
  --control-tls-dir <dir>   tls.crt and tls.key of the control API's serving certificate, re-read
                            every 30 s (default with --manage-certificates=false:
                            /etc/airlock/control-tls; otherwise the airlock-control-tls Secret
                            the operator manages)
  --airlock-namespace <ns>  Airlock's own namespace: certificate Secrets, the approval key
                            (default POD_NAMESPACE, else the kubeconfig context's namespace)
  --notify-url <url>        POST a JSON notification ({"text": ...}, which Slack and Teams
                            incoming webhooks accept) for every new ApprovalRequest
  --cert-validity <dur>     lifetime of the serving certificates it issues (default 2160h)
  --manage-certificates[=true|false]
                            keep the CA, the webhook's and the control API's certificates and
                            the webhooks' caBundle (leader only; default true). false when
                            cert-manager issues them
  --cert-extra-names <names>
                            comma-separated extra SANs of the serving certificates it issues
                            (an IP address becomes an IP SAN; e.g. 127.0.0.1 for tests)
  -h, --help                show this help
`;

function positiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new CliError('InvalidArgument', `${flag} must be a positive integer (got "${text}")`);
  return n;
}

export async function operatorCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    // a bare --manage-certificates means true (parseArgs has no optional values)
    args: args.map((a) => (a === '--manage-certificates' ? '--manage-certificates=true' : a)),
    options: {
      kubeconfig: { type: 'string' },
      'metrics-addr': { type: 'string' },
      'resync-period': { type: 'string' },
      'access-check-period': { type: 'string' },
      workers: { type: 'string' },
      'log-level': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string' },
      'control-addr': { type: 'string' },
      'control-tls-dir': { type: 'string' },
      'airlock-namespace': { type: 'string' },
      'notify-url': { type: 'string' },
      'cert-validity': { type: 'string' },
      'manage-certificates': { type: 'string' },
      'cert-extra-names': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(OPERATOR_HELP);
    return 0;
  }
  let address: { readonly host: string; readonly port: number };
  let controlAddress: { readonly host: string; readonly port: number } | undefined;
  let resyncPeriodMs: number;
  let certValidityMs: number;
  let accessCheckPeriodMs: number;
  try {
    address = parseAddress(values['metrics-addr'] ?? '127.0.0.1:8080');
    const control = values['control-addr'] ?? '0.0.0.0:8443';
    controlAddress = control === 'off' ? undefined : parseAddress(control);
    resyncPeriodMs = parseDuration(values['resync-period'] ?? '10m') * 1000;
    certValidityMs = parseDuration(values['cert-validity'] ?? '2160h') * 1000;
    accessCheckPeriodMs = values['access-check-period'] === '0' ? 0 : parseDuration(values['access-check-period'] ?? '5m') * 1000;
  } catch (err) {
    if (err instanceof Error && 'code' in err && typeof err.code === 'string') throw new CliError(err.code, err.message);
    throw err;
  }
  if (resyncPeriodMs < 1000) throw new CliError('InvalidArgument', '--resync-period must be at least 1s');
  const workers = positiveInteger(values.workers ?? '8', '--workers');
  if (certValidityMs < 3_600_000) throw new CliError('InvalidArgument', '--cert-validity must be at least 1h');
  const manage = values['manage-certificates'] ?? 'true';
  if (manage !== 'true' && manage !== 'false') throw new CliError('InvalidArgument', `--manage-certificates must be true or false (got "${manage}")`);
  const manageCertificates = manage === 'true';
  const notifyUrl = values['notify-url'];
  if (notifyUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(notifyUrl)) throw new CliError('InvalidArgument', `--notify-url must be an http(s) URL (got "${notifyUrl}")`);
  const controlTlsDir = values['control-tls-dir'] ?? (manageCertificates ? undefined : '/etc/airlock/control-tls');
  const extraNames = (values['cert-extra-names'] ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');

  let config;
  try {
    config = loadKubeConfig(values.kubeconfig);
  } catch (err) {
    throw new CliError('InvalidKubeconfig', `cannot load the kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (config.getCurrentCluster() === null) throw new CliError('InvalidKubeconfig', 'the kubeconfig names no current cluster');

  const airlockNamespace = values['airlock-namespace'] ?? process.env['POD_NAMESPACE'] ?? contextNamespace(config);
  if (manageCertificates && airlockNamespace === undefined) {
    throw new CliError('InvalidArgument', '--manage-certificates needs Airlock\'s namespace: give --airlock-namespace (or set POD_NAMESPACE)');
  }
  const log = jsonLogger(values['log-level'] ?? 'info');
  const leaderElection =
    values['leader-elect'] === true
      ? {
          namespace: values['leader-election-namespace'] ?? process.env['POD_NAMESPACE'] ?? contextNamespace(config) ?? 'default',
          name: values['leader-election-id'] ?? 'airlock-operator',
          identity: `${hostname()}_${randomUUID()}`,
        }
      : undefined;
  const operator = new Operator({
    kube: kubeFromConfig(config),
    clock: systemClock,
    log,
    options: {
      metricsHost: address.host,
      metricsPort: address.port,
      resyncPeriodMs,
      workers,
      accessCheckPeriodMs,
      ...(leaderElection === undefined ? {} : { leaderElection }),
      ...(controlAddress === undefined ? {} : { control: { host: controlAddress.host, port: controlAddress.port, ...(controlTlsDir === undefined ? {} : { tlsDir: controlTlsDir }) } }),
      ...(airlockNamespace === undefined ? {} : { airlockNamespace }),
      ...(notifyUrl === undefined ? {} : { notifyUrl }),
      ...(manageCertificates ? { certificates: { validityMs: certValidityMs, ...(extraNames.length === 0 ? {} : { extraNames: { webhook: extraNames, control: extraNames } }) } } : {}),
    },
  });
  try {
    await operator.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof OperatorError || typeof e.code === 'string') throw new CliError('ListenFailed', `cannot serve on ${address.host}:${address.port}: ${e.message}`);
    throw err;
  }
  const ended = await new Promise<'signal' | 'leadership lost'>((resolve) => {
    const stop = (signal: string): void => {
      log.info('signal received', { signal });
      resolve('signal');
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    operator.leadershipLost().then(
      () => {
        resolve('leadership lost');
      },
      () => undefined,
    );
  });
  try {
    await operator.stop();
  } catch (err) {
    log.error('stop failed', { error: err instanceof Error ? err.message : String(err) });
  }
  return ended === 'signal' ? 0 : 1;
}
