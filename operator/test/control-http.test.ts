/**
 * The control API over real HTTPS on loopback: tokens signed with a local key pair stand in for
 * the API server's (the issuer source serves their JWKS), the caches are plain values. Token
 * checks, key rotation, long polls, body checks, the services' errors mapped to ControlErrors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { AgentConnection, ApprovalAsk, ApprovalCreated, ApprovalState, ApprovalRule, MaskingPolicy, PodIdentity, SessionReport } from '@airlock/api';
import { systemClock } from '@airlock/kube';
import { jsonLogger } from '../src/log.ts';
import { OperatorMetrics } from '../src/metrics.ts';
import { ControlApi, type ControlView } from '../src/control/api.ts';
import { TokenVerifier, type PodRecord } from '../src/control/auth.ts';
import type { SecretLike } from '../src/control/bundle.ts';
import { ControlServer, readTlsDir } from '../src/control/https.ts';
import { IssuerKeys } from '../src/control/issuer.ts';
import type { PodEvents } from '../src/control/pod-events.ts';
import type { ApprovalsPort, SessionsPort } from '../src/control/ports.ts';
import { NamespaceSignals } from '../src/control/signals.ts';
import { connection, maskingPolicy } from './fixtures.ts';

const ISSUER = 'https://kubernetes.default.svc';

interface Signer {
  readonly kid: string;
  readonly key: CryptoKey;
  readonly jwk: JWK;
}

async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

interface TokenOptions {
  readonly signer?: Signer;
  readonly audience?: string;
  readonly issuer?: string;
  readonly exp?: number;
  readonly pod?: { name: string; uid: string } | null;
  readonly serviceAccount?: string;
}

let current: Signer;
let published: JWK[] = [];
let keySetReads = 0;

async function token(options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const s = options.signer ?? current;
  const pod = options.pod === undefined ? { name: 'agent-1', uid: 'uid-1' } : options.pod;
  return new SignJWT({
    'kubernetes.io': {
      namespace: 'agents',
      serviceaccount: { name: options.serviceAccount ?? 'planner', uid: 'sa-uid' },
      ...(pod === null ? {} : { pod }),
    },
  })
    .setProtectedHeader({ alg: 'RS256', kid: s.kid })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? 'airlock.dev')
    .setSubject(`system:serviceaccount:agents:${options.serviceAccount ?? 'planner'}`)
    .setIssuedAt(now - 10)
    .setNotBefore(now - 10)
    .setExpirationTime(options.exp ?? now + 600)
    .sign(s.key);
}

// what the caches hold; tests change it
const state: {
  pods: PodRecord[];
  connections: AgentConnection[];
  maskingPolicies: MaskingPolicy[];
  approvalRules: ApprovalRule[];
  secrets: SecretLike[];
} = { pods: [], connections: [], maskingPolicies: [], approvalRules: [], secrets: [] };

const view: ControlView = {
  ready: () => true,
  pod: (namespace, name) => state.pods.find((p) => p.namespace === namespace && p.name === name),
  connections: (namespace) => state.connections.filter((c) => c.metadata.namespace === namespace),
  maskingPolicies: (namespace) => state.maskingPolicies.filter((p) => p.metadata.namespace === namespace),
  approvalRules: (namespace) => state.approvalRules.filter((r) => r.metadata.namespace === namespace),
  secret: (_namespace, name) => state.secrets.find((s) => s.metadata?.name === name),
};

const warnings: string[] = [];
const events = {
  warn: (pod: { name: string }, reason: string): Promise<void> => {
    warnings.push(`${pod.name}/${reason}`);
    return Promise.resolve();
  },
} as unknown as PodEvents;

const asked: { pod: PodIdentity; ask: ApprovalAsk }[] = [];
const approvals: ApprovalsPort = {
  create: (pod, ask) => {
    asked.push({ pod, ask });
    return Promise.resolve<ApprovalCreated>({ name: 'req-1', namespace: pod.namespace, expiresAt: '2026-12-04T00:10:00Z', annotate: 'kubectl annotate approvalrequest req-1 -n agents airlock.dev/decision=approve' });
  },
  state: (_pod, name) => (name === 'req-1' ? Promise.resolve<ApprovalState>({ name, phase: 'Pending', decisions: [] }) : Promise.reject(Object.assign(new Error(`approvalrequest/${name} not found`), { code: 'NotFound' }))),
  wait: (_pod, name, waitMs) =>
    new Promise((resolve) => {
      setTimeout(() => {
        resolve({ name, phase: 'Approved', decisions: [{ user: 'alice', decision: 'approve', time: '2026-12-04T00:01:00Z' }] });
      }, Math.min(waitMs, 50));
    }),
  withdraw: () => Promise.resolve(),
};
const reports: SessionReport[] = [];
const sessions: SessionsPort = {
  report: (_pod, report) => {
    if (report.session === 'taken') return Promise.reject(Object.assign(new Error('agentsession taken belongs to another pod'), { code: 'Conflict' }));
    reports.push(report);
    return Promise.resolve();
  },
};

let tlsDir: string;
let ca: string;
let server: ControlServer;
let port: number;
let metrics: OperatorMetrics;
let signals: NamespaceSignals;

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

function call(method: string, path: string, bearer: string | undefined, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, ca, servername: 'localhost', agent: false, headers: { ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }), 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as unknown) });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function code(reply: Reply): string {
  return (reply.body as { code?: string } | undefined)?.code ?? '';
}

function makeCert(dir: string, cn: string): void {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')],
    { stdio: 'ignore' },
  );
}

before(async () => {
  current = await signer('key-1');
  published = [current.jwk];
  tlsDir = mkdtempSync(join(tmpdir(), 'airlock-control-test-'));
  makeCert(tlsDir, 'first');
  ca = readFileSync(join(tlsDir, 'tls.crt'), 'utf8');
  metrics = new OperatorMetrics(() => 0);
  signals = new NamespaceSignals(systemClock);
  const keys = new IssuerKeys({
    clock: systemClock,
    minRefreshMs: 0,
    source: {
      discovery: () => Promise.resolve(JSON.stringify({ issuer: ISSUER, jwks_uri: `${ISSUER}/openid/v1/jwks` })),
      // parsed, as client-node 2.0.1 hands it over
      keySet: () => {
        keySetReads++;
        return Promise.resolve({ keys: published });
      },
    },
  });
  const api = new ControlApi({ verifier: new TokenVerifier({ keys, clock: systemClock }), view, signals, events, metrics, log: jsonLogger('error'), approvals, sessions, bodyLimit: '16kb' });
  server = new ControlServer({ app: api.app, tls: await readTlsDir(tlsDir) });
  port = (await server.listen('127.0.0.1', 0)).port;
  state.pods = [{ namespace: 'agents', name: 'agent-1', uid: 'uid-1', serviceAccount: 'planner', labels: { app: 'agent' } }];
  state.connections = [connection('db', { data: 'pii' }, { agents: { podSelector: { matchLabels: { app: 'agent' } } } })];
  state.maskingPolicies = [maskingPolicy('pii', 'EMP-[0-9]{6}')];
  state.secrets = [{ metadata: { name: 'db-credentials', namespace: 'agents' }, data: { username: Buffer.from('u').toString('base64'), password: Buffer.from('p').toString('base64') } }];
});

after(async () => {
  await server.close();
  rmSync(tlsDir, { recursive: true, force: true });
});

describe('tokens', () => {
  test('a valid token: 200 with the bundle', async () => {
    const reply = await call('GET', '/v1/bundle', await token());
    assert.equal(reply.status, 200);
    assert.deepEqual((reply.body as { connections: { name: string }[] }).connections.map((c) => c.name), ['db']);
  });

  test('401 codes: missing, malformed, wrong audience, wrong issuer, expired (beyond the skew), unknown key, bad signature', async () => {
    const now = Math.floor(Date.now() / 1000);
    const other = await signer('key-1');
    const cases: [string | undefined, string][] = [
      [undefined, 'MissingToken'],
      ['not-a-jwt', 'InvalidToken'],
      [await token({ audience: 'https://kubernetes.default.svc' }), 'WrongAudience'],
      [await token({ issuer: 'https://elsewhere' }), 'WrongIssuer'],
      [await token({ exp: now - 60 }), 'TokenExpired'],
      [await token({ signer: await signer('key-unknown') }), 'InvalidToken'],
      [await token({ signer: other }), 'InvalidToken'],
    ];
    for (const [bearer, expected] of cases) {
      const reply = await call('GET', '/v1/bundle', bearer);
      assert.equal(reply.status, 401, `${expected}: ${JSON.stringify(reply.body)}`);
      assert.equal(code(reply), expected);
    }
    // within the 30 s skew: still valid
    assert.equal((await call('GET', '/v1/bundle', await token({ exp: now - 5 }))).status, 200);
  });

  test('403 codes, and an Event on the pod when it exists', async () => {
    warnings.length = 0;
    const cases: [TokenOptions, string][] = [
      [{ pod: null }, 'NotPodBound'],
      [{ pod: { name: 'gone', uid: 'uid-9' } }, 'PodNotFound'],
      [{ pod: { name: 'agent-1', uid: 'uid-old' } }, 'PodUidMismatch'],
      [{ serviceAccount: 'ops' }, 'ServiceAccountMismatch'],
    ];
    for (const [options, expected] of cases) {
      const reply = await call('GET', '/v1/bundle', await token(options));
      assert.equal(reply.status, 403, expected);
      assert.equal(code(reply), expected);
    }
    const saved = state.connections;
    state.connections = [connection('db', { data: 'pii' }, { agents: { podSelector: { matchLabels: { app: 'someone-else' } } } })];
    const reply = await call('GET', '/v1/bundle', await token());
    state.connections = saved;
    assert.equal(code(reply), 'NotGranted');
    assert.deepEqual(warnings, ['agent-1/ControlAccessPodUidMismatch', 'agent-1/ControlAccessServiceAccountMismatch', 'agent-1/ControlAccessNotGranted']);
  });

  test('a rotated signing key: the key set is read again on an unknown kid', async () => {
    const before = keySetReads;
    const next = await signer('key-2');
    published = [current.jwk, next.jwk];
    assert.equal((await call('GET', '/v1/bundle', await token({ signer: next }))).status, 200);
    assert.equal(keySetReads, before + 1);
    assert.equal((await call('GET', '/v1/bundle', await token({ signer: next }))).status, 200);
    assert.equal(keySetReads, before + 1, 'a known kid does not read it again');
  });
});

describe('long polls', () => {
  test('waits while nothing changes, answers at once when the namespace changes', async () => {
    const t = await token();
    const first = (await call('GET', '/v1/bundle', t)).body as { revision: string };
    const started = Date.now();
    const waiting = call('GET', `/v1/bundle?revision=${encodeURIComponent(first.revision)}&waitSeconds=30`, t);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // an unrelated wake: same revision, it keeps waiting
    signals.wake('agents');
    await new Promise((resolve) => setTimeout(resolve, 300));
    state.maskingPolicies = [maskingPolicy('pii', 'EMP-[0-9]{7}')];
    signals.wake('agents');
    const reply = await waiting;
    assert.equal(reply.status, 200);
    assert.notEqual((reply.body as { revision: string }).revision, first.revision);
    const took = Date.now() - started;
    assert.ok(took >= 550 && took < 5000, `answered after ${took} ms`);
  });

  test('the pod deleted during a long poll: the poll answers 403', async () => {
    const t = await token();
    const first = (await call('GET', '/v1/bundle', t)).body as { revision: string };
    const waiting = call('GET', `/v1/bundle?revision=${encodeURIComponent(first.revision)}&waitSeconds=30`, t);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const saved = state.pods;
    state.pods = [];
    signals.wake('agents');
    const reply = await waiting;
    state.pods = saved;
    assert.equal(reply.status, 403);
    assert.equal(code(reply), 'PodNotFound');
  });

  test('waitSeconds above the maximum → 400', async () => {
    const reply = await call('GET', '/v1/bundle?waitSeconds=61', await token());
    assert.equal(reply.status, 400);
    assert.equal(code(reply), 'InvalidQuery');
  });
});

describe('approvals and sessions', () => {
  const ask: ApprovalAsk = {
    connection: 'db',
    session: 'S1',
    protocol: 'postgres',
    command: 'DELETE FROM t WHERE id = 1',
    classes: ['write'],
    rule: { approvalRule: 'guard', name: 'writes' },
    approvers: { users: ['alice'], groups: [] },
    required: 1,
    requireReason: false,
    timeoutSeconds: 600,
    message: 'm',
  };

  test('create (201), read, long-poll read, withdraw (204); a body from an unauthenticated caller is never read', async () => {
    const t = await token();
    const created = await call('POST', '/v1/approvals', t, ask);
    assert.equal(created.status, 201);
    assert.equal((created.body as ApprovalCreated).name, 'req-1');
    assert.deepEqual(asked.at(-1)?.pod, { namespace: 'agents', name: 'agent-1', uid: 'uid-1', serviceAccount: 'planner' });
    assert.equal(((await call('GET', '/v1/approvals/req-1', t)).body as ApprovalState).phase, 'Pending');
    assert.equal(((await call('GET', '/v1/approvals/req-1?waitSeconds=5', t)).body as ApprovalState).phase, 'Approved');
    const missing = await call('GET', '/v1/approvals/req-2', t);
    assert.equal(missing.status, 404);
    assert.equal(code(missing), 'NotFound');
    assert.equal((await call('DELETE', '/v1/approvals/req-1', t)).status, 204);
    const anonymous = await call('POST', '/v1/approvals', undefined, '{not json');
    assert.equal(anonymous.status, 401);
  });

  test('bodies: each wrong field named; not JSON; too large; a connection the pod is not granted', async () => {
    const t = await token();
    const bad: [unknown, string][] = [
      [[], 'body: must be an object'],
      [{ ...ask, protocol: 'mysql' }, 'protocol: must be "postgres" or "ssh"'],
      [{ ...ask, required: 0 }, 'required: must be an integer from 1 to 100'],
      [{ ...ask, approvers: { users: [], groups: [] } }, 'approvers: must name at least one user or group'],
      [{ ...ask, extra: 1 }, 'extra: unknown field'],
      [{ ...ask, rule: { approvalRule: 'Bad Name', name: 'x' } }, 'rule.approvalRule: "Bad Name" is not valid'],
      [{ ...ask, requireReason: 'yes' }, 'requireReason: must be a boolean'],
    ];
    for (const [body, message] of bad) {
      const reply = await call('POST', '/v1/approvals', t, body);
      assert.equal(reply.status, 400, message);
      assert.deepEqual(reply.body, { code: 'InvalidBody', message });
    }
    const notJson = await call('POST', '/v1/approvals', t, '{"connection":');
    assert.equal(notJson.status, 400);
    assert.equal(code(notJson), 'InvalidBody');
    const large = await call('POST', '/v1/approvals', t, { ...ask, command: 'x'.repeat(20_000) });
    assert.equal(large.status, 413);
    const foreign = await call('POST', '/v1/approvals', t, { ...ask, connection: 'not-mine' });
    assert.equal(foreign.status, 403);
    assert.equal(code(foreign), 'NotGranted');
  });

  test('session reports: 204; the service’s Conflict → 409; an end without endTime → 400', async () => {
    const t = await token();
    const report: SessionReport = {
      session: 'S1',
      connection: 'db',
      protocol: 'postgres',
      seq: 3,
      type: 'progress',
      startTime: '2026-12-04T00:00:00Z',
      counts: { statements: 2, rows: 5, maskedValues: 1, blocked: 0, approvals: 0 },
      recording: { path: 'agents/agent-1/S1.jsonl', records: 4, chainHead: `sha256:${'a'.repeat(64)}` },
    };
    assert.equal((await call('POST', '/v1/sessions', t, report)).status, 204);
    assert.deepEqual(reports.at(-1), report);
    const taken = await call('POST', '/v1/sessions', t, { ...report, session: 'taken' });
    assert.equal(taken.status, 409);
    assert.equal(code(taken), 'Conflict');
    const end = await call('POST', '/v1/sessions', t, { ...report, type: 'end' });
    assert.deepEqual(end.body, { code: 'InvalidBody', message: 'endTime: is required when type is "end"' });
  });

  test('unknown routes → 404 ControlError; requests counted by route and code', async () => {
    const reply = await call('GET', '/v1/nothing', await token());
    assert.equal(reply.status, 404);
    assert.equal(code(reply), 'NotFound');
    const text = await metrics.registry.metrics();
    assert.match(text, /^airlock_operator_control_requests_total\{route="bundle",code="200"\} [1-9]/m);
    assert.match(text, /^airlock_operator_control_requests_total\{route="approvals.create",code="400"\} [1-9]/m);
    assert.match(text, /^airlock_operator_control_refusals_total\{code="TokenExpired"\} 1$/m);
  });
});

describe('certificate reload', () => {
  test('setTls swaps the serving certificate for new connections', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-control-test-'));
    try {
      makeCert(dir, 'second');
      const next = await readTlsDir(dir);
      assert.equal(server.setTls(next), true);
      assert.equal(server.setTls(next), false, 'unchanged: no-op');
      // the old CA no longer verifies it; the new one does
      await assert.rejects(call('GET', '/v1/bundle', await token()), /self[- ]signed|unable to verify|certificate/i);
      const saved = ca;
      ca = next.cert;
      assert.equal((await call('GET', '/v1/bundle', await token())).status, 200);
      ca = saved;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
