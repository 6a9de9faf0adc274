/**
 * Compiles the operator's bundle: each BundleConnection's objects become manifests (the same
 * validation and defaults as files in local mode), then compileBundle and resolveUpstream, exactly
 * as `airlock sidecar -f` does. Pure.
 *
 * A connection whose policy does not compile is still served (its listener stays up) with no
 * bundle: every statement or command is refused with the compile error (fail closed). One whose
 * upstream cannot be resolved (a Secret missing a key) cannot be served: new sessions are refused.
 */
import { formatManifestError, listenPortOf, parseManifests, type AgentConnection, type BundleConnection, type Manifest, type RefusedConnection, type SidecarBundle } from '@airlock/api';
import { PolicyError, compileBundle } from '@airlock/policy';
import { resolveUpstream } from '../config.ts';
import { SidecarError } from '../errors.ts';
import type { Enforcement } from '../proxy.ts';

export interface CompiledConnection {
  readonly name: string;
  readonly namespace: string;
  readonly protocol: 'postgres' | 'ssh';
  readonly listenPort: number;
  /** spec.recording.claimName */
  readonly claimName: string | undefined;
  /** the PolicyCompiled digest the operator computed */
  readonly operatorDigest: string;
  /** undefined: the connection cannot be served (`error` says why) */
  readonly enforcement: Enforcement | undefined;
  /** why the policy or the upstream could not be compiled */
  readonly error: string | undefined;
}

/** The objects of one connection as manifests (validated and defaulted like files). */
export function manifestsOf(connection: BundleConnection): { manifests: readonly Manifest[]; errors: readonly string[] } {
  const parsed = parseManifests(`bundle:${connection.name}`, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: connection.objects }));
  return { manifests: parsed.manifests, errors: parsed.errors.map(formatManifestError) };
}

function messageOf(err: unknown): string {
  if (err instanceof PolicyError || err instanceof SidecarError) return err.message;
  throw err;
}

/**
 * One connection of the bundle. `serviceAccount`: the pod's (ApprovalRule subjects apply to it);
 * `namespace`: the pod's. Returns undefined when the objects hold no AgentConnection of that name.
 */
export function compileConnection(connection: BundleConnection, namespace: string, serviceAccount: string | undefined): CompiledConnection | undefined {
  const { manifests, errors } = manifestsOf(connection);
  const conn = manifests.find((m) => m.kind === 'AgentConnection' && m.name === connection.name && (m.namespace ?? namespace) === namespace);
  const raw = connection.objects.find((o) => o['kind'] === 'AgentConnection') as unknown as AgentConnection | undefined;
  const spec = ((conn?.object ?? raw) as unknown as AgentConnection | undefined)?.spec;
  // the raw object (when it did not validate) may hold anything
  const protocol: unknown = spec?.protocol;
  if (spec === undefined || (protocol !== 'postgres' && protocol !== 'ssh')) return undefined;
  const base = {
    name: connection.name,
    namespace,
    protocol: spec.protocol,
    listenPort: listenPortOf(spec),
    claimName: spec.recording?.claimName,
    operatorDigest: connection.digest,
  };
  if (conn === undefined) {
    return { ...base, enforcement: undefined, error: `invalid objects in the bundle: ${errors.join('; ') || 'no valid AgentConnection'}` };
  }
  let upstream;
  try {
    upstream = resolveUpstream(manifests, connection.name, namespace);
  } catch (err) {
    return { ...base, enforcement: undefined, error: messageOf(err) };
  }
  if (errors.length > 0) {
    // a policy that does not validate (a bad RE2 pattern): nothing of it may be half-enforced
    const error = `invalid objects in the bundle: ${errors.join('; ')}`;
    return { ...base, enforcement: { bundle: undefined, upstream, unavailable: `its policy does not compile: ${error}` }, error };
  }
  try {
    const bundle = compileBundle(manifests, { connection: connection.name, namespace, ...(serviceAccount !== undefined ? { serviceAccount } : {}) });
    return { ...base, enforcement: { bundle, upstream }, error: undefined };
  } catch (err) {
    const message = messageOf(err);
    return { ...base, enforcement: { bundle: undefined, upstream, unavailable: `its policy does not compile: ${message}` }, error: message };
  }
}

/** A connection the operator cannot serve (`refused` of the bundle): listened for, every session turned away with the operator's reason. */
export function refusedConnection(r: RefusedConnection, namespace: string): CompiledConnection {
  return {
    name: r.name,
    namespace,
    protocol: r.protocol,
    listenPort: r.listenPort,
    claimName: undefined,
    operatorDigest: '',
    enforcement: undefined,
    error: `the Airlock operator cannot serve it (${r.reason}): ${r.message.replace(/\.$/, '')}`,
  };
}

/** Every connection of the bundle, by name (those without an AgentConnection are left out and named in `skipped`). */
export function compileSidecarBundle(bundle: SidecarBundle): { connections: ReadonlyMap<string, CompiledConnection>; skipped: readonly string[] } {
  const out = new Map<string, CompiledConnection>();
  const skipped: string[] = [];
  for (const c of bundle.connections) {
    const compiled = compileConnection(c, bundle.pod.namespace, bundle.pod.serviceAccount);
    if (compiled === undefined) skipped.push(c.name);
    else out.set(c.name, compiled);
  }
  for (const r of bundle.refused ?? []) {
    if (!out.has(r.name)) out.set(r.name, refusedConnection(r, bundle.pod.namespace));
  }
  return { connections: out, skipped };
}
