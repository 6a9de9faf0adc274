/**
 * The cluster-mode contract shared by the operator, the webhooks, the sidecar and the chart:
 * label and annotation names, the injected sidecar's fixed identity and paths, and the JSON of
 * the control API that sidecars talk to. Names and shapes only: no I/O.
 */
/** an object as the API server serves it (apiVersion, kind, metadata, spec/data/...) */
export type KubernetesObjectLike = Readonly<Record<string, unknown>>;

// ── opt-in and bookkeeping ───────────────────────────────────────────────────────────────

/** Namespace label: `enabled` opts every pod of the namespace in (Istio's istio-injection=enabled). */
export const NAMESPACE_INJECT_LABEL = 'airlock.dev/inject';
/** Pod label: `true` opts a pod in (in any namespace the webhook sees), `false` opts it out of an enabled namespace. */
export const POD_INJECT_LABEL = 'airlock.dev/inject';
/** Pod annotation written by injection: the sidecar image and the connections it serves (idempotency marker). */
export const INJECTED_ANNOTATION = 'airlock.dev/injected';
/** Pod or namespace annotation: `transparent` (default) or `explicit`. */
export const CAPTURE_ANNOTATION = 'airlock.dev/capture';
export type CaptureMode = 'transparent' | 'explicit';
/** Label on every object of Airlock's own components: never injected. */
export const COMPONENT_LABEL = 'app.kubernetes.io/part-of';
export const COMPONENT_VALUE = 'airlock';

// ── approvals by annotation ──────────────────────────────────────────────────────────────

/** What a reviewer sets: `approve` or `deny`. The webhook consumes it (removes it) and records a decision. */
export const DECISION_ANNOTATION = 'airlock.dev/decision';
/** Optional reason set with the decision. Consumed with it. */
export const REASON_ANNOTATION = 'airlock.dev/reason';
/**
 * The decisions recorded by the approval-identity webhook: a JSON array of `RecordedDecision`.
 * Only the webhook writes it (any other change to it is refused); each entry carries a signature
 * the operator verifies before it derives status from it.
 */
export const DECISIONS_ANNOTATION = 'airlock.dev/decisions';

export interface RecordedDecision {
  /** reviewer, from the admission request's userInfo */
  readonly user: string;
  readonly groups: readonly string[];
  readonly decision: 'approve' | 'deny';
  readonly reason?: string;
  /** RFC 3339 */
  readonly time: string;
  /**
   * HMAC-SHA256 (base64url) over the canonical JSON of `{ request: <namespace>/<name>, uid:
   * <ApprovalRequest uid>, user, groups, decision, reason, time }` (policy/src/review.ts
   * signDecision), keyed by the Secret `APPROVAL_KEY_SECRET` in Airlock's namespace: an entry
   * copied to another request or edited does not verify.
   */
  readonly signature: string;
}

/** Secret (in Airlock's namespace) holding the HMAC key of recorded decisions: data.key, 32+ random bytes. */
export const APPROVAL_KEY_SECRET = 'airlock-approval-key';

// ── the injected sidecar ─────────────────────────────────────────────────────────────────

export const SIDECAR_CONTAINER = 'airlock-proxy';
export const CAPTURE_CONTAINER = 'airlock-capture';
/** fixed non-root identity of the sidecar; pods may not run anything else as it (no-bypass admission) */
export const SIDECAR_UID = 15532;
export const SIDECAR_GID = 15532;
/** projected service-account token, audience `CONTROL_AUDIENCE`, mounted only into the sidecar */
export const CONTROL_AUDIENCE = 'airlock.dev';
export const SIDECAR_TOKEN_DIR = '/var/run/secrets/airlock.dev/token';
export const SIDECAR_TOKEN_FILE = `${SIDECAR_TOKEN_DIR}/token`;
/** the recordings claim is mounted here; the sidecar writes under `<mount>/<namespace>/<pod>/` */
export const RECORDINGS_MOUNT = '/var/lib/airlock/recordings';
/** an emptyDir for the sidecar's own state (approval and report buffers survive container restarts) */
export const STATE_MOUNT = '/var/lib/airlock/state';
/** env of the sidecar container */
export const SIDECAR_ENV = {
  /** https URL of the control API (the operator's Service) */
  controlUrl: 'AIRLOCK_CONTROL_URL',
  /** PEM bundle that signs the control API's serving certificate */
  controlCa: 'AIRLOCK_CONTROL_CA',
  podName: 'AIRLOCK_POD_NAME',
  podNamespace: 'AIRLOCK_POD_NAMESPACE',
  podUid: 'AIRLOCK_POD_UID',
  serviceAccount: 'AIRLOCK_SERVICE_ACCOUNT',
} as const;

// ── the control API (served by every operator replica over HTTPS) ────────────────────────
//
// Every request carries `Authorization: Bearer <projected token>`. Errors are `ControlError`
// with 400/401/403/404/409/503 and a stable `code`.

export const CONTROL_API_PREFIX = '/v1';
/** longest long-poll a client may ask for */
export const MAX_WAIT_SECONDS = 60;

export interface ControlError {
  readonly code: string;
  readonly message: string;
}

export interface PodIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
}

/**
 * `GET /v1/bundle[?revision=<r>&waitSeconds=<n>]`: everything the pod's sidecar enforces. With
 * `revision` equal to the current one, the reply waits up to `waitSeconds` for a change and then
 * answers with the current bundle (possibly the same revision).
 */
export interface SidecarBundle {
  readonly apiVersion: 'airlock.dev/v1alpha1';
  readonly kind: 'SidecarBundle';
  /** changes whenever anything in the reply changes (a digest of it) */
  readonly revision: string;
  readonly pod: PodIdentity;
  readonly connections: readonly BundleConnection[];
  /** granted connections the operator cannot serve, and why (absent when there are none) */
  readonly refused?: readonly RefusedConnection[];
}

/**
 * A connection granted to the pod that the operator cannot serve now: its credentials do not
 * resolve, or its policies do not compile. The sidecar still listens on its port and turns every
 * session away with `message` (a PostgreSQL ErrorResponse; SSH exit status 126 with the message on
 * stderr), so the agent learns why instead of meeting a closed port.
 */
export interface RefusedConnection {
  readonly name: string;
  readonly protocol: 'postgres' | 'ssh';
  readonly listenPort: number;
  readonly reason: 'CredentialsNotResolved' | 'PolicyNotCompiled';
  readonly message: string;
}

/** The loopback port the sidecar listens on for a connection (spec.listenPort, else the protocol's default). */
export function listenPortOf(spec: { readonly protocol: 'postgres' | 'ssh'; readonly listenPort?: number | undefined }): number {
  return spec.listenPort ?? (spec.protocol === 'postgres' ? 15432 : 2222);
}

export interface BundleConnection {
  readonly name: string;
  /**
   * The AgentConnection, the MaskingPolicies and ApprovalRules that select it, and its
   * credentials Secret, as the API server holds them (the sidecar compiles them exactly as local
   * mode compiles manifests, so the digest it enforces is the operator's PolicyCompiled digest).
   * The Secret appears only here, never in a pod spec.
   */
  readonly objects: readonly KubernetesObjectLike[];
  /** the PolicyCompiled digest the operator computed, for the sidecar's log and reports */
  readonly digest: string;
}

/** `POST /v1/approvals` body → 201 `ApprovalCreated`. */
export interface ApprovalAsk {
  readonly connection: string;
  /** the AgentSession name */
  readonly session: string;
  readonly protocol: 'postgres' | 'ssh';
  /** masked statement or command line */
  readonly command: string;
  readonly classes: readonly string[];
  readonly rule: { readonly approvalRule: string; readonly name: string };
  readonly approvers: { readonly users: readonly string[]; readonly groups: readonly string[] };
  readonly required: number;
  readonly requireReason: boolean;
  readonly timeoutSeconds: number;
  /** the message of the rule, shown to reviewers */
  readonly message: string;
}

export interface ApprovalCreated {
  readonly name: string;
  readonly namespace: string;
  readonly expiresAt: string;
  /** the command a reviewer runs, for the agent's message */
  readonly annotate: string;
}

/** `GET /v1/approvals/<name>[?waitSeconds=<n>]` → 200; `DELETE /v1/approvals/<name>` withdraws (204). */
export interface ApprovalState {
  readonly name: string;
  readonly phase: 'Pending' | 'Approved' | 'Denied' | 'Expired' | 'Withdrawn';
  readonly decisions: readonly { readonly user: string; readonly decision: 'approve' | 'deny'; readonly reason?: string; readonly time: string }[];
}

/**
 * `POST /v1/sessions` body → 204. Reports are idempotent and ordered by `seq` per session: the
 * operator applies a report only when its seq is above the last applied one, so a buffered report
 * delivered twice or late changes nothing.
 */
export interface SessionReport {
  /** the AgentSession name (also the recording's session id) */
  readonly session: string;
  readonly connection: string;
  readonly protocol: 'postgres' | 'ssh';
  readonly seq: number;
  readonly type: 'start' | 'progress' | 'end';
  readonly startTime: string;
  readonly endTime?: string;
  readonly counts: { readonly statements: number; readonly rows: number; readonly maskedValues: number; readonly blocked: number; readonly approvals: number };
  readonly recording: { readonly claimName?: string; readonly path: string; readonly chainHead?: string; readonly records: number };
}

/**
 * `POST /v1/certificates` body → 200 `AgentCertificates`: what the sidecar presents to the agent,
 * so that `sslmode=verify-full` and `StrictHostKeyChecking=yes` work through it. The TLS leaf is
 * issued for the pod's granted postgres connections' target host names (and their Service forms),
 * signed by Airlock's CA (Secret `OBJECT_NAMES.caSecret`); the sidecar keeps its private key.
 */
export interface CertificateAsk {
  /** PEM SubjectPublicKeyInfo of the sidecar's ECDSA P-256 key for agent-facing TLS; absent: no TLS leaf */
  readonly tlsPublicKey?: string;
}

export interface AgentCertificates {
  /** absent when the pod has no granted postgres connection or no public key was sent */
  readonly tls?: {
    /** the leaf, PEM */
    readonly cert: string;
    /** the CA bundle the agent trusts (the ConfigMap's ca.crt), PEM */
    readonly ca: string;
    readonly dnsNames: readonly string[];
    readonly ipAddresses: readonly string[];
    /** RFC 3339 */
    readonly notAfter: string;
    /** RFC 3339: ask again from then on (two thirds of the lifetime) */
    readonly renewAt: string;
  };
  /**
   * absent when the pod has no granted ssh connection. ssh2 (the sidecar's SSH server) cannot
   * present OpenSSH host certificates, so the host key is the namespace's Airlock SSH host key
   * (derived by the operator from Secret `OBJECT_NAMES.sshHostKeySecret`), which the namespace's
   * ConfigMap `OBJECT_NAMES.agentTrustConfigMap` pins in `ssh_known_hosts` for the targets' names.
   */
  readonly ssh?: {
    /** PEM (SEC1 `EC PRIVATE KEY`, P-256): the host key to serve */
    readonly hostKey: string;
    /** `ecdsa-sha2-nistp256 AAAA…` */
    readonly publicKey: string;
    /** the names the known_hosts line pins it for */
    readonly hostNames: readonly string[];
  };
}

/** What the agent containers trust: ConfigMap `OBJECT_NAMES.agentTrustConfigMap` in their namespace, mounted read-only. */
export const AGENT_TRUST = {
  /**
   * the pod volume (a ConfigMap volume, `optional: true`). Not `airlock-…`: that prefix is the
   * sidecar's, and agent containers may not mount such volumes (no-bypass admission)
   */
  volume: 'agent-airlock-ca',
  /** mount path of the ConfigMap in every agent container */
  mountPath: '/etc/airlock/ca',
  /** key: PEM bundle of Airlock's CA (PGSSLROOTCERT points at it) */
  caKey: 'ca.crt',
  /** key: known_hosts lines pinning the namespace's Airlock SSH host key for the ssh targets' names */
  knownHostsKey: 'ssh_known_hosts',
  /** where OpenSSH reads the global known_hosts; the webhook mounts the key there (subPath) in pods with ssh connections */
  globalKnownHosts: '/etc/ssh/ssh_known_hosts',
  /** env set in every agent container that does not set it: the CA bundle for libpq */
  caEnv: 'PGSSLROOTCERT',
} as const;

// ── names of Airlock's own objects (in Airlock's namespace, e.g. airlock-system) ─────────

export const OBJECT_NAMES = {
  /** Service of the operator: the control API on port 8443 */
  controlService: 'airlock-operator',
  controlPort: 8443,
  /** Service of the webhook: port 443 → container 9443 */
  webhookService: 'airlock-webhook',
  webhookPort: 443,
  /** CA (ca.crt, ca.key) that signs both serving certificates; managed by the operator's leader */
  caSecret: 'airlock-ca',
  /** kubernetes.io/tls Secrets (tls.crt, tls.key, ca.crt) issued from the CA, rotated before expiry */
  webhookTlsSecret: 'airlock-webhook-tls',
  controlTlsSecret: 'airlock-control-tls',
  /** the webhook configurations whose caBundle the operator keeps in sync */
  mutatingWebhookConfiguration: 'airlock-inject',
  validatingWebhookConfiguration: 'airlock-validate',
  /** ConfigMap (ca.crt, ssh_known_hosts) the operator keeps in every namespace with AgentConnections, for the agent containers */
  agentTrustConfigMap: 'airlock-ca',
  /** Secret (in Airlock's namespace; data.seed, 32 random bytes) from which the per-namespace SSH host keys are derived */
  sshHostKeySecret: 'airlock-ssh-host-key',
} as const;

/** HTTP paths the webhook serves (AdmissionReview v1) */
export const WEBHOOK_PATHS = {
  injectPods: '/mutate/pods',
  approvalDecisions: '/mutate/approvalrequests',
  validatePolicies: '/validate/policies',
} as const;

/** the sidecar answers GET /healthz/ready on this port of the pod IP once every listener is up (startup/readiness probe) */
export const SIDECAR_HEALTH_PORT = 15021;
