/**
 * What the sidecar needs beyond the policy bundle: the AgentConnection's target and the
 * credentials from its Secret (and the CA for verify-full). Resolved from the same manifests
 * (local mode) or the operator's bundle (cluster mode). Pure.
 *
 * The manifests come from parseManifests, which applies the schema's defaults exactly as the API
 * server does (api/src/validate.ts): a present `tls` has its `mode` (default require), `ssh` its
 * allow* flags and binaryOutput, `recording` its failurePolicy, `caSecretRef` its key. So no
 * default is written here a second time (one that disagreed, `tls: {}` read as disable, made
 * local mode differ from the cluster); only what an absent object means is: no `tls` is plain
 * TCP, no `recording` fails closed, no listenPort is the protocol's port.
 */
import { listenPortOf, type AgentConnection, type Manifest } from '@airlock/api';
import { SidecarError } from './errors.ts';

export interface Credentials {
  readonly username: string;
  readonly password?: string;
  readonly privateKey?: string;
  readonly passphrase?: string;
}

export type TlsMode = 'disable' | 'require' | 'verify-full';

export interface UpstreamConfig {
  readonly name: string;
  readonly namespace: string;
  readonly protocol: 'postgres' | 'ssh';
  readonly host: string;
  readonly port: number;
  readonly database: string | undefined;
  readonly tls: { readonly mode: TlsMode; readonly ca?: string; readonly serverName?: string };
  readonly credentials: Credentials;
  readonly ssh:
    | {
        readonly hostKeyFingerprints: readonly string[];
        readonly allowShell: boolean;
        readonly allowSftp: boolean;
        readonly allowPortForwarding: boolean;
        /** spec.ssh.binaryOutput (default Refuse) */
        readonly binaryOutput?: 'Refuse' | 'Pass';
      }
    | undefined;
  readonly listenPort: number;
  readonly failurePolicy: 'Closed' | 'Open';
}

/** A field the schema defaults: set in every manifest parseManifests returns. */
function defaulted<T>(value: T | undefined, field: string, connection: string): T {
  if (value === undefined) {
    throw new SidecarError('ConfigInvalid', `AgentConnection "${connection}": ${field} is not set (the manifest was not validated: parseManifests applies the schema's defaults)`);
  }
  return value;
}

function secretData(manifests: readonly Manifest[], namespace: string, name: string, what: string): Record<string, string> {
  const secret = manifests.find((m) => m.kind === 'Secret' && m.name === name && (m.namespace ?? 'default') === namespace);
  if (secret === undefined) throw new SidecarError('ConfigInvalid', `Secret "${name}" (${what}) not found in namespace "${namespace}"`);
  const out: Record<string, string> = {};
  const data = secret.object['data'];
  if (data !== undefined && data !== null && typeof data === 'object') {
    for (const [k, v] of Object.entries(data)) if (typeof v === 'string') out[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  const stringData = secret.object['stringData'];
  if (stringData !== undefined && stringData !== null && typeof stringData === 'object') {
    for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** Resolves the named connection. Throws SidecarError('ConfigInvalid') naming what is missing. */
export function resolveUpstream(manifests: readonly Manifest[], connection: string, namespace: string): UpstreamConfig {
  const m = manifests.find((x) => x.kind === 'AgentConnection' && x.name === connection && (x.namespace ?? 'default') === namespace);
  if (m === undefined) throw new SidecarError('ConfigInvalid', `AgentConnection "${connection}" not found in namespace "${namespace}"`);
  const spec = (m.object as unknown as AgentConnection).spec;
  const secretName = spec.credentialsSecretRef.name;
  const data = secretData(manifests, namespace, secretName, `credentials of ${connection}`);
  const username = data['username'];
  if (username === undefined || username === '') throw new SidecarError('ConfigInvalid', `Secret "${secretName}" has no "username" key`);
  const password = data['password'];
  const privateKey = data['privateKey'];
  const passphrase = data['passphrase'];
  if (spec.protocol === 'postgres' && password === undefined) throw new SidecarError('ConfigInvalid', `Secret "${secretName}" has no "password" key (required for postgres)`);
  if (spec.protocol === 'ssh' && password === undefined && privateKey === undefined) {
    throw new SidecarError('ConfigInvalid', `Secret "${secretName}" has neither "privateKey" nor "password" (one is required for ssh)`);
  }
  const tlsSpec = spec.target.tls;
  const mode: TlsMode = tlsSpec === undefined ? 'disable' : defaulted(tlsSpec.mode, 'spec.target.tls.mode', connection);
  let ca: string | undefined;
  if (tlsSpec?.caSecretRef !== undefined) {
    const key = defaulted(tlsSpec.caSecretRef.key, 'spec.target.tls.caSecretRef.key', connection);
    ca = secretData(manifests, namespace, tlsSpec.caSecretRef.name, `CA of ${connection}`)[key];
    if (ca === undefined) throw new SidecarError('ConfigInvalid', `Secret "${tlsSpec.caSecretRef.name}" has no "${key}" key (the CA for verify-full)`);
  }
  return {
    name: connection,
    namespace,
    protocol: spec.protocol,
    host: spec.target.host,
    port: spec.target.port,
    database: spec.target.database,
    tls: { mode, ...(ca !== undefined ? { ca } : {}), ...(tlsSpec?.serverName !== undefined ? { serverName: tlsSpec.serverName } : {}) },
    credentials: {
      username,
      ...(password !== undefined ? { password } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
    },
    ssh:
      spec.ssh === undefined
        ? undefined
        : {
            hostKeyFingerprints: [...spec.ssh.hostKeyFingerprints],
            allowShell: defaulted(spec.ssh.allowShell, 'spec.ssh.allowShell', connection),
            allowSftp: defaulted(spec.ssh.allowSftp, 'spec.ssh.allowSftp', connection),
            allowPortForwarding: defaulted(spec.ssh.allowPortForwarding, 'spec.ssh.allowPortForwarding', connection),
            binaryOutput: defaulted(spec.ssh.binaryOutput, 'spec.ssh.binaryOutput', connection),
          },
    listenPort: listenPortOf(spec),
    failurePolicy: spec.recording === undefined ? 'Closed' : defaulted(spec.recording.failurePolicy, 'spec.recording.failurePolicy', connection),
  };
}
