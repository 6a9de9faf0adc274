/**
 * The PostgreSQL parser: libpg-query, a WASM build of PostgreSQL's own grammar. Its module is
 * imported by `loadSqlParser()`, not with this package: loading it reads and compiles the WASM
 * binary (~10 MiB of resident memory), which the operator, the webhooks and an SSH-only sidecar
 * never need. Parsing before `loadSqlParser()` has resolved throws, as libpg-query itself does.
 */
import type * as PgQuery from 'libpg-query';

let parser: typeof PgQuery | undefined;
let loading: Promise<void> | undefined;

/** Loads the PostgreSQL parser (WASM). Idempotent; await it once before classifying. */
export function loadSqlParser(): Promise<void> {
  loading ??= (async () => {
    const loaded = await import('libpg-query');
    await loaded.loadModule();
    parser = loaded;
  })();
  return loading;
}

function loadedParser(): typeof PgQuery {
  if (parser === undefined) throw new Error('the SQL parser is not loaded: await loadSqlParser() first');
  return parser;
}

/** libpg-query's parseSync: the statements' parse tree */
export function parseSql(text: string): ReturnType<typeof PgQuery.parseSync> {
  return loadedParser().parseSync(text);
}

/** libpg-query's scanSync: the text's tokens */
export function scanSql(text: string): ReturnType<typeof PgQuery.scanSync> {
  return loadedParser().scanSync(text);
}
