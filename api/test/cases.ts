/** The table of invalid manifests (api/test/invalid/*.yaml), shared by the unit and e2e tests. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface InvalidCase {
  readonly name: string;
  readonly file: string;
  readonly text: string;
  /** The field the error must name, e.g. spec.target.port. */
  readonly field: string;
  /** A part of the message both the API server and the local validator give. */
  readonly message: string;
}

export const INVALID_DIR = join(import.meta.dirname, 'invalid');
export const EXAMPLES_DIR = join(import.meta.dirname, '..', '..', 'examples');

function header(text: string, key: string, file: string): string {
  const m = new RegExp(`^# ${key}: (.+)$`, 'm').exec(text);
  if (m?.[1] === undefined) throw new Error(`${file}: missing "# ${key}:" header`);
  return m[1].trim();
}

export function invalidCases(): InvalidCase[] {
  return readdirSync(INVALID_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const file = join(INVALID_DIR, f);
      const text = readFileSync(file, 'utf8');
      return { name: f.replace(/\.yaml$/, ''), file, text, field: header(text, 'field', file), message: header(text, 'message', file) };
    });
}

export function exampleFiles(): string[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(EXAMPLES_DIR, f));
}
