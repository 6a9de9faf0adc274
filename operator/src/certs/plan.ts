/**
 * What to do now about Airlock's certificates, from what the Secrets and the webhook
 * configurations hold and the time: a plain function, level-triggered. The manager carries out
 * the steps, reads everything again and asks again, until no step is left. A step that changes
 * the CA comes alone, because everything else follows from the CA.
 *
 * The CA Secret (Opaque) holds up to three CAs:
 * - `ca.crt`/`ca.key`: the active CA, which signs the serving certificates;
 * - `next.crt`/`next.key`: during a CA rotation, the new CA, already trusted, not yet signing;
 * - `previous.crt`: after a rotation, the retired CA, still trusted while certificates it signed
 *   may be served;
 * - `cross.crt`: the active CA certified by the one before it (issued with the next CA as
 *   `next-cross.crt`). Each TLS Secret's tls.crt is the serving certificate followed by it while it
 *   is valid, so a client that still trusts only the old CA (a sidecar injected before the
 *   rotation, its bundle fixed in its environment) verifies the chain through it, until the old
 *   CA expires.
 * The trust bundle (every webhook's caBundle, and ca.crt of both TLS Secrets) is the active CA,
 * then the next, then the previous.
 *
 * CA rotation, so that no client ever meets a certificate it does not trust:
 * 1. when less than a third of the active CA's lifetime remains (or the CA Secret carries the
 *    annotation airlock.dev/rotate-ca), a next CA is issued and published in the bundle;
 * 2. once every existing webhook configuration and both TLS Secrets carry the bundle with the
 *    next CA, and `caOverlapMs` has passed since it was issued, the next CA becomes the active
 *    one and the old active one becomes `previous`; the serving certificates are then reissued
 *    from the new CA (they are no longer signed by the active CA);
 * 3. once both serving certificates come from the active CA and the newest is `caOverlapMs`
 *    old (pods have reloaded it), or once it expired, `previous` is dropped.
 */
import type { Issued, ServingNames } from './issue.ts';
import { canonicalIp, inspectCertificate, keyMatches, renewalTime, signedBy, type CertificateInfo } from './inspect.ts';

export type LeafName = 'webhook' | 'control';
export const LEAVES: readonly LeafName[] = ['webhook', 'control'];

/** keys of the CA Secret */
export const CA_KEYS = {
  cert: 'ca.crt',
  key: 'ca.key',
  /** the active CA certified by the CA before it: served after each serving certificate while valid */
  crossCert: 'cross.crt',
  nextCert: 'next.crt',
  nextKey: 'next.key',
  /** the next CA certified by the active one, issued with it; becomes cross.crt at promotion */
  nextCrossCert: 'next-cross.crt',
  previousCert: 'previous.crt',
} as const;
/** keys of a kubernetes.io/tls Secret */
export const TLS_KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;
export const TLS_SECRET_TYPE = 'kubernetes.io/tls';
/** annotation on the CA Secret: any value starts a CA rotation (the manager removes it when it does) */
export const ROTATE_CA_ANNOTATION = 'airlock.dev/rotate-ca';

/** a Secret as the plan sees it: data decoded to text */
export interface SecretContents {
  readonly type?: string;
  readonly data: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export type ConfigurationKind = 'mutating' | 'validating';

/** an existing webhook configuration: the caBundle (decoded PEM, '' when unset) of each of its webhooks */
export interface ConfigurationContents {
  readonly kind: ConfigurationKind;
  readonly name: string;
  readonly caBundles: readonly string[];
}

export interface CertificateSettings {
  readonly caValidityMs: number;
  readonly leafValidityMs: number;
  /** how long a new CA is trusted before it signs, and an old one after it stopped */
  readonly caOverlapMs: number;
}

export interface PlanInput {
  readonly now: number;
  readonly settings: CertificateSettings;
  /** undefined: the Secret does not exist */
  readonly ca: SecretContents | undefined;
  readonly leaves: Readonly<Record<LeafName, SecretContents | undefined>>;
  readonly names: Readonly<Record<LeafName, ServingNames>>;
  /** only those that exist */
  readonly configurations: readonly ConfigurationContents[];
}

export type CertificateStep =
  /** issue a CA: `active` replaces the CA Secret's contents, `next` adds next.crt/next.key to them */
  | { readonly kind: 'issueCa'; readonly slot: 'active' | 'next'; readonly reason: string }
  /** write the CA Secret with exactly this data (promotion, dropping the previous CA) */
  | { readonly kind: 'writeCa'; readonly data: Readonly<Record<string, string>>; readonly reason: string }
  /** issue a serving certificate from the active CA; `recreate`: the Secret has another type and must be deleted first */
  | { readonly kind: 'issueLeaf'; readonly leaf: LeafName; readonly reason: string; readonly recreate: boolean }
  /** the key stays; tls.crt becomes `cert` (the serving certificate and the current chain), ca.crt the bundle */
  | { readonly kind: 'updateLeafBundle'; readonly leaf: LeafName; readonly cert: string }
  /** set every webhook's caBundle of the configuration to the bundle */
  | { readonly kind: 'patchCaBundle'; readonly configuration: { readonly kind: ConfigurationKind; readonly name: string } };

export interface CertificatePlan {
  readonly steps: readonly CertificateStep[];
  /** the active CA, which signs serving certificates (undefined only when the CA must be issued first) */
  readonly signer: Issued | undefined;
  /** the PEM bundle every client should trust ('' only when the CA must be issued first) */
  readonly bundle: string;
  /** PEM to serve after each serving certificate: the cross-certificate, or '' */
  readonly chain: string;
  /** when the plan will change by itself (a renewal or a rotation phase is due) */
  readonly nextCheckAt: number;
}

type Readout<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

function readCa(cert: string | undefined, key: string | undefined, now: number, what: string): Readout<CertificateInfo> {
  if (cert === undefined || cert === '') return { ok: false, reason: `${what} has no certificate` };
  if (key === undefined || key === '') return { ok: false, reason: `${what} has no key` };
  let info: CertificateInfo;
  try {
    info = inspectCertificate(cert);
  } catch (err) {
    return { ok: false, reason: `${what}: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!info.isCa) return { ok: false, reason: `${what} is not a CA certificate` };
  if (!keyMatches(info, key)) return { ok: false, reason: `${what}'s key does not match its certificate` };
  if (now >= info.notAfter) return { ok: false, reason: `${what} expired at ${new Date(info.notAfter).toISOString()}` };
  return { ok: true, value: info };
}

function readLeaf(secret: SecretContents | undefined, names: ServingNames, signer: CertificateInfo, now: number): Readout<CertificateInfo> & { readonly recreate?: boolean } {
  if (secret === undefined) return { ok: false, reason: 'the Secret does not exist' };
  if (secret.type !== TLS_SECRET_TYPE) return { ok: false, reason: `the Secret is of type ${secret.type ?? '(none)'}, not ${TLS_SECRET_TYPE}`, recreate: true };
  const cert = secret.data[TLS_KEYS.cert] ?? '';
  const key = secret.data[TLS_KEYS.key] ?? '';
  if (cert === '' || key === '') return { ok: false, reason: 'the Secret has no certificate or no key' };
  let info: CertificateInfo;
  try {
    info = inspectCertificate(cert);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  if (!keyMatches(info, key)) return { ok: false, reason: 'the key does not match the certificate' };
  if (!signedBy(info, signer)) return { ok: false, reason: 'the certificate is not signed by the active CA' };
  if (!sameSet(info.dnsNames, names.dnsNames) || !sameSet(info.ipAddresses, names.ipAddresses.map(canonicalIp))) {
    return { ok: false, reason: `the certificate's names (${[...info.dnsNames, ...info.ipAddresses].join(', ')}) are not the wanted ones (${[...names.dnsNames, ...names.ipAddresses].join(', ')})` };
  }
  if (now >= info.notAfter) return { ok: false, reason: `the certificate expired at ${new Date(info.notAfter).toISOString()}` };
  if (now >= renewalTime(info)) return { ok: false, reason: `less than a third of its validity remains (expires ${new Date(info.notAfter).toISOString()})` };
  return { ok: true, value: info };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((x) => right.has(x));
}

function joinBundle(certs: readonly CertificateInfo[]): string {
  return certs.map((c) => c.pem).join('');
}

/** whether the bundle text holds the certificate (same DER) */
function bundleHolds(bundle: string, cert: CertificateInfo): boolean {
  return bundle.includes(cert.pem.trim());
}

export function planCertificates(input: PlanInput): CertificatePlan {
  const { now, settings } = input;
  const data = input.ca?.data ?? {};
  const none = (reason: string): CertificatePlan => ({ steps: [{ kind: 'issueCa', slot: 'active', reason }], signer: undefined, bundle: '', chain: '', nextCheckAt: now });

  const active = readCa(data[CA_KEYS.cert], data[CA_KEYS.key], now, 'the CA');
  const next = data[CA_KEYS.nextCert] === undefined ? undefined : readCa(data[CA_KEYS.nextCert], data[CA_KEYS.nextKey], now, 'the next CA');
  if (!active.ok) {
    if (next?.ok === true) return caOnly({ kind: 'writeCa', data: { [CA_KEYS.cert]: next.value.pem, [CA_KEYS.key]: data[CA_KEYS.nextKey] ?? '' }, reason: `${active.reason}; the next CA takes over` }, now);
    return none(input.ca === undefined ? 'the CA Secret does not exist' : active.reason);
  }
  const signer: Issued = { cert: active.value.pem, key: data[CA_KEYS.key] ?? '' };
  let previous: CertificateInfo | undefined;
  try {
    const text = data[CA_KEYS.previousCert];
    const candidate = text === undefined ? undefined : inspectCertificate(text);
    if (candidate !== undefined && now < candidate.notAfter) previous = candidate;
  } catch {
    previous = undefined;
  }
  const crossText = data[CA_KEYS.crossCert];
  const cross = crossText === undefined ? undefined : readCross(crossText, active.value, now);
  if (crossText !== undefined && cross === undefined) {
    return caOnly({ kind: 'writeCa', data: withoutKeys(data, [CA_KEYS.crossCert]), reason: 'the cross-certificate expired or does not certify the active CA' }, now);
  }
  const chain = cross?.pem ?? '';
  const trusted = [active.value, ...(next?.ok === true ? [next.value] : []), ...(previous === undefined ? [] : [previous])];
  const bundle = joinBundle(trusted);
  const wakeAt: number[] = [];

  // the serving certificates as they are
  const leaves = new Map(LEAVES.map((leaf) => [leaf, readLeaf(input.leaves[leaf], input.names[leaf], active.value, now)] as const));

  // the CA first: a rotation phase that is due
  if (next?.ok === true) {
    const promoteAt = next.value.issuedAt + settings.caOverlapMs;
    const published =
      input.configurations.every((c) => c.caBundles.every((b) => bundleHolds(b, next.value))) &&
      LEAVES.every((leaf) => bundleHolds(input.leaves[leaf]?.data[TLS_KEYS.ca] ?? '', next.value));
    if (now >= promoteAt && published) {
      const nextCross = data[CA_KEYS.nextCrossCert];
      const promoted: Record<string, string> = { [CA_KEYS.cert]: next.value.pem, [CA_KEYS.key]: data[CA_KEYS.nextKey] ?? '', [CA_KEYS.previousCert]: active.value.pem };
      if (nextCross !== undefined && readCross(nextCross, next.value, now) !== undefined) promoted[CA_KEYS.crossCert] = nextCross;
      return caOnly({ kind: 'writeCa', data: promoted, reason: 'the next CA has been trusted everywhere for the overlap: it signs from now on' }, now);
    }
    wakeAt.push(promoteAt);
  } else {
    const rotateAt = renewalTime(active.value);
    const requested = input.ca?.annotations?.[ROTATE_CA_ANNOTATION];
    if (requested !== undefined) return caOnly({ kind: 'issueCa', slot: 'next', reason: `CA rotation requested by the annotation ${ROTATE_CA_ANNOTATION}` }, now);
    if (now >= rotateAt) return caOnly({ kind: 'issueCa', slot: 'next', reason: `less than a third of the CA's validity remains (expires ${new Date(active.value.notAfter).toISOString()})` }, now);
    wakeAt.push(rotateAt);
  }
  const staleKeys = data[CA_KEYS.previousCert] !== undefined && previous === undefined;
  if (previous !== undefined || staleKeys) {
    const fresh = [...leaves.values()].filter((l) => l.ok).map((l) => l.value.issuedAt);
    const dropAt = fresh.length === LEAVES.length ? Math.max(...fresh) + settings.caOverlapMs : Infinity;
    if (staleKeys || now >= dropAt) {
      const kept = withoutKeys(data, [CA_KEYS.previousCert]);
      return caOnly({ kind: 'writeCa', data: kept, reason: staleKeys ? 'the previous CA expired or is unreadable' : 'every serving certificate comes from the active CA: the previous CA is no longer trusted' }, now);
    }
    if (previous !== undefined) wakeAt.push(Math.min(dropAt, previous.notAfter));
  }
  if (cross !== undefined) wakeAt.push(cross.notAfter);

  const steps: CertificateStep[] = [];
  for (const leaf of LEAVES) {
    const read = leaves.get(leaf);
    if (read === undefined) continue;
    if (!read.ok) {
      steps.push({ kind: 'issueLeaf', leaf, reason: read.reason, recreate: read.recreate === true });
      continue;
    }
    wakeAt.push(renewalTime(read.value));
    const cert = read.value.pem + chain;
    const stored = input.leaves[leaf]?.data ?? {};
    if (stored[TLS_KEYS.ca] !== bundle || stored[TLS_KEYS.cert] !== cert) steps.push({ kind: 'updateLeafBundle', leaf, cert });
  }
  for (const configuration of input.configurations) {
    if (configuration.caBundles.some((b) => b !== bundle)) steps.push({ kind: 'patchCaBundle', configuration: { kind: configuration.kind, name: configuration.name } });
  }
  return { steps, signer, bundle, chain, nextCheckAt: Math.min(...wakeAt) };
}

function caOnly(step: CertificateStep, now: number): CertificatePlan {
  return { steps: [step], signer: undefined, bundle: '', chain: '', nextCheckAt: now };
}

/** a valid cross-certificate for `ca` (same name and key), or undefined */
function readCross(text: string, ca: CertificateInfo, now: number): CertificateInfo | undefined {
  try {
    const cross = inspectCertificate(text);
    return cross.isCa && now < cross.notAfter && cross.node.subject === ca.node.subject && cross.node.publicKey.equals(ca.node.publicKey) ? cross : undefined;
  } catch {
    return undefined;
  }
}

function withoutKeys(data: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(data).filter(([k]) => !keys.includes(k)));
}

/** a JSON Patch (RFC 6902) operation of the kind caBundlePatch writes */
export interface PatchOperation {
  readonly op: 'test' | 'add';
  readonly path: string;
  readonly value: string;
}

/**
 * The JSON Patch that sets every webhook's clientConfig.caBundle to `bundle` (base64), guarded by
 * the resourceVersion read and each webhook's name, so a configuration changed in between is
 * refused instead of patched at the wrong index. Empty when nothing differs.
 */
export function caBundlePatch(configuration: { readonly resourceVersion: string; readonly webhooks: readonly { readonly name: string; readonly caBundle?: string }[] }, bundle: string): PatchOperation[] {
  const encoded = Buffer.from(bundle, 'utf8').toString('base64');
  const ops: PatchOperation[] = [];
  configuration.webhooks.forEach((webhook, i) => {
    if (webhook.caBundle === encoded) return;
    ops.push({ op: 'test', path: `/webhooks/${String(i)}/name`, value: webhook.name }, { op: 'add', path: `/webhooks/${String(i)}/clientConfig/caBundle`, value: encoded });
  });
  return ops.length === 0 ? [] : [{ op: 'test', path: '/metadata/resourceVersion', value: configuration.resourceVersion }, ...ops];
}
