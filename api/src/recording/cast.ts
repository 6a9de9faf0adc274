/**
 * Checking an asciicast (.cast) file against the checkpoints its session log holds: the sha256 of
 * its first N bytes at moments of the session, the last one final when the cast was closed. Pure.
 */
import { createHash } from 'node:crypto';

export interface CastCheckpoint {
  /** bytes of the file covered */
  readonly bytes: number;
  /** `sha256:` hex of those bytes */
  readonly sha256: string;
  /** the last checkpoint of a closed cast: the file must end here */
  readonly final: boolean;
}

export interface CastVerifyResult {
  readonly ok: boolean;
  readonly message?: string;
}

/** Checks a .cast file's bytes against its checkpoints (in any order). Pure. */
export function verifyCast(data: Uint8Array, checkpoints: readonly CastCheckpoint[]): CastVerifyResult {
  if (checkpoints.length === 0) return { ok: false, message: 'no checkpoint of this cast in the event log' };
  const sorted = [...checkpoints].sort((a, b) => a.bytes - b.bytes);
  const hash = createHash('sha256');
  let at = 0;
  for (const cp of sorted) {
    if (cp.bytes > data.length) return { ok: false, message: `the cast has ${data.length} bytes, a checkpoint covers ${cp.bytes}: it was truncated` };
    hash.update(data.subarray(at, cp.bytes));
    at = cp.bytes;
    if (`sha256:${hash.copy().digest('hex')}` !== cp.sha256) return { ok: false, message: `the first ${cp.bytes} bytes do not match their checkpoint: the cast was edited` };
  }
  const last = sorted[sorted.length - 1];
  if (last?.final === true && data.length !== last.bytes) return { ok: false, message: `the cast has ${data.length} bytes after its final checkpoint at ${last.bytes}: data was appended` };
  return { ok: true };
}
