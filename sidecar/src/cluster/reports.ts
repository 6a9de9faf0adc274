/**
 * Session reports (invariant 4, nothing lost). Each report (start, progress, end) is appended to
 * a buffer file under the state directory and fsync'd before it is sent; a sender delivers the
 * buffer in order and removes each report once the operator acknowledged it. After an operator
 * outage, or a sidecar restart (the buffer is read at start), delivery resumes where it stopped.
 * The operator applies a report only when its seq is above the last one applied for the session,
 * so a report delivered twice changes nothing.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { SessionReport } from '@airlock/api';
import type { Logger } from '../log.ts';
import type { ObservedSession, SessionObserver } from '../proxy.ts';
import { ControlRequestError } from './client.ts';
import { sessionName } from './names.ts';

export const REPORT_BUFFER_FILE = 'session-reports.jsonl';

/** The reports of a buffer file's text, in order; a torn last line (a crash mid-append) and garbage lines are skipped. Pure. */
export function parseReportBuffer(text: string): SessionReport[] {
  const out: SessionReport[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r: unknown = JSON.parse(line);
      if (typeof r === 'object' && r !== null && typeof (r as SessionReport).session === 'string' && typeof (r as SessionReport).seq === 'number') out.push(r as SessionReport);
    } catch {
      // a line cut by a crash: its report was never sent (it is appended before it is sent)
    }
  }
  return out;
}

/** The reports left once `delivered` (the first entries of `pending`) were acknowledged. Pure. */
export function afterDelivery(pending: readonly SessionReport[], delivered: SessionReport): SessionReport[] {
  const i = pending.indexOf(delivered);
  return i < 0 ? [...pending] : [...pending.slice(0, i), ...pending.slice(i + 1)];
}

/** The buffer file: append (fsync'd) and remove acknowledged reports (rewritten atomically). */
export class ReportBuffer {
  readonly path: string;
  #pending: SessionReport[];

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.path = join(stateDir, REPORT_BUFFER_FILE);
    let text = '';
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.#pending = parseReportBuffer(text);
    // a torn line is dropped from the file too, so later appends start on a line of their own
    if (text !== '' && !text.endsWith('\n')) this.#rewrite();
  }

  /** reports not yet acknowledged, oldest first */
  get pending(): readonly SessionReport[] {
    return this.#pending;
  }

  append(report: SessionReport): void {
    const fd = openSync(this.path, 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(report)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#pending.push(report);
  }

  /** removes an acknowledged report */
  remove(report: SessionReport): void {
    this.#pending = afterDelivery(this.#pending, report);
    this.#rewrite();
  }

  #rewrite(): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const text = this.#pending.map((r) => `${JSON.stringify(r)}\n`).join('');
      if (text !== '') writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}

export interface ReportSenderDeps {
  readonly buffer: ReportBuffer;
  readonly send: (report: SessionReport) => Promise<void>;
  readonly log: Logger;
  /** first retry delay (doubles up to maxRetryMs) */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

/** A report the operator will never take (malformed): dropped so that the ones after it go. */
function permanent(err: unknown): boolean {
  return err instanceof ControlRequestError && (err.status === 400 || err.status === 413);
}

/** Delivers the buffer in order, one report at a time; woken by each append. */
export class ReportSender {
  readonly #deps: ReportSenderDeps;
  #running: Promise<void> | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  readonly #abort = new AbortController();

  constructor(deps: ReportSenderDeps) {
    this.#deps = deps;
  }

  /** the buffer is empty */
  get idle(): boolean {
    return this.#deps.buffer.pending.length === 0;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** buffers and sends */
  submit(report: SessionReport): void {
    try {
      this.#deps.buffer.append(report);
    } catch (err) {
      this.#deps.log.error('cannot buffer a session report; sending it unbuffered', { session: report.session, seq: report.seq, error: (err as Error).message });
      this.#deps.send(report).catch((e: unknown) => {
        this.#deps.log.error('session report lost', { session: report.session, seq: report.seq, error: (e as Error).message });
      });
      return;
    }
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#wake?.();
    await this.#running;
  }

  /** read through a call: stop() flips it while the loop awaits */
  #isStopped(): boolean {
    return this.#stopped;
  }

  async #loop(): Promise<void> {
    const { buffer, log } = this.#deps;
    const base = this.#deps.retryMs ?? 500;
    let delay = base;
    while (!this.#stopped) {
      const next = buffer.pending[0];
      if (next === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      try {
        await this.#deps.send(next);
        buffer.remove(next);
        delay = base;
      } catch (err) {
        if (this.#isStopped()) return;
        if (permanent(err)) {
          log.error('session report refused by the operator; dropped', { session: next.session, seq: next.seq, error: (err as Error).message });
          buffer.remove(next);
          continue;
        }
        log.warn('session report not delivered; kept in the buffer', { session: next.session, seq: next.seq, pending: buffer.pending.length, error: (err as Error).message });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wake = undefined;
        delay = Math.min(delay * 2, this.#deps.maxRetryMs ?? 10_000);
      }
    }
  }
}

export interface SessionReporterOptions {
  readonly submit: (report: SessionReport) => void;
  /** the recordings directory of each connection's claim (report paths are relative to it), and the claim's name */
  readonly claimOf: (connection: string) => { readonly root: string; readonly claimName: string | undefined; readonly within?: string };
  /** a progress report at most this often while something changed */
  readonly progressMs: number;
  /** …or as soon as this many statements ran since the last report */
  readonly progressStatements: number;
  /** how often sessions are looked at */
  readonly tickMs?: number;
}

interface Tracked {
  readonly session: ObservedSession;
  seq: number;
  lastAt: number;
  lastStatements: number;
  lastHead: string | undefined;
}

/** Turns the proxies' sessions into reports: start, progress, end. */
export class SessionReporter implements SessionObserver {
  readonly #o: SessionReporterOptions;
  readonly #tracked = new Set<Tracked>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: SessionReporterOptions) {
    this.#o = options;
    this.#timer = setInterval(() => {
      this.#tick();
    }, options.tickMs ?? 1000);
    this.#timer.unref();
  }

  started(session: ObservedSession): void {
    const t: Tracked = { session, seq: 0, lastAt: Date.now(), lastStatements: 0, lastHead: undefined };
    this.#tracked.add(t);
    this.#emit(t, 'start');
    void session.closed.then(() => {
      this.#tracked.delete(t);
      this.#emit(t, 'end');
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const now = Date.now();
    for (const t of this.#tracked) {
      const counts = t.session.counts();
      const head = t.session.head().hash;
      const ran = counts.statements - t.lastStatements;
      if ((ran >= this.#o.progressStatements && ran > 0) || (now - t.lastAt >= this.#o.progressMs && head !== t.lastHead)) this.#emit(t, 'progress');
    }
  }

  #emit(t: Tracked, type: SessionReport['type']): void {
    const s = t.session;
    const counts = s.counts();
    const head = s.head();
    const claim = this.#o.claimOf(s.connection);
    t.seq += 1;
    t.lastAt = Date.now();
    t.lastStatements = counts.statements;
    t.lastHead = head.hash;
    this.#o.submit({
      session: sessionName(s.id),
      connection: s.connection,
      protocol: s.protocol,
      seq: t.seq,
      type,
      startTime: s.startTime.toISOString(),
      ...(type === 'end' ? { endTime: new Date().toISOString() } : {}),
      counts: { statements: counts.statements, rows: counts.rows, maskedValues: counts.maskedValues, blocked: counts.blocked, approvals: counts.approvals },
      recording: {
        ...(claim.claimName !== undefined ? { claimName: claim.claimName } : {}),
        path: s.recordingPath === undefined ? '' : join(claim.within ?? '', relative(claim.root, s.recordingPath)),
        ...(head.hash !== undefined ? { chainHead: head.hash } : {}),
        records: head.records,
      },
    });
  }
}
