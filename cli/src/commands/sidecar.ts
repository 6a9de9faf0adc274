import { readFileSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { parseArgs } from 'node:util';
import { RECORDINGS_MOUNT, SIDECAR_ENV, SIDECAR_HEALTH_PORT, SIDECAR_TOKEN_FILE, STATE_MOUNT, formatManifestError, releaseValidators } from '@airlock/api';
import { PolicyError, compileBundle, loadSqlParser } from '@airlock/policy';
import { ClusterSidecar, ControlClient, LocalApprovals, SidecarError, createLogger, defaultStateDir, loadProxy, resolveUpstream, type Logger, type RunningProxy } from '@airlock/sidecar';
import { CliError } from '../errors.ts';
import { loadManifestFiles } from '../files.ts';
import { restartFromCompileCache } from '../restart.ts';
import type { CliIO } from '../io.ts';

export const SIDECAR_HELP = `Usage: airlock sidecar -f <file|dir> [-f ...] --connection <name> [--namespace <ns>]
                       --recordings-dir <dir> [--listen 127.0.0.1:<port>] [--state-dir <dir>]
                       [--service-account <sa>] [--pod <name>]
       airlock sidecar --cluster [--control-url <url>] [--control-ca-file <pem>] [--token-file <file>]
                       [--recordings-dir <dir>] [--state-dir <dir>] [--health-addr <host:port>]

Runs the Airlock proxy for one AgentConnection from manifests (Secrets included), with no
cluster: the same code the injected sidecar runs. Agents connect to the loopback listener
(PostgreSQL clients for a postgres connection, ssh for an ssh one); the sidecar logs in
upstream with the Secret's credentials, decides every statement or command with the
connection's ApprovalRules, masks results with its MaskingPolicies and records each session
to <recordings-dir>/<connection>/<session>.jsonl (hash-chained; check with
'airlock sessions verify').

The listener accepts any user name and password from the agent: it is reachable only inside
the pod (loopback), and the agent has no credential worth checking. Statements that need
approval are held; local mode writes the request to <state-dir>/approvals/ and reviewers
decide it with 'airlock approvals approve|deny'.

Logs are JSON lines on stderr; one line {"message":"ready",...} says the listener is up.
SIGINT/SIGTERM stop it: sessions are ended and their recordings closed.

Options:
  -f, --filename <path>        manifest file or directory (repeatable)
  -c, --connection <name>      the AgentConnection to proxy
  -n, --namespace <ns>         its namespace, when the name is not unique
      --listen <host:port>     loopback address (default 127.0.0.1:<spec.listenPort>; port 0 picks one)
      --recordings-dir <dir>   where recordings are written (required)
      --state-dir <dir>        local approvals (default: $AIRLOCK_STATE_DIR, else
                               $XDG_STATE_HOME/airlock, else ~/.local/state/airlock)
      --service-account <sa>   the agent's service account (ApprovalRule subjects)
      --pod <name>             the agent's pod name, for recordings and approval requests
  -h, --help                   show this help

Cluster mode (--cluster; what the injected airlock-proxy container runs):
  The sidecar gets its bundle (every connection granted to its pod, their policies and
  credentials) from the Airlock operator's control API, authenticated with the pod's projected
  service-account token (audience airlock.dev, read again for every request), and listens on
  127.0.0.1:<spec.listenPort> for each connection, all in this one process. A kubectl apply of a
  policy reaches running sessions within seconds: the next statement or command is decided with
  it; one in flight keeps the policy it started with. Operator unreachable: the last bundle stays
  enforced, approvals that cannot be requested are refused, session reports wait in
  <state-dir>/session-reports.jsonl and are delivered when it is back (also after a restart).
  GET /healthz/ready answers 200 once the first bundle is applied and every listener is up.
  Recordings go to <recordings-dir>/<claimName or default>/<namespace>/<pod>/<connection>/.

      --cluster                cluster mode (no -f, --connection or --listen)
      --control-url <url>      default $${SIDECAR_ENV.controlUrl}
      --control-ca-file <pem>  CA of the control API (default: the PEM in $${SIDECAR_ENV.controlCa})
      --token-file <file>      projected token (default ${SIDECAR_TOKEN_FILE})
      --recordings-dir <dir>   default ${RECORDINGS_MOUNT}
      --state-dir <dir>        report buffer (default ${STATE_MOUNT})
      --health-addr <h:p>      readiness endpoint (default 0.0.0.0:${String(SIDECAR_HEALTH_PORT)})
      --progress-seconds <n>   progress report interval while a session is busy (default 30)

Exit status: 0 after a clean stop; 2 on bad options or manifests.
`;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || !Number.isInteger(port) || port > 65535) throw new CliError('InvalidArgument', `--listen must be host:port, e.g. 127.0.0.1:15432 (got "${text}")`);
  if (!LOOPBACK.has(host)) throw new CliError('InvalidArgument', `--listen ${text}: the sidecar listens on loopback only (127.0.0.1 or ::1); anything else would expose the connection beyond the pod`);
  return { host, port };
}

export async function sidecarCommand(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      connection: { type: 'string', short: 'c' },
      namespace: { type: 'string', short: 'n' },
      listen: { type: 'string' },
      'recordings-dir': { type: 'string' },
      'state-dir': { type: 'string' },
      'service-account': { type: 'string' },
      pod: { type: 'string' },
      cluster: { type: 'boolean' },
      'control-url': { type: 'string' },
      'control-ca-file': { type: 'string' },
      'token-file': { type: 'string' },
      'health-addr': { type: 'string' },
      'progress-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    io.stdout.write(SIDECAR_HELP);
    return 0;
  }
  if (values.cluster === true) return clusterMode(values, io);
  const clusterOnly = (['control-url', 'control-ca-file', 'token-file', 'health-addr', 'progress-seconds'] as const).find((k) => values[k] !== undefined);
  if (clusterOnly !== undefined) throw new CliError('InvalidArgument', `--${clusterOnly} is a cluster-mode option (add --cluster)`);
  const connection = values.connection;
  if (connection === undefined) throw new CliError('MissingConnection', '--connection <name> is required');
  const recordingsDir = values['recordings-dir'];
  if (recordingsDir === undefined) throw new CliError('MissingArgument', '--recordings-dir <dir> is required (every session is recorded)');
  const files = values.filename ?? [];
  if (files.length === 0) throw new CliError('MissingArgument', '-f <file|dir> is required');
  const loaded = await loadManifestFiles(files);
  // validated once: the compiled validators are not needed while proxying
  releaseValidators();
  if (loaded.errors.length > 0) throw new CliError('InvalidManifest', `invalid manifests:\n  ${loaded.errors.map(formatManifestError).join('\n  ')}`);
  const sa = values['service-account'];
  let bundle;
  try {
    bundle = compileBundle(loaded.manifests, { connection, ...(values.namespace !== undefined ? { namespace: values.namespace } : {}), ...(sa !== undefined ? { serviceAccount: sa } : {}) });
  } catch (err) {
    if (err instanceof PolicyError) throw new CliError(err.code, err.message);
    throw err;
  }
  let upstream;
  try {
    upstream = resolveUpstream(loaded.manifests, connection, bundle.connection.namespace);
  } catch (err) {
    if (err instanceof SidecarError) throw new CliError(err.code, err.message);
    throw err;
  }
  const listen = parseListen(values.listen ?? `127.0.0.1:${upstream.listenPort}`);
  // the PostgreSQL parser (WASM) only for a postgres connection: an SSH sidecar never holds it
  if (upstream.protocol === 'postgres') await loadSqlParser();
  const startProxy = await loadProxy(upstream.protocol);
  // every module the sidecar runs is loaded: a start that had to strip types starts again from the cache
  restartFromCompileCache();
  const log = createLogger();
  const approvals = new LocalApprovals({ stateDir: values['state-dir'] ?? defaultStateDir() });
  const options = {
    bundle,
    upstream,
    listen,
    recordingsDir,
    approvals,
    log,
    ...(sa !== undefined ? { serviceAccount: sa } : {}),
    ...(values.pod !== undefined ? { pod: values.pod } : {}),
  };
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError('ListenFailed', `cannot listen on ${listen.host}:${listen.port}: ${e.message}`);
  }
  log.info('ready', { connection: `${upstream.namespace}/${upstream.name}`, protocol: upstream.protocol, listen: `${proxy.host}:${proxy.port}`, target: `${upstream.host}:${upstream.port}`, digest: bundle.digest, recordingsDir });
  // persist the compile cache (see cli/bin/airlock) now: the next start reuses it even if this one is killed
  flushCompileCache();
  return runUntilSignal(log, () => proxy.close(), io);
}

export function parseHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || !Number.isInteger(port) || port > 65535) throw new CliError('InvalidArgument', `${flag} must be host:port, e.g. 0.0.0.0:${String(SIDECAR_HEALTH_PORT)} (got "${text}")`);
  return { host, port };
}

interface ClusterFlags {
  readonly filename?: string[] | undefined;
  readonly connection?: string | undefined;
  readonly listen?: string | undefined;
  readonly 'recordings-dir'?: string | undefined;
  readonly 'state-dir'?: string | undefined;
  readonly 'control-url'?: string | undefined;
  readonly 'control-ca-file'?: string | undefined;
  readonly 'token-file'?: string | undefined;
  readonly 'health-addr'?: string | undefined;
  readonly 'progress-seconds'?: string | undefined;
}

/** `airlock sidecar --cluster`: the bundle from the operator's control API. */
async function clusterMode(values: ClusterFlags, io: CliIO): Promise<number> {
  const env = process.env;
  const localOnly = (['filename', 'connection', 'listen'] as const).find((k) => values[k] !== undefined);
  if (localOnly !== undefined) throw new CliError('InvalidArgument', `--${localOnly === 'filename' ? 'filename (-f)' : localOnly} is a local-mode option: in cluster mode connections and their ports come from the operator's bundle`);
  const url = values['control-url'] ?? env[SIDECAR_ENV.controlUrl];
  if (url === undefined || url === '') throw new CliError('MissingArgument', `the control API's URL is required: --control-url or $${SIDECAR_ENV.controlUrl}`);
  let ca: string | undefined;
  const caFile = values['control-ca-file'];
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new CliError('InvalidArgument', `--control-ca-file ${caFile}: ${(err as Error).message}`);
    }
  } else {
    const pem = env[SIDECAR_ENV.controlCa];
    if (pem === undefined || pem.trim() === '') throw new CliError('MissingArgument', `the control API's CA is required: --control-ca-file or $${SIDECAR_ENV.controlCa} (PEM)`);
    ca = pem;
  }
  const progress = values['progress-seconds'] === undefined ? 30 : Number(values['progress-seconds']);
  if (!Number.isFinite(progress) || progress <= 0) throw new CliError('InvalidArgument', `--progress-seconds must be a positive number (got "${values['progress-seconds'] ?? ''}")`);
  const health = parseHostPort('--health-addr', values['health-addr'] ?? `0.0.0.0:${String(SIDECAR_HEALTH_PORT)}`);
  let client: ControlClient;
  try {
    client = new ControlClient({ url, ca, tokenFile: values['token-file'] ?? SIDECAR_TOKEN_FILE });
  } catch (err) {
    throw new CliError('InvalidArgument', (err as Error).message);
  }
  const log = createLogger();
  const sidecar = new ClusterSidecar({
    client,
    log,
    recordingsRoot: values['recordings-dir'] ?? RECORDINGS_MOUNT,
    stateDir: values['state-dir'] ?? STATE_MOUNT,
    health,
    progressSeconds: progress,
  });
  let healthAddr;
  try {
    healthAddr = await sidecar.start();
  } catch (err) {
    throw new CliError('ListenFailed', `cannot start: ${(err as Error).message}`);
  }
  log.info('started', {
    mode: 'cluster',
    controlUrl: client.url,
    health: `${healthAddr.host}:${String(healthAddr.port)}`,
    pod: `${env[SIDECAR_ENV.podNamespace] ?? '?'}/${env[SIDECAR_ENV.podName] ?? '?'}`,
  });
  flushCompileCache();
  return runUntilSignal(log, () => sidecar.stop(), io);
}

/** Serves until SIGINT or SIGTERM, then stops (sessions ended, recordings closed), flushes the log and exits 0. */
async function runUntilSignal(log: Logger, close: () => Promise<void>, io: CliIO): Promise<number> {
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info('stopping', { signal });
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      close().then(resolve, (err: unknown) => {
        log.error('stop failed', { error: (err as Error).message });
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  log.info('stopped');
  await new Promise<void>((resolve) => log.on('finish', resolve).end());
  io.stderr.write('');
  return 0;
}
