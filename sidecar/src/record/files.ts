/** Where a session's recording files go: `<dir>/<connection>/<UTC time>-<session id>.<ext>`. */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RecorderError } from './writer.ts';

export interface SessionFiles {
  /** session id: unique, sortable by start time */
  readonly id: string;
  /** path without extension; callers add `.jsonl`, `.cast` */
  readonly base: string;
}

export function sessionFiles(recordingsDir: string, connection: string, now: Date = new Date()): SessionFiles {
  const dir = join(recordingsDir, connection);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new RecorderError(`cannot create the recordings directory ${dir}: ${(err as Error).message}`);
  }
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const id = `${stamp}-${randomBytes(4).toString('hex')}`;
  return { id, base: join(dir, id) };
}
