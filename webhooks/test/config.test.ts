import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectorMatches } from '@airlock/policy';
import { OBJECT_NAMES, WEBHOOK_PATHS } from '@airlock/api';
import { NAMESPACE_NAME_LABEL, WEBHOOK_NAMES, webhookConfigurations, type LabelSelector } from '../src/config.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function nsLabels(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [NAMESPACE_NAME_LABEL]: name, ...extra };
}

/** which pod webhooks a pod in a namespace is sent to (the API server's selector semantics) */
function podWebhooks(namespace: Record<string, string>, pod: Record<string, string>): string[] {
  const { mutating } = webhookConfigurations({ airlockNamespace: 'airlock-system', target: { service: { namespace: 'airlock-system' } }, caBundle: PEM });
  const matches = (s: LabelSelector | undefined, labels: Record<string, string>): boolean => selectorMatches(s ?? {}, labels);
  return mutating.webhooks.filter((w) => w.rules.some((r) => r.resources.includes('pods')) && matches(w.namespaceSelector, namespace) && matches(w.objectSelector, pod)).map((w) => w.name);
}

test('pods are sent by namespace opt-in or pod opt-in, never both, never from kube-system or Airlock\'s namespace', () => {
  assert.deepEqual(podWebhooks(nsLabels('agents', { 'airlock.dev/inject': 'enabled' }), {}), [WEBHOOK_NAMES.injectByNamespace]);
  assert.deepEqual(podWebhooks(nsLabels('agents', { 'airlock.dev/inject': 'enabled' }), { 'airlock.dev/inject': 'true' }), [WEBHOOK_NAMES.injectByNamespace]);
  assert.deepEqual(podWebhooks(nsLabels('agents', { 'airlock.dev/inject': 'enabled' }), { 'airlock.dev/inject': 'false' }), []);
  assert.deepEqual(podWebhooks(nsLabels('other'), {}), []);
  assert.deepEqual(podWebhooks(nsLabels('other'), { 'airlock.dev/inject': 'true' }), [WEBHOOK_NAMES.injectByPod]);
  assert.deepEqual(podWebhooks(nsLabels('other', { 'airlock.dev/inject': 'disabled' }), { 'airlock.dev/inject': 'true' }), [WEBHOOK_NAMES.injectByPod]);
  for (const ns of ['kube-system', 'airlock-system']) {
    assert.deepEqual(podWebhooks(nsLabels(ns, { 'airlock.dev/inject': 'enabled' }), { 'airlock.dev/inject': 'true' }), [], ns);
  }
});

test('every webhook fails closed, is side-effect free, speaks v1; service and URL targets; caBundle base64', () => {
  const svc = webhookConfigurations({ airlockNamespace: 'airlock', target: { service: { namespace: 'airlock' } }, caBundle: PEM });
  assert.equal(svc.mutating.metadata.name, OBJECT_NAMES.mutatingWebhookConfiguration);
  assert.equal(svc.validating.metadata.name, OBJECT_NAMES.validatingWebhookConfiguration);
  const all = [...svc.mutating.webhooks, ...svc.validating.webhooks];
  assert.deepEqual(all.map((w) => w.name), [WEBHOOK_NAMES.injectByNamespace, WEBHOOK_NAMES.injectByPod, WEBHOOK_NAMES.approvalRequests, WEBHOOK_NAMES.policies]);
  for (const w of all) {
    assert.equal(w.failurePolicy, 'Fail');
    assert.equal(w.sideEffects, 'None');
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
    assert.equal(Buffer.from(w.clientConfig.caBundle, 'base64').toString('utf8'), PEM);
    assert.deepEqual([w.clientConfig.service?.name, w.clientConfig.service?.port], [OBJECT_NAMES.webhookService, OBJECT_NAMES.webhookPort]);
  }
  assert.deepEqual(all.map((w) => w.clientConfig.service?.path), [WEBHOOK_PATHS.injectPods, WEBHOOK_PATHS.injectPods, WEBHOOK_PATHS.approvalDecisions, WEBHOOK_PATHS.validatePolicies]);
  assert.deepEqual(svc.mutating.webhooks[2]?.rules[0]?.operations, ['CREATE', 'UPDATE']);
  assert.deepEqual(svc.validating.webhooks[0]?.rules[0]?.resources, ['agentconnections', 'maskingpolicies', 'approvalrules']);
  const url = webhookConfigurations({ airlockNamespace: 'airlock', target: { url: 'https://127.0.0.1:9443/' }, caBundle: PEM });
  assert.deepEqual([...url.mutating.webhooks, ...url.validating.webhooks].map((w) => w.clientConfig.url), [
    'https://127.0.0.1:9443/mutate/pods',
    'https://127.0.0.1:9443/mutate/pods',
    'https://127.0.0.1:9443/mutate/approvalrequests',
    'https://127.0.0.1:9443/validate/policies',
  ]);
  assert.equal(url.mutating.webhooks[0]?.clientConfig.service, undefined);
});
