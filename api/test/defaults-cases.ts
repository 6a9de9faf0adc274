/**
 * Objects with fields the schema defaults left out, set to null or given as empty objects,
 * shared by the unit test (api/test/defaults.test.ts: the local validator's defaults against
 * the expected objects and a port of the API server's algorithm) and the e2e test
 * (e2e/test/defaults.test.ts: the same objects created through a real API server).
 */
import type { Schema } from '../src/schema/props.ts';

export const DEFAULTS_NAMESPACE = 'defaults';

export interface DefaultsCase {
  readonly name: string;
  readonly object: Record<string, unknown>;
  /** the spec the API server stores (checked by the unit test; the e2e test checks the server agrees) */
  readonly spec: Record<string, unknown>;
}

const meta = (name: string): Record<string, unknown> => ({ name, namespace: DEFAULTS_NAMESPACE });
const FINGERPRINT = `SHA256:${'A'.repeat(43)}`;

const pg = (name: string, target: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'airlock.dev/v1alpha1',
  kind: 'AgentConnection',
  metadata: meta(name),
  spec: {
    protocol: 'postgres',
    target: { host: 'db.example', port: 5432, database: 'app', ...target },
    credentialsSecretRef: { name: 'creds' },
    agents: { serviceAccounts: ['planner'] },
    ...extra,
  },
});

const PG_TARGET = { host: 'db.example', port: 5432, database: 'app' };
const PG_REST = { credentialsSecretRef: { name: 'creds' }, agents: { serviceAccounts: ['planner'] } };

/** Fresh copies each call: validation defaults the objects in place. */
export function defaultsCases(): DefaultsCase[] {
  return [
    {
      name: 'pg-tls-empty',
      object: pg('pg-tls-empty', { tls: {} }),
      spec: { protocol: 'postgres', target: { ...PG_TARGET, tls: { mode: 'require' } }, ...PG_REST, defaultAction: 'Block' },
    },
    {
      name: 'pg-no-tls',
      object: pg('pg-no-tls', {}),
      spec: { protocol: 'postgres', target: PG_TARGET, ...PG_REST, defaultAction: 'Block' },
    },
    {
      name: 'pg-tls-nulls',
      object: pg('pg-tls-nulls', { tls: { mode: null, serverName: null } }, { defaultAction: null, listenPort: null }),
      spec: { protocol: 'postgres', target: { ...PG_TARGET, tls: { mode: 'require' } }, ...PG_REST, defaultAction: 'Block' },
    },
    {
      name: 'pg-verify-full',
      object: pg('pg-verify-full', { tls: { mode: 'verify-full', caSecretRef: { name: 'ca' } } }, { recording: {} }),
      spec: {
        protocol: 'postgres',
        target: { ...PG_TARGET, tls: { mode: 'verify-full', caSecretRef: { name: 'ca', key: 'ca.crt' } } },
        ...PG_REST,
        defaultAction: 'Block',
        recording: { retention: '720h', failurePolicy: 'Closed' },
      },
    },
    {
      name: 'ssh-minimal',
      object: {
        apiVersion: 'airlock.dev/v1alpha1',
        kind: 'AgentConnection',
        metadata: meta('ssh-minimal'),
        spec: {
          protocol: 'ssh',
          target: { host: 'bastion.example', port: 22 },
          credentialsSecretRef: { name: 'creds' },
          agents: { podSelector: { matchLabels: { app: 'x' } } },
          ssh: { hostKeyFingerprints: [FINGERPRINT], allowShell: true },
          recording: { claimName: 'rec', failurePolicy: null },
          defaultAction: 'Allow',
        },
      },
      spec: {
        protocol: 'ssh',
        target: { host: 'bastion.example', port: 22 },
        credentialsSecretRef: { name: 'creds' },
        agents: { podSelector: { matchLabels: { app: 'x' } } },
        ssh: { hostKeyFingerprints: [FINGERPRINT], allowShell: true, allowSftp: false, allowPortForwarding: false, binaryOutput: 'Refuse' },
        recording: { claimName: 'rec', retention: '720h', failurePolicy: 'Closed' },
        defaultAction: 'Allow',
      },
    },
    {
      name: 'approval-rule-items',
      object: {
        apiVersion: 'airlock.dev/v1alpha1',
        kind: 'ApprovalRule',
        metadata: meta('approval-rule-items'),
        spec: {
          connectionSelector: { matchLabels: { env: 'prod' } },
          rules: [
            { name: 'held', match: { sql: { classes: ['write'] } }, action: 'RequireApproval', approval: { approvers: { groups: ['dba'] } } },
            { name: 'held-two', match: { sql: { classes: ['ddl'] } }, action: 'RequireApproval', approval: { approvers: { groups: ['dba'] }, required: 2, timeout: null } },
            { name: 'blocked', match: { ssh: { commands: ['rm *'] } }, action: 'Block' },
          ],
        },
      },
      spec: {
        connectionSelector: { matchLabels: { env: 'prod' } },
        rules: [
          { name: 'held', match: { sql: { classes: ['write'] } }, action: 'RequireApproval', approval: { approvers: { groups: ['dba'] }, required: 1, timeout: '10m', requireReason: false } },
          { name: 'held-two', match: { sql: { classes: ['ddl'] } }, action: 'RequireApproval', approval: { approvers: { groups: ['dba'] }, required: 2, timeout: '10m', requireReason: false } },
          { name: 'blocked', match: { ssh: { commands: ['rm *'] } }, action: 'Block' },
        ],
      },
    },
    {
      name: 'masking-policy',
      object: {
        apiVersion: 'airlock.dev/v1alpha1',
        kind: 'MaskingPolicy',
        metadata: meta('masking-policy'),
        spec: {
          connectionSelector: {},
          rules: [{ name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'redact' } }],
        },
      },
      spec: {
        connectionSelector: {},
        unknownLineage: 'Mask',
        rules: [{ name: 'cards', match: { detectors: ['credit_card'] }, action: { type: 'redact' } }],
      },
    },
  ];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The API server's defaulting, ported line by line from k8s.io/apiextensions-apiserver
 * pkg/apiserver/schema/defaulting (prunenulls.go PruneNonNullableNullsWithoutDefaults, then
 * algorithm.go Default), as an independent reference for the unit test.
 */
export function referenceDefault(x: unknown, s: Schema | undefined): void {
  pruneNulls(x, s);
  applyDefault(x, s);
}

function fieldSchema(field: string, s: Schema | undefined): Schema | undefined {
  if (s === undefined) return undefined;
  const prop = s.properties?.[field];
  if (prop !== undefined) return prop;
  return typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined;
}

function pruneNulls(x: unknown, s: Schema | undefined): void {
  if (isObject(x)) {
    for (const [k, v] of Object.entries(x)) {
      const sub = fieldSchema(k, s);
      if (v === null && sub !== undefined && sub.nullable !== true && sub.default === undefined) Reflect.deleteProperty(x, k);
      else pruneNulls(v, sub);
    }
  } else if (Array.isArray(x)) {
    for (const item of x) pruneNulls(item, s?.items);
  }
}

function applyDefault(x: unknown, s: Schema | undefined): void {
  if (s === undefined) return;
  if (isObject(x)) {
    for (const [k, prop] of Object.entries(s.properties ?? {})) {
      if (prop.default === undefined) continue;
      if (!(k in x) || (x[k] === null && prop.nullable !== true)) x[k] = structuredClone(prop.default);
    }
    for (const k of Object.keys(x)) {
      const prop = s.properties?.[k];
      if (prop !== undefined) {
        applyDefault(x[k], prop);
      } else if (typeof s.additionalProperties === 'object') {
        const ap = s.additionalProperties;
        if (x[k] === null && ap.nullable !== true && ap.default !== undefined) x[k] = structuredClone(ap.default);
        applyDefault(x[k], ap);
      }
    }
  } else if (Array.isArray(x)) {
    const items = s.items;
    x.forEach((item: unknown, i) => {
      if (item === null && items !== undefined && items.nullable !== true && items.default !== undefined) x[i] = structuredClone(items.default);
      applyDefault(x[i], items);
    });
  }
}
