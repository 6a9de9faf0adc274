/**
 * One proxied PostgreSQL client connection: the socket shell. The agent side is terminated
 * here (startup, no password asked: the listener is pod-local); the upstream side is a fresh
 * connection logged in with the Secret's credentials. This file owns the sockets, the
 * recording file, backpressure and the session's life; the messages themselves go through the
 * pure pipeline: frontend-flow.ts (each statement decided, recorded write-ahead, forwarded,
 * refused or held), backend-flow.ts (each answer matched to its statement, masked, recorded),
 * sharing flow-state.ts; the startup phase's pure parts are in greeting.ts.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PolicyBundle, SqlDecider } from '@airlock/policy';
import type { ApprovalPort } from '../approval/port.ts';
import { Enforcer } from '../enforce/enforcer.ts';
import type { ObservedSession, PolicySource, SessionObserver } from '../proxy.ts';
import type { UpstreamConfig } from '../config.ts';
import { SidecarError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { pgReply } from '../replies.ts';
import { BackendFlow, DROP } from './backend-flow.ts';
import { errorResponse } from './backend.ts';
import type { Catalog } from './catalog.ts';
import { ProtocolError } from './errors.ts';
import { FlowState } from './flow-state.ts';
import { FrontendFlow } from './frontend-flow.ts';
import { FrontendParser, type Framed } from './frontend.ts';
import { checkProtocol, greeting, sessionStartRecord, type StartupMessage } from './greeting.ts';
import { PgRecording } from './recording.ts';
import { writeAll } from './write.ts';
import { PINNED, searchPathSchemas, upstreamParameters } from './startup.ts';
import { connectUpstream, type UpstreamConnection } from './upstream.ts';
import { frontendMessage, MAX_BACKEND_MESSAGE } from './wire.ts';

export { readsAlike } from './lexing.ts';

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

type Phase = 'startup' | 'connecting' | 'ready' | 'closed';

/** A Flush: asks the server for what it has buffered (it answers nothing itself; ignored in COPY). */
const FLUSH = frontendMessage('H', Buffer.alloc(0));

export class PgSession {
  readonly #agent: Socket;
  readonly #deps: SessionDeps;
  readonly #log: Logger;
  readonly #parser = new FrontendParser();
  #phase: Phase = 'startup';
  #up: Socket | TLSSocket | undefined;
  readonly #rec: PgRecording;
  readonly #client: string;
  /** the upstream this session is logged in to */
  #target: UpstreamConfig | undefined;
  readonly #startTime = new Date();
  /** the enforce step, holding the policy by reference; the message pipeline and its state */
  readonly #enforcer: Enforcer;
  readonly #s: FlowState;
  readonly #front: FrontendFlow;
  readonly #back: BackendFlow;

  // frontend side: a held statement, or a wait for the server, stops processing
  #held = false;
  #inbox: Framed[] = [];

  // backend side
  #upCarry: Buffer | undefined;
  #upBlocked = false;
  #agentOut: Buffer[] = [];

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
    this.#rec = new PgRecording(this.#log, () => this.#enforcer.current?.upstream.failurePolicy);
    this.#enforcer = new Enforcer({
      protocol: 'postgres',
      policy: deps.policy,
      approvals: deps.approvals,
      recorder: this.#rec.recorder,
      connection: deps.policy.connection,
      pod: deps.pod,
      serviceAccount: deps.serviceAccount,
      log: this.#log,
    });
    this.#s = new FlowState(this.#enforcer, {
      recordJson: (json) => {
        this.#rec.recordJson(json);
      },
      resume: () => {
        queueMicrotask(() => {
          if (this.#phase !== 'ready') return;
          this.#held = false;
          this.#continue();
        });
      },
    });
    this.#front = new FrontendFlow(this.#s, {
      deciderFor: deps.deciderFor,
      log: this.#log,
      session: () => this.#rec.id,
      flushRecord: () => {
        this.#rec.flush();
      },
      toAgent: (bytes) => {
        this.#agent.write(bytes);
      },
      toServer: (bytes) => {
        this.#writeUp(bytes);
      },
      signal: this.#abort.signal,
    });
    this.#back = new BackendFlow(this.#s);
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

  /** The session as an observer sees it (session reports). */
  #observed(): ObservedSession {
    const rec = this.#rec;
    const counts = this.#s.counts;
    return {
      id: rec.id,
      connection: this.#deps.policy.connection.name,
      protocol: 'postgres',
      startTime: this.#startTime,
      recordingPath: rec.path,
      counts: () => ({ statements: counts.statements, rows: counts.rows, maskedValues: counts.masked, blocked: counts.blocked, approvals: counts.approvals }),
      head: () => rec.head(),
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

  async #connect(m: StartupMessage): Promise<void> {
    checkProtocol(m);
    const pol = this.#enforcer.refresh();
    if (pol === undefined) throw new SidecarError('PolicyUnavailable', this.#enforcer.noPolicy('the connection is refused'));
    const { upstream, bundle } = pol;
    this.#target = upstream;
    this.#s.plans.catalog = this.#deps.catalogFor(upstream);

    // the recording comes first: without it, nothing is forwarded (failurePolicy Closed)
    const rec = this.#rec;
    rec.open(this.#deps.recordingsDir, upstream.name, upstream.failurePolicy);
    rec.record(sessionStartRecord(m, upstream, { session: rec.id, client: this.#client, pod: this.#deps.pod, serviceAccount: this.#deps.serviceAccount, policyDigest: bundle?.digest ?? null }));
    let params: Record<string, string>;
    try {
      params = upstreamParameters(m.parameters);
      const path = params['search_path'];
      if (path !== undefined && bundle !== undefined) {
        // unqualified names are looked for in these schemas: a table named without its schema counts as each
        const schemas = searchPathSchemas(path, upstream.credentials.username) ?? [];
        this.#s.plans.searchPath = schemas.length > 0 ? schemas : ['public'];
      }
    } catch (err) {
      rec.record({ type: 'startup_refused', error: (err as Error).message });
      rec.flush();
      throw err;
    }
    rec.flush();
    this.#log.info('session started', { session: rec.id, user: m.parameters['user'], application: m.parameters['application_name'] });
    if (rec.writing) this.#deps.sessions?.started(this.#observed());

    let conn: UpstreamConnection;
    try {
      // reads reuse one buffer: what is kept past a read is copied (the carry), and the upstream
      // stays paused while a write to the agent is queued (the agent socket's high-water mark is 1)
      conn = await connectUpstream(upstream, { parameters: params, reuseReadBuffer: true });
    } catch (err) {
      rec.record({ type: 'upstream_error', error: (err as Error).message });
      throw err;
    }
    if (this.#phase === 'closed') {
      conn.socket.destroy();
      return;
    }
    this.#up = conn.socket;
    this.#deps.keys.register(conn.processId, conn.secretKey, this);
    this.#agent.write(greeting(m));
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
    this.#s.queue.push({ k: 'sync' });
    this.#s.lex.awaitingReady = 1;
    this.#onUpstreamData(conn.greeting);
    // the greeting may have ended the session (a pinned setting reported otherwise)
    if ((this.#phase as Phase) === 'closed') return;
    const missing = Object.keys(PINNED).filter((k) => !this.#s.pinnedSeen.has(k));
    if (missing.length > 0) throw new SidecarError('NotPermitted', `the server did not report ${missing.join(', ')}: Airlock cannot check that it reads statements as the sidecar does`);
    conn.socket.resume();
  }

  /** Processes frontend messages in order; stops at a held statement and continues when it is decided. */
  #process(msgs: Framed[]): void {
    const out: Buffer[] = [];
    const s = this.#s;
    for (let i = 0; i < msgs.length; i++) {
      if (this.#phase !== 'ready') return;
      const f = msgs[i] as Framed;
      const copying = s.copyIn.during(f.message);
      if (copying === 'wait') {
        // whether the server reads this message or ignores it depends on whether the COPY started:
        // the answer is asked for now (a Flush, which the server ignores in COPY) and waited for
        out.push(FLUSH);
        this.#writeUp(out);
        this.#pauseAgent();
        s.copyIn.waiting = true;
        this.#inbox = msgs.slice(i).concat(this.#inbox);
        return;
      }
      if (copying !== undefined) {
        if (copying !== DROP) {
          this.#log.debug('a message during COPY FROM STDIN fails the COPY', { session: this.#rec.id, message: f.message.type });
          out.push(copying);
        }
        continue;
      }
      if (s.lex.mustWait(f.message)) {
        this.#writeUp(out);
        this.#pauseAgent();
        s.lex.waiting = true;
        this.#inbox = msgs.slice(i).concat(this.#inbox);
        return;
      }
      if (f.message.type === 'Terminate') {
        this.#writeUp(out);
        this.#end('the agent ended the session');
        return;
      }
      let hold: Promise<Buffer> | undefined;
      try {
        hold = this.#front.handle(f, out);
      } catch (err) {
        this.#writeUp(out);
        this.#fatal(err);
        return;
      }
      if (hold !== undefined) {
        this.#writeUp(out);
        this.#pauseAgent();
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

  /** Stops reading the agent: what it sends waits in the inbox. */
  #pauseAgent(): void {
    this.#held = true;
    this.#agent.pause();
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
    const slab = this.#s.slab;
    const back = this.#back;
    try {
      while (n - pos >= 5) {
        const len = buf.readUInt32BE(pos + 1);
        if (len < 4 || len > MAX_BACKEND_MESSAGE) throw new ProtocolError(`upstream sent a message of length ${len}`);
        const end = pos + 1 + len;
        if (end > n) break;
        const type = buf[pos] ?? 0;
        // the common case first: a DataRow that needs no change stays in the pass-through run
        const r = back.onBackend(type, buf, pos, end);
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

  #onUpstreamClose(): void {
    if (this.#phase === 'closed') return;
    if (!this.#s.fatalSeen && this.#phase === 'ready') {
      this.#flushAgent();
      this.#agent.write(errorResponse({ severity: 'FATAL', code: '08006', message: `airlock: the upstream server ${this.#target?.host ?? '?'}:${String(this.#target?.port ?? 0)} closed the connection` }));
    }
    this.#agent.end();
    this.#end('the upstream closed the connection');
  }

  // ---------------------------------------------------------------- recording and teardown

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
    const s = this.#s;
    for (let e = s.pop(); e !== undefined; e = s.pop()) {
      if (e.k === 'query' || e.k === 'execute') s.finishResult(e.rec, e.rec?.rows === 0 ? 'no result: the session ended' : 'incomplete: the session ended');
    }
    this.#rec.close({ type: 'session_end', reason, ...s.counts });
    this.#log.info('session ended', { session: this.#rec.id, reason, ...s.counts });
    if (!this.#agent.destroyed) {
      this.#agent.end();
      setTimeout(() => this.#agent.destroy(), 1000).unref();
    }
    this.#resolveClosed();
  }
}
