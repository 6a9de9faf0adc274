/**
 * Validation of Airlock objects with the same schema the API server enforces: the structural
 * schema through ajv, compiled when the files are generated (unknown fields rejected, as
 * `kubectl apply` does with strict field validation; api/scripts/validators.ts), then the CEL
 * rules (`x-kubernetes-validations`) through a CEL evaluator.
 * Transition rules (those reading `oldSelf`) are checked only when an old object is given.
 *
 * Defaults: validation first applies the schema's defaults to the object, in place, exactly as
 * the API server's structural defaulting does before it validates and stores a custom
 * resource, so local mode (`airlock sidecar -f`, `airlock validate`) sees the objects the
 * cluster stores: a null where the schema does not allow null is dropped, or replaced by the
 * field's default (defaulting.PruneNonNullableNullsWithoutDefaults and Default in
 * k8s.io/apiextensions-apiserver); then ajv (`useDefaults`) fills each missing property that has
 * a default, inside objects that are present only (`tls: {}` gets `mode: require`; no `tls`
 * stays no `tls`). The CEL rules see the defaulted object, as on the server.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type * as CelModule from '@marcbachmann/cel-js';
import { API_VERSION, KINDS, type KindDefinition } from './schema/kinds.ts';
import { objectSchema } from './schema/crd.ts';
import type { Schema, ValidationRule } from './schema/props.ts';

export interface FieldError {
  /** Dotted path of the offending field, e.g. `spec.target.port` or `spec.rules[1].action`. */
  readonly field: string;
  readonly message: string;
}

/**
 * The compiled validators (generated/validators.cjs, ajv's standalone code compiled from the
 * schema source by api/scripts/validators.ts) and the CEL evaluator are loaded by the first
 * airlockValidators() call, not on import: the package is also imported for its vocabularies and
 * schemas by code that never validates (the policy engine, the sidecar's proxies).
 */
const load = createRequire(import.meta.url);

type CompiledValidators = Readonly<Partial<Record<string, ValidateFunction>>>;

function compiledValidators(): CompiledValidators {
  return load('./generated/validators.cjs') as CompiledValidators;
}

let parseCel: typeof CelModule.parse | undefined;

function celParser(): typeof CelModule.parse {
  parseCel ??= (load('@marcbachmann/cel-js') as typeof CelModule).parse;
  return parseCel;
}

function segment(key: string): string {
  return /^[0-9]+$/.test(key) ? `[${key}]` : `.${key}`;
}

function pointerToField(pointer: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.map(segment).join('').replace(/^\./, '');
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}${segment(key)}`;
}

function quote(v: unknown): string {
  return JSON.stringify(v);
}

function describeAjvError(e: ErrorObject): FieldError {
  const field = pointerToField(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { field: join(field, String(p['missingProperty'])), message: 'Required value' };
    case 'additionalProperties':
      return { field: join(field, String(p['additionalProperty'])), message: 'unknown field' };
    case 'enum': {
      const allowed = (p['allowedValues'] as unknown[]).map(quote).join(', ');
      return { field, message: `Unsupported value: supported values: ${allowed}` };
    }
    case 'type':
      return { field, message: `Invalid value: must be of type ${String(p['type'])}` };
    case 'minimum':
    case 'maximum':
      return { field, message: `Invalid value: should be ${e.keyword === 'minimum' ? 'greater' : 'less'} than or equal to ${String(p['limit'])}` };
    case 'pattern':
      return { field, message: `Invalid value: should match '${String(p['pattern'])}'` };
    case 'minItems':
      return { field, message: `Invalid value: should have at least ${String(p['limit'])} items` };
    case 'maxItems':
      return { field, message: `Too many: must have at most ${String(p['limit'])} items` };
    case 'minLength':
      return { field, message: `Invalid value: should be at least ${String(p['limit'])} chars long` };
    case 'maxLength':
      return { field, message: `Too long: may not be more than ${String(p['limit'])} bytes` };
    case 'format':
      return { field, message: `Invalid value: should be a ${String(p['format'])}` };
    default:
      return { field, message: `Invalid value: ${e.message ?? e.keyword}` };
  }
}

/** JSON numbers that are whole become CEL ints, as the API server types them from the schema. */
function toCel(value: unknown): unknown {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(v);
    return out;
  }
  return value;
}

/** How the API server words each CEL rule reason. */
const REASON_PREFIX: Readonly<Record<NonNullable<ValidationRule['reason']>, string>> = {
  FieldValueInvalid: 'Invalid value',
  FieldValueRequired: 'Required value',
  FieldValueForbidden: 'Forbidden',
  FieldValueDuplicate: 'Duplicate value',
};

type CompiledRule = ValidationRule & { readonly evaluate: (ctx: Record<string, unknown>) => unknown; readonly transition: boolean };

const ruleCache = new Map<string, CompiledRule['evaluate']>();

function compileRule(rule: ValidationRule): CompiledRule {
  let evaluate = ruleCache.get(rule.rule);
  if (evaluate === undefined) {
    evaluate = celParser()(rule.rule);
    ruleCache.set(rule.rule, evaluate);
  }
  return { ...rule, evaluate, transition: /\boldSelf\b/.test(rule.rule) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function celErrors(schema: Schema, value: unknown, old: unknown, path: string, out: FieldError[]): void {
  if (value === undefined) return;
  for (const rule of (schema['x-kubernetes-validations'] ?? []).map(compileRule)) {
    if (rule.transition && old === undefined) continue;
    let ok: unknown;
    try {
      ok = rule.evaluate({ self: toCel(value), oldSelf: toCel(old) });
    } catch (err) {
      ok = false;
      out.push({ field: path, message: `Invalid value: rule ${quote(rule.rule)} could not be evaluated: ${(err as Error).message}` });
      continue;
    }
    if (ok !== true) {
      const field = rule.fieldPath !== undefined ? `${path}${rule.fieldPath}` : path;
      out.push({ field, message: `${REASON_PREFIX[rule.reason ?? 'FieldValueInvalid']}: ${rule.message}` });
    }
  }
  if (schema.properties !== undefined && isObject(value)) {
    for (const [name, child] of Object.entries(schema.properties)) {
      const oldChild = isObject(old) ? old[name] : undefined;
      celErrors(child, value[name], oldChild, join(path, name), out);
    }
  }
  if (schema.items !== undefined && Array.isArray(value)) {
    // Transition rules inside lists need list-map correlation; the rules Airlock ships do not need it.
    value.forEach((item, i) => { celErrors(schema.items as Schema, item, undefined, `${path}[${i}]`, out); });
  }
}

export interface Validator {
  readonly kind: KindDefinition;
  /**
   * Applies the schema's defaults to `object` in place (as the API server does on create and
   * update), then returns every problem found; an empty list means valid.
   */
  validate(object: unknown, oldObject?: unknown): FieldError[];
}

/**
 * The API server's treatment of nulls before defaulting: a null where the schema does not allow
 * null (no `nullable: true`) becomes the field's default, or is dropped when it has none.
 * Fields the schema does not know are left for validation to reject.
 */
function settleNulls(schema: Schema | undefined, value: unknown): void {
  if (schema === undefined) return;
  if (Array.isArray(value)) {
    const items = schema.items;
    if (items === undefined) return;
    value.forEach((item: unknown, i) => {
      if (item === null && items.nullable !== true && items.default !== undefined) value[i] = structuredClone(items.default);
      settleNulls(items, value[i]);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const sub = schema.properties?.[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
    if (sub === undefined) continue;
    if (child === null && sub.nullable !== true) {
      if (sub.default === undefined) Reflect.deleteProperty(value, key);
      else value[key] = structuredClone(sub.default);
      continue;
    }
    settleNulls(sub, child);
  }
}

function metadataErrors(object: Record<string, unknown>): FieldError[] {
  const meta = object['metadata'];
  if (!isObject(meta)) return [{ field: 'metadata', message: 'Required value' }];
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') return [{ field: 'metadata.name', message: 'Required value: name is required' }];
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253) {
    return [{ field: 'metadata.name', message: `Invalid value: ${quote(name)}: must be a lowercase RFC 1123 subdomain` }];
  }
  return [];
}

function makeValidator(def: KindDefinition, check: ValidateFunction): Validator {
  const schema = objectSchema(def);
  return {
    kind: def,
    validate(object: unknown, oldObject?: unknown): FieldError[] {
      if (!isObject(object)) return [{ field: '', message: 'Invalid value: an object is expected' }];
      const errors: FieldError[] = [];
      settleNulls(schema, object);
      if (object['apiVersion'] !== API_VERSION) errors.push({ field: 'apiVersion', message: `Invalid value: ${quote(object['apiVersion'])}: must be ${API_VERSION}` });
      errors.push(...metadataErrors(object));
      if (!check(object)) errors.push(...(check.errors ?? []).map(describeAjvError)); // also fills in the defaults
      else celErrors(schema, object, oldObject, '', errors);
      return errors;
    },
  };
}

let validators: Map<string, Validator> | undefined;

/** Validators of every Airlock kind, by kind name. Loaded once (until releaseValidators()). */
export function airlockValidators(): ReadonlyMap<string, Validator> {
  if (validators === undefined) {
    const compiled = compiledValidators();
    validators = new Map(
      KINDS.map((def) => {
        const check = compiled[def.kind];
        if (check === undefined) throw new Error(`api/src/generated/validators.cjs has no validator for ${def.kind}: run \`make generate\``);
        return [def.kind, makeValidator(def, check)];
      }),
    );
  }
  return validators;
}

/**
 * Drops the validators (and compiled CEL rules), so that a long-running process that validated
 * its manifests at start does not keep them; the next airlockValidators() makes them again.
 */
export function releaseValidators(): void {
  validators = undefined;
  ruleCache.clear();
}

export function formatFieldError(e: FieldError): string {
  return e.field === '' ? e.message : `${e.field}: ${e.message}`;
}
