/**
 * SFTP (only with spec.ssh.allowSftp), proxied request by request: the agent's SFTP requests
 * (ssh2's SFTP server) are sent to the upstream SFTP session (ssh2's SFTP client) and the
 * replies passed back; handles are the upstream's, passed through. Operations are recorded:
 * open (path, flags), and per file at close the bytes read and written; remove, rename, mkdir,
 * rmdir, setstat, symlink with their paths. Mutating requests are recorded (and flushed)
 * before they are forwarded. File contents are not masked: SFTP is file transfer, and
 * allowSftp grants it. Handles still open when the session ends are recorded then.
 */
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import type { SessionContext } from './context.ts';

const STATUS = { OK: 0, EOF: 1, FAILURE: 4 } as const;
const MAX_READ = 256 * 1024;

interface OpenFile {
  readonly path: string;
  readonly dir: boolean;
  read: number;
  written: number;
}

/** OpenSSH's flag names, for the record. */
export function describeFlags(flags: number): string {
  const names: string[] = [];
  if ((flags & 0x01) !== 0) names.push('read');
  if ((flags & 0x02) !== 0) names.push('write');
  if ((flags & 0x04) !== 0) names.push('append');
  if ((flags & 0x08) !== 0) names.push('create');
  if ((flags & 0x10) !== 0) names.push('truncate');
  if ((flags & 0x20) !== 0) names.push('exclusive');
  return names.join(',');
}

function attrsOf(a: Attributes): Attributes {
  return { mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, atime: a.atime, mtime: a.mtime };
}

export function proxySftp(ctx: SessionContext, channel: number, agent: SFTPWrapper, up: SFTPWrapper): { close(): void } {
  const files = new Map<string, OpenFile>();
  // ssh2 takes options the types do not declare
  const readdirFull = up.readdir.bind(up) as unknown as (h: Buffer, o: { full: boolean }, cb: (err: Error | undefined, list: FileEntry[]) => void) => void;
  const key = (h: Buffer): string => h.toString('hex');
  const record = (body: Record<string, unknown>, flush = false): boolean => {
    ctx.counters.sftpOps++;
    try {
      ctx.recorder.record({ type: 'sftp', channel, ...body }, flush);
      return true;
    } catch {
      return false; // failurePolicy Closed and the recorder failed
    }
  };
  const code = (err: Error & { code?: unknown }): number => (typeof err.code === 'number' ? err.code : STATUS.FAILURE);
  const status = (id: number) => (err: (Error & { code?: unknown }) | undefined | null): void => {
    if (err !== undefined && err !== null) agent.status(id, code(err), err.message);
    else agent.status(id, STATUS.OK);
  };
  const refuseUnrecorded = (id: number): void => {
    agent.status(id, 3, 'airlock: refused: the recording cannot be written (recording failurePolicy is Closed)');
  };
  const summary = (f: OpenFile): void => {
    if (f.dir) return;
    if (f.read > 0) record({ op: 'read', path: f.path, bytes: f.read });
    if (f.written > 0) record({ op: 'write', path: f.path, bytes: f.written });
  };

  agent.on('OPEN', (id: number, path: string, flags: number, attrs: Attributes) => {
    if (!record({ op: 'open', path, flags: describeFlags(flags) }, (flags & 0x3e) !== 0)) { refuseUnrecorded(id); return; }
    up.open(path, flags, attrsOf(attrs), (err, handle) => {
      if (err !== undefined) { status(id)(err); return; }
      files.set(key(handle), { path, dir: false, read: 0, written: 0 });
      agent.handle(id, handle);
    });
  });
  agent.on('READ', (id: number, handle: Buffer, offset: number, len: number) => {
    const n = Math.min(len, MAX_READ);
    up.read(handle, Buffer.allocUnsafe(n), 0, n, offset, (err, bytes, data) => {
      if (err !== undefined) { status(id)(err); return; }
      if (bytes === 0) { agent.status(id, STATUS.EOF); return; }
      const f = files.get(key(handle));
      if (f !== undefined) f.read += bytes;
      agent.data(id, data.subarray(0, bytes));
    });
  });
  agent.on('WRITE', (id: number, handle: Buffer, offset: number, data: Buffer) => {
    up.write(handle, data, 0, data.length, offset, (err) => {
      if (err === undefined || err === null) {
        const f = files.get(key(handle));
        if (f !== undefined) f.written += data.length;
      }
      status(id)(err);
    });
  });
  agent.on('CLOSE', (id: number, handle: Buffer) => {
    const f = files.get(key(handle));
    files.delete(key(handle));
    if (f !== undefined) summary(f);
    if (f !== undefined && !f.dir) record({ op: 'close', path: f.path });
    up.close(handle, status(id));
  });
  agent.on('FSTAT', (id: number, handle: Buffer) => {
    up.fstat(handle, (err, st) => { if (err !== undefined) status(id)(err); else agent.attrs(id, attrsOf(st)); });
  });
  agent.on('FSETSTAT', (id: number, handle: Buffer, attrs: Attributes) => {
    const f = files.get(key(handle));
    if (!record({ op: 'setstat', path: f?.path ?? '(handle)', attrs }, true)) { refuseUnrecorded(id); return; }
    up.fsetstat(handle, attrsOf(attrs), status(id));
  });
  agent.on('OPENDIR', (id: number, path: string) => {
    up.opendir(path, (err, handle) => {
      if (err !== undefined) { status(id)(err); return; }
      files.set(key(handle), { path, dir: true, read: 0, written: 0 });
      agent.handle(id, handle);
    });
  });
  agent.on('READDIR', (id: number, handle: Buffer) => {
    // full: keep "." and ".." as the server sent them
    readdirFull(handle, { full: true }, (err, list) => {
      if (err !== undefined) { status(id)(err); return; }
      agent.name(id, list.map((e) => ({ filename: e.filename, longname: e.longname, attrs: attrsOf(e.attrs) })));
    });
  });
  agent.on('LSTAT', (id: number, path: string) => {
    up.lstat(path, (err, st) => { if (err !== undefined) status(id)(err); else agent.attrs(id, attrsOf(st)); });
  });
  agent.on('STAT', (id: number, path: string) => {
    up.stat(path, (err, st) => { if (err !== undefined) status(id)(err); else agent.attrs(id, attrsOf(st)); });
  });
  agent.on('REMOVE', (id: number, path: string) => {
    if (!record({ op: 'remove', path }, true)) { refuseUnrecorded(id); return; }
    up.unlink(path, status(id));
  });
  agent.on('RMDIR', (id: number, path: string) => {
    if (!record({ op: 'rmdir', path }, true)) { refuseUnrecorded(id); return; }
    up.rmdir(path, status(id));
  });
  agent.on('MKDIR', (id: number, path: string, attrs: Attributes) => {
    if (!record({ op: 'mkdir', path }, true)) { refuseUnrecorded(id); return; }
    up.mkdir(path, attrsOf(attrs), status(id));
  });
  agent.on('SETSTAT', (id: number, path: string, attrs: Attributes) => {
    if (!record({ op: 'setstat', path, attrs }, true)) { refuseUnrecorded(id); return; }
    up.setstat(path, attrsOf(attrs), status(id));
  });
  agent.on('RENAME', (id: number, from: string, to: string) => {
    if (!record({ op: 'rename', path: from, to }, true)) { refuseUnrecorded(id); return; }
    up.rename(from, to, status(id));
  });
  agent.on('SYMLINK', (id: number, first: string, second: string) => {
    // passed in wire order: OpenSSH clients and servers agree on it
    if (!record({ op: 'symlink', path: first, to: second }, true)) { refuseUnrecorded(id); return; }
    up.symlink(first, second, status(id));
  });
  agent.on('REALPATH', (id: number, path: string) => {
    up.realpath(path, (err, abs) => { if (err !== undefined) status(id)(err); else agent.name(id, [{ filename: abs, longname: abs, attrs: {} as Attributes }]); });
  });
  agent.on('READLINK', (id: number, path: string) => {
    up.readlink(path, (err, target) => { if (err !== undefined) status(id)(err); else agent.name(id, [{ filename: target, longname: target, attrs: {} as Attributes }]); });
  });
  agent.on('EXTENDED', (id: number, name: string) => {
    agent.status(id, 8, `extension ${name} is not supported through airlock`);
  });

  return {
    close() {
      for (const f of files.values()) {
        summary(f);
        if (!f.dir) record({ op: 'close', path: f.path, note: 'still open when the session ended' });
      }
      files.clear();
    },
  };
}
