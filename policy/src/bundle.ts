/**
 * Compiles manifests into the immutable policy bundle of one connection: the rules of every
 * ApprovalRule and MaskingPolicy that select it, compiled once (globs, RE2 patterns), plus a
 * digest of what went in. Pure: the caller reads the files or the API server.
 */
import { createHash, createHmac } from 'node:crypto';
import { byName, type Action, type AgentConnection, type ApprovalRule, type MaskingPolicy, type Manifest, type SqlClass } from '@airlock/api';
import { PolicyError } from './errors.ts';
import { selectorMatches } from './selector.ts';
import { compileGlob } from './shell/glob.ts';
import { compileMasker, type Masker, type MaskRuleSpec } from './mask/masker.ts';

type Matcher = (text: string) => boolean;

export interface ApprovalSettings {
  readonly approvers: { readonly users: readonly string[]; readonly groups: readonly string[] };
  readonly required: number;
  readonly timeoutSeconds: number;
  readonly requireReason: boolean;
}

export interface CompiledRule {
  /** `<ApprovalRule name>/<rule name>` */
  readonly id: string;
  readonly action: Action;
  readonly message: string | undefined;
  readonly approval: ApprovalSettings | undefined;
  readonly sql: { readonly classes?: ReadonlySet<SqlClass>; readonly tables?: readonly Matcher[]; readonly functions?: readonly Matcher[] } | undefined;
  /** command globs, and the globs of their first word (the program) for commands with run-time arguments */
  readonly ssh: { readonly commands: readonly Matcher[]; readonly programs: readonly Matcher[] } | undefined;
  /**
   * The service accounts the rule is written for, when the agent's identity is unknown: the rule
   * applies anyway (unknown is the strictest), and decisions say so.
   */
  readonly assumedSubjects?: readonly string[];
}

export interface PolicyBundle {
  readonly connection: {
    readonly name: string;
    readonly namespace: string;
    readonly protocol: 'postgres' | 'ssh';
    readonly defaultAction: Action;
  };
  readonly rules: readonly CompiledRule[];
  readonly masker: Masker;
  readonly maskingPolicies: readonly string[];
  /** some masking rule matches by column name (results need their columns' identity) */
  readonly columnRules: boolean;
  /** a result column whose lineage is unknown: masked with every column rule, or its statement refused (any policy saying Refuse) */
  readonly unknownLineage: 'Mask' | 'Refuse';
  readonly approvalRules: readonly string[];
  /** sha256 over the specs that went into the bundle */
  readonly digest: string;
}

export interface BundleOptions {
  readonly connection: string;
  readonly namespace?: string;
  /**
   * restricts ApprovalRules with `subjects.serviceAccounts` to this agent. Unknown (undefined):
   * every such rule that can stop a statement applies, and none of its Allow rules (an unknown
   * agent may be any of them, and is granted nothing granted to one of them).
   */
  readonly serviceAccount?: string;
  /** HMAC key of the `hash` masking action; defaults to one derived from the credentials Secret */
  readonly hashKey?: Uint8Array;
}

/** Go-style duration (10m, 1h30m, 45s, 500ms) in seconds. */
export function parseDuration(text: string): number {
  let total = 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(text)) !== null) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'h' ? n * 3600 : unit === 'm' ? n * 60 : unit === 's' ? n : n / 1000;
    consumed = re.lastIndex;
  }
  if (consumed !== text.length || text === '') throw new PolicyError('InvalidManifest', `invalid duration "${text}"`);
  return total;
}

function namespaceOf(m: Manifest): string {
  return m.namespace ?? 'default';
}

function labelsOf(m: Manifest): Record<string, string> {
  const meta = m.object['metadata'] as { labels?: Record<string, string> } | undefined;
  return meta?.labels ?? {};
}

function compileGlobs(list: readonly string[] | undefined, where: string): Matcher[] | undefined {
  if (list === undefined) return undefined;
  return list.map((g) => {
    try {
      return compileGlob(g);
    } catch (err) {
      throw new PolicyError('InvalidGlob', `${where}: ${(err as Error).message}`);
    }
  });
}

/** The program part of a command glob: up to the first unescaped space. */
function firstWord(glob: string): string {
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === ' ') return glob.slice(0, i);
  }
  return glob;
}

function compileApprovalRules(rule: ApprovalRule, identityKnown: boolean): CompiledRule[] {
  const subjects = rule.spec.subjects?.serviceAccounts;
  const assumed = !identityKnown && subjects !== undefined;
  return rule.spec.rules.filter((r) => !assumed || r.action !== 'Allow').map((r) => {
    const id = `${rule.metadata.name ?? ''}/${r.name}`;
    const sql = r.match.sql;
    const ssh = r.match.ssh;
    const approval = r.approval;
    return {
      id,
      action: r.action,
      message: r.message,
      approval:
        approval === undefined
          ? undefined
          : {
              approvers: { users: approval.approvers.users ?? [], groups: approval.approvers.groups ?? [] },
              required: approval.required ?? 1,
              timeoutSeconds: parseDuration(approval.timeout ?? '10m'),
              requireReason: approval.requireReason ?? false,
            },
      sql:
        sql === undefined
          ? undefined
          : {
              ...(sql.classes !== undefined ? { classes: new Set(sql.classes) } : {}),
              ...(sql.tables !== undefined ? { tables: compileGlobs(sql.tables, `rule "${id}"`) ?? [] } : {}),
              ...(sql.functions !== undefined ? { functions: compileGlobs(sql.functions, `rule "${id}"`) ?? [] } : {}),
            },
      ssh:
        ssh === undefined
          ? undefined
          : {
              commands: compileGlobs(ssh.commands, `rule "${id}"`) ?? [],
              programs: compileGlobs(ssh.commands.map(firstWord), `rule "${id}"`) ?? [],
            },
      ...(assumed ? { assumedSubjects: subjects } : {}),
    };
  });
}

function secretBytes(manifests: readonly Manifest[], namespace: string, name: string): Buffer | undefined {
  const secret = manifests.find((m) => m.kind === 'Secret' && m.name === name && namespaceOf(m) === namespace);
  if (secret === undefined) return undefined;
  const data = (secret.object['data'] ?? {}) as Record<string, string>;
  const stringData = (secret.object['stringData'] ?? {}) as Record<string, string>;
  const keys = [...new Set([...Object.keys(data), ...Object.keys(stringData)])].sort();
  return Buffer.from(keys.map((k) => `${k}=${stringData[k] ?? Buffer.from(data[k] ?? '', 'base64').toString('utf8')}`).join('\n'));
}

/** Finds the AgentConnection and compiles its bundle. Throws PolicyError with a precise message. */
export function compileBundle(manifests: readonly Manifest[], options: BundleOptions): PolicyBundle {
  const candidates = manifests.filter((m) => m.kind === 'AgentConnection' && m.name === options.connection);
  const inNamespace = options.namespace === undefined ? candidates : candidates.filter((m) => namespaceOf(m) === options.namespace);
  if (inNamespace.length === 0) {
    const where = options.namespace === undefined ? '' : ` in namespace "${options.namespace}"`;
    throw new PolicyError('ConnectionNotFound', `AgentConnection "${options.connection}"${where} not found in the manifests`);
  }
  if (inNamespace.length > 1) {
    throw new PolicyError('ConnectionNotFound', `AgentConnection "${options.connection}" exists in several namespaces; use --namespace`);
  }
  const connManifest = inNamespace[0] as Manifest;
  const conn = connManifest.object as unknown as AgentConnection;
  const namespace = namespaceOf(connManifest);
  const labels = labelsOf(connManifest);
  const sameNs = manifests.filter((m) => namespaceOf(m) === namespace);

  const selectedRules = sameNs
    .filter((m) => m.kind === 'ApprovalRule')
    .map((m) => m.object as unknown as ApprovalRule)
    .filter((r) => selectorMatches(r.spec.connectionSelector, labels))
    .sort(byName);
  const approvalRules = selectedRules.filter((r) => {
    const sas = r.spec.subjects?.serviceAccounts;
    // an unknown identity may be any service account: its rules apply (see compileApprovalRules)
    return sas === undefined || options.serviceAccount === undefined || sas.includes(options.serviceAccount);
  });
  const maskingPolicies = sameNs
    .filter((m) => m.kind === 'MaskingPolicy')
    .map((m) => m.object as unknown as MaskingPolicy)
    .filter((p) => selectorMatches(p.spec.connectionSelector, labels))
    .sort(byName);

  const maskRules: MaskRuleSpec[] = maskingPolicies.flatMap((p) =>
    p.spec.rules.map((r) => ({ ...r, name: `${p.metadata.name ?? ''}/${r.name}` })),
  );
  const credentials = secretBytes(manifests, namespace, conn.spec.credentialsSecretRef.name);
  const hashKey =
    options.hashKey ?? createHmac('sha256', credentials ?? Buffer.from(`${namespace}/${conn.metadata.name ?? ''}`)).update('airlock.dev/mask-hash-key').digest();
  const masker = compileMasker(maskRules, hashKey);

  const digest = createHash('sha256')
    // over every rule that selects the connection, whatever the agent: the operator's
    // PolicyCompiled digest (no agent) and every sidecar's (its agent) are the same
    .update(JSON.stringify({ connection: conn.spec, approvalRules: selectedRules.map((r) => [r.metadata.name, r.spec]), masking: maskingPolicies.map((p) => [p.metadata.name, p.spec]) }))
    .digest('hex');

  return Object.freeze({
    connection: Object.freeze({
      name: conn.metadata.name ?? options.connection,
      namespace,
      protocol: conn.spec.protocol,
      defaultAction: conn.spec.defaultAction ?? 'Block',
    }),
    rules: Object.freeze(approvalRules.flatMap((r) => compileApprovalRules(r, options.serviceAccount !== undefined))),
    masker,
    maskingPolicies: maskingPolicies.map((p) => p.metadata.name ?? ''),
    columnRules: maskRules.some((r) => (r.match.columns?.length ?? 0) > 0),
    unknownLineage: maskingPolicies.some((p) => p.spec.unknownLineage === 'Refuse') ? 'Refuse' : 'Mask',
    approvalRules: approvalRules.map((r) => r.metadata.name ?? ''),
    digest: `sha256:${digest}`,
  });
}
