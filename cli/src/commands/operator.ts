import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDuration } from '@airlock/policy';
import { Operator, OperatorError, contextNamespace, jsonLogger, kubeFromConfig, loadKubeConfig, parseAddress, systemClock } from '@airlock/operator';
import { CliError } from '../errors.ts';
import type { CliIO } from '../io.ts';

export const OPERATOR_HELP = `Usage: airlock operator [options]

Runs the Airlock operator against a cluster: watches AgentConnections, MaskingPolicies,
ApprovalRules and Secrets, and keeps their status and conditions up to date (Ready,
CredentialsResolved, PolicyCompiled), with an Event on every condition transition.
Serves /healthz, /readyz (ready once every informer has synced) and /metrics (Prometheus).
Logs are JSON lines on stderr. SIGINT/SIGTERM stop it: informers stop, queued work drains,
a held Lease is released; exit 0. A leader that loses its Lease stops and exits 1.

Options:
  --kubeconfig <file>       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --metrics-addr <host:port> where /healthz, /readyz and /metrics listen (default 127.0.0.1:8080;
                            port 0 picks a free one)
  --resync-period <dur>     how often every object is reconciled again (default 10m)
  --workers <n>             reconciles running at once (default 2; one key never runs twice at once)
  --log-level <level>       error, warn, info or debug (default info)
  --leader-elect            reconcile only while holding a coordination.k8s.io Lease, so that
                            several replicas can run: the others keep warm caches and take over
  --leader-election-namespace <ns>
                            namespace of the Lease (default POD_NAMESPACE, else the
                            kubeconfig context's namespace, else default)
  --leader-election-id <name>
                            name of the Lease (default airlock-operator)
  -h, --help                show this help
`;

function positiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new CliError('InvalidArgument', `${flag} must be a positive integer (got "${text}")`);
  return n;
}

export async function operatorCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      kubeconfig: { type: 'string' },
      'metrics-addr': { type: 'string' },
      'resync-period': { type: 'string' },
      workers: { type: 'string' },
      'log-level': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(OPERATOR_HELP);
    return 0;
  }
  let address: { readonly host: string; readonly port: number };
  let resyncPeriodMs: number;
  try {
    address = parseAddress(values['metrics-addr'] ?? '127.0.0.1:8080');
    resyncPeriodMs = parseDuration(values['resync-period'] ?? '10m') * 1000;
  } catch (err) {
    if (err instanceof Error && 'code' in err && typeof err.code === 'string') throw new CliError(err.code, err.message);
    throw err;
  }
  if (resyncPeriodMs < 1000) throw new CliError('InvalidArgument', '--resync-period must be at least 1s');
  const workers = positiveInteger(values.workers ?? '2', '--workers');

  let config;
  try {
    config = loadKubeConfig(values.kubeconfig);
  } catch (err) {
    throw new CliError('InvalidKubeconfig', `cannot load the kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (config.getCurrentCluster() === null) throw new CliError('InvalidKubeconfig', 'the kubeconfig names no current cluster');

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
    options: { metricsHost: address.host, metricsPort: address.port, resyncPeriodMs, workers, ...(leaderElection === undefined ? {} : { leaderElection }) },
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
