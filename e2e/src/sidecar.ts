/**
 * Runs the real `airlock sidecar` (the CLI's local mode) as a child process for tests and
 * benchmarks, and waits for its "ready" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const AIRLOCK_BIN = fileURLToPath(new URL('../../cli/bin/airlock', import.meta.url));

export interface SidecarProcess {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** every JSON log line so far */
  logs(): readonly Record<string, unknown>[];
  /** raw stderr so far */
  stderr(): string;
  /** SIGTERM, then waits for exit; resolves with the exit code */
  stop(): Promise<number | null>;
}

export interface SidecarStart {
  readonly manifests: readonly string[];
  readonly connection: string;
  readonly recordingsDir: string;
  readonly stateDir?: string;
  readonly namespace?: string;
  readonly listen?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export async function startSidecar(opts: SidecarStart): Promise<SidecarProcess> {
  const args = ['sidecar', ...opts.manifests.flatMap((m) => ['-f', m]), '--connection', opts.connection, '--recordings-dir', opts.recordingsDir, '--listen', opts.listen ?? '127.0.0.1:0'];
  if (opts.namespace !== undefined) args.push('--namespace', opts.namespace);
  if (opts.stateDir !== undefined) args.push('--state-dir', opts.stateDir);
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(AIRLOCK_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let err = '';
  const lines: Record<string, unknown>[] = [];
  const ready = new Promise<{ host: string; port: number }>((resolve, reject) => {
    let partial = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      partial += d.toString();
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          lines.push(rec);
          if (rec['message'] === 'ready' && typeof rec['listen'] === 'string') {
            const m = /^(.*):(\d+)$/.exec(rec['listen']);
            if (m?.[1] !== undefined) resolve({ host: m[1], port: Number(m[2]) });
          }
        } catch {
          // not a log line (e.g. a usage error)
        }
      }
    });
    child.once('exit', (code) => {
      reject(new Error(`airlock sidecar exited with ${String(code)} before it was ready:\n${err}`));
    });
    setTimeout(() => {
      reject(new Error(`airlock sidecar not ready in 30s:\n${err}`));
    }, 30_000).unref();
  });
  const { host, port } = await ready;
  return {
    host,
    port,
    pid: child.pid ?? 0,
    child,
    logs: () => lines,
    stderr: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => { r(code); }));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Writes YAML documents into a fresh temporary directory; returns its path. */
export function manifestDir(files: Readonly<Record<string, string>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-manifests-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
