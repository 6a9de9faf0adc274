/**
 * `airlock` commands (operator, sidecar, webhook) started by an e2e test: their stderr (the JSON
 * logs) kept for assertions and timeout messages, and every one stopped at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { AIRLOCK_BIN } from './sidecar.ts';

export interface AirlockChild {
  readonly child: ChildProcess;
  /** everything it wrote to stderr so far */
  logs(): string;
}

export class AirlockProcesses {
  readonly #children: AirlockChild[] = [];

  /** starts `airlock <args>` */
  run(args: readonly string[]): AirlockChild {
    const child = spawn(AIRLOCK_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      text += d;
    });
    const c = { child, logs: () => text };
    this.#children.push(c);
    return c;
  }

  /** SIGTERM, and waits for the exit (nothing when it already ended) */
  async stop(c: AirlockChild | undefined): Promise<void> {
    if (c === undefined || c.child.exitCode !== null || c.child.signalCode !== null) return;
    c.child.kill('SIGTERM');
    await once(c.child, 'exit');
  }

  async stopAll(): Promise<void> {
    for (const c of this.#children) await this.stop(c);
  }

  /** the last lines each process wrote, for a failure message */
  tail(chars = 4000): string {
    return this.#children.map((c) => c.logs().slice(-chars)).join('\n---\n');
  }
}
