import { conditions, labelSelector, observedGeneration, secretKeyRef, secretRef } from './common.ts';
import { DNS_SUBDOMAIN_PATTERN, DURATION_PATTERN, arr, bool, enumOf, int, obj, str, stringSet, type Schema } from './props.ts';
import { ACTIONS, PROTOCOLS, RECORDING_FAILURE_POLICIES, TLS_MODES } from '../vocab.ts';

const port = (description: string): Schema => int(description, { minimum: 1, maximum: 65535 });

const target = obj(
  'Where the sidecar connects on behalf of the agent. The agent never learns these credentials or, beyond this object, the address.',
  {
    host: str('DNS name or IP address of the PostgreSQL or SSH server.', { minLength: 1, maxLength: 253 }),
    port: port('TCP port of the server (PostgreSQL usually 5432, SSH usually 22).'),
    database: str('PostgreSQL database to connect to. Required for protocol postgres; not allowed for ssh.', {
      minLength: 1,
      maxLength: 63,
    }),
    tls: obj(
      'TLS from the sidecar to PostgreSQL. Not used for ssh (SSH has its own transport security and host-key pinning).',
      {
        mode: enumOf(
          'disable: plain TCP. require: TLS, certificate not verified. verify-full: TLS with the certificate verified against caSecretRef (or the system roots) and the host name checked.',
          TLS_MODES,
          { default: 'require' },
        ),
        caSecretRef: secretKeyRef('Secret holding the PEM CA bundle used to verify the server certificate with verify-full.', 'ca.crt'),
        serverName: str('Name expected in the server certificate with verify-full, when it differs from host.', { maxLength: 253 }),
      },
      [],
      {
        'x-kubernetes-validations': [
          {
            rule: "!has(self.caSecretRef) || self.mode == 'verify-full'",
            message: 'caSecretRef is only used with mode verify-full',
            fieldPath: '.caSecretRef',
          },
        ],
      },
    ),
  },
  ['host', 'port'],
);

const ssh = obj(
  'SSH-specific settings. Required for protocol ssh; not allowed for postgres.',
  {
    hostKeyFingerprints: stringSet(
      'Pinned host keys of the SSH server as `ssh-keygen -lf` prints them (SHA256:<base64>). The sidecar refuses a server whose key is not listed.',
      str('One SHA256 host-key fingerprint.', { pattern: '^SHA256:[A-Za-z0-9+/]{43}=?$' }),
      { minItems: 1, maxItems: 16 },
    ),
    allowShell: bool('Allow interactive shells (pty). Each line is decided when Enter is pressed.', { default: false }),
    allowSftp: bool('Allow the sftp subsystem. File operations are recorded.', { default: false }),
    allowPortForwarding: bool('Allow local and remote port forwarding, agent forwarding and X11. Off by default: forwarding would bypass the policy.', {
      default: false,
    }),
    binaryOutput: enumOf(
      'What happens when a command\'s output is not text (a NUL byte, or bytes that are not valid UTF-8), which masking cannot read. Refuse (default): the command is stopped, and the agent gets a message on stderr and exit status 126; output already relayed stays as it was sent, never altered. Pass: from the first such byte on, the output is relayed and recorded byte for byte, unmasked (choose it only where binary output, e.g. `tar` or `gzip` to stdout, is wanted and holds no secrets).',
      ['Refuse', 'Pass'],
      { default: 'Refuse' },
    ),
  },
  ['hostKeyFingerprints'],
);

const agents = obj(
  'Which agent pods receive this connection. A pod qualifies when it matches podSelector and, if serviceAccounts is set, runs as one of them.',
  {
    podSelector: labelSelector('Labels of the agent pods, in this namespace.'),
    serviceAccounts: stringSet(
      'Service accounts (in this namespace) the agent pods must run as.',
      str('A service account name.', { pattern: DNS_SUBDOMAIN_PATTERN, maxLength: 253 }),
    ),
  },
  [],
  {
    'x-kubernetes-validations': [
      {
        rule: 'has(self.podSelector) || (has(self.serviceAccounts) && size(self.serviceAccounts) > 0)',
        message: 'agents must set podSelector, serviceAccounts or both',
      },
    ],
  },
);

const recording = obj(
  'Where and how sessions are recorded.',
  {
    claimName: str('PersistentVolumeClaim (in this namespace) the sidecar writes recordings to.', {
      pattern: DNS_SUBDOMAIN_PATTERN,
      maxLength: 253,
    }),
    retention: str('How long recordings and their AgentSession objects are kept, as a duration (e.g. 720h).', {
      pattern: DURATION_PATTERN,
      default: '720h',
    }),
    failurePolicy: enumOf(
      'What happens when the recorder cannot write. Closed (default): refuse every command. Open: forward and raise an alert condition; not recommended.',
      RECORDING_FAILURE_POLICIES,
      { default: 'Closed' },
    ),
  },
);

export const agentConnectionSpec = obj(
  'One target (a PostgreSQL database or an SSH server) that selected agent pods may reach through the Airlock sidecar.',
  {
    protocol: enumOf('Wire protocol of the target: postgres or ssh.', PROTOCOLS),
    target,
    credentialsSecretRef: secretRef(
      'Secret with the upstream credentials, read only by Airlock, never mounted into the agent. Keys: username and password, or username and privateKey (optionally passphrase) for ssh.',
    ),
    ssh,
    agents,
    listenPort: int('Loopback port the sidecar listens on inside the agent pod. Defaults to 15432 for postgres and 2222 for ssh.', {
      minimum: 1024,
      maximum: 65535,
    }),
    defaultAction: enumOf(
      'Decision for a statement or command that no ApprovalRule matches. Defaults to Block: Airlock fails closed.',
      ACTIONS,
      { default: 'Block' },
    ),
    recording,
  },
  ['protocol', 'target', 'credentialsSecretRef', 'agents'],
  {
    'x-kubernetes-validations': [
      { rule: "self.protocol != 'ssh' || has(self.ssh)", message: 'ssh is required when protocol is ssh', fieldPath: '.ssh', reason: 'FieldValueRequired' },
      { rule: "self.protocol == 'ssh' || !has(self.ssh)", message: 'ssh is only allowed when protocol is ssh', fieldPath: '.ssh', reason: 'FieldValueForbidden' },
      {
        rule: "self.protocol != 'postgres' || has(self.target.database)",
        message: 'target.database is required when protocol is postgres',
        fieldPath: '.target.database',
        reason: 'FieldValueRequired',
      },
      {
        rule: "self.protocol != 'ssh' || (!has(self.target.database) && !has(self.target.tls))",
        message: 'target.database and target.tls are only allowed when protocol is postgres',
        fieldPath: '.target',
        reason: 'FieldValueForbidden',
      },
    ],
  },
);

const sessionSummary = obj('A recent session through this connection.', {
  name: str('Name of the AgentSession object.'),
  pod: str('Agent pod that opened the session.'),
  startTime: str('When the session started.', { format: 'date-time' }),
  endTime: str('When the session ended; empty while it is active.', { format: 'date-time' }),
  statements: int('Statements or commands decided in the session.', { minimum: 0 }),
  blocked: int('Statements or commands refused in the session.', { minimum: 0 }),
});

export const agentConnectionStatus = obj('Observed state of the connection, written by the operator.', {
  observedGeneration,
  conditions,
  policies: obj('Policies that currently select this connection, and the digest of the bundle compiled from them.', {
    maskingPolicies: stringSet('Names of the MaskingPolicies in this namespace that select the connection.', str('A MaskingPolicy name.')),
    approvalRules: stringSet('Names of the ApprovalRules in this namespace that select the connection.', str('An ApprovalRule name.')),
    bundleDigest: str('sha256 of the compiled policy bundle the sidecars enforce.', { pattern: '^sha256:[a-f0-9]{64}$' }),
  }),
  sessions: obj('Session counters.', {
    total: int('Sessions opened since the connection was created.', { minimum: 0 }),
    active: int('Sessions open now.', { minimum: 0 }),
    blocked: int('Statements or commands refused across all sessions.', { minimum: 0 }),
  }),
  recentSessions: arr('The last few sessions, newest first.', sessionSummary, { maxItems: 10, 'x-kubernetes-list-type': 'atomic' }),
  pendingApprovals: int('ApprovalRequests for this connection still waiting for a decision.', { minimum: 0 }),
});
