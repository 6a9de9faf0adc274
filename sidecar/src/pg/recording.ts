/**
 * A PostgreSQL session's recording file: opened at login (a recorder that cannot open refuses
 * the session under failurePolicy Closed), appended to by the pipeline (statement and result
 * records are serialised by hand: records.ts), flushed before a statement is forwarded
 * (write-ahead), closed with the session_end record. The enforce step writes through
 * `recorder`: a failure refuses under failurePolicy Closed and is logged under Open.
 */
import type { EnforceRecorder } from '../enforce/enforcer.ts';
import type { Logger } from '../log.ts';
import type { RecordBody } from '@airlock/api';
import { sessionFiles } from '../record/files.ts';
import { RecorderError, RecordingWriter } from '../record/writer.ts';

type FailurePolicy = 'Open' | 'Closed';

export class PgRecording {
  readonly #log: Logger;
  /** the connection's failure policy now (it follows the policy in force) */
  readonly #failurePolicy: () => FailurePolicy | undefined;
  #writer: RecordingWriter | undefined;
  #open = true;
  /** the session (recording) id; '' until opened */
  id = '';
  readonly recorder: EnforceRecorder;

  constructor(log: Logger, failurePolicy: () => FailurePolicy | undefined) {
    this.#log = log;
    this.#failurePolicy = failurePolicy;
    const record = (body: RecordBody, flush = false): void => {
      try {
        this.record(body);
        if (flush) this.flush();
      } catch (err) {
        if (this.#failurePolicy() === 'Open') {
          this.#log.warn('recording failed; going on (failurePolicy Open)', { error: (err as Error).message });
          return;
        }
        throw err instanceof RecorderError ? err : new RecorderError((err as Error).message);
      }
    };
    const id = (): string => this.id;
    this.recorder = {
      get id() {
        return id();
      },
      record,
      note: (body, flush) => {
        try {
          record(body, flush);
        } catch {
          // best effort: the refusal that follows says why
        }
      },
    };
  }

  /** Opens the recording; under failurePolicy Open a recorder that fails leaves the session unrecorded. */
  open(recordingsDir: string, connection: string, failurePolicy: FailurePolicy): void {
    try {
      const files = sessionFiles(recordingsDir, connection);
      this.id = files.id;
      this.#writer = new RecordingWriter(`${files.base}.jsonl`);
    } catch (err) {
      if (failurePolicy === 'Closed') throw err;
      this.#log.warn('recording disabled: the recorder failed and failurePolicy is Open', { error: (err as Error).message });
    }
  }

  /** the recording is written (open, and its recorder did not fail to open) */
  get writing(): boolean {
    return this.#writer !== undefined;
  }

  get path(): string | undefined {
    return this.#writer?.path;
  }

  /** the hash-chain head and the number of records so far */
  head(): { hash: string | undefined; records: number } {
    const w = this.#writer;
    return { hash: w?.head, records: w?.records ?? 0 };
  }

  /** Appends a record (throws when the recorder failed). */
  record(body: RecordBody): void {
    const w = this.#writer;
    if (w === undefined || !this.#open) return;
    w.append(body);
  }

  /** record() of a body serialised by hand (no seq, prev, hash or time field) */
  recordJson(json: string): void {
    const w = this.#writer;
    if (w === undefined || !this.#open) return;
    w.appendJson(json);
  }

  /** Hands what was appended to the OS (throws when the recorder failed). */
  flush(): void {
    this.#writer?.flush();
  }

  /** Appends the last record and closes the file; nothing is recorded after. */
  close(last: RecordBody): void {
    const w = this.#writer;
    if (w === undefined) return;
    try {
      this.record(last);
      w.close();
    } catch (err) {
      this.#log.error('could not close the recording', { error: (err as Error).message, path: w.path });
    }
    this.#open = false;
  }
}
