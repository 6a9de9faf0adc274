/**
 * Files that are reloaded when they change, without a restart: Kubernetes updates a mounted
 * Secret by an atomic swap of the `..data` symlink, so the directory is watched (fs.watch, for a
 * quick reaction) and polled (the fallback that never misses a change). `apply` gets the contents
 * of every file (undefined when missing); when it throws (a half-written pair, a missing file) the
 * previous state stays in force and the next change is tried again.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import type { Logger } from 'winston';
import type { Clock } from '@airlock/kube';

export type FileContents = ReadonlyMap<string, Buffer | undefined>;

export interface WatchedFilesOptions {
  readonly name: string;
  readonly files: readonly string[];
  readonly apply: (contents: FileContents) => void;
  readonly clock: Clock;
  readonly log: Logger;
  readonly pollMs?: number;
}

async function read(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch {
    return undefined;
  }
}

export class WatchedFiles {
  readonly #options: WatchedFilesOptions;
  #seen: string | undefined;
  #loaded = false;
  #error: string | undefined;
  #watchers: FSWatcher[] = [];
  #cancel: (() => void) | undefined;
  #checking: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(options: WatchedFilesOptions) {
    this.#options = options;
  }

  /** whether apply() has succeeded at least once */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** the last apply() error, if the latest contents could not be applied */
  get error(): string | undefined {
    return this.#error;
  }

  /** reads the files once (apply errors are kept in `error`), then keeps watching */
  async start(): Promise<void> {
    await this.check();
    for (const dir of new Set(this.#options.files.map((f) => dirname(f)))) {
      try {
        const watcher = watch(dir, () => {
          this.#trigger();
        });
        watcher.on('error', () => undefined);
        watcher.unref();
        this.#watchers.push(watcher);
      } catch {
        // a directory that does not exist yet: polling finds the files when they appear
      }
    }
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#cancel = this.#options.clock.setTimer(this.#options.pollMs ?? 1000, () => {
      this.#trigger();
      this.#schedule();
    });
  }

  #trigger(): void {
    this.check().catch((err: unknown) => {
      this.#options.log.error('reload failed', { files: this.#options.name, error: err instanceof Error ? err.message : String(err) });
    });
  }

  /** reads the files and applies them when they changed; concurrent calls coalesce */
  check(): Promise<void> {
    if (this.#checking !== undefined) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        await this.#checkOnce();
      } while (this.#changedMeanwhile());
    })().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  #changedMeanwhile(): boolean {
    return this.#again;
  }

  async #checkOnce(): Promise<void> {
    const contents = new Map<string, Buffer | undefined>();
    const hash = createHash('sha256');
    for (const file of this.#options.files) {
      const data = await read(file);
      contents.set(file, data);
      hash.update(`${file}\0${data === undefined ? '-' : `${data.length}:`}`);
      if (data !== undefined) hash.update(data);
    }
    const digest = hash.digest('hex');
    if (digest === this.#seen) return;
    this.#seen = digest;
    try {
      this.#options.apply(contents);
      this.#loaded = true;
      this.#error = undefined;
      this.#options.log.info('files loaded', { files: this.#options.name });
    } catch (err) {
      this.#error = err instanceof Error ? err.message : String(err);
      this.#options.log.warn('files not loaded; keeping the previous ones', { files: this.#options.name, error: this.#error });
    }
  }
}
