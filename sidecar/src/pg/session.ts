/**
 * One proxied PostgreSQL client connection. The agent side is terminated here (startup, no
 * password asked: the listener is pod-local); the upstream side is a fresh connection logged
 * in with the Secret's credentials. Every statement (Query, Parse, and each Execute) is decided
 * by the policy engine and its record handed to the OS before the statement is forwarded.
 *
 * Refusals are made by the upstream itself: the refused message is replaced by one that fails
 * to parse, so PostgreSQL answers it with an ErrorResponse in the right place of the pipeline,
 * aborts the implicit or explicit transaction and discards the rest of an extended batch until
 * Sync exactly as it would for any error; the proxy swaps that ErrorResponse for its own 42501.
 *
 * Upstream responses are matched to the frontend messages that caused them through a queue of
 * expectations, which gives each result its row plan (for masking) and its record.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SqlDecider, classifySql, type PolicyBundle, type Decision, type QueryLineage, type StatementLineage } from '@airlock/policy';
import type { ApprovalOutcome, ApprovalPort, ApprovalTicket } from '../approval/port.ts';
import { noPolicyMessage, type Enforcement, type ObservedSession, type PolicySource, type SessionObserver } from '../proxy.ts';
import type { UpstreamConfig } from '../config.ts';
import { SidecarError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { pgReply } from '../replies.ts';
import { RecorderError, RecordingWriter } from '../record/writer.ts';
import { sessionFiles } from '../record/files.ts';
import { errorResponse, noticeResponse, authenticationOk } from './backend.ts';
import type { Catalog } from './catalog.ts';
import { ProtocolError } from './errors.ts';
import { FrontendParser, PROTOCOL_3_0, type Framed, type FrontendMessage } from './frontend.ts';
import { PASS_THROUGH, SessionLineage, Slab, maskedWriteRefusal, unknownLineageRefusal, maskDataRow, planRow, readsMasked, rowLineageOf, withFormats, withholdEchoes, type FieldInfo, type RowPlan } from './rows.ts';
import { resultJson, statementJson } from './records.ts';
import { PINNED, pinnedViolation, searchPathSchemas, upstreamParameters } from './startup.ts';
import { maskCopyRow, type CopyFormat } from './copy.ts';
import { connectUpstream, type UpstreamConnection } from './upstream.ts';
import { NAME_WORDS, nameEffects, type NameEffect } from './names.ts';
import { reviewCommand, statementParts, type StatementPart } from './statements.ts';
import { frontendMessage, parseMessage, queryMessage, readNoticeFields, writeNoticeFields, MAX_BACKEND_MESSAGE } from './wire.ts';

/** Text that fails to parse: what a refused statement is replaced with upstream. */
const REFUSED_SQL = 'AIRLOCK REFUSED THIS STATEMENT';

export interface SessionDeps {
  /** read at the start of the session and of each statement (hot reload) */
  readonly policy: PolicySource;
  /** the proxy's decider of a bundle (default search_path) */
  readonly deciderFor: (bundle: PolicyBundle) => SqlDecider;
  /** the proxy's catalogue connection to an upstream */
  readonly catalogFor: (upstream: UpstreamConfig) => Catalog;
  readonly approvals: ApprovalPort;
  /** told of the session once its recording is open (cluster mode: session reports) */
  readonly sessions?: SessionObserver;
  readonly recordingsDir: string;
  readonly log: Logger;
  readonly pod?: string;
  readonly serviceAccount?: string;
  /** the proxy's cancel-key registry */
  readonly keys: {
    register(processId: number, secretKey: Buffer, session: PgSession): void;
    unregister(session: PgSession): void;
  };
  /** a CancelRequest from an agent; the proxy forwards it when the key is one of its sessions */
  readonly onCancel: (processId: number, secretKey: Buffer) => void;
}

interface StatementRecord {
  readonly id: number;
  rows: number;
  masked: number;
  tags: string[];
  error: string | undefined;
  rules: Set<string> | undefined;
}

/**
 * A statement that may start COPY FROM STDIN: the server then reads copy messages only (it
 * ignores Sync and Flush, and fails the COPY on anything else) until CopyDone or CopyFail. What
 * a Sync sent meanwhile means depends on whether the COPY started, so the sidecar keeps count.
 */
interface CopyInGate {
  /** how many COPY FROM STDIN it can start at most (a query may hold several) */
  readonly max: number;
  /** CopyInResponses received for it */
  starts: number;
  /** CopyDone and CopyFail forwarded since it was */
  ends: number;
  /** its answer is complete: it starts no more */
  done: boolean;
}

type Expect =
  | { readonly k: 'query'; readonly rec: StatementRecord | undefined; readonly refusal: Buffer | undefined; plan: RowPlan | undefined; fields: Described | undefined; failed: boolean; readonly copy?: CopyState; readonly pol: Enforcement | undefined; readonly lineage?: QueryLineage | undefined; results?: number; gate?: CopyInGate }
  /** the description of a COPY … TO STDOUT's columns, asked just before it (Parse, Describe, Close, Sync; every answer swallowed) */
  | { readonly k: 'probe'; readonly copy: CopyState }
  /** `set`: what this Parse made the name stand for (undefined: nothing); `previous`: what it stood for before */
  | { readonly k: 'parse'; readonly refusal: Buffer | undefined; readonly name: string | undefined; readonly previous: Prepared | undefined; readonly set?: Prepared | undefined }
  | { readonly k: 'bind'; readonly name?: string; readonly portal?: Portal; readonly previous?: Portal | undefined }
  /** `of`: the statement or portal described, as it was when the Describe was sent (names are reused) */
  | { readonly k: 'describe'; readonly of: { fields?: Described | null; describing?: boolean } | undefined; readonly swallow: boolean }
  | { readonly k: 'execute'; readonly rec: StatementRecord | undefined; readonly refusal: Buffer | undefined; readonly portal: Portal | undefined; plan: RowPlan | undefined; readonly pol: Enforcement | undefined; gate?: CopyInGate }
  | { readonly k: 'close' }
  | { readonly k: 'sync' };

interface Prepared {
  readonly sql: string;
  readonly decision: Decision;
  /** the decision recorded for each Execute (Allow: it was decided, and approved, at Parse) */
  executeDecision?: Decision;
  /** the text as recorded (masked), made at the first Execute */
  recordedText?: string;
  /** held at Parse and approved */
  readonly approved: boolean;
  /** result columns from a Describe of the statement (text format); null: returns no rows */
  fields?: Described | null;
}

interface Portal {
  readonly statementName: string;
  readonly statement: Prepared | undefined;
  readonly resultFormats: readonly number[];
  /** result columns from a Describe of the portal (actual formats); null: returns no rows */
  fields: Described | null | undefined;
  /** a Describe of this portal is on its way: its answer gives the columns before any row */
  describing: boolean;
}

type Phase = 'startup' | 'connecting' | 'ready' | 'closed';

/** A COPY … TO STDOUT whose rows column rules apply to: its format and its columns' plan. */
interface CopyState {
  readonly format: CopyFormat;
  readonly header: boolean;
  headerSeen: boolean;
  plan: RowPlan | undefined;
  /** what the COPY's columns derive from (masking follows it) */
  readonly lineage?: StatementLineage | undefined;
}

/** Texts that may hold COPY … FROM STDIN (a substring match: cheap, may over-match, never misses the keyword). */
const MAY_COPY = /copy/gi;

/** A Flush: asks the server for what it has buffered (it answers nothing itself; ignored in COPY). */
const FLUSH = frontendMessage('H', Buffer.alloc(0));

/** Code the sidecar cannot see ran: every name may have changed. */
const EVERY_NAME: readonly NameEffect[] = [
  { kind: 'statement', name: null },
  { kind: 'portal', name: null },
];
const OPAQUE_DECISION: Decision = { decision: 'Allow', classes: ['opaque'], rules: [], message: '' };

/** The prepared statement the sidecar describes a COPY's columns with (closed right after). */
const COPY_PROBE = 'airlock.copy_columns';

/** A RowDescription: its bytes (the key of the caches) and its columns. */
interface Described {
  readonly key: string;
  readonly fields: readonly FieldInfo[];
}

/** Bound of the per-session caches of row descriptions and row plans. */
const DESCRIBED_CACHE = 256;

function fieldsOf(buf: Buffer, start: number, end: number): FieldInfo[] {
  const n = buf.readInt16BE(start + 5);
  const out: FieldInfo[] = [];
  let pos = start + 7;
  for (let i = 0; i < n; i++) {
    const nul = buf.indexOf(0, pos);
    if (nul < 0 || nul + 19 > end) throw new ProtocolError('upstream sent a malformed RowDescription');
    pos = nul + 1;
    out.push({ tableID: buf.readUInt32BE(pos), columnID: buf.readInt16BE(pos + 4), dataTypeID: buf.readUInt32BE(pos + 6), format: buf.readInt16BE(pos + 16) });
    pos += 18;
  }
  return out;
}

export class PgSession {
  readonly #agent: Socket;
  readonly #deps: SessionDeps;
  readonly #log: Logger;
  readonly #parser = new FrontendParser();
  #phase: Phase = 'startup';
  #up: Socket | TLSSocket | undefined;
  #rec: RecordingWriter | undefined;
  #recordingOpen = true;
  #id = '';
  #client: string;
  /** what new statements are decided with: read from the policy source at the start of each (#refresh) */
  #pol: Enforcement | undefined;
  /** the upstream this session is logged in to, and its catalogue connection */
  #target: UpstreamConfig | undefined;
  #catalog: Catalog | undefined;
  /** the search_path's schemas when not the default, and the session's own decider for it (decisions depend on it) */
  #searchPath: string[] | undefined;
  #decider: { readonly bundle: PolicyBundle; readonly decider: SqlDecider } | undefined;
  readonly #startTime = new Date();

  // frontend side
  #held = false;
  #inbox: Framed[] = [];
  #statementSeq = 0;
  readonly #statements = new Map<string, Prepared>();
  readonly #portals = new Map<string, Portal>();
  /**
   * One text, one meaning. The lexing settings are known (pinned, checked in every
   * ParameterStatus) only at a ReadyForQuery with nothing forwarded after it: `#awaitingReady`
   * counts the Queries and Syncs forwarded whose ReadyForQuery has not been read, `#batchRan`
   * says a Bind or Execute (which may run user code, e.g. a function calling set_config) was
   * forwarded since the last Sync or Query. A statement text is forwarded in an unknown state
   * only when it reads alike in every state (see readsAlike); otherwise it waits for the
   * ReadyForQuery, or is refused when no ReadyForQuery can come before it (same batch).
   */
  #awaitingReady = 0;
  #batchRan = false;
  /** the session waits for ReadyForQuery before processing the agent's messages */
  #waitingReady = false;
  /** pinned settings the server has reported (the greeting must report each) */
  readonly #pinnedSeen = new Set<string>();
  /** the last statement forwarded that may start COPY FROM STDIN, while the server may be in one */
  #copyIn: CopyInGate | undefined;
  /** the session waits for the server to tell whether a COPY FROM STDIN started */
  #waitingCopy = false;
  /** an extended-protocol message was forwarded since the last Sync */
  #inBatch = false;
  /**
   * The server skips every message up to the next Sync (a message of the batch failed, and every
   * message forwarded before the error was read has been accounted as skipped): what is
   * forwarded until a Sync is skipped too.
   */
  #skipUntilSync = false;
  /** SQL cursors declared over queries that run no code the sidecar cannot see (fetching them changes no names) */
  readonly #plainCursors = new Set<string>();

  // backend side
  readonly #expects: Expect[] = [];
  #head = 0;
  #upCarry: Buffer | undefined;
  #upBlocked = false;
  #copyOut = false;
  /** a binary COPY TO STDOUT the policy did not stop is being discarded (it cannot be masked) */
  #binaryCopyOut = false;
  #agentOut: Buffer[] = [];
  #fatalSeen = false;

  /** row descriptions seen, by their bytes; row plans by description (and result formats) */
  readonly #described = new Map<string, Described>();
  readonly #plans = new Map<string, { readonly plan: RowPlan; readonly until: number }>();
  /** rewritten messages for the agent, built one after the other */
  readonly #slab = new Slab();
  /** what result columns derive from, per statement shape */
  readonly #lineage = new SessionLineage();

  // counters for session_end
  #counts = { statements: 0, blocked: 0, approvals: 0, rows: 0, masked: 0 };
  #abort = new AbortController();
  #closed: Promise<void>;
  #resolveClosed: () => void = () => undefined;

  constructor(agent: Socket, deps: SessionDeps) {
    this.#agent = agent;
    this.#deps = deps;
    this.#client = `${agent.remoteAddress ?? '?'}:${String(agent.remotePort ?? 0)}`;
    this.#log = deps.log.child({ connection: deps.policy.connection.name, client: this.#client });
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    agent.setNoDelay(true);
    agent.on('data', (d: Buffer) => {
      this.#onAgentData(d);
    });
    agent.on('error', (err) => {
      this.#log.debug('agent socket error', { error: err.message });
    });
    agent.on('close', () => {
      this.#end('the agent disconnected');
    });
    agent.on('drain', () => {
      this.#resumeUpstream();
    });
  }

  /** resolves when both sides are closed and the recording is closed */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** the upstream the session is logged in to (cancel requests go there) */
  get target(): UpstreamConfig | undefined {
    return this.#target;
  }

  get #bundle(): PolicyBundle | undefined {
    return this.#pol?.bundle;
  }

  get #masking(): boolean {
    return masks(this.#pol?.bundle);
  }

  /** The policy for the next statement: the source's current one (a swapped bundle applies from here on). */
  #refresh(): void {
    const p = this.#deps.policy.current();
    const before = this.#pol;
    if (p === before) return;
    const target = this.#target;
    if (p === undefined && target === undefined) return;
    this.#pol = p ?? { bundle: undefined, upstream: target as UpstreamConfig, unavailable: 'the connection is no longer served' };
    if (this.#pol.bundle?.digest !== before?.bundle?.digest) this.#log.info('policy swapped', { session: this.#id, digest: this.#pol.bundle?.digest ?? null });
  }

  /** The session as an observer sees it (session reports). */
  #observed(): ObservedSession {
    const rec = this.#rec;
    return {
      id: this.#id,
      connection: this.#deps.policy.connection.name,
      protocol: 'postgres',
      startTime: this.#startTime,
      recordingPath: rec?.path,
      counts: () => ({ statements: this.#counts.statements, rows: this.#counts.rows, maskedValues: this.#counts.masked, blocked: this.#counts.blocked, approvals: this.#counts.approvals }),
      head: () => ({ hash: rec?.head, records: rec?.records ?? 0 }),
      closed: this.#closed,
    };
  }

  /** Ends the session from the proxy (shutdown). */
  shutdown(reason: string): void {
    if (this.#phase === 'ready') {
      this.#agent.write(errorResponse({ severity: 'FATAL', code: '57P01', message: `airlock: ${reason}` }));
    }
    this.#agent.end();
    this.#end(reason);
  }

  // ---------------------------------------------------------------- agent → upstream

  #onAgentData(chunk: Buffer): void {
    if (this.#phase === 'closed') return;
    let msgs: Framed[];
    try {
      msgs = this.#parser.push(chunk);
    } catch (err) {
      this.#fatal(err);
      return;
    }
    if (this.#phase === 'startup') {
      this.#startup(msgs);
      return;
    }
    if (this.#phase !== 'ready' || this.#held) {
      this.#inbox.push(...msgs);
      return;
    }
    this.#process(msgs);
  }

  #startup(msgs: Framed[]): void {
    for (let i = 0; i < msgs.length; i++) {
      const m = (msgs[i] as Framed).message;
      if (m.type === 'SSLRequest' || m.type === 'GSSENCRequest') {
        this.#agent.write(Buffer.from('N'));
        continue;
      }
      if (m.type === 'CancelRequest') {
        this.#deps.onCancel(m.processId, m.secretKey);
        this.#phase = 'closed';
        this.#agent.end();
        this.#resolveClosed();
        return;
      }
      if (m.type === 'StartupMessage') {
        this.#phase = 'connecting';
        this.#agent.pause();
        this.#inbox.push(...msgs.slice(i + 1));
        this.#connect(m).then(
          () => {
            this.#phase = 'ready';
            this.#continue();
          },
          (err: unknown) => {
            this.#fatal(err);
          },
        );
        return;
      }
      this.#fatal(new ProtocolError(`expected a startup packet, got ${m.type}`));
      return;
    }
  }

  async #connect(m: Extract<FrontendMessage, { type: 'StartupMessage' }>): Promise<void> {
    const major = m.protocolVersion >>> 16;
    if (major !== 3) throw new ProtocolError(`unsupported frontend protocol ${major}.${m.protocolVersion & 0xffff}: Airlock speaks 3.0`);
    const pol = this.#deps.policy.current();
    if (pol === undefined) throw new SidecarError('PolicyUnavailable', noPolicyMessage(this.#deps.policy, undefined, 'the connection is refused'));
    this.#pol = pol;
    const { upstream, bundle } = pol;
    this.#target = upstream;
    this.#catalog = this.#deps.catalogFor(upstream);
    const { recordingsDir } = this.#deps;

    // the recording comes first: without it, nothing is forwarded (failurePolicy Closed)
    try {
      const files = sessionFiles(recordingsDir, upstream.name);
      this.#id = files.id;
      this.#rec = new RecordingWriter(`${files.base}.jsonl`);
    } catch (err) {
      if (upstream.failurePolicy === 'Closed') throw err;
      this.#log.warn('recording disabled: the recorder failed and failurePolicy is Open', { error: (err as Error).message });
    }
    this.#record({
      type: 'session_start',
      session: this.#id,
      connection: upstream.name,
      namespace: upstream.namespace,
      protocol: 'postgres',
      client: this.#client,
      ...(this.#deps.pod !== undefined ? { pod: this.#deps.pod } : {}),
      ...(this.#deps.serviceAccount !== undefined ? { serviceAccount: this.#deps.serviceAccount } : {}),
      agentUser: m.parameters['user'] ?? '',
      agentDatabase: m.parameters['database'] ?? '',
      applicationName: m.parameters['application_name'] ?? '',
      target: `${upstream.host}:${String(upstream.port)}/${upstream.database ?? ''}`,
      upstreamUser: upstream.credentials.username,
      policyDigest: bundle?.digest ?? null,
    });
    let params: Record<string, string>;
    try {
      params = upstreamParameters(m.parameters);
      const path = params['search_path'];
      if (path !== undefined && bundle !== undefined) {
        // unqualified names are looked for in these schemas: a table named without its schema counts as each
        const schemas = searchPathSchemas(path, upstream.credentials.username) ?? [];
        this.#searchPath = schemas.length > 0 ? schemas : ['public'];
      }
    } catch (err) {
      this.#record({ type: 'startup_refused', error: (err as Error).message });
      this.#flushRecord();
      throw err;
    }
    this.#flushRecord();
    this.#log.info('session started', { session: this.#id, user: m.parameters['user'], application: m.parameters['application_name'] });
    if (this.#rec !== undefined) this.#deps.sessions?.started(this.#observed());

    let conn: UpstreamConnection;
    try {
      // reads reuse one buffer: what is kept past a read is copied (the carry), and the upstream
      // stays paused while a write to the agent is queued (the agent socket's high-water mark is 1)
      conn = await connectUpstream(upstream, { parameters: params, reuseReadBuffer: true });
    } catch (err) {
      this.#record({ type: 'upstream_error', error: (err as Error).message });
      throw err;
    }
    if (this.#phase === 'closed') {
      conn.socket.destroy();
      return;
    }
    this.#up = conn.socket;
    this.#deps.keys.register(conn.processId, conn.secretKey, this);
    const greet: Buffer[] = [];
    const unknown = Object.keys(m.parameters).filter((k) => k.startsWith('_pq_.'));
    if ((m.protocolVersion & 0xffff) !== 0 || unknown.length > 0) {
      // NegotiateProtocolVersion: we speak 3.0 and none of the protocol extensions
      const body = Buffer.from(unknown.map((u) => `${u}\0`).join(''), 'utf8');
      const head = Buffer.alloc(8);
      head.writeInt32BE(PROTOCOL_3_0, 0);
      head.writeInt32BE(unknown.length, 4);
      greet.push(frontendMessage('v', Buffer.concat([head, body])));
    }
    greet.push(authenticationOk());
    this.#agent.write(Buffer.concat(greet));
    conn.read((d) => {
      this.#onUpstreamData(d);
    });
    conn.socket.on('error', (err: Error) => {
      this.#log.warn('upstream socket error', { error: err.message });
    });
    conn.socket.on('close', () => {
      this.#onUpstreamClose();
    });
    conn.socket.on('drain', () => {
      if (!this.#held) this.#agent.resume();
    });
    // the greeting (ParameterStatus, BackendKeyData, ReadyForQuery) goes through the normal path
    this.#expects.push({ k: 'sync' });
    this.#awaitingReady = 1;
    this.#onUpstreamData(conn.greeting);
    // the greeting may have ended the session (a pinned setting reported otherwise)
    if ((this.#phase as Phase) === 'closed') return;
    const missing = Object.keys(PINNED).filter((k) => !this.#pinnedSeen.has(k));
    if (missing.length > 0) throw new SidecarError('NotPermitted', `the server did not report ${missing.join(', ')}: Airlock cannot check that it reads statements as the sidecar does`);
    conn.socket.resume();
  }

  /** Processes frontend messages in order; stops at a held statement and continues when it is decided. */
  #process(msgs: Framed[]): void {
    const out: Buffer[] = [];
    for (let i = 0; i < msgs.length; i++) {
      if (this.#phase !== 'ready') return;
      const f = msgs[i] as Framed;
      const copying = this.#duringCopyIn(f.message);
      if (copying === 'wait') {
        // whether the server reads this message or ignores it depends on whether the COPY started:
        // the answer is asked for now (a Flush, which the server ignores in COPY) and waited for
        out.push(FLUSH);
        this.#writeUp(out);
        this.#held = true;
        this.#waitingCopy = true;
        this.#agent.pause();
        this.#inbox = msgs.slice(i).concat(this.#inbox);
        return;
      }
      if (copying !== undefined) {
        if (copying !== DROP) out.push(copying);
        continue;
      }
      if (this.#mustWaitForReady(f.message)) {
        this.#writeUp(out);
        this.#held = true;
        this.#waitingReady = true;
        this.#agent.pause();
        this.#inbox = msgs.slice(i).concat(this.#inbox);
        return;
      }
      let hold: Promise<Buffer> | undefined;
      try {
        hold = this.#handle(f, out);
      } catch (err) {
        this.#writeUp(out);
        this.#fatal(err);
        return;
      }
      if (hold !== undefined) {
        this.#writeUp(out);
        this.#held = true;
        this.#agent.pause();
        this.#inbox = msgs.slice(i + 1).concat(this.#inbox);
        hold.then(
          (bytes) => {
            this.#held = false;
            this.#writeUp([bytes]);
            this.#continue();
          },
          (err: unknown) => {
            this.#fatal(err);
          },
        );
        return;
      }
    }
    this.#writeUp(out);
  }

  /**
   * A frontend message while the server may be reading COPY FROM STDIN data: undefined when it
   * is handled as usual (copy messages always are: the COPY's data, already decided; the server
   * ignores them outside COPY), 'wait' when it is not known yet whether the COPY started, DROP
   * for a Sync or Flush during the COPY (the server ignores them there), or the CopyFail that
   * replaces any other message (PostgreSQL fails the COPY on it and does not run it).
   */
  #duringCopyIn(m: FrontendMessage): Buffer | typeof DROP | 'wait' | undefined {
    if (m.type === 'CopyData' || m.type === 'CopyDone' || m.type === 'CopyFail' || m.type === 'Terminate') return undefined;
    const g = this.#copyIn;
    if (g === undefined) return undefined;
    const state = this.#copyInState(g);
    if (state === 'none') return undefined;
    if (state === 'unknown') return 'wait';
    if (m.type === 'Sync' || m.type === 'Flush') return DROP;
    g.ends += 1;
    this.#log.debug('a message during COPY FROM STDIN fails the COPY', { session: this.#id, message: m.type });
    return frontendMessage('f', Buffer.from(`airlock: a ${m.type} message arrived during COPY FROM STDIN; the COPY is failed and the message is not run\0`, 'utf8'));
  }

  /** Whether the server is in a COPY FROM STDIN the agent has not ended, as far as the sidecar can tell. */
  #copyInState(g: CopyInGate): 'none' | 'started' | 'unknown' {
    if (g.done || g.ends >= g.max) {
      if (this.#copyIn === g) this.#copyIn = undefined;
      return 'none';
    }
    return g.starts > g.ends ? 'started' : 'unknown';
  }

  /** The server told more of a COPY FROM STDIN: messages that waited for it go on. */
  #copyInChanged(): void {
    const g = this.#copyIn;
    if (!this.#waitingCopy || (g !== undefined && this.#copyInState(g) === 'unknown')) return;
    this.#waitingCopy = false;
    queueMicrotask(() => {
      if (this.#phase !== 'ready') return;
      this.#held = false;
      this.#continue();
    });
  }

  /** A gate for a statement forwarded that may start up to `max` COPY FROM STDIN (none: undefined). */
  #copyInGate(max: number): CopyInGate | undefined {
    if (max <= 0) return undefined;
    const g: CopyInGate = { max, starts: 0, ends: 0, done: false };
    this.#copyIn = g;
    return g;
  }

  /**
   * SQL that may have dropped or redefined what protocol names stand for (names.ts): what the
   * sidecar knew of them is forgotten, so they are handled as names made with SQL.
   */
  #namesChangedBy(sql: string, d: Decision): void {
    let effects: readonly NameEffect[];
    if (d.classes.includes('opaque')) effects = EVERY_NAME;
    else if (!NAME_WORDS.test(sql)) return;
    else effects = nameEffects(classifySql(sql));
    for (const e of effects) {
      switch (e.kind) {
        case 'statement':
          if (e.name !== null) this.#statements.delete(e.name);
          else for (const name of [...this.#statements.keys()]) if (name !== '') this.#statements.delete(name);
          break;
        case 'portal':
          if (e.name !== null) {
            this.#portals.delete(e.name);
            this.#plainCursors.delete(e.name);
          } else {
            this.#portals.clear();
            this.#plainCursors.clear();
          }
          break;
        case 'declare':
          this.#portals.delete(e.name);
          this.#plainCursors.add(e.name);
          break;
        case 'fetch':
          // the cursor's query runs on: code in it may change any name
          if (e.name === null || !this.#plainCursors.has(e.name)) this.#namesChangedBy('', OPAQUE_DECISION);
          break;
      }
    }
  }

  /**
   * A statement text that must not be forwarded before the ReadyForQuery of what is in flight:
   * the lexing state is unknown, the text does not read alike in every state, and a
   * ReadyForQuery will come (a Query or Sync is in flight and no Bind or Execute since).
   */
  #mustWaitForReady(m: FrontendMessage): boolean {
    if (m.type !== 'Query' && m.type !== 'Parse') return false;
    return this.#awaitingReady > 0 && !this.#batchRan && !readsAlike(m.sql);
  }

  /**
   * For a COPY … TO STDOUT whose rows column rules may apply to: the messages that describe its
   * columns just before it runs (a prepared statement of the same columns, described and
   * closed, then Sync), or the decision refusing it when its layout cannot be known.
   */
  #copyProbe(d: Decision): { state: CopyState; bytes: Buffer } | Decision | undefined {
    const c = d.copyOut;
    if (c === undefined || d.decision === 'Block' || !this.#masking || this.#bundle?.columnRules !== true) return undefined;
    let why: string | undefined;
    if (this.#inBatch) why = 'it follows extended-protocol messages not ended by a Sync (send Sync first)';
    else if (c === 'unknown') why = 'it shares its query with other statements';
    else if (c.format === 'binary') why = 'it is in the binary format';
    else if (!c.plain) why = 'it sets options that change how rows are written (delimiter, null, quote, …)';
    else if (c.probe === undefined) why = 'its columns cannot be found';
    if (why !== undefined || c === 'unknown' || c.format === 'binary' || c.probe === undefined || this.#inBatch) {
      return { ...d, decision: 'Block', rules: [], message: `COPY TO STDOUT cannot apply column masking rules here: ${why ?? 'unknown layout'}; send it alone with the default text or csv options, or use SELECT` };
    }
    const name = Buffer.from(`S${COPY_PROBE}\0`, 'utf8');
    const bytes = Buffer.concat([parseMessage(COPY_PROBE, c.probe), frontendMessage('D', name), frontendMessage('C', name), frontendMessage('S', Buffer.alloc(0))]);
    return { state: { format: c.format, header: c.header, headerSeen: false, plan: undefined, lineage: this.#lineageOf(c.probe)?.statements[0] }, bytes };
  }

  /** A text that must be refused: the lexing state is unknown and no ReadyForQuery can come before it. */
  #lexingUnknown(sql: string): Decision | undefined {
    if (!this.#batchRan || readsAlike(sql)) return undefined;
    return {
      decision: 'Block',
      classes: [],
      rules: [],
      message:
        'a statement with non-ASCII characters or backslashes cannot follow a Bind or Execute in the same batch: what ran before it may have changed how the server reads text; send Sync first',
    };
  }

  /** Processes what arrived while the session waited (login, a held statement) and reads on. */
  #continue(): void {
    const rest = this.#inbox;
    this.#inbox = [];
    this.#agent.resume();
    this.#process(rest);
  }

  #writeUp(out: Buffer[]): void {
    const up = this.#up;
    if (up === undefined || up.destroyed) return;
    if (!writeAll(up, out)) this.#agent.pause();
  }

  /** Handles one frontend message: pushes the bytes to forward, or returns a promise when the statement is held. */
  #handle(f: Framed, out: Buffer[]): Promise<Buffer> | undefined {
    const m = f.message;
    if (m.type === 'Query' || m.type === 'Parse' || m.type === 'Execute' || m.type === 'FunctionCall') this.#refresh();
    switch (m.type) {
      case 'Query': {
        let d = this.#lexingUnknown(m.sql) ?? this.#decide(m.sql, m.invalidUtf8 === true);
        const copy = this.#copyProbe(d);
        if (copy instanceof Object && 'decision' in copy) d = copy;
        const probe = copy instanceof Object && 'state' in copy ? copy : undefined;
        this.#awaitingReady += 1;
        this.#batchRan = false;
        const rec = this.#statementRecord(m.sql, 'simple', d, {}, undefined, this.#statementsOf(m.sql));
        const expectQuery = (refusal: Buffer | undefined): void => {
          if (refusal === undefined && probe !== undefined) {
            this.#awaitingReady += 1;
            this.#expect({ k: 'probe', copy: probe.state });
          }
          const gate = refusal === undefined ? this.#copyInGate(m.sql.match(MAY_COPY)?.length ?? 0) : undefined;
          this.#expect({ k: 'query', rec: rec.rec, refusal, plan: undefined, fields: undefined, failed: false, ...(refusal === undefined && probe !== undefined ? { copy: probe.state } : {}), pol: this.#pol, lineage: this.#lineageOf(m.sql), ...(gate !== undefined ? { gate } : {}) });
          if (refusal === undefined) this.#namesChangedBy(m.sql, d);
        };
        if (d.decision === 'RequireApproval' && rec.ok) {
          return this.#hold(m.sql, d, rec.rec, probe === undefined ? f.raw : Buffer.concat([probe.bytes, f.raw]), queryMessage(REFUSED_SQL), expectQuery);
        }
        const refusal = this.#refusalFor(d, rec);
        expectQuery(refusal);
        if (refusal === undefined && probe !== undefined) out.push(probe.bytes);
        out.push(refusal === undefined ? f.raw : queryMessage(REFUSED_SQL));
        return undefined;
      }
      case 'Parse': {
        let d = this.#lexingUnknown(m.sql) ?? this.#decide(m.sql, m.invalidUtf8 === true);
        if (d.copyOut !== undefined && d.decision !== 'Block' && this.#masking && this.#bundle?.columnRules === true) {
          d = { ...d, decision: 'Block', rules: [], message: 'COPY TO STDOUT through the extended protocol cannot apply column masking rules; send it as a simple query, or use SELECT' };
        }
        this.#inBatch = true;
        const previous = this.#statements.get(m.name);
        if (d.decision === 'Allow') {
          const set: Prepared = { sql: m.sql, decision: d, approved: false };
          this.#statements.set(m.name, set);
          this.#expect({ k: 'parse', refusal: undefined, name: m.name, previous, set });
          out.push(f.raw);
          return undefined;
        }
        const rec = this.#statementRecord(m.sql, 'parse', d, { statement: m.name }, undefined, this.#statementsOf(m.sql));
        this.#statements.delete(m.name);
        if (d.decision === 'RequireApproval' && rec.ok) {
          return this.#hold(m.sql, d, rec.rec, f.raw, parseMessage(m.name, REFUSED_SQL), (refusal) => {
            let set: Prepared | undefined;
            if (refusal === undefined) this.#statements.set(m.name, (set = { sql: m.sql, decision: d, approved: true }));
            this.#expect({ k: 'parse', refusal, name: m.name, previous, set });
          });
        }
        this.#expect({ k: 'parse', refusal: this.#refusalFor(d, rec), name: m.name, previous });
        out.push(parseMessage(m.name, REFUSED_SQL));
        return undefined;
      }
      case 'Bind': {
        this.#batchRan = true;
        this.#inBatch = true;
        const previous = this.#portals.get(m.portal);
        const portal: Portal = { statementName: m.statement, statement: this.#statements.get(m.statement), resultFormats: m.resultFormats, fields: undefined, describing: false };
        this.#portals.set(m.portal, portal);
        this.#expect({ k: 'bind', name: m.portal, portal, previous });
        out.push(f.raw);
        return undefined;
      }
      case 'Describe': {
        this.#inBatch = true;
        const of = m.target === 'S' ? this.#statements.get(m.name) : this.#portals.get(m.name);
        if (of !== undefined && 'describing' in of) of.describing = true;
        this.#expect({ k: 'describe', of, swallow: false });
        out.push(f.raw);
        return undefined;
      }
      case 'Execute': {
        this.#batchRan = true;
        this.#inBatch = true;
        const portal = this.#portals.get(m.portal);
        if (portal === undefined) {
          // A portal the agent never bound: a cursor made with SQL DECLARE (decided then), or none
          // (PostgreSQL answers with its own error). Executing it is a FETCH; its rows are
          // described first, like those of any re-executed portal, so they are masked.
          const cursor: Portal = { statementName: '', statement: undefined, resultFormats: [], fields: undefined, describing: false };
          const sql = `FETCH ${m.maxRows > 0 ? String(m.maxRows) : 'ALL'} FROM ${quoteIdent(m.portal)}`;
          const d = this.#decide(sql);
          const rec = this.#statementRecord(sql, 'execute', d, { portal: m.portal });
          const refusal = this.#refusalFor(d, rec);
          if (refusal !== undefined) {
            this.#expect({ k: 'parse', refusal, name: undefined, previous: undefined });
            out.push(parseMessage('', REFUSED_SQL));
            return undefined;
          }
          this.#describeBeforeExecute(cursor, m.portal, out);
          // a name made with SQL may stand for anything (even a COPY parsed by protocol, forgotten since)
          const gate = this.#copyInGate(1);
          this.#expect({ k: 'execute', rec: rec.rec, refusal: undefined, portal: cursor, plan: undefined, pol: this.#pol, ...(gate !== undefined ? { gate } : {}) });
          this.#namesChangedBy(sql, d);
          out.push(f.raw);
          return undefined;
        }
        const st = portal.statement;
        // A statement parsed through Airlock was decided (and approved) at Parse. One prepared with
        // SQL PREPARE is executed like SQL EXECUTE: opaque, decided now.
        const sql = st?.sql ?? `EXECUTE ${quoteIdent(portal.statementName)}`;
        let d: Decision;
        if (st !== undefined) d = st.executeDecision ??= st.decision.decision === 'Allow' ? st.decision : { ...st.decision, decision: 'Allow' };
        else d = this.#decide(sql);
        const extra: Record<string, string> = { portal: m.portal };
        if (portal.statementName !== '') extra['statement'] = portal.statementName;
        if (st?.approved === true) extra['approved'] = 'at Parse';
        let recorded: string | undefined;
        if (st !== undefined) recorded = st.recordedText ??= this.#recordedText(sql);
        const rec = this.#statementRecord(sql, 'execute', d, extra, recorded);
        const describe = (into: Buffer[]): void => {
          this.#describeBeforeExecute(portal, m.portal, into);
        };
        if (d.decision === 'RequireApproval' && rec.ok) {
          return this.#hold(sql, d, rec.rec, f.raw, parseMessage('', REFUSED_SQL), (refusal) => {
            if (refusal !== undefined) this.#expect({ k: 'parse', refusal, name: undefined, previous: undefined });
            else {
              const before: Buffer[] = [];
              describe(before);
              this.#writeUp(before);
              const gate = this.#copyInGate(st === undefined ? 1 : (sql.match(MAY_COPY)?.length ?? 0) > 0 ? 1 : 0);
              this.#expect({ k: 'execute', rec: rec.rec, refusal: undefined, portal, plan: undefined, pol: this.#pol, ...(gate !== undefined ? { gate } : {}) });
              this.#namesChangedBy(sql, d);
            }
          });
        }
        const refusal = this.#refusalFor(d, rec);
        if (refusal !== undefined) {
          // refused via a Parse that fails: PostgreSQL then discards the batch up to Sync, as for any error
          this.#expect({ k: 'parse', refusal, name: undefined, previous: undefined });
          out.push(parseMessage('', REFUSED_SQL));
          return undefined;
        }
        describe(out);
        const gate = this.#copyInGate(st === undefined ? 1 : (sql.match(MAY_COPY)?.length ?? 0) > 0 ? 1 : 0);
        this.#expect({ k: 'execute', rec: rec.rec, refusal: undefined, portal, plan: undefined, pol: this.#pol, ...(gate !== undefined ? { gate } : {}) });
        this.#namesChangedBy(sql, d);
        out.push(f.raw);
        return undefined;
      }
      case 'Close': {
        this.#inBatch = true;
        if (m.target === 'S') this.#statements.delete(m.name);
        else this.#portals.delete(m.name);
        this.#expect({ k: 'close' });
        out.push(f.raw);
        return undefined;
      }
      case 'Sync': {
        this.#awaitingReady += 1;
        this.#batchRan = false;
        this.#inBatch = false;
        this.#expect({ k: 'sync' });
        out.push(f.raw);
        return undefined;
      }
      case 'Flush':
        out.push(f.raw);
        return undefined;
      case 'CopyData':
      case 'CopyDone':
      case 'CopyFail':
        // Forwarded in every state: drivers may stream COPY data right after the Query, before
        // CopyInResponse, and PostgreSQL ignores copy messages outside COPY (after a failed COPY
        // the client is still sending). The data is the input of a COPY FROM STDIN already decided.
        if (m.type !== 'CopyData' && this.#copyIn !== undefined) this.#copyIn.ends += 1;
        out.push(f.raw);
        return undefined;
      case 'FunctionCall': {
        // the fast-path interface calls a function by OID: nothing to decide on, always refused
        const d: Decision = { decision: 'Block', classes: ['opaque'], rules: [], message: 'the fast-path function call interface is not allowed through Airlock' };
        const rec = this.#statementRecord('(fast-path function call)', 'simple', d, {});
        this.#awaitingReady += 1;
        this.#batchRan = false;
        this.#expect({ k: 'query', rec: rec.rec, refusal: this.#refusalFor(d, rec), plan: undefined, fields: undefined, failed: false, pol: this.#pol });
        out.push(queryMessage(REFUSED_SQL));
        return undefined;
      }
      case 'Terminate':
        this.#writeUp(out);
        this.#end('the agent ended the session');
        return undefined;
      default:
        throw new ProtocolError(`unexpected ${m.type} message after startup`);
    }
  }

  #decide(sql: string, invalidUtf8 = false): Decision {
    if (invalidUtf8) {
      return {
        decision: 'Block',
        classes: [],
        rules: [],
        message: 'statement text is not valid UTF-8: Airlock reads statements as UTF-8 (client_encoding is pinned to UTF8) and refuses bytes it cannot read as the server would',
      };
    }
    const bundle = this.#bundle;
    if (bundle === undefined) {
      return { decision: 'Block', classes: [], rules: [], message: noPolicyMessage(this.#deps.policy, this.#pol, 'every statement is refused') };
    }
    const decider = this.#deciderOf(bundle);
    const d = decider.decide(sql);
    if (d.binaryCopyOut === true && this.#masking && d.decision !== 'Block') {
      // refused before it runs: once the server streams binary COPY data, nothing can mask it
      return { ...d, decision: 'Block', rules: [], message: 'binary COPY TO STDOUT cannot be masked; use the text or csv format' };
    }
    // MaskingPolicy unknownLineage: Refuse: a result column whose lineage is unknown is not run
    const unknown = bundle.unknownLineage === 'Refuse' && this.#masking && d.decision !== 'Block' ? unknownLineageRefusal(this.#lineageOf(sql)) : undefined;
    if (unknown !== undefined) return { ...d, decision: 'Block', rules: [], message: unknown };
    const copies = this.#masking && d.decision !== 'Block' ? maskedWriteRefusal(bundle.masker, this.#lineageOf(sql)) : undefined;
    if (copies !== undefined) return { ...d, decision: 'Block', rules: [], message: copies };
    return d;
  }

  #deciderOf(bundle: PolicyBundle): SqlDecider {
    const searchPath = this.#searchPath;
    if (searchPath === undefined) return this.#deps.deciderFor(bundle);
    if (this.#decider?.bundle !== bundle) this.#decider = { bundle, decider: new SqlDecider(bundle, { searchPath }) };
    return this.#decider.decider;
  }

  /**
   * Appends and flushes the statement's record (write-ahead). ok=false when the recorder failed and
   * the connection's failurePolicy is Closed: the statement must then be refused.
   */
  #statementRecord(sql: string, via: 'simple' | 'parse' | 'execute', d: Decision, extra: Readonly<Record<string, string>>, recorded?: string, parts?: readonly StatementPart[]): { rec: StatementRecord | undefined; ok: boolean; error?: unknown } {
    const id = ++this.#statementSeq;
    this.#counts.statements += 1;
    const text = recorded ?? this.#recordedText(sql);
    try {
      this.#recordJson(statementJson(id, via, extra, text, d, parts));
      this.#flushRecord();
    } catch (err) {
      if (this.#pol?.upstream.failurePolicy !== 'Open') return { rec: undefined, ok: false, error: err };
      this.#log.warn('recording failed; forwarding anyway (failurePolicy Open)', { error: (err as Error).message });
    }
    return { rec: { id, rows: 0, masked: 0, tags: [], error: undefined, rules: undefined }, ok: true };
  }

  /**
   * The statements of a query with several, each with its classes and its text masked (what
   * recordings and approval requests show one by one); undefined for a single statement.
   */
  #statementsOf(sql: string): readonly StatementPart[] | undefined {
    return statementParts(sql, (text) => this.#recordedText(text));
  }

  /** A statement's text as recorded and shown to reviewers: masked like results. */
  #recordedText(sql: string): string {
    const masker = this.#bundle?.masker;
    return masker === undefined ? sql : masker.maskText(sql).text;
  }

  /** Re-executed statements may come without a Describe: asks for the portal's columns, just before its Execute. */
  #describeBeforeExecute(portal: Portal, name: string, into: Buffer[]): void {
    if (portal.fields !== undefined || portal.describing || portal.statement?.fields !== undefined || !this.#masking) return;
    portal.describing = true;
    this.#expect({ k: 'describe', of: portal, swallow: true });
    into.push(frontendMessage('D', Buffer.from(`P${name}\0`, 'utf8')));
  }

  /** The ErrorResponse that replaces a refused statement's, or undefined when it may run. */
  #refusalFor(d: Decision, rec: { ok: boolean; error?: unknown }): Buffer | undefined {
    let err: unknown;
    if (!rec.ok) err = rec.error instanceof RecorderError ? rec.error : new RecorderError(String(rec.error));
    else if (d.decision === 'Allow') return undefined;
    else err = new SidecarError('Blocked', d.message, d.rules);
    this.#counts.blocked += 1;
    const r = pgReply(err);
    return errorResponse({ severity: 'ERROR', code: r.sqlState, message: r.message, ...(r.detail !== undefined ? { detail: r.detail } : {}) });
  }

  /**
   * Holds a statement for approval. Resolves with the bytes to forward: the statement itself when
   * approved, the failing replacement when not (its ErrorResponse is swapped for the refusal).
   */
  async #hold(sql: string, d: Decision, rec: StatementRecord | undefined, raw: Buffer, refusedRaw: Buffer, expect: (refusal: Buffer | undefined) => void): Promise<Buffer> {
    const { approvals } = this.#deps;
    const upstream: UpstreamConfig = this.#pol?.upstream ?? (this.#target as UpstreamConfig);
    const approval = d.approval;
    let outcome: ApprovalOutcome;
    let refusal: Buffer | undefined;
    try {
      // every statement of the query, each with its classes: what is approved is all that runs
      const text = this.#recordedText(sql);
      const parts = this.#statementsOf(sql);
      const ticket: ApprovalTicket = {
        connection: upstream.name,
        namespace: upstream.namespace,
        session: this.#id,
        protocol: 'postgres',
        command: reviewCommand(text, parts),
        statements: parts ?? [{ text, classes: [...d.classes].sort() }],
        rules: d.rules,
        message: d.message,
        approvers: approval?.approvers ?? { users: [], groups: [] },
        required: approval?.required ?? 1,
        timeoutSeconds: approval?.timeoutSeconds ?? 600,
        requireReason: approval?.requireReason ?? false,
        ...(this.#deps.pod !== undefined ? { pod: this.#deps.pod } : {}),
        ...(this.#deps.serviceAccount !== undefined ? { serviceAccount: this.#deps.serviceAccount } : {}),
      };
      const pending = await approvals.request(ticket);
      this.#counts.approvals += 1;
      this.#record({ type: 'approval', statement: rec?.id, request: pending.name, phase: 'Pending', expiresAt: pending.expiresAt.toISOString() });
      this.#flushRecord();
      this.#agent.write(noticeResponse({ severity: 'NOTICE', code: '01000', message: `airlock: ${d.message}; waiting for approval until ${pending.expiresAt.toISOString()}`, hint: pending.where }));
      outcome = await pending.outcome(this.#abort.signal);
    } catch (err) {
      this.#log.error('approval backend unavailable', { error: (err as Error).message });
      const r = pgReply(err instanceof SidecarError ? err : new SidecarError('ApprovalUnavailable', `the approval could not be requested: ${(err as Error).message}`));
      refusal = errorResponse({ severity: 'ERROR', code: r.sqlState, message: r.message });
      this.#counts.blocked += 1;
      this.#record({ type: 'approval', statement: rec?.id, phase: 'Unavailable', error: (err as Error).message });
      expect(refusal);
      return refusedRaw;
    }
    const reviewers = outcome.decisions.map((x) => x.user);
    const reason = outcome.decisions.map((x) => x.reason).find((x) => x !== undefined);
    this.#record({ type: 'approval', statement: rec?.id, phase: outcome.phase, reviewers, ...(reason !== undefined ? { reason } : {}) });
    try {
      this.#flushRecord();
    } catch (err) {
      if (upstream.failurePolicy === 'Closed') {
        refusal = this.#refusalFor(d, { ok: false, error: err });
        expect(refusal);
        return refusedRaw;
      }
    }
    if (outcome.phase === 'Approved') {
      expect(undefined);
      return raw;
    }
    const what = outcome.phase === 'Denied' ? `denied by ${reviewers.join(', ') || 'a reviewer'}${reason !== undefined ? `: ${reason}` : ''}` : outcome.phase === 'Expired' ? 'no decision before the approval timed out' : 'the request was withdrawn';
    const err = new SidecarError(outcome.phase === 'Expired' ? 'ApprovalExpired' : 'ApprovalDenied', `statement not approved (${what})`, d.rules);
    const r = pgReply(err);
    this.#counts.blocked += 1;
    refusal = errorResponse({ severity: 'ERROR', code: r.sqlState, message: r.message, ...(r.detail !== undefined ? { detail: r.detail } : {}) });
    expect(refusal);
    return refusedRaw;
  }

  #expect(e: Expect): void {
    if (this.#skipUntilSync) {
      if (e.k !== 'sync') {
        this.#skipped(e);
        return;
      }
      this.#skipUntilSync = false;
    }
    this.#expects.push(e);
  }

  // ---------------------------------------------------------------- upstream → agent

  #onUpstreamData(chunk: Buffer): void {
    if (this.#phase === 'closed') return;
    const buf = this.#upCarry === undefined ? chunk : Buffer.concat([this.#upCarry, chunk]);
    this.#upCarry = undefined;
    this.#drainUpstream(buf, 0);
  }

  /** Processes whole messages from `buf[pos..]`; may stop for a catalogue lookup and continue later. */
  #drainUpstream(buf: Buffer, startPos: number): void {
    let pos = startPos;
    let runStart = pos;
    const out = this.#agentOut;
    const n = buf.length;
    // once a message of this chunk is rewritten (in the slab), unchanged runs after it are copied
    // next to it: many masked rows stay one slice to write, not two per row
    let copying = false;
    const slab = this.#slab;
    try {
      while (n - pos >= 5) {
        const len = buf.readUInt32BE(pos + 1);
        if (len < 4 || len > MAX_BACKEND_MESSAGE) throw new ProtocolError(`upstream sent a message of length ${len}`);
        const end = pos + 1 + len;
        if (end > n) break;
        const type = buf[pos] ?? 0;
        // the common case first: a DataRow that needs no change stays in the pass-through run
        const r = this.#onBackend(type, buf, pos, end);
        if (r !== undefined) {
          if (pos > runStart) out.push(copying ? slab.copy(buf, runStart, pos) : buf.subarray(runStart, pos));
          if (r instanceof Promise) {
            this.#upBlocked = true;
            this.#up?.pause();
            this.#flushAgent();
            r.then(
              () => {
                this.#upBlocked = false;
                this.#drainUpstream(buf, pos);
                this.#resumeUpstream();
              },
              (err: unknown) => {
                this.#fatal(err);
              },
            );
            return;
          }
          if (r !== DROP) {
            out.push(r);
            copying = true;
          }
          runStart = end;
        }
        pos = end;
      }
    } catch (err) {
      this.#flushAgent();
      this.#fatal(err);
      return;
    }
    if (pos > runStart) out.push(copying ? slab.copy(buf, runStart, pos) : buf.subarray(runStart, pos));
    // a copy: `buf` may be the upstream's reused read buffer
    if (pos < n) this.#upCarry = Buffer.from(buf.subarray(pos));
    this.#flushAgent();
  }

  #resumeUpstream(): void {
    if (!this.#upBlocked && !this.#agent.writableNeedDrain) this.#up?.resume();
  }

  /**
   * Writes what is ready for the agent. The agent socket's high-water mark is 1, so a write
   * reports backpressure whenever it is not done at once; the upstream pauses only when bytes
   * are really still queued (they may point into its reused read buffer) until 'drain'.
   */
  #flushAgent(): void {
    if (!writeAll(this.#agent, this.#agentOut) && this.#agent.writableLength > 0) this.#up?.pause();
  }

  #current(): Expect | undefined {
    return this.#expects[this.#head];
  }

  #pop(): Expect | undefined {
    const e = this.#expects[this.#head];
    if (e === undefined) return undefined;
    this.#head += 1;
    if ((e.k === 'query' || e.k === 'execute') && e.gate !== undefined && !e.gate.done) {
      // answered: it starts no COPY any more
      e.gate.done = true;
      this.#copyInChanged();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#expects.length) {
      this.#expects.splice(0, this.#head);
      this.#head = 0;
    }
    return e;
  }

  /**
   * One backend message. Returns undefined to pass it through unchanged, a Buffer to send
   * instead, DROP to swallow it, or a promise when it must wait for the catalogue.
   */
  #onBackend(type: number, buf: Buffer, start: number, end: number): Buffer | typeof DROP | Promise<void> | undefined {
    const probe = this.#expects[this.#head];
    if (probe?.k === 'probe' && (type === 0x31 || type === 0x74 || type === 0x6e || type === 0x33 || type === 0x54 || type === 0x45 || type === 0x5a)) {
      return this.#onProbe(probe, type, buf, start, end);
    }
    switch (type) {
      case 0x44 /* D DataRow */: {
        const e = this.#current();
        if (e === undefined || (e.k !== 'query' && e.k !== 'execute')) return undefined;
        let plan = e.plan;
        if (plan === undefined) {
          const p = this.#planFor(e);
          if (p instanceof Promise) return p;
          plan = p;
        }
        if (plan.fieldCount >= 0 && buf.readInt16BE(start + 5) !== plan.fieldCount) {
          // not the layout the rows were described with: what they hold is not known
          throw new SidecarError('NotPermitted', 'a result row does not have the columns its statement was described with (its name was redefined where the sidecar cannot see); the session ends rather than pass it unmasked');
        }
        const rec = e.rec;
        if (rec !== undefined) rec.rows += 1;
        this.#counts.rows += 1;
        if (plan.columns.length === 0) return undefined;
        const r = maskDataRow(plan, buf, start, end, this.#slab);
        if (r.message === undefined) return undefined;
        if (rec !== undefined) {
          rec.masked += r.masked;
          for (const rule of r.rules) (rec.rules ??= new Set()).add(rule);
        }
        this.#counts.masked += r.masked;
        return r.message;
      }
      case 0x54 /* T RowDescription */: {
        const fields = this.#describedOf(buf, start, end);
        const e = this.#current();
        if (e?.k === 'describe') {
          this.#pop();
          if (e.of !== undefined) e.of.fields = fields;
          return e.swallow ? DROP : undefined;
        }
        if (e?.k === 'query') {
          e.fields = fields;
          e.plan = undefined;
          const p = this.#planFor(e);
          if (p instanceof Promise) return p;
        }
        return undefined;
      }
      case 0x43 /* C CommandComplete */:
      case 0x49 /* I EmptyQueryResponse */: {
        const tag = type === 0x43 ? buf.toString('utf8', start + 5, end - 1) : '';
        const e = this.#current();
        this.#copyOut = false;
        const refused = this.#binaryCopyOut ? this.#binaryCopyRefusal() : undefined;
        if (refused !== undefined && (e?.k === 'query' || e?.k === 'execute') && e.rec !== undefined) e.rec.error = 'refused';
        if (e?.k === 'query') {
          if (tag !== '') e.rec?.tags.push(tag);
          e.results = (e.results ?? 0) + 1;
          e.fields = undefined;
          e.plan = undefined;
        } else if (e?.k === 'execute') {
          this.#pop();
          if (tag !== '') e.rec?.tags.push(tag);
          this.#finishResult(e.rec);
        }
        return refused;
      }
      case 0x73 /* s PortalSuspended */: {
        const e = this.#current();
        if (e?.k === 'execute') {
          this.#pop();
          e.rec?.tags.push('(portal suspended)');
          this.#finishResult(e.rec);
        }
        return undefined;
      }
      case 0x31 /* 1 ParseComplete */:
      case 0x32 /* 2 BindComplete */:
      case 0x33 /* 3 CloseComplete */:
        this.#pop();
        return undefined;
      case 0x74 /* t ParameterDescription */:
        return this.#current()?.k === 'describe' && (this.#current() as { swallow: boolean }).swallow ? DROP : undefined;
      case 0x6e /* n NoData */: {
        const e = this.#current();
        if (e?.k === 'describe') {
          this.#pop();
          if (e.of !== undefined) e.of.fields = null;
          return e.swallow ? DROP : undefined;
        }
        return undefined;
      }
      case 0x45 /* E ErrorResponse */:
        return this.#onError(buf, start, end);
      case 0x5a /* Z ReadyForQuery */: {
        this.#copyOut = false;
        this.#binaryCopyOut = false;
        this.#answeredReady();
        // everything up to the Sync or Query that this answers is done
        for (let e = this.#pop(); e !== undefined; e = this.#pop()) {
          if (e.k === 'query') {
            this.#finishResult(e.rec);
            break;
          }
          if (e.k === 'execute') this.#finishResult(e.rec, 'not run: an earlier message of the batch failed');
          if (e.k === 'sync') break;
        }
        return undefined;
      }
      case 0x47 /* G CopyInResponse */: {
        const e = this.#current();
        if (e?.k === 'query' || e?.k === 'execute') {
          // every statement that may start a COPY has a gate (MAY_COPY never misses); one made here keeps count anyway
          const g = e.gate ?? (e.gate = { max: Infinity, starts: 0, ends: 0, done: false });
          this.#copyIn ??= g;
          g.starts += 1;
          this.#copyInChanged();
        }
        return undefined;
      }
      case 0x48 /* H CopyOutResponse */: {
        this.#copyOut = true;
        if (buf[start + 5] === 1 && this.#masking) {
          // not stopped before it ran (the policy refuses every binary COPY TO STDOUT it sees): its
          // rows are discarded and its end is an ErrorResponse; the session goes on
          this.#binaryCopyOut = true;
          return DROP;
        }
        return undefined;
      }
      case 0x64 /* d CopyData */: {
        if (this.#binaryCopyOut) return DROP;
        if (!this.#copyOut) return undefined;
        const e = this.#current();
        const bundle = e !== undefined && (e.k === 'query' || e.k === 'execute') ? e.pol?.bundle : this.#bundle;
        const masker = bundle?.masker;
        if (masker === undefined || !masks(bundle)) return undefined;
        const text = buf.toString('utf8', start + 5, end);
        const rec = e !== undefined && (e.k === 'query' || e.k === 'execute') ? e.rec : undefined;
        const copy = e?.k === 'query' ? e.copy : undefined;
        if (copy !== undefined && (!copy.header || copy.headerSeen)) {
          // column rules apply: each row is read into its columns and masked like a DataRow
          if (rec !== undefined) rec.rows += 1;
          if (copy.plan === undefined) throw new SidecarError('NotPermitted', 'COPY rows arrived but their columns could not be described; the session ends rather than pass them unmasked');
          const m = maskCopyRow(copy.format, text, copy.plan);
          if (m === undefined) throw new SidecarError('NotPermitted', 'a COPY row does not have the layout of its columns; the session ends rather than pass it unmasked');
          if (m.row === undefined) return undefined;
          if (rec !== undefined) {
            rec.masked += m.masked;
            for (const rule of m.rules) (rec.rules ??= new Set()).add(rule);
          }
          this.#counts.masked += m.masked;
          return frontendMessage('d', Buffer.from(m.row, 'utf8'));
        }
        if (copy !== undefined) copy.headerSeen = true;
        const r = masker.maskText(text);
        if (rec !== undefined) rec.rows += 1;
        if (r.masked === 0) return undefined;
        if (rec !== undefined) rec.masked += r.masked;
        this.#counts.masked += r.masked;
        return frontendMessage('d', Buffer.from(r.text, 'utf8'));
      }
      case 0x4e /* N NoticeResponse */:
        return this.#maskNotice('N', buf, start, end, this.#echoesMasked(this.#current()));
      case 0x53 /* S ParameterStatus */:
        return this.#onParameterStatus(buf, start, end);
      case 0x41 /* A NotificationResponse */:
        return this.#maskNotification(buf, start, end);
      case 0x63 /* c CopyDone */:
        return this.#binaryCopyOut ? DROP : undefined;
      case 0x4b /* K BackendKeyData */:
      case 0x76 /* v NegotiateProtocolVersion */:
        return undefined;
      default:
        throw new ProtocolError(`upstream sent an unexpected "${String.fromCharCode(type)}" message`);
    }
  }

  /** The answers to a COPY's column description: swallowed; the RowDescription gives the rows' plan. */
  #onProbe(e: Extract<Expect, { k: 'probe' }>, type: number, buf: Buffer, start: number, end: number): typeof DROP | Promise<void> | undefined {
    switch (type) {
      case 0x54 /* T RowDescription */: {
        const bundle = this.#bundle;
        const catalog = this.#catalog;
        if (bundle === undefined || catalog === undefined) return DROP;
        const fields = fieldsOf(buf, start, end);
        const tables = [...new Set(fields.filter((f) => f.tableID !== 0).map((f) => f.tableID))];
        if (tables.length > 0 && !catalog.has(tables)) return catalog.load(tables);
        const lineage = bundle.columnRules ? rowLineageOf(e.copy.lineage, catalog) : undefined;
        if (lineage instanceof Promise) return lineage;
        e.copy.plan = planRow(fields, bundle.masker, (t, c) => catalog.cached(t, c), lineage);
        return DROP;
      }
      case 0x45 /* E ErrorResponse */: {
        // the COPY's own query will fail the same way; its rows, if any, are refused (no plan)
        const severity = readNoticeFields(buf.subarray(start, end)).fields.find(([c]) => c === 0x53)?.[1];
        return severity === 'FATAL' || severity === 'PANIC' ? undefined : DROP;
      }
      case 0x5a /* Z ReadyForQuery */:
        this.#pop();
        this.#answeredReady();
        return DROP;
      default:
        return DROP;
    }
  }

  /**
   * A setting's value reported by the server. A pinned lexing setting that changed (a function
   * calling set_config, anything the policy could not see) ends the session: the statements
   * after it could be read differently by the server. Values are masked (application_name can
   * be set by a statement).
   */
  #onParameterStatus(buf: Buffer, start: number, end: number): Buffer | undefined {
    const [name, value] = twoStrings(buf, start + 5, end, 'ParameterStatus');
    const violation = pinnedViolation(name, value);
    if (violation !== undefined) throw new SidecarError('NotPermitted', violation);
    if (PINNED[name] !== undefined) this.#pinnedSeen.add(name);
    const masked = this.#maskText(value);
    if (masked === undefined) return undefined;
    return frontendMessage('S', Buffer.from(`${name}\0${masked}\0`, 'utf8'));
  }

  /** A NOTIFY's channel and payload, masked like results. */
  #maskNotification(buf: Buffer, start: number, end: number): Buffer | undefined {
    const [channel, payload] = twoStrings(buf, start + 9, end, 'NotificationResponse');
    const c = this.#maskText(channel);
    const p = this.#maskText(payload);
    if (c === undefined && p === undefined) return undefined;
    return frontendMessage('A', Buffer.concat([buf.subarray(start + 5, start + 9), Buffer.from(`${c ?? channel}\0${p ?? payload}\0`, 'utf8')]));
  }

  /** `text` masked, or undefined when nothing in it is masked. */
  #maskText(text: string): string | undefined {
    const masker = this.#bundle?.masker;
    if (masker === undefined || !this.#masking) return undefined;
    const r = masker.maskText(text);
    if (r.masked === 0) return undefined;
    this.#counts.masked += r.masked;
    return r.text;
  }

  /** The columns of a RowDescription, parsed once per distinct description. */
  #describedOf(buf: Buffer, start: number, end: number): Described {
    const key = buf.toString('latin1', start + 5, end);
    let d = this.#described.get(key);
    if (d === undefined) {
      d = { key, fields: fieldsOf(buf, start, end) };
      if (this.#described.size >= DESCRIBED_CACHE) this.#described.clear();
      this.#described.set(key, d);
    }
    return d;
  }

  /**
   * The row plan of the current result; a promise when column names must be looked up first.
   * Plans are remembered per row description (and result formats) until the catalogue entries
   * they were made from expire.
   */
  #planFor(e: Extract<Expect, { k: 'query' } | { k: 'execute' }>): RowPlan | Promise<void> {
    const bundle = e.pol?.bundle;
    const catalog = this.#catalog;
    if (bundle === undefined || !masks(bundle) || catalog === undefined) return (e.plan = PASS_THROUGH);
    let described: Described | null | undefined;
    let formats: readonly number[] | undefined;
    if (e.k === 'query') described = e.fields;
    else {
      const portal = e.portal;
      if (portal?.fields !== undefined) described = portal.fields;
      else if (portal?.statement?.fields !== undefined) {
        described = portal.statement.fields;
        formats = portal.resultFormats;
      }
    }
    if (described === null) return (e.plan = PASS_THROUGH);
    if (described === undefined) {
      // rows without a known shape: nothing tells which columns they hold, so nothing is passed
      throw new SidecarError('NotPermitted', 'result rows arrived without a row description; they cannot be masked');
    }
    // computed columns are masked by what they derive from (sql/lineage.ts)
    const statement = bundle.columnRules ? this.#statementLineage(e) : undefined;
    const lineage = statement === null ? undefined : rowLineageOf(statement, catalog);
    if (lineage instanceof Promise) return lineage;
    // plans depend on the bundle too: a swapped one makes its own
    const key = `${bundle.digest}\u0000${formats === undefined ? described.key : `${described.key}\u0000${formats.join(',')}`}${lineage === undefined ? '' : `\u0000${lineage.key ?? ''}`}`;
    const now = Date.now();
    const cached = this.#plans.get(key);
    if (cached !== undefined && now < cached.until) return (e.plan = cached.plan);
    const fields = formats === undefined ? described.fields : withFormats(described.fields, formats);
    const tables = [...new Set(fields.filter((f) => f.tableID !== 0).map((f) => f.tableID))];
    if (tables.length > 0 && !catalog.has(tables)) return catalog.load(tables);
    const plan = planRow(fields, bundle.masker, (t, c) => catalog.cached(t, c), lineage);
    if (this.#plans.size >= DESCRIBED_CACHE) this.#plans.clear();
    this.#plans.set(key, { plan, until: tables.length > 0 ? catalog.validUntil(tables) : Infinity });
    return (e.plan = plan);
  }

  /** The lineage of a query's statements (column rules only: others do not need it). */
  #lineageOf(sql: string | undefined): QueryLineage | undefined {
    if (sql === undefined || this.#bundle?.columnRules !== true) return undefined;
    return this.#lineage.of(sql, this.#searchPath);
  }

  /**
   * The lineage of the statement a result belongs to: the query's statement by its position,
   * the prepared statement of a portal; undefined when unknown (FETCH, SQL EXECUTE): computed
   * columns are then opaque; null when there is nothing to follow (no column rules).
   */
  #statementLineage(e: Extract<Expect, { k: 'query' } | { k: 'execute' }>): StatementLineage | undefined | null {
    if (e.k === 'query') return e.lineage === undefined ? null : e.lineage.statements[e.results ?? 0];
    const sql = e.portal?.statement?.sql;
    return sql === undefined ? undefined : this.#lineageOf(sql)?.statements[0];
  }

  /** true when an error or notice of the current statement may quote values of masked columns */
  #echoesMasked(e: Expect | undefined): boolean {
    const bundle = e !== undefined && (e.k === 'query' || e.k === 'execute') ? e.pol?.bundle : undefined;
    if (bundle === undefined || !bundle.columnRules || (e?.k !== 'query' && e?.k !== 'execute')) return false;
    if (e.k === 'query') return e.lineage !== undefined && readsMasked(bundle.masker, e.lineage.statements);
    return readsMasked(bundle.masker, [this.#statementLineage(e) ?? undefined]);
  }

  #onError(buf: Buffer, start: number, end: number): Buffer | undefined {
    const e = this.#current();
    this.#binaryCopyOut = false;
    const echoes = this.#echoesMasked(e);
    let replaced: Buffer | undefined;
    const severity = readNoticeFields(buf.subarray(start, end)).fields.find(([c]) => c === 0x53)?.[1];
    if (severity === 'FATAL' || severity === 'PANIC') this.#fatalSeen = true;
    if (e === undefined) return this.#maskNotice('E', buf, start, end);
    this.#copyOut = false;
    if (e.k === 'query') {
      replaced = e.refusal;
      if (e.rec !== undefined && e.rec.error === undefined) e.rec.error = e.refusal !== undefined ? 'refused' : (readNoticeFields(buf.subarray(start, end)).fields.find(([c]) => c === 0x43)?.[1] ?? 'error');
      e.failed = true;
      return replaced ?? this.#maskNotice('E', buf, start, end, echoes);
    }
    // extended protocol: the failing message, then PostgreSQL discards everything up to Sync
    this.#pop();
    if (e.k === 'parse') {
      replaced = e.refusal;
      this.#undoParse(e, false);
    }
    if (e.k === 'bind') this.#undoBind(e, false);
    if (e.k === 'execute') {
      if (e.rec !== undefined) e.rec.error = readNoticeFields(buf.subarray(start, end)).fields.find(([c]) => c === 0x43)?.[1] ?? 'error';
      this.#finishResult(e.rec);
    }
    if (e.k === 'sync') {
      // an error answering a Sync (e.g. a failed COMMIT): ReadyForQuery still follows
      this.#head -= 1;
    } else {
      for (let x = this.#current(); x !== undefined && x.k !== 'sync'; x = this.#current()) {
        this.#pop();
        this.#skipped(x);
      }
      // no Sync forwarded yet: what the agent sends until its Sync is skipped as well
      if (this.#current() === undefined) this.#skipUntilSync = true;
    }
    return replaced ?? this.#maskNotice('E', buf, start, end, echoes);
  }

  /**
   * A message PostgreSQL skipped (an earlier message of its batch failed: everything up to Sync
   * is discarded, a Query too): what it would have made is not made, a statement is not run,
   * and no ReadyForQuery answers a skipped Query.
   */
  #skipped(x: Expect): void {
    switch (x.k) {
      case 'execute':
      case 'query':
        // no ReadyForQuery answers a skipped Query
        if (x.k === 'query') this.#answeredReady();
        this.#finishResult(x.rec, 'not run: an earlier message of the batch failed');
        if (x.gate !== undefined && !x.gate.done) {
          x.gate.done = true;
          this.#copyInChanged();
        }
        break;
      case 'describe':
        // a Describe the sidecar counted on for a portal's columns gives none: the next Execute asks again
        if (x.of !== undefined && 'describing' in x.of) x.of.describing = false;
        break;
      case 'probe':
        break;
      case 'parse':
        this.#undoParse(x, true);
        break;
      case 'bind':
        this.#undoBind(x, true);
        break;
      default:
        break;
    }
  }

  /** A Query or Sync in flight is answered (or skipped): when none is left, what waited for the lexing state goes on. */
  #answeredReady(): void {
    if (this.#awaitingReady > 0) this.#awaitingReady -= 1;
    if (this.#awaitingReady === 0 && this.#waitingReady) {
      // the lexing state is known again (every ParameterStatus before this was checked)
      this.#waitingReady = false;
      queueMicrotask(() => {
        if (this.#phase !== 'ready') return;
        this.#held = false;
        this.#continue();
      });
    }
  }

  /**
   * A Parse that failed (or was skipped) made nothing: its name stands for what it stood for
   * before (a failed Parse of the unnamed statement has dropped the previous one), unless a
   * later message has redefined the name since.
   */
  #undoParse(e: Extract<Expect, { k: 'parse' }>, skipped: boolean): void {
    if (e.name === undefined || this.#statements.get(e.name) !== e.set) return;
    if (e.previous !== undefined && (skipped || e.name !== '')) this.#statements.set(e.name, e.previous);
    else this.#statements.delete(e.name);
  }

  /** The same for a Bind: a failed one may have dropped the unnamed portal, so that name is forgotten. */
  #undoBind(e: Extract<Expect, { k: 'bind' }>, skipped: boolean): void {
    if (e.name === undefined || this.#portals.get(e.name) !== e.portal) return;
    if (e.previous !== undefined && (skipped || e.name !== '')) this.#portals.set(e.name, e.previous);
    else this.#portals.delete(e.name);
  }

  /** The ErrorResponse that ends a binary COPY TO STDOUT whose rows were discarded. */
  #binaryCopyRefusal(): Buffer {
    this.#binaryCopyOut = false;
    this.#counts.blocked += 1;
    const r = pgReply(new SidecarError('NotPermitted', 'binary COPY TO STDOUT cannot be masked; its rows were not sent: use the text or csv format'));
    return errorResponse({ severity: 'ERROR', code: r.sqlState, message: r.message });
  }

  /** Error and notice texts can quote values (a unique violation's key): they are masked like results. */
  #maskNotice(type: 'E' | 'N', buf: Buffer, start: number, end: number, echoes = false): Buffer | undefined {
    const masker = this.#bundle?.masker;
    if (masker === undefined || !this.#masking) return undefined;
    const f = readNoticeFields(buf.subarray(start, end));
    const changed = { count: 0 };
    // a statement reading masked columns: what may quote their values is withheld (rows.ts)
    const withheld = echoes ? withholdEchoes(f.fields) : undefined;
    if (withheld !== undefined) {
      changed.count += 1;
      this.#counts.masked += 1;
    }
    const fields = (withheld ?? f.fields).map(([c, v]): readonly [number, string] => {
      // every field but the severity (S, V) and the SQLSTATE (C): message, detail, hint, where,
      // internal query, schema/table/column/type/constraint names, file, routine, …
      if (c === 0x53 || c === 0x56 || c === 0x43) return [c, v];
      const r = masker.maskText(v);
      if (r.masked === 0) return [c, v];
      changed.count += 1;
      this.#counts.masked += r.masked;
      return [c, r.text];
    });
    return changed.count > 0 ? writeNoticeFields(type, { fields }) : undefined;
  }

  #finishResult(rec: StatementRecord | undefined, skipped?: string): void {
    if (rec === undefined) return;
    this.#recordJson(resultJson(rec.id, rec.rows, rec.masked, rec.rules, rec.tags, skipped ?? rec.error));
  }

  #onUpstreamClose(): void {
    if (this.#phase === 'closed') return;
    if (!this.#fatalSeen && this.#phase === 'ready') {
      this.#flushAgent();
      this.#agent.write(errorResponse({ severity: 'FATAL', code: '08006', message: `airlock: the upstream server ${this.#target?.host ?? '?'}:${String(this.#target?.port ?? 0)} closed the connection` }));
    }
    this.#agent.end();
    this.#end('the upstream closed the connection');
  }

  // ---------------------------------------------------------------- recording and teardown

  #record(body: Record<string, unknown> & { type: string }): void {
    const rec = this.#rec;
    if (rec === undefined || !this.#recordingOpen) return;
    rec.append(body);
  }

  /** #record of a body serialised by hand (no seq, prev, hash or time field) */
  #recordJson(json: string): void {
    const rec = this.#rec;
    if (rec === undefined || !this.#recordingOpen) return;
    rec.appendJson(json);
  }

  #flushRecord(): void {
    this.#rec?.flush();
  }

  /** A session-ending error: tell the agent why (when it is still listening) and close both sides. */
  #fatal(err: unknown): void {
    if (this.#phase === 'closed') return;
    const r = pgReply(err);
    this.#log.warn('session ended with an error', { error: err instanceof Error ? err.message : String(err), code: r.sqlState });
    if (!this.#agent.destroyed) {
      this.#flushAgent();
      this.#agent.end(errorResponse({ severity: 'FATAL', code: r.sqlState, message: r.message, ...(r.detail !== undefined ? { detail: r.detail } : {}) }));
    }
    this.#up?.destroy();
    this.#end(r.message);
  }

  #end(reason: string): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#abort.abort();
    this.#deps.keys.unregister(this);
    const up = this.#up;
    if (up !== undefined && !up.destroyed && !up.writableEnded) {
      up.end(frontendMessage('X', Buffer.alloc(0)));
      setTimeout(() => up.destroy(), 1000).unref();
    }
    // statements still waiting for an answer
    for (let e = this.#pop(); e !== undefined; e = this.#pop()) {
      if (e.k === 'query' || e.k === 'execute') this.#finishResult(e.rec, e.rec?.rows === 0 ? 'no result: the session ended' : 'incomplete: the session ended');
    }
    const rec = this.#rec;
    if (rec !== undefined) {
      try {
        this.#record({ type: 'session_end', reason, ...this.#counts });
        rec.close();
      } catch (err) {
        this.#log.error('could not close the recording', { error: (err as Error).message, path: rec.path });
      }
      this.#recordingOpen = false;
    }
    this.#log.info('session ended', { session: this.#id, reason, ...this.#counts });
    if (!this.#agent.destroyed) {
      this.#agent.end();
      setTimeout(() => this.#agent.destroy(), 1000).unref();
    }
    this.#resolveClosed();
  }
}

const DROP: unique symbol = Symbol('drop');

/** a bundle with masking policies: results are masked */
function masks(bundle: PolicyBundle | undefined): boolean {
  return (bundle?.maskingPolicies.length ?? 0) > 0;
}

/**
 * Writes and empties `out`; false when the socket wants a drain. Buffers that are consecutive
 * slices of one chunk (messages forwarded unchanged) are written as one slice: usually the
 * whole batch is one write, without corking; otherwise the slices go in one corked batch (one
 * system call either way).
 */
function writeAll(socket: Socket | TLSSocket, out: Buffer[]): boolean {
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

/** The two C strings of a backend message body from `from` (ParameterStatus, NotificationResponse). */
function twoStrings(buf: Buffer, from: number, end: number, what: string): [string, string] {
  const firstEnd = buf.indexOf(0, from);
  const secondEnd = firstEnd < 0 ? -1 : buf.indexOf(0, firstEnd + 1);
  if (firstEnd < 0 || secondEnd < 0 || secondEnd >= end) throw new ProtocolError(`upstream sent a malformed ${what}`);
  return [buf.toString('utf8', from, firstEnd), buf.toString('utf8', firstEnd + 1, secondEnd)];
}

/**
 * True when a statement text reads alike whatever the lexing settings: only ASCII (in every
 * client encoding PostgreSQL supports, a byte below 0x80 that is not inside a multi-byte
 * character is that ASCII character, and only bytes from 0x80 start one) and no backslash (the
 * only character standard_conforming_strings and backslash_quote give another meaning).
 */
export function readsAlike(sql: string): boolean {
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c >= 0x80 || c === 0x5c) return false;
  }
  return true;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
