/**
 * A real kube-apiserver + etcd for tests, started on free loopback ports through
 * hack/controlplane/up.sh in a private directory, and stopped (data removed) afterwards.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
const HACK = join(ROOT, 'hack', 'controlplane');

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ControlPlane {
  readonly kubeconfig: string;
  readonly binDir: string;
  /** Runs the matching kubectl against this control plane; never throws on a non-zero exit. */
  kubectl(args: readonly string[], options?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<CommandResult>;
  stop(): void;
}

/** Builds (or finds in the cache) the control-plane binaries and returns their directory. */
export function controlPlaneBinaries(): string {
  const r = spawnSync('bash', [join(HACK, 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`hack/controlplane/build.sh failed with status ${String(r.status)}`);
  return r.stdout.trim();
}

export function startControlPlane(): ControlPlane {
  const binDir = controlPlaneBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cp-'));
  const env = { ...process.env, CLUSTER_DIR: join(dir, 'cluster'), KUBECONFIG_OUT: join(dir, 'kubeconfig') };
  const up = spawnSync('bash', [join(HACK, 'up.sh')], { env, encoding: 'utf8' });
  if (up.status !== 0) {
    spawnSync('bash', [join(HACK, 'down.sh')], { env });
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start the control plane:\n${up.stderr}`);
  }
  const kubeconfig = env.KUBECONFIG_OUT;
  return {
    kubeconfig,
    binDir,
    kubectl(args, options = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          join(binDir, 'kubectl'),
          ['--kubeconfig', kubeconfig, ...args],
          { env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
            resolve({ code, stdout, stderr });
          },
        );
        child.stdin?.end(options.input ?? '');
      });
    },
    stop() {
      spawnSync('bash', [join(HACK, 'down.sh')], { env, stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
