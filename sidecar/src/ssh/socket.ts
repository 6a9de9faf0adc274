/**
 * The TCP sockets under ssh2, on both legs. Without its optional crypto addon (not built: see
 * the allowScripts entry in package.json and test/native-addons.test.ts), ssh2 encrypts with
 * node:crypto and writes each packet as three socket writes (length, ciphertext, tag): three
 * syscalls and three TCP segments per packet, and without TCP_NODELAY a Nagle wait of the
 * peer's delayed ACK (~40 ms) before the tag. A coalescing socket is corked at the first write
 * of a tick and uncorked on process.nextTick, so everything ssh2 writes in one tick (the parts
 * of a packet, the packets made from one read) leaves in one writev.
 */
import type { Socket } from 'node:net';

type Write = (...args: unknown[]) => boolean;

/** Makes the socket's writes of one tick a single writev (flushed by destroy too); returns the socket. */
export function coalesceWrites(sock: Socket): Socket {
  const target = sock as unknown as { write: Write };
  const write: Write = target.write.bind(sock);
  let corked = false;
  const uncork = (): void => {
    corked = false;
    sock.uncork();
  };
  target.write = (...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  };
  // ssh2 writes a DISCONNECT and destroys the socket in the same tick (a protocol error): what
  // is still corked goes out first, as it would have without the cork
  const destroy: (error?: Error) => Socket = sock.destroy.bind(sock);
  sock.destroy = (error?: Error): Socket => {
    if (corked) uncork();
    return destroy(error);
  };
  return sock;
}
