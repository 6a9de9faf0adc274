/**
 * What an agent's startup packet may set upstream. One text, one meaning: the sidecar reads every
 * statement as UTF-8 with standard-conforming strings, so the upstream session is pinned to
 * `client_encoding=UTF8` and `standard_conforming_strings=on` (in the startup packet, which
 * wins over role, database and server defaults, and is what RESET and DISCARD ALL go back to).
 * Every other parameter is passed when setting it is an ordinary session setting, and refused
 * with a clear error otherwise; nothing is dropped silently. Pure.
 */
import { lexingSetting, settingClass } from '@airlock/policy';
import { SidecarError } from '../errors.ts';
import { readQuoted } from './copy.ts';

/** The values every upstream session runs with, as PostgreSQL reports them (ParameterStatus). */
export const PINNED: Readonly<Record<string, string>> = { client_encoding: 'UTF8', standard_conforming_strings: 'on' };

/** Parameters of the startup packet that are not settings. */
const PROTOCOL_KEYS: ReadonlySet<string> = new Set(['user', 'database']);

/** PostgreSQL's encoding name normalisation (clean_encoding_name): lower case, letters and digits only. */
function encodingKey(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/**
 * Client encodings that read exactly like UTF-8 with the sidecar pinning UTF8 upstream: UTF8 and
 * its aliases, and SQL_ASCII (PostgreSQL checks a SQL_ASCII client's text as the database
 * encoding and sends the database's bytes unconverted, which for a UTF-8 database is UTF-8).
 */
const UTF8_ALIASES: ReadonlySet<string> = new Set(['utf8', 'unicode', 'sqlascii']);

/** PostgreSQL's boolean spellings (parse_bool). */
function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (v === '') return undefined;
  if (['on', '1'].includes(v) || ('true'.startsWith(v) && v.length >= 1) || ('yes'.startsWith(v) && v.length >= 1)) return true;
  if (['off', 'of', '0'].includes(v) || ('false'.startsWith(v) && v.length >= 1) || ('no'.startsWith(v) && v.length >= 1)) return false;
  return undefined;
}

function refuse(message: string): never {
  throw new SidecarError('NotPermitted', message);
}

/**
 * The parameters to send upstream for an agent's startup parameters, pinned values last (and
 * therefore winning). Throws SidecarError NotPermitted naming the parameter that cannot be honoured.
 * Names are matched without regard to case, as PostgreSQL does.
 */
export function upstreamParameters(agent: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(agent)) {
    const name = rawName.toLowerCase();
    if (PROTOCOL_KEYS.has(name) || name.startsWith('_pq_.')) continue;
    if (name === 'client_encoding') {
      if (!UTF8_ALIASES.has(encodingKey(value))) {
        refuse(
          `client_encoding "${value}" is not supported through Airlock: the sidecar reads every statement as UTF-8 and pins client_encoding=UTF8 upstream ` +
            '(in an encoding such as SJIS or BIG5 a byte read as a quote or a backslash can belong to a character, so PostgreSQL would read another statement); connect with client_encoding=UTF8',
        );
      }
      continue;
    }
    if (name === 'standard_conforming_strings') {
      if (parseBool(value) !== true) refuse(`standard_conforming_strings "${value}" is not supported through Airlock: it changes how PostgreSQL reads backslashes in statements, and the sidecar pins it on`);
      continue;
    }
    const lexing = lexingSetting(name);
    if (lexing !== undefined) refuse(`startup parameter "${rawName}" is not supported through Airlock: it changes how PostgreSQL reads statement text, which the sidecar pins`);
    if (name === 'options') {
      if (value.trim() === '') continue;
      refuse('startup parameter "options" is not supported through Airlock: its -c switches can set any setting (role, client_encoding, …); send each ordinary setting as its own startup parameter');
    }
    if (name === 'replication') {
      if (parseBool(value) === false) continue;
      refuse('replication connections are not supported through Airlock');
    }
    if (name === 'default_transaction_read_only' || name === 'transaction_read_only') {
      // read-only is stricter than the role's default; the opposite could lift a read-only default
      if (parseBool(value) === true) {
        out[name] = value;
        continue;
      }
      refuse(`startup parameter "${rawName}=${value}" is not supported through Airlock: only "on" is passed (it could lift a read-only default)`);
    }
    if (name === 'search_path') {
      if (searchPathSchemas(value, '') === undefined) refuse(`startup parameter search_path "${value}" is not supported through Airlock: it cannot be read as a list of schema names separated by commas`);
      out[name] = value;
      continue;
    }
    const cls = settingClass(name);
    if (cls !== 'session') refuse(`startup parameter "${rawName}" is not supported through Airlock: setting it is a statement of class ${cls}, not an ordinary session setting`);
    out[name] = value;
  }
  return { ...out, ...PINNED };
}

/**
 * Checks a ParameterStatus from the server: a pinned setting reported with another value means
 * the server may now read statements differently from the sidecar. Returns the message to end
 * the session with, or undefined.
 */
export function pinnedViolation(name: string, value: string): string | undefined {
  const want = PINNED[name];
  if (want === undefined || value === want) return undefined;
  return `the server's ${name} became "${value}" (Airlock pins ${want}): statements could now be read differently by the server and the sidecar, so the session ends`;
}

/**
 * The schemas of a search_path value, in order, as PostgreSQL reads the list (SplitIdentifierString:
 * comma-separated, unquoted names folded to lower case, double quotes keep case and commas, `""`
 * is a quote); `$user` is the session's user. undefined when the list cannot be read.
 */
export function searchPathSchemas(value: string, user: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  const n = value.length;
  const space = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  while (space(value[i])) i++;
  if (i === n) return [];
  for (;;) {
    let name: string;
    if (value[i] === '"') {
      const q = readQuoted(value, i);
      if (q === undefined || q.value === '') return undefined;
      name = q.value;
      i = q.end;
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && !space(value[i]) && value[i] !== '"') i++;
      if (i === start) return undefined;
      name = value.slice(start, i).toLowerCase();
    }
    while (space(value[i])) i++;
    out.push(name === '$user' ? user : name);
    if (i === n) return out;
    if (value[i] !== ',') return undefined;
    i++;
    while (space(value[i])) i++;
  }
}
