export * from './vocab.ts';
export { API_VERSION, GROUP, VERSION, KINDS, type KindDefinition, type PrinterColumn } from './schema/kinds.ts';
export { customResourceDefinition, objectSchema } from './schema/crd.ts';
export type { Schema, ValidationRule } from './schema/props.ts';
export { airlockValidators, formatFieldError, releaseValidators, type FieldError, type Validator } from './validate.ts';
export { parseManifests, formatManifestError, type Manifest, type ManifestError, type ParsedManifests } from './manifests.ts';
export type * from './generated/types.ts';
export * from './cluster.ts';
