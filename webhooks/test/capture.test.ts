/**
 * The capture plan (webhooks/src/capture): its command-line form both ways and the
 * iptables-restore text it becomes (golden). The rules run for real in e2e/test/capture.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CaptureError, captureArgs, captureRules, hostsToResolve, isIPv6, parseRedirect, parseReject, sharedPorts, validatePlan, type CapturePlan } from '../src/capture/index.ts';
import { backendPorts, serviceOfHost, type ServiceLookup, type ServicePorts, type SlicePorts } from '../src/capture/backends.ts';

const ONE: CapturePlan = { sidecarUid: 15532, targets: [{ connection: 'orders-db', host: 'orders-db.databases.svc', port: 5432, listenPort: 15432 }] };

const SHARED: CapturePlan = {
  sidecarUid: 15532,
  targets: [
    { connection: 'analytics', host: 'analytics-db.databases.svc', port: 5432, listenPort: 15433 },
    { connection: 'bastion', host: 'bastion.ops.svc.cluster.local', port: 22, listenPort: 2222 },
    { connection: 'ledger', host: '10.96.44.7', port: 5432, listenPort: 15434 },
    { connection: 'orders-db', host: 'orders-db.databases.svc', port: 5432, listenPort: 15432 },
  ],
};

describe('rules (golden)', () => {
  test('one connection: its port is captured whatever the address', () => {
    const rules = captureRules(ONE, new Map());
    assert.equal(
      rules.ipv4,
      `# airlock capture (IPv4): sidecar uid 15532; redirect orders-db=orders-db.databases.svc:5432:15432
*nat
:AIRLOCK-OUTPUT - [0:0]
-A OUTPUT -p tcp -j AIRLOCK-OUTPUT
-A AIRLOCK-OUTPUT -m owner --uid-owner 15532 -j RETURN
-A AIRLOCK-OUTPUT -d 127.0.0.0/8 -j RETURN
-A AIRLOCK-OUTPUT -p tcp --dport 5432 -m comment --comment "airlock orders-db" -j REDIRECT --to-ports 15432
COMMIT
*filter
:AIRLOCK-OUTPUT - [0:0]
-A OUTPUT -p tcp -j AIRLOCK-OUTPUT
-A AIRLOCK-OUTPUT -m owner --uid-owner 15532 -j RETURN
-A AIRLOCK-OUTPUT -d 127.0.0.0/8 -j RETURN
-A AIRLOCK-OUTPUT -p tcp --dport 5432 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset
COMMIT
`,
    );
    assert.equal(
      rules.ipv6,
      `# airlock capture (IPv6): sidecar uid 15532; redirect orders-db=orders-db.databases.svc:5432:15432
*filter
:AIRLOCK-OUTPUT - [0:0]
-A OUTPUT -p tcp -j AIRLOCK-OUTPUT
-A AIRLOCK-OUTPUT -m owner --uid-owner 15532 -j RETURN
-A AIRLOCK-OUTPUT -d ::1/128 -j RETURN
-A AIRLOCK-OUTPUT -p tcp --dport 5432 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset
COMMIT
`,
    );
    assert.deepEqual(rules.notes, []);
    assert.deepEqual(hostsToResolve(ONE), []);
  });

  test('a shared port: by resolved address, first claim wins, the rest refused', () => {
    assert.deepEqual([...sharedPorts(SHARED)], [5432]);
    assert.deepEqual(hostsToResolve(SHARED), ['analytics-db.databases.svc', 'orders-db.databases.svc']);
    const addresses = new Map([
      ['analytics-db.databases.svc', ['10.96.12.9', 'fd00::9']],
      ['orders-db.databases.svc', ['10.96.3.1', '10.96.12.9']],
    ]);
    const rules = captureRules(SHARED, addresses);
    assert.equal(
      rules.ipv4,
      `# airlock capture (IPv4): sidecar uid 15532; redirect analytics=analytics-db.databases.svc:5432:15433 bastion=bastion.ops.svc.cluster.local:22:2222 ledger=10.96.44.7:5432:15434 orders-db=orders-db.databases.svc:5432:15432
*nat
:AIRLOCK-OUTPUT - [0:0]
-A OUTPUT -p tcp -j AIRLOCK-OUTPUT
-A AIRLOCK-OUTPUT -m owner --uid-owner 15532 -j RETURN
-A AIRLOCK-OUTPUT -d 127.0.0.0/8 -j RETURN
-A AIRLOCK-OUTPUT -d 10.96.12.9/32 -p tcp --dport 5432 -m comment --comment "airlock analytics" -j REDIRECT --to-ports 15433
-A AIRLOCK-OUTPUT -d 10.96.44.7/32 -p tcp --dport 5432 -m comment --comment "airlock ledger" -j REDIRECT --to-ports 15434
-A AIRLOCK-OUTPUT -d 10.96.3.1/32 -p tcp --dport 5432 -m comment --comment "airlock orders-db" -j REDIRECT --to-ports 15432
-A AIRLOCK-OUTPUT -p tcp --dport 22 -m comment --comment "airlock bastion" -j REDIRECT --to-ports 2222
COMMIT
*filter
:AIRLOCK-OUTPUT - [0:0]
-A OUTPUT -p tcp -j AIRLOCK-OUTPUT
-A AIRLOCK-OUTPUT -m owner --uid-owner 15532 -j RETURN
-A AIRLOCK-OUTPUT -d 127.0.0.0/8 -j RETURN
-A AIRLOCK-OUTPUT -p tcp --dport 22 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset
-A AIRLOCK-OUTPUT -p tcp --dport 5432 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset
COMMIT
`,
    );
    assert.deepEqual(rules.notes, ['orders-db: 10.96.12.9:5432 is already captured for analytics; the agent reaches orders-db only at 127.0.0.1:15432']);
    assert.match(rules.ipv6, /-A AIRLOCK-OUTPUT -p tcp --dport 22 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset\n-A AIRLOCK-OUTPUT -p tcp --dport 5432 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset\nCOMMIT\n$/);
  });

  test('a shared-port host with no IPv4 address is noted (and refused by the filter rules)', () => {
    const rules = captureRules(SHARED, new Map([['analytics-db.databases.svc', ['fd00::9']], ['orders-db.databases.svc', ['10.96.3.1']]]));
    assert.deepEqual(rules.notes, ['analytics: analytics-db.databases.svc has no IPv4 address; its port 5432 is shared, so it cannot be captured (connections to it are refused)']);
    assert.doesNotMatch(rules.ipv4, /airlock analytics/);
    assert.throws(() => captureRules(SHARED, new Map()), /no addresses given for analytics-db\.databases\.svc/);
  });
});

describe('arguments', () => {
  test('the webhook writes what airlock capture reads', () => {
    assert.deepEqual(captureArgs(SHARED), [
      '--sidecar-uid', '15532',
      '--redirect', 'analytics=analytics-db.databases.svc:5432:15433',
      '--redirect', 'bastion=bastion.ops.svc.cluster.local:22:2222',
      '--redirect', 'ledger=10.96.44.7:5432:15434',
      '--redirect', 'orders-db=orders-db.databases.svc:5432:15432',
    ]);
    assert.deepEqual(parseRedirect('v6=[fd00::1]:5432:15432'), { connection: 'v6', host: 'fd00::1', port: 5432, listenPort: 15432 });
  });

  test('precise errors', () => {
    const bad: [string, RegExp][] = [
      ['pg=10.0.0.1:5432', /expected <connection>=<host>:<port>:<listenPort>/],
      ['pg=fd00::1:5432:15432', /expected <connection>=<host>:<port>:<listenPort>/],
      ['pg=[not:v6]:5432:15432', /is not a host name, an IPv4 address or a bracketed IPv6 address/],
      ['pg=bad host:5432:15432', /is not a host name/],
      ['pg=db:0:15432', /the target port must be 1-65535 \(got 0\)/],
      ['pg=db:5432:70000', /the listen port must be 1-65535 \(got 70000\)/],
      ['Bad_Name=db:5432:15432', /"Bad_Name" is not an AgentConnection name/],
    ];
    for (const [spec, message] of bad) {
      assert.throws(() => parseRedirect(spec), (err: unknown) => err instanceof CaptureError && err.code === 'InvalidArgument' && message.test(err.message), spec);
    }
    assert.throws(() => validatePlan({ sidecarUid: 0, targets: ONE.targets }), /non-root UID/);
    assert.throws(() => validatePlan({ sidecarUid: 15532, targets: [] }), /at least one --redirect/);
    assert.throws(() => validatePlan({ sidecarUid: 15532, targets: [...ONE.targets, { connection: 'other', host: 'x', port: 1, listenPort: 15432 }] }), /orders-db and other both use listen port 15432/);
  });

  test('property: any plan survives the round trip through its arguments', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
    const host = fc.oneof(
      fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
      fc.ipV4(),
      fc.ipV6().filter(isIPv6),
    );
    const target = fc.record({ connection: label, host, port: fc.integer({ min: 1, max: 65535 }), listenPort: fc.integer({ min: 1024, max: 65535 }) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2147483647 }), fc.array(target, { minLength: 1, maxLength: 5 }), (sidecarUid, targets) => {
        const args = captureArgs({ sidecarUid, targets });
        const redirects = args.filter((_, i) => args[i - 1] === '--redirect');
        assert.equal(args[1], String(sidecarUid));
        assert.deepEqual(redirects.map(parseRedirect), targets.map((t) => ({ ...t })));
      }),
    );
  });
});

describe('ports where a target\'s endpoints listen (a Service\'s targetPort)', () => {
  const WITH_REJECT: CapturePlan = { ...ONE, rejects: [{ connection: 'orders-db', port: 6432 }] };

  test('they are refused like the target ports, in IPv4 and IPv6, and said in the header', () => {
    const rules = captureRules(WITH_REJECT, new Map());
    assert.match(rules.ipv4, /; reject orders-db=6432\n/);
    assert.match(rules.ipv4, /-A AIRLOCK-OUTPUT -p tcp --dport 5432 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset\n-A AIRLOCK-OUTPUT -p tcp --dport 6432 -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset\nCOMMIT/);
    assert.match(rules.ipv6, /--dport 6432 -m conntrack --ctstate NEW,INVALID -j REJECT/);
    // never redirected: the sidecar serves the target's port, not its backends'
    assert.doesNotMatch(rules.ipv4, /--dport 6432[^\n]*REDIRECT/);
  });

  test('--reject round-trips through the arguments; a bad or foreign one is refused with the reason', () => {
    const args = captureArgs(WITH_REJECT);
    assert.deepEqual(args.slice(-2), ['--reject', 'orders-db=6432']);
    assert.deepEqual(parseReject('orders-db=6432'), { connection: 'orders-db', port: 6432 });
    assert.throws(() => parseReject('orders-db:6432'), /expected <connection>=<port>/);
    assert.throws(() => parseReject('orders-db=70000'), /1-65535/);
    assert.throws(() => validatePlan({ ...ONE, rejects: [{ connection: 'elsewhere', port: 1 }] }), /elsewhere has no --redirect/);
  });
});

describe('backendPorts: from a target host to the ports of its Service\'s endpoints', () => {
  type Port = { name?: string; port: number; targetPort?: number | string };
  const svc = (name: string, ns: string, ports: Port[]): { key: string; value: ServicePorts } => ({ key: `${ns}/${name}`, value: { spec: { ports } } });
  const slice = (service: string, ns: string, ports: { name?: string; port: number }[]): { key: string; value: SlicePorts } => ({ key: `${ns}/${service}`, value: { ports } });
  const lookup = (services: { key: string; value: ServicePorts }[], slices: { key: string; value: SlicePorts }[]): ServiceLookup => ({
    service: (ns, name) => services.find((s) => s.key === `${ns}/${name}`)?.value,
    endpointSlices: (ns, name) => slices.filter((s) => s.key === `${ns}/${name}`).map((s) => s.value),
  });

  test('the host forms a pod resolves to a Service, and nothing else', () => {
    for (const host of ['bastion', 'bastion.ops', 'bastion.ops.svc', 'bastion.ops.svc.cluster.local', 'BASTION.ops.svc.cluster.local.']) {
      assert.deepEqual(serviceOfHost(host, 'ops', 'cluster.local'), { namespace: 'ops', name: 'bastion' }, host);
    }
    assert.deepEqual(serviceOfHost('bastion', 'agents', 'cluster.local'), { namespace: 'agents', name: 'bastion' });
    for (const host of ['10.96.0.10', 'db.example.com', 'bastion.ops.svc.other.domain', 'a.b.pod.cluster.local', '-x.ops']) {
      assert.equal(serviceOfHost(host, 'ops', 'cluster.local'), undefined, host);
    }
  });

  test('a numeric targetPort, a named one through the EndpointSlices, the same port (nothing), a missing Service (nothing)', () => {
    const view = lookup(
      [
        svc('bastion', 'ops', [{ name: 'ssh', port: 22, targetPort: 2222 }]),
        svc('orders-db', 'databases', [{ name: 'pg', port: 5432, targetPort: 'postgres' }, { name: 'metrics', port: 9187, targetPort: 9187 }]),
        svc('same', 'databases', [{ port: 5432, targetPort: 5432 }]),
      ],
      [slice('orders-db', 'databases', [{ name: 'pg', port: 6543 }, { name: 'metrics', port: 9187 }])],
    );
    assert.deepEqual(backendPorts({ host: 'bastion.ops.svc.cluster.local', port: 22 }, 'agents', 'cluster.local', view), [2222]);
    assert.deepEqual(backendPorts({ host: 'orders-db.databases', port: 5432 }, 'agents', 'cluster.local', view), [6543]);
    assert.deepEqual(backendPorts({ host: 'same.databases.svc', port: 5432 }, 'agents', 'cluster.local', view), []);
    assert.deepEqual(backendPorts({ host: 'absent.databases.svc', port: 5432 }, 'agents', 'cluster.local', view), []);
    assert.deepEqual(backendPorts({ host: 'bastion.ops.svc', port: 2200 }, 'agents', 'cluster.local', view), []);
  });
});
