/**
 * Pure parsing of multi-document YAML manifests into validated objects. Reading files is the
 * caller's job (the API package does no I/O).
 */
import yaml from 'js-yaml';
import { GROUP } from './schema/common.ts';
import { airlockValidators, formatFieldError } from './validate.ts';

export interface Manifest {
  readonly source: string;
  /** 1-based position of the YAML document in its source. */
  readonly document: number;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly object: Readonly<Record<string, unknown>>;
}

export interface ManifestError {
  readonly source: string;
  readonly document: number;
  readonly message: string;
}

export interface ParsedManifests {
  /** Valid Airlock objects and Secrets. Objects of other kinds are ignored. */
  readonly manifests: readonly Manifest[];
  readonly errors: readonly ManifestError[];
}

export function formatManifestError(e: ManifestError): string {
  return `${e.source}:${e.document}: ${e.message}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function classify(source: string, document: number, doc: Record<string, unknown>, out: { manifests: Manifest[]; errors: ManifestError[] }): void {
  const apiVersion = str(doc['apiVersion']);
  const kind = str(doc['kind']);
  if (apiVersion === undefined || kind === undefined) {
    out.errors.push({ source, document, message: `${apiVersion === undefined ? 'apiVersion' : 'kind'}: Required value` });
    return;
  }
  if (apiVersion === 'v1' && kind === 'List' && Array.isArray(doc['items'])) {
    for (const item of doc['items']) {
      if (isObject(item)) classify(source, document, item, out);
      else out.errors.push({ source, document, message: 'items: Invalid value: every item of a List must be an object' });
    }
    return;
  }
  const metadata = isObject(doc['metadata']) ? doc['metadata'] : {};
  const base = { source, document, apiVersion, kind, name: str(metadata['name']) ?? '', namespace: str(metadata['namespace']), object: doc };
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (group === GROUP) {
    const validator = airlockValidators().get(kind);
    if (validator === undefined) {
      out.errors.push({ source, document, message: `kind: Unsupported value: ${JSON.stringify(kind)}: not a kind of ${GROUP}` });
      return;
    }
    const errors = validator.validate(doc);
    if (errors.length > 0) {
      for (const e of errors) out.errors.push({ source, document, message: `${kind}/${base.name || '?'}: ${formatFieldError(e)}` });
      return;
    }
    out.manifests.push(base);
    return;
  }
  if (apiVersion === 'v1' && kind === 'Secret') {
    if (base.name === '') {
      out.errors.push({ source, document, message: 'Secret: metadata.name: Required value' });
      return;
    }
    out.manifests.push(base);
  }
}

/** Parses every YAML document of one source; YAML syntax errors name their line. */
export function parseManifests(source: string, text: string): ParsedManifests {
  const out = { manifests: [] as Manifest[], errors: [] as ManifestError[] };
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text, undefined, { filename: source });
  } catch (err) {
    const e = err as { mark?: { line: number; column: number }; reason?: string; message: string };
    const where = e.mark !== undefined ? `line ${e.mark.line + 1} column ${e.mark.column + 1}: ` : '';
    // Count the documents before the error so the position matches the document numbering.
    const before = e.mark !== undefined ? text.split('\n').slice(0, e.mark.line).filter((l) => /^---(\s|$)/.test(l)).length : 0;
    out.errors.push({ source, document: Math.max(1, before + (text.startsWith('---') ? 0 : 1)), message: `${where}invalid YAML: ${e.reason ?? e.message}` });
    return out;
  }
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    if (!isObject(doc)) {
      out.errors.push({ source, document: i + 1, message: 'Invalid value: a manifest must be a YAML mapping' });
      return;
    }
    classify(source, i + 1, doc, out);
  });
  return out;
}
