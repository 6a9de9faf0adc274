/**
 * The Helm chart (charts/airlock) with the Helm v4 that hack/controlplane/build.sh builds:
 * `helm lint --strict`, what `helm template` renders (the binding flags, probes, security contexts,
 * the webhook configurations exactly as webhooks/src/config.ts builds them), values refused by
 * values.schema.json with its message, a server-side dry-run of every rendered object against a
 * real kube-apiserver, and the RBAC it grants (`kubectl auth can-i` as each service account).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { controlPlaneBinaries, startControlPlane, ROOT, type CommandResult, type ControlPlane } from '../src/controlplane.ts';
import { webhookConfigurations } from '../../webhooks/src/config.ts';

const CHART = join(ROOT, 'charts', 'airlock');
const NS = 'airlock-system';
const OPERATOR_SA = `system:serviceaccount:${NS}:airlock-operator`;
const WEBHOOK_SA = `system:serviceaccount:${NS}:airlock-webhook`;

interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly [key: string]: unknown;
}

const binDir = controlPlaneBinaries();
/** Helm keeps its cache, config and data here, not in the user's home */
const helmHome = mkdtempSync(join(tmpdir(), 'airlock-helm-'));

function helm(args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      join(binDir, 'helm'),
      [...args],
      {
        env: { ...process.env, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data'), KUBECONFIG: join(helmHome, 'none') },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      },
    );
  });
}

/** `helm template airlock charts/airlock -n airlock-system` with extra args; throws with stderr on failure */
async function render(extra: readonly string[] = []): Promise<K8sObject[]> {
  const r = await helm(['template', 'airlock', CHART, '--namespace', NS, ...extra]);
  assert.equal(r.code, 0, `helm template failed:\n${r.stderr}`);
  return parseDocuments(r.stdout);
}

function parseDocuments(text: string): K8sObject[] {
  return yaml.loadAll(text).filter((d): d is K8sObject => typeof d === 'object' && d !== null && 'kind' in d);
}

function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o !== undefined, `no ${kind} ${name} among ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

interface Container {
  readonly name: string;
  readonly image: string;
  readonly imagePullPolicy: string;
  readonly args: readonly string[];
  readonly ports: readonly { name: string; containerPort: number }[];
  readonly livenessProbe: { httpGet: { path: string; port: string } };
  readonly readinessProbe: { httpGet: { path: string; port: string } };
  readonly resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  readonly securityContext: Record<string, unknown>;
  readonly volumeMounts: readonly { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  readonly serviceAccountName: string;
  readonly securityContext: Record<string, unknown>;
  readonly containers: readonly Container[];
  readonly volumes: readonly { name: string; secret?: { secretName: string; optional?: boolean } }[];
}

function podSpec(deployment: K8sObject): PodSpec {
  const spec = deployment['spec'] as { template: { spec: PodSpec } };
  return spec.template.spec;
}

function container(deployment: K8sObject): Container {
  const c = podSpec(deployment).containers[0];
  assert.ok(c !== undefined, `${deployment.metadata.name} has no container`);
  return c;
}

/** strips caBundle (the chart leaves it to the operator or cert-manager) from each webhook's clientConfig */
function withoutCaBundle(webhooks: unknown): unknown {
  return (webhooks as { clientConfig: Record<string, unknown> }[]).map((w) => {
    const clientConfig = Object.fromEntries(Object.entries(w.clientConfig).filter(([key]) => key !== 'caBundle'));
    return { ...w, clientConfig };
  });
}

describe('the Helm chart', () => {
  after(() => {
    rmSync(helmHome, { recursive: true, force: true });
  });

  test('helm is the v4 release pinned in versions.env', async () => {
    const pinned = /^HELM_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, 'hack', 'controlplane', 'versions.env'), 'utf8'))?.[1];
    assert.ok(pinned !== undefined && pinned.startsWith('4.'), 'versions.env pins no Helm v4');
    const r = await helm(['version', '--template', '{{ .Version }}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `v${pinned}`);
  });

  test('helm lint --strict passes with the default values and with every option on', async () => {
    for (const extra of [[], ['--set', 'certManager.enabled=true,serviceMonitor.enabled=true,operator.notify.url=https://hooks.example/x,sidecar.defaultCapture=explicit']]) {
      const r = await helm(['lint', '--strict', CHART, '--namespace', NS, ...extra]);
      assert.equal(r.code, 0, `helm lint ${extra.join(' ')}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('NOTES say what to do next and what an uninstall leaves', async () => {
    const r = await helm(['install', 'airlock', CHART, '--namespace', NS, '--dry-run=client']);
    assert.equal(r.code, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    assert.match(notes, /rollout status deployment\/airlock-operator deployment\/airlock-webhook/);
    assert.match(notes, /airlock\.dev\/inject=enabled/);
    assert.match(notes, /kubectl delete crd -l app\.kubernetes\.io\/part-of=airlock/);
    assert.match(notes, /recordings/);
  });

  test('the operator Deployment: 2 replicas, the binding flags, probes, resources, a locked-down security context', async () => {
    const objects = await render();
    const d = find(objects, 'Deployment', 'airlock-operator');
    assert.equal((d['spec'] as { replicas: number }).replicas, 2);
    const c = container(d);
    assert.equal(c.image, 'airlock.dev/airlock:0.1.0');
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(c.args.slice(0, 5), ['operator', '--leader-elect', '--control-addr=0.0.0.0:8443', '--airlock-namespace=$(POD_NAMESPACE)', '--metrics-addr=0.0.0.0:8080']);
    assert.ok(c.args.includes('--manage-certificates=true'));
    assert.ok(!c.args.some((a) => a.startsWith('--notify-url')), 'no notify URL unless asked for');
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
    assert.deepEqual(
      c.ports.map((p) => [p.name, p.containerPort]),
      [
        ['control', 8443],
        ['metrics', 8080],
      ],
    );
    assert.ok(c.resources.requests?.['memory'] !== undefined && c.resources.limits?.['memory'] !== undefined);
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } });
    const pod = podSpec(d);
    assert.equal(pod.serviceAccountName, 'airlock-operator');
    assert.equal(pod.securityContext['runAsNonRoot'], true);
    assert.deepEqual(pod.securityContext['seccompProfile'], { type: 'RuntimeDefault' });
    const svc = find(objects, 'Service', 'airlock-operator');
    assert.deepEqual((svc['spec'] as { ports: { name: string; port: number }[] }).ports.find((p) => p.name === 'control')?.port, 8443);
  });

  test('the webhook Deployment: the binding flags, its two Secrets mounted, a PodDisruptionBudget, Service 443 → 9443', async () => {
    const objects = await render();
    const d = find(objects, 'Deployment', 'airlock-webhook');
    assert.equal((d['spec'] as { replicas: number }).replicas, 2);
    const c = container(d);
    assert.equal(c.args[0], 'webhook');
    for (const flag of [
      '--listen=0.0.0.0:9443',
      '--metrics-addr=0.0.0.0:9090',
      '--tls-dir=/etc/airlock/webhook-tls',
      '--sidecar-image=airlock.dev/airlock:0.1.0',
      `--control-url=https://airlock-operator.${NS}.svc:8443`,
      '--approval-key-file=/etc/airlock/approval-key/key',
      '--airlock-namespace=$(POD_NAMESPACE)',
      '--cluster-domain=cluster.local',
    ]) {
      assert.ok(c.args.includes(flag), `${flag} not in ${c.args.join(' ')}`);
    }
    assert.ok(!c.args.some((a) => a.startsWith('--default-capture') || a.startsWith('--sidecar-resources')), 'defaults give no flag the CLI lacks');
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
    const pod = podSpec(d);
    assert.equal(pod.serviceAccountName, 'airlock-webhook');
    const mounts = new Map(c.volumeMounts.map((m) => [m.name, m]));
    assert.equal(mounts.get('webhook-tls')?.mountPath, '/etc/airlock/webhook-tls');
    assert.equal(mounts.get('approval-key')?.mountPath, '/etc/airlock/approval-key');
    const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
    assert.equal(volumes.get('webhook-tls')?.secret?.secretName, 'airlock-webhook-tls');
    assert.equal(volumes.get('approval-key')?.secret?.secretName, 'airlock-approval-key');
    // not optional: the pod waits for the operator to create them instead of serving without them
    assert.notEqual(volumes.get('webhook-tls')?.secret?.optional, true);
    assert.notEqual(volumes.get('approval-key')?.secret?.optional, true);
    const pdb = find(objects, 'PodDisruptionBudget', 'airlock-webhook');
    assert.equal((pdb['spec'] as { minAvailable: number }).minAvailable, 1);
    const svc = find(objects, 'Service', 'airlock-webhook');
    assert.deepEqual((svc['spec'] as { ports: { name: string; port: number; targetPort: string }[] }).ports.find((p) => p.name === 'webhook'), { name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' });
    // one replica: no PodDisruptionBudget that would block every drain
    const single = await render(['--set', 'webhook.replicas=1,operator.replicas=1']);
    assert.equal(single.filter((o) => o.kind === 'PodDisruptionBudget').length, 0);
  });

  test('the webhook configurations are exactly those of webhooks/src/config.ts, without caBundle', async () => {
    const objects = await render();
    const expected = webhookConfigurations({ airlockNamespace: NS, target: { service: { namespace: NS } }, caBundle: '' });
    const mutating = find(objects, 'MutatingWebhookConfiguration', 'airlock-inject');
    const validating = find(objects, 'ValidatingWebhookConfiguration', 'airlock-validate');
    assert.deepEqual(withoutCaBundle(mutating['webhooks']), withoutCaBundle(expected.mutating.webhooks));
    assert.deepEqual(withoutCaBundle(validating['webhooks']), withoutCaBundle(expected.validating.webhooks));
    for (const w of [...(mutating['webhooks'] as { clientConfig: object }[]), ...(validating['webhooks'] as { clientConfig: object }[])]) {
      assert.ok(!('caBundle' in w.clientConfig), 'caBundle is the operator\'s (an upgrade must not reset it)');
    }
    assert.equal(mutating.metadata.annotations?.['cert-manager.io/inject-ca-from'], undefined);
    // more excluded namespaces and the re-invocation policy reach both pod webhooks
    const more = await render(['--set', 'webhook.excludedNamespaces={monitoring},webhook.podReinvocationPolicy=IfNeeded']);
    const moreExpected = webhookConfigurations({ airlockNamespace: NS, target: { service: { namespace: NS } }, caBundle: '', excludedNamespaces: ['monitoring'], podReinvocationPolicy: 'IfNeeded' });
    assert.deepEqual(withoutCaBundle(find(more, 'MutatingWebhookConfiguration', 'airlock-inject')['webhooks']), withoutCaBundle(moreExpected.mutating.webhooks));
  });

  test('every object is labelled part-of=airlock; no ServiceMonitor or cert-manager object unless enabled; the CRDs come from crds/', async () => {
    const objects = await render();
    for (const o of objects) assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'airlock', `${o.kind}/${o.metadata.name}`);
    assert.ok(!objects.some((o) => o.apiVersion.startsWith('cert-manager.io/') || o.apiVersion.startsWith('monitoring.coreos.com/')));
    const withCrds = await render(['--include-crds']);
    const crds = withCrds.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name).sort();
    const files = readdirSync(join(CHART, 'crds')).filter((f) => f.endsWith('.yaml'));
    assert.equal(crds.length, files.length);
    assert.deepEqual(crds, ['agentconnections.airlock.dev', 'agentsessions.airlock.dev', 'approvalrequests.airlock.dev', 'approvalrules.airlock.dev', 'maskingpolicies.airlock.dev']);
  });

  test('cert-manager mode: Certificates for the same Secrets, inject-ca-from, the operator no longer manages certificates', async () => {
    const objects = await render(['--set', 'certManager.enabled=true']);
    const webhookCert = find(objects, 'Certificate', 'airlock-webhook-tls');
    const spec = webhookCert['spec'] as { secretName: string; dnsNames: string[]; issuerRef: { name: string } };
    assert.equal(spec.secretName, 'airlock-webhook-tls');
    assert.ok(spec.dnsNames.includes(`airlock-webhook.${NS}.svc`));
    assert.equal(spec.issuerRef.name, 'airlock-ca');
    const controlCert = find(objects, 'Certificate', 'airlock-control-tls');
    assert.ok((controlCert['spec'] as { dnsNames: string[] }).dnsNames.includes(`airlock-operator.${NS}.svc`));
    find(objects, 'Issuer', 'airlock-selfsigned');
    find(objects, 'Issuer', 'airlock-ca');
    for (const [kind, name] of [['MutatingWebhookConfiguration', 'airlock-inject'], ['ValidatingWebhookConfiguration', 'airlock-validate']] as const) {
      assert.equal(find(objects, kind, name).metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NS}/airlock-webhook-tls`);
    }
    const c = container(find(objects, 'Deployment', 'airlock-operator'));
    assert.ok(c.args.includes('--manage-certificates=false'));
    assert.ok(c.volumeMounts.some((m) => m.mountPath === '/etc/airlock/control-tls'));
    const rules = find(objects, 'ClusterRole', 'airlock-operator')['rules'] as { apiGroups?: string[] }[];
    assert.ok(!rules.some((r) => r.apiGroups?.includes('admissionregistration.k8s.io')), 'no webhook configuration rights when cert-manager injects the CA');
    // an existing issuer: no self-signed CA
    const external = await render(['--set', 'certManager.enabled=true,certManager.issuerRef.name=corp,certManager.issuerRef.kind=ClusterIssuer']);
    assert.ok(!external.some((o) => o.kind === 'Issuer'));
    assert.deepEqual((find(external, 'Certificate', 'airlock-webhook-tls')['spec'] as { issuerRef: object }).issuerRef, { name: 'corp', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });

  test('ServiceMonitor, notification Secret, sidecar settings and image digests render when asked for', async () => {
    const objects = await render([
      '--set',
      'serviceMonitor.enabled=true,operator.notify.secretRef.name=notify,operator.notify.secretRef.key=url,sidecar.defaultCapture=explicit,sidecar.pullPolicy=Never,sidecar.resources.limits.memory=256Mi',
      '--set',
      `image.digest=sha256:${'a'.repeat(64)}`,
    ]);
    const sm = find(objects, 'ServiceMonitor', 'airlock');
    assert.equal((sm['spec'] as { endpoints: { port: string }[] }).endpoints[0]?.port, 'metrics');
    const op = find(objects, 'Deployment', 'airlock-operator');
    const oc = container(op);
    assert.ok(oc.args.includes('--notify-url=$(AIRLOCK_NOTIFY_URL)'));
    assert.equal(oc.image, `airlock.dev/airlock@sha256:${'a'.repeat(64)}`);
    const wc = container(find(objects, 'Deployment', 'airlock-webhook'));
    assert.ok(wc.args.includes(`--sidecar-image=airlock.dev/airlock@sha256:${'a'.repeat(64)}`));
    assert.ok(wc.args.includes('--sidecar-image-pull-policy=Never'));
    assert.ok(wc.args.includes('--default-capture=explicit'));
    assert.ok(wc.args.includes('--sidecar-resources={"limits":{"memory":"256Mi"}}'));
  });

  test('bad values are refused with a message that names them', async () => {
    const cases: readonly (readonly [readonly string[], RegExp])[] = [
      [['--set', 'operator.replicas=0'], /operator[./]replicas[\s\S]*minimum/],
      [['--set', 'image.pullPolicy=Sometimes'], /image[./]pullPolicy[\s\S]*(Always|IfNotPresent)/],
      [['--set', 'sidecar.defaultCapture=magic'], /sidecar[./]defaultCapture[\s\S]*transparent/],
      [['--set', 'webhook.timeoutSeconds=31'], /webhook[./]timeoutSeconds[\s\S]*maximum/],
      [['--set', 'operator.replica=2'], /additional properties 'replica' not allowed/],
      [['--set', 'operator.notify.url=ftp://example/x'], /operator[./]notify[./]url/],
      [['--set', 'image.digest=abc'], /image[./]digest/],
      [['--set', 'operator.logLevel=loud'], /operator[./]logLevel/],
      [['--set', 'operator.resyncPeriod=soon'], /operator[./]resyncPeriod/],
      [['--set', 'podSecurityContext.runAsNonRoot=false'], /runAsNonRoot/],
      [['--set', 'operator.notify.url=https://a.example/x,operator.notify.secretRef.name=n,operator.notify.secretRef.key=k'], /give url or secretRef, not both/],
      [['--set', 'operator.notify.secretRef.name=n'], /secretRef needs both name and key/],
    ];
    for (const [args, message] of cases) {
      const r = await helm(['template', 'airlock', CHART, '--namespace', NS, ...args]);
      assert.notEqual(r.code, 0, `${args.join(' ')} was accepted`);
      assert.match(r.stderr, message, `${args.join(' ')}:\n${r.stderr}`);
    }
    const system = await helm(['template', 'airlock', CHART, '--namespace', 'kube-system']);
    assert.notEqual(system.code, 0);
    assert.match(system.stderr, /namespace of its own/);
  });
});

describe('the rendered chart against a real kube-apiserver', () => {
  let cp: ControlPlane;
  let objects: K8sObject[];
  let rendered: string;

  before(async () => {
    cp = startControlPlane();
    const crds = await cp.kubectl(['apply', '--server-side', '-f', join(CHART, 'crds')]);
    assert.equal(crds.code, 0, crds.stderr);
    const established = await cp.kubectl(['wait', '--for', 'condition=Established', 'crd', '-l', 'app.kubernetes.io/part-of=airlock', '--timeout', '60s']);
    assert.equal(established.code, 0, established.stderr);
    for (const ns of [NS, 'agents']) {
      const created = await cp.kubectl(['create', 'namespace', ns]);
      assert.equal(created.code, 0, created.stderr);
    }
    const r = await helm(['template', 'airlock', CHART, '--namespace', NS]);
    assert.equal(r.code, 0, r.stderr);
    rendered = r.stdout;
    objects = parseDocuments(rendered);
  });

  after(() => {
    cp.stop();
  });

  test('a server-side dry-run of every rendered object succeeds', async () => {
    const r = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: rendered });
    assert.equal(r.code, 0, `dry-run refused:\n${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, objects.length, r.stdout);
    for (const line of lines) assert.match(line, /\(server dry run\)$/);
    // nothing was created
    const deployments = await cp.kubectl(['get', 'deployments', '-n', NS, '-o', 'name']);
    assert.equal(deployments.stdout.trim(), '');
  });

  test('the cert-manager and ServiceMonitor variants pass a server-side dry-run of what needs no foreign CRD', async () => {
    const r = await helm(['template', 'airlock', CHART, '--namespace', NS, '--set', 'certManager.enabled=true,serviceMonitor.enabled=true']);
    assert.equal(r.code, 0, r.stderr);
    const own = parseDocuments(r.stdout).filter((o) => !o.apiVersion.startsWith('cert-manager.io/') && !o.apiVersion.startsWith('monitoring.coreos.com/'));
    const applied = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: own.map((o) => yaml.dump(o)).join('---\n') });
    assert.equal(applied.code, 0, applied.stderr);
  });

  describe('RBAC, applied for real', () => {
    before(async () => {
      const rbac = objects.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind));
      assert.ok(rbac.length >= 9, `only ${String(rbac.length)} RBAC objects rendered`);
      const r = await cp.kubectl(['apply', '-f', '-'], { input: rbac.map((o) => yaml.dump(o)).join('---\n') });
      assert.equal(r.code, 0, r.stderr);
    });

    async function can(as: string, args: readonly string[]): Promise<boolean> {
      const r = await cp.kubectl(['auth', 'can-i', '--as', as, ...args]);
      const answer = r.stdout.trim();
      assert.ok(answer === 'yes' || answer.startsWith('no'), `kubectl auth can-i ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return answer === 'yes';
    }

    test('the operator: what it needs, and nothing more', async () => {
      const allowed: readonly (readonly string[])[] = [
        ['update', 'agentconnections.airlock.dev', '--subresource=status', '-n', 'agents'],
        ['update', 'maskingpolicies.airlock.dev', '--subresource=status', '-n', 'agents'],
        ['update', 'approvalrules.airlock.dev', '--subresource=status', '-n', 'agents'],
        ['update', 'approvalrequests.airlock.dev', '--subresource=status', '-n', 'agents'],
        ['watch', 'agentconnections.airlock.dev', '-A'],
        ['create', 'approvalrequests.airlock.dev', '-n', 'agents'],
        ['delete', 'approvalrequests.airlock.dev', '-n', 'agents'],
        ['create', 'agentsessions.airlock.dev', '-n', 'agents'],
        ['update', 'agentsessions.airlock.dev', '-n', 'agents'],
        ['delete', 'agentsessions.airlock.dev', '-n', 'agents'],
        ['list', 'pods', '-A'],
        ['watch', 'secrets', '-A'],
        ['create', 'events.events.k8s.io', '-n', 'agents'],
        ['create', 'leases.coordination.k8s.io', '-n', NS],
        ['update', 'leases.coordination.k8s.io/airlock-operator', '-n', NS],
        ['create', 'secrets', '-n', NS],
        ['update', 'secrets/airlock-webhook-tls', '-n', NS],
        ['update', 'secrets/airlock-approval-key', '-n', NS],
        ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/airlock-inject'],
        ['patch', 'validatingwebhookconfigurations.admissionregistration.k8s.io/airlock-validate'],
        ['get', '/openid/v1/jwks'],
        ['get', '/.well-known/openid-configuration'],
        ['list', 'serviceaccounts', '-n', 'agents'],
        ['create', 'subjectaccessreviews.authorization.k8s.io'],
      ];
      const refused: readonly (readonly string[])[] = [
        ['delete', 'pods', '-n', 'agents'],
        ['create', 'pods', '-n', 'agents'],
        ['update', 'agentconnections.airlock.dev', '-n', 'agents'],
        ['delete', 'agentconnections.airlock.dev', '-n', 'agents'],
        ['update', 'maskingpolicies.airlock.dev', '-n', 'agents'],
        ['update', 'approvalrequests.airlock.dev', '-n', 'agents'],
        ['create', 'secrets', '-n', 'agents'],
        ['update', 'secrets/db-credentials', '-n', 'agents'],
        ['update', 'secrets/someone-elses', '-n', NS],
        ['delete', 'secrets/someone-elses', '-n', NS],
        ['update', 'leases.coordination.k8s.io/another-lease', '-n', NS],
        ['create', 'leases.coordination.k8s.io', '-n', 'agents'],
        ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses'],
        ['delete', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/airlock-inject'],
        ['list', 'namespaces'],
        ['create', 'serviceaccounts/token', '-n', 'agents'],
        ['create', 'serviceaccounts', '-n', 'agents'],
        ['*', '*', '-A'],
      ];
      for (const args of allowed) assert.equal(await can(OPERATOR_SA, args), true, `the operator should be allowed: ${args.join(' ')}`);
      for (const args of refused) assert.equal(await can(OPERATOR_SA, args), false, `the operator should be refused: ${args.join(' ')}`);
    });

    test('the webhook: reads Namespaces, AgentConnections, Services and EndpointSlices, no Secrets, no writes', async () => {
      const allowed: readonly (readonly string[])[] = [
        ['list', 'namespaces'],
        ['watch', 'namespaces'],
        ['list', 'agentconnections.airlock.dev', '-A'],
        ['watch', 'agentconnections.airlock.dev', '-A'],
        ['list', 'services', '-A'],
        ['watch', 'endpointslices.discovery.k8s.io', '-A'],
      ];
      const refused: readonly (readonly string[])[] = [
        ['get', 'secrets/airlock-approval-key', '-n', NS],
        ['get', 'secrets', '-n', 'agents'],
        ['list', 'secrets', '-A'],
        ['list', 'pods', '-A'],
        ['update', 'approvalrequests.airlock.dev', '-n', 'agents'],
        ['patch', 'namespaces'],
        ['create', 'events.events.k8s.io', '-n', 'agents'],
        ['get', 'maskingpolicies.airlock.dev', '-n', 'agents'],
        ['update', 'services', '-n', 'agents'],
        ['create', 'endpointslices.discovery.k8s.io', '-n', 'agents'],
      ];
      for (const args of allowed) assert.equal(await can(WEBHOOK_SA, args), true, `the webhook should be allowed: ${args.join(' ')}`);
      for (const args of refused) assert.equal(await can(WEBHOOK_SA, args), false, `the webhook should be refused: ${args.join(' ')}`);
    });

    test('people: airlock-edit decides approvals and edits policies, never sessions', async () => {
      const binding = {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'jane-airlock-edit', namespace: 'agents' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'airlock-edit' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'jane' }],
      };
      const r = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(binding) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await can('jane', ['patch', 'approvalrequests.airlock.dev', '-n', 'agents']), true);
      assert.equal(await can('jane', ['create', 'agentconnections.airlock.dev', '-n', 'agents']), true);
      assert.equal(await can('jane', ['update', 'agentsessions.airlock.dev', '-n', 'agents']), false);
      assert.equal(await can('jane', ['update', 'agentconnections.airlock.dev', '--subresource=status', '-n', 'agents']), false);
      assert.equal(await can('jane', ['patch', 'approvalrequests.airlock.dev', '-n', 'default']), false);
    });

    test('people: airlock-approver, bound in a namespace, reads and annotates ApprovalRequests there and nothing else', async () => {
      const binding = {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'dba-approvers', namespace: 'agents' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'airlock-approver' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dba' }],
      };
      const r = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(binding) });
      assert.equal(r.code, 0, r.stderr);
      const as = async (args: readonly string[]): Promise<boolean> => can('kim', [...args, '--as-group', 'dba']);
      assert.equal(await as(['patch', 'approvalrequests.airlock.dev', '-n', 'agents']), true);
      assert.equal(await as(['list', 'agentsessions.airlock.dev', '-n', 'agents']), true);
      assert.equal(await as(['patch', 'approvalrequests.airlock.dev', '-n', 'default']), false);
      assert.equal(await as(['update', 'approvalrequests.airlock.dev', '--subresource=status', '-n', 'agents']), false);
      assert.equal(await as(['create', 'agentconnections.airlock.dev', '-n', 'agents']), false);
      assert.equal(await as(['get', 'secrets', '-n', 'agents']), false);
    });
  });
});
