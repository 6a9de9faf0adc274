/**
 * The schema vocabulary: a typed subset of the Kubernetes structural OpenAPI v3 schema
 * (JSONSchemaProps). Every schema node built here carries a description, because
 * `kubectl explain` is how users learn the API.
 */

export interface ValidationRule {
  /** A CEL expression over `self` (and `oldSelf` for transition rules). */
  readonly rule: string;
  readonly message: string;
  /** Where the error points, relative to the node carrying the rule (e.g. `.ssh`). */
  readonly fieldPath?: string;
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: Schema | boolean;
  readonly items?: Schema;
  readonly enum?: readonly (string | number | boolean)[];
  readonly default?: unknown;
  readonly format?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minProperties?: number;
  readonly nullable?: boolean;
  readonly 'x-kubernetes-validations'?: readonly ValidationRule[];
  readonly 'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-map-type'?: 'atomic' | 'granular';
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
}

type Extra = Omit<Schema, 'type' | 'description' | 'properties' | 'required' | 'items'>;

export function str(description: string, extra: Extra = {}): Schema {
  return { type: 'string', description, ...extra };
}

export function int(description: string, extra: Extra = {}): Schema {
  return { type: 'integer', description, ...extra };
}

export function bool(description: string, extra: Extra = {}): Schema {
  return { type: 'boolean', description, ...extra };
}

export function enumOf(description: string, values: readonly string[], extra: Extra = {}): Schema {
  return { type: 'string', description, enum: values, ...extra };
}

export function arr(description: string, items: Schema, extra: Extra = {}): Schema {
  return { type: 'array', description, items, ...extra };
}

export function obj(
  description: string,
  properties: Record<string, Schema>,
  required: readonly string[] = [],
  extra: Extra = {},
): Schema {
  const base: Schema = { type: 'object', description, properties, ...extra };
  return required.length > 0 ? { ...base, required } : base;
}

export function stringMap(description: string): Schema {
  return { type: 'object', description, additionalProperties: { type: 'string' } };
}

/** A list of unique strings (a set in server-side-apply terms). */
export function stringSet(description: string, item: Schema, extra: Extra = {}): Schema {
  return arr(description, item, { 'x-kubernetes-list-type': 'set', ...extra });
}

/** Go-style duration as Kubernetes prints them: 30s, 10m, 1h30m, 720h. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
/** DNS-1123 label: lower case alphanumerics and '-', starting and ending alphanumeric. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** DNS-1123 subdomain, the shape of most Kubernetes object names. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
