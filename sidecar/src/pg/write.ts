/**
 * Coalesced socket writes: messages forwarded unchanged are consecutive slices of one read, so
 * a batch is usually one write.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/**
 * Writes and empties `out`; false when the socket wants a drain. Buffers that are consecutive
 * slices of one chunk (messages forwarded unchanged) are written as one slice: usually the
 * whole batch is one write, without corking; otherwise the slices go in one corked batch (one
 * system call either way).
 */
export function writeAll(socket: Socket | TLSSocket, out: Buffer[]): boolean {
  const n = out.length;
  if (n === 0) return true;
  // coalesce in place: out[0, k) are the slices to write
  let k = 0;
  let run = out[0] as Buffer;
  for (let i = 1; i < n; i++) {
    const b = out[i] as Buffer;
    if (b.buffer === run.buffer && run.byteOffset + run.length === b.byteOffset) {
      run = Buffer.from(run.buffer, run.byteOffset, run.length + b.length);
    } else {
      out[k++] = run;
      run = b;
    }
  }
  out[k++] = run;
  let ok = true;
  if (k === 1) ok = socket.write(run);
  else {
    socket.cork();
    for (let i = 0; i < k; i++) ok = socket.write(out[i] as Buffer);
    socket.uncork();
  }
  out.length = 0;
  return ok;
}
