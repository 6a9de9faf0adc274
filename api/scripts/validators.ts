/**
 * The ajv validators of every Airlock kind, compiled here, at generation time, to standalone
 * CommonJS (ajv's `standaloneCode`): api/src/generated/validators.cjs exports one validate
 * function per kind name. A process that validates loads that file and never ajv's compiler,
 * which cost every start of `airlock sidecar -f` and of the operator ~120 ms of CPU and a few
 * MiB; the runtime side is api/src/validate.ts.
 *
 * What ajv checks is the CRD's structural schema, closed to unknown fields as `kubectl apply`
 * with strict field validation is: every object with declared properties gets
 * `additionalProperties: false` unless it preserves unknown fields. Annotations that validate
 * nothing (descriptions, the x-kubernetes-* keywords) are left out of the compiled schema; the
 * CEL rules run at validation time from the schema source (api/src/validate.ts).
 */
import { createRequire } from 'node:module';
import type * as AjvModule from 'ajv';
import type { Ajv } from 'ajv';
import { KINDS } from '../src/schema/kinds.ts';
import { objectSchema } from '../src/schema/crd.ts';
import type { Schema } from '../src/schema/props.ts';

const load = createRequire(new URL('../src/validate.ts', import.meta.url));

/** The schema ajv compiles for one node of the CRD schema (see above). */
export function validationSchema(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'description' || key.startsWith('x-kubernetes-')) continue;
    out[key] = value;
  }
  if (schema.properties !== undefined) {
    const props: Record<string, unknown> = {};
    for (const [name, child] of Object.entries(schema.properties)) props[name] = validationSchema(child);
    out['properties'] = props;
    if (schema.additionalProperties === undefined && schema['x-kubernetes-preserve-unknown-fields'] !== true) out['additionalProperties'] = false;
  }
  if (typeof schema.additionalProperties === 'object') out['additionalProperties'] = validationSchema(schema.additionalProperties);
  if (schema.items !== undefined) out['items'] = validationSchema(schema.items);
  return out;
}

/** The text of api/src/generated/validators.cjs. */
export function validatorsSource(header: string): string {
  const { Ajv, _ } = load('ajv') as typeof AjvModule;
  const standaloneCode = (load('ajv/dist/standalone') as { default: (ajv: Ajv, refs: Record<string, string>) => string }).default;
  const addFormats = load('ajv-formats') as (ajv: Ajv, formats: string[]) => Ajv;
  // useDefaults: missing properties of present objects get their schema default, in the generated code
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictTypes: false,
    useDefaults: true,
    code: { source: true, lines: true, formats: _`require("ajv-formats/dist/formats").fullFormats` },
  });
  addFormats(ajv, ['date-time']);
  const refs: Record<string, string> = {};
  for (const def of KINDS) {
    ajv.addSchema(validationSchema(objectSchema(def)), def.kind);
    refs[def.kind] = def.kind;
  }
  return `${header}\n${standaloneCode(ajv, refs)}\n`;
}
