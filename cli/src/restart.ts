/**
 * A long-running process that started while Node's compile cache missed (first start, or sources
 * changed since) has Node's TypeScript stripper loaded, a WASM build of swc that stays resident
 * (~13 MiB) for the life of the process although every module is already stripped. Once every
 * module the process will run is loaded, `restartFromCompileCache()` writes the cache and replaces
 * the process with a fresh start of the same command line (execve: same pid, same descriptors),
 * which finds every module in the cache and never loads the stripper.
 */
import { flushCompileCache, getCompileCacheDir } from 'node:module';

const STRIPPER = 'NativeModule internal/deps/amaro/dist/index';
/** set in the restarted process: it never restarts again, whatever the cache did */
export const RESTARTED_ENV = 'AIRLOCK_RESTARTED_FROM_COMPILE_CACHE';

/** Whether Node's TypeScript stripper has been loaded into this process. */
export function stripperLoaded(): boolean {
  const list = (process as { moduleLoadList?: readonly string[] }).moduleLoadList;
  return list?.includes(STRIPPER) ?? false;
}

/** Returns only when no restart is needed or possible; otherwise the process is replaced. */
export function restartFromCompileCache(): void {
  if (!stripperLoaded() || process.env[RESTARTED_ENV] !== undefined) return;
  if (getCompileCacheDir() === undefined || process.execve === undefined) return;
  flushCompileCache();
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, [RESTARTED_ENV]: '1' });
}
