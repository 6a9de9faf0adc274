/** Work-queue keys: `Kind/namespace/name`. */
import { OperatorError } from './errors.ts';

export const RECONCILED_KINDS = ['AgentConnection', 'MaskingPolicy', 'ApprovalRule'] as const;
export type ReconciledKind = (typeof RECONCILED_KINDS)[number];

export interface ObjectKey {
  readonly kind: ReconciledKind;
  readonly namespace: string;
  readonly name: string;
}

export function formatKey(key: ObjectKey): string {
  return `${key.kind}/${key.namespace}/${key.name}`;
}

export function parseKey(text: string): ObjectKey {
  const [kind, namespace, name, ...rest] = text.split('/');
  if (kind === undefined || namespace === undefined || name === undefined || rest.length > 0 || namespace === '' || name === '') {
    throw new OperatorError('InvalidKey', `work-queue key "${text}" is not Kind/namespace/name`);
  }
  if (!(RECONCILED_KINDS as readonly string[]).includes(kind)) throw new OperatorError('InvalidKey', `work-queue key "${text}" names an unknown kind`);
  return { kind: kind as ReconciledKind, namespace, name };
}
