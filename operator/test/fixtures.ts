/** Plain objects as the API server returns them. */
import type { AgentConnection, ApprovalRule, MaskingPolicy } from '@airlock/api';

export function connection(name: string, labels: Record<string, string>, spec: Partial<AgentConnection['spec']> = {}): AgentConnection {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'AgentConnection',
    metadata: { name, namespace: 'agents', labels, generation: 3, uid: `uid-${name}` },
    spec: {
      protocol: 'postgres',
      target: { host: 'db.example', port: 5432, database: 'orders' },
      credentialsSecretRef: { name: `${name}-credentials` },
      agents: { serviceAccounts: ['planner'] },
      ...spec,
    },
  };
}

export function maskingPolicy(name: string, pattern: string, selector: Record<string, string> = { data: 'pii' }): MaskingPolicy {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'MaskingPolicy',
    metadata: { name, namespace: 'agents', generation: 2 },
    spec: {
      connectionSelector: { matchLabels: selector },
      rules: [
        { name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'partial', keepLast: 4 } },
        { name: 'employee-ids', match: { pattern }, action: { type: 'redact' } },
      ],
    },
  };
}

export function approvalRule(name: string, command: string, selector: Record<string, string> = { env: 'prod' }): ApprovalRule {
  return {
    apiVersion: 'airlock.dev/v1alpha1',
    kind: 'ApprovalRule',
    metadata: { name, namespace: 'agents', generation: 1 },
    spec: {
      connectionSelector: { matchLabels: selector },
      subjects: { serviceAccounts: ['ops-bot'] },
      rules: [
        { name: 'reads', match: { sql: { classes: ['read'] } }, action: 'Allow' },
        { name: 'shell', match: { ssh: { commands: [command] } }, action: 'Allow' },
      ],
    },
  };
}
