/**
 * What the agent sends, one frontend message at a time (after startup): each statement (Query,
 * Parse, each Execute) is decided, recorded (write-ahead) and forwarded, refused or held for
 * approval through the shared enforce step (enforce/enforcer.ts); what the server will answer
 * is queued (flow-state.ts) so its replies find their statement. Pure but for the hooks: no
 * sockets, no timers.
 *
 * Refusals are made by the upstream itself: the refused message is replaced by one that fails
 * to parse, so PostgreSQL answers it with an ErrorResponse in the right place of the pipeline,
 * aborts the implicit or explicit transaction and discards the rest of an extended batch until
 * Sync exactly as it would for any error; backend-flow.ts swaps that ErrorResponse for the
 * sidecar's own 42501.
 */
import { SqlDecider, type Decision, type PolicyBundle, type QueryLineage } from '@airlock/policy';
import { RecorderError } from '../record/writer.ts';
import { SidecarError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { pgReply } from '../replies.ts';
import { errorResponse, noticeResponse } from './backend.ts';
import { mayCopy } from './copy-in.ts';
import type { CopyState, StatementRecord } from './expects.ts';
import { ProtocolError } from './errors.ts';
import type { FlowState } from './flow-state.ts';
import type { Framed } from './frontend.ts';
import type { Portal, Prepared } from './prepared.ts';
import { statementJson } from './records.ts';
import { maskedWriteRefusal, unknownLineageRefusal } from './rows.ts';
import { reviewCommand, statementParts, type StatementPart } from './statements.ts';
import { frontendMessage, parseMessage, queryMessage } from './wire.ts';

/** Text that fails to parse: what a refused statement is replaced with upstream. */
export const REFUSED_SQL = 'AIRLOCK REFUSED THIS STATEMENT';

/** The prepared statement the sidecar describes a COPY's columns with (closed right after). */
const COPY_PROBE = 'airlock.copy_columns';

export interface FrontendHooks {
  /** the proxy's decider of a bundle (default search_path) */
  readonly deciderFor: (bundle: PolicyBundle) => SqlDecider;
  readonly log: Logger;
  /** the session (recording) id */
  session(): string;
  /** hands the records appended so far to the OS (write-ahead); throws when the recorder failed */
  flushRecord(): void;
  /** sends a message to the agent now (a held statement's NOTICE) */
  toAgent(bytes: Buffer): void;
  /** forwards bytes upstream now (before a held statement's own bytes) */
  toServer(bytes: Buffer[]): void;
  /** aborted when the session ends (a held statement's request is withdrawn) */
  readonly signal: AbortSignal;
}

type RecordResult = { rec: StatementRecord | undefined; ok: boolean; error?: unknown };

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class FrontendFlow {
  readonly #s: FlowState;
  readonly #h: FrontendHooks;
  #statementSeq = 0;
  /** the session's own decider for a search_path that is not the default (decisions depend on it) */
  #decider: { readonly bundle: PolicyBundle; readonly decider: SqlDecider } | undefined;

  constructor(state: FlowState, hooks: FrontendHooks) {
    this.#s = state;
    this.#h = hooks;
  }

  /** The policy for the next statement: the source's current one (a swapped bundle applies from here on). */
  #refresh(): void {
    const s = this.#s;
    const before = s.pol;
    const after = s.enforcer.refresh();
    if (after !== before && after?.bundle?.digest !== before?.bundle?.digest) this.#h.log.info('policy swapped', { session: this.#h.session(), digest: after?.bundle?.digest ?? null });
  }

  /** Handles one frontend message: pushes the bytes to forward, or returns a promise when the statement is held. */
  handle(f: Framed, out: Buffer[]): Promise<Buffer> | undefined {
    const s = this.#s;
    const m = f.message;
    if (m.type === 'Query' || m.type === 'Parse' || m.type === 'Execute' || m.type === 'FunctionCall') this.#refresh();
    switch (m.type) {
      case 'Query': {
        let d = s.lex.refusal(m.sql) ?? this.#decide(m.sql, m.invalidUtf8 === true);
        const copy = this.#copyProbe(d);
        if (copy instanceof Object && 'decision' in copy) d = copy;
        const probe = copy instanceof Object && 'state' in copy ? copy : undefined;
        s.lex.forwardedReady();
        const rec = this.#statementRecord(m.sql, 'simple', d, {}, undefined, this.#statementsOf(m.sql));
        const expectQuery = (refusal: Buffer | undefined): void => {
          if (refusal === undefined && probe !== undefined) {
            s.lex.awaitingReady += 1;
            s.expect({ k: 'probe', copy: probe.state });
          }
          const gate = refusal === undefined ? s.copyIn.gate(mayCopy(m.sql)) : undefined;
          s.expect({ k: 'query', rec: rec.rec, refusal, plan: undefined, fields: undefined, failed: false, ...(refusal === undefined && probe !== undefined ? { copy: probe.state } : {}), pol: s.pol, lineage: this.#lineageOf(m.sql), ...(gate !== undefined ? { gate } : {}) });
          if (refusal === undefined) s.names.changedBy(m.sql, d);
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
        let d = s.lex.refusal(m.sql) ?? this.#decide(m.sql, m.invalidUtf8 === true);
        if (d.copyOut !== undefined && d.decision !== 'Block' && s.masking && s.bundle?.columnRules === true) {
          d = { ...d, decision: 'Block', rules: [], message: 'COPY TO STDOUT through the extended protocol cannot apply column masking rules; send it as a simple query, or use SELECT' };
        }
        s.inBatch = true;
        const previous = s.names.statements.get(m.name);
        if (d.decision === 'Allow') {
          const set: Prepared = { sql: m.sql, decision: d, approved: false };
          s.names.statements.set(m.name, set);
          s.expect({ k: 'parse', refusal: undefined, name: m.name, previous, set });
          out.push(f.raw);
          return undefined;
        }
        const rec = this.#statementRecord(m.sql, 'parse', d, { statement: m.name }, undefined, this.#statementsOf(m.sql));
        s.names.statements.delete(m.name);
        if (d.decision === 'RequireApproval' && rec.ok) {
          return this.#hold(m.sql, d, rec.rec, f.raw, parseMessage(m.name, REFUSED_SQL), (refusal) => {
            let set: Prepared | undefined;
            if (refusal === undefined) s.names.statements.set(m.name, (set = { sql: m.sql, decision: d, approved: true }));
            s.expect({ k: 'parse', refusal, name: m.name, previous, set });
          });
        }
        s.expect({ k: 'parse', refusal: this.#refusalFor(d, rec), name: m.name, previous });
        out.push(parseMessage(m.name, REFUSED_SQL));
        return undefined;
      }
      case 'Bind': {
        s.lex.batchRan = true;
        s.inBatch = true;
        const previous = s.names.portals.get(m.portal);
        const portal: Portal = { statementName: m.statement, statement: s.names.statements.get(m.statement), resultFormats: m.resultFormats, fields: undefined, describing: false };
        s.names.portals.set(m.portal, portal);
        s.expect({ k: 'bind', name: m.portal, portal, previous });
        out.push(f.raw);
        return undefined;
      }
      case 'Describe': {
        s.inBatch = true;
        const of = m.target === 'S' ? s.names.statements.get(m.name) : s.names.portals.get(m.name);
        if (of !== undefined && 'describing' in of) of.describing = true;
        s.expect({ k: 'describe', of, swallow: false });
        out.push(f.raw);
        return undefined;
      }
      case 'Execute':
        return this.#execute(f, m.portal, m.maxRows, out);
      case 'Close': {
        s.inBatch = true;
        if (m.target === 'S') s.names.statements.delete(m.name);
        else s.names.portals.delete(m.name);
        s.expect({ k: 'close' });
        out.push(f.raw);
        return undefined;
      }
      case 'Sync': {
        s.lex.forwardedReady();
        s.inBatch = false;
        s.expect({ k: 'sync' });
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
        if (m.type !== 'CopyData') s.copyIn.ended();
        out.push(f.raw);
        return undefined;
      case 'FunctionCall': {
        // the fast-path interface calls a function by OID: nothing to decide on, always refused
        const d: Decision = { decision: 'Block', classes: ['opaque'], rules: [], message: 'the fast-path function call interface is not allowed through Airlock' };
        const rec = this.#statementRecord('(fast-path function call)', 'simple', d, {});
        s.lex.forwardedReady();
        s.expect({ k: 'query', rec: rec.rec, refusal: this.#refusalFor(d, rec), plan: undefined, fields: undefined, failed: false, pol: s.pol });
        out.push(queryMessage(REFUSED_SQL));
        return undefined;
      }
      default:
        throw new ProtocolError(`unexpected ${m.type} message after startup`);
    }
  }

  #execute(f: Framed, portalName: string, maxRows: number, out: Buffer[]): Promise<Buffer> | undefined {
    const s = this.#s;
    s.lex.batchRan = true;
    s.inBatch = true;
    const portal = s.names.portals.get(portalName);
    if (portal === undefined) {
      // A portal the agent never bound: a cursor made with SQL DECLARE (decided then), or none
      // (PostgreSQL answers with its own error). Executing it is a FETCH; its rows are
      // described first, like those of any re-executed portal, so they are masked.
      const cursor: Portal = { statementName: '', statement: undefined, resultFormats: [], fields: undefined, describing: false };
      const sql = `FETCH ${maxRows > 0 ? String(maxRows) : 'ALL'} FROM ${quoteIdent(portalName)}`;
      const d = this.#decide(sql);
      const rec = this.#statementRecord(sql, 'execute', d, { portal: portalName });
      const refusal = this.#refusalFor(d, rec);
      if (refusal !== undefined) {
        s.expect({ k: 'parse', refusal, name: undefined, previous: undefined });
        out.push(parseMessage('', REFUSED_SQL));
        return undefined;
      }
      this.#describeBeforeExecute(cursor, portalName, out);
      // a name made with SQL may stand for anything (even a COPY parsed by protocol, forgotten since)
      const gate = s.copyIn.gate(1);
      s.expect({ k: 'execute', rec: rec.rec, refusal: undefined, portal: cursor, plan: undefined, pol: s.pol, ...(gate !== undefined ? { gate } : {}) });
      s.names.changedBy(sql, d);
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
    const extra: Record<string, string> = { portal: portalName };
    if (portal.statementName !== '') extra['statement'] = portal.statementName;
    if (st?.approved === true) extra['approved'] = 'at Parse';
    let recorded: string | undefined;
    if (st !== undefined) recorded = st.recordedText ??= this.#recordedText(sql);
    const rec = this.#statementRecord(sql, 'execute', d, extra, recorded);
    const run = (into: Buffer[]): void => {
      this.#describeBeforeExecute(portal, portalName, into);
      const gate = s.copyIn.gate(st === undefined ? 1 : mayCopy(sql) > 0 ? 1 : 0);
      s.expect({ k: 'execute', rec: rec.rec, refusal: undefined, portal, plan: undefined, pol: s.pol, ...(gate !== undefined ? { gate } : {}) });
      s.names.changedBy(sql, d);
    };
    if (d.decision === 'RequireApproval' && rec.ok) {
      return this.#hold(sql, d, rec.rec, f.raw, parseMessage('', REFUSED_SQL), (refusal) => {
        if (refusal !== undefined) s.expect({ k: 'parse', refusal, name: undefined, previous: undefined });
        else {
          const before: Buffer[] = [];
          run(before);
          this.#h.toServer(before);
        }
      });
    }
    const refusal = this.#refusalFor(d, rec);
    if (refusal !== undefined) {
      // refused via a Parse that fails: PostgreSQL then discards the batch up to Sync, as for any error
      s.expect({ k: 'parse', refusal, name: undefined, previous: undefined });
      out.push(parseMessage('', REFUSED_SQL));
      return undefined;
    }
    run(out);
    out.push(f.raw);
    return undefined;
  }

  #decide(sql: string, invalidUtf8 = false): Decision {
    const s = this.#s;
    if (invalidUtf8) {
      return {
        decision: 'Block',
        classes: [],
        rules: [],
        message: 'statement text is not valid UTF-8: Airlock reads statements as UTF-8 (client_encoding is pinned to UTF8) and refuses bytes it cannot read as the server would',
      };
    }
    const bundle = s.bundle;
    if (bundle === undefined) return s.enforcer.unavailableDecision('every statement is refused');
    const d = this.#deciderOf(bundle).decide(sql);
    const masking = s.masking;
    if (d.binaryCopyOut === true && masking && d.decision !== 'Block') {
      // refused before it runs: once the server streams binary COPY data, nothing can mask it
      return { ...d, decision: 'Block', rules: [], message: 'binary COPY TO STDOUT cannot be masked; use the text or csv format' };
    }
    // MaskingPolicy unknownLineage: Refuse: a result column whose lineage is unknown is not run
    const unknown = bundle.unknownLineage === 'Refuse' && masking && d.decision !== 'Block' ? unknownLineageRefusal(this.#lineageOf(sql)) : undefined;
    if (unknown !== undefined) return { ...d, decision: 'Block', rules: [], message: unknown };
    const copies = masking && d.decision !== 'Block' ? maskedWriteRefusal(bundle.masker, this.#lineageOf(sql)) : undefined;
    if (copies !== undefined) return { ...d, decision: 'Block', rules: [], message: copies };
    return d;
  }

  #deciderOf(bundle: PolicyBundle): SqlDecider {
    const searchPath = this.#s.plans.searchPath;
    if (searchPath === undefined) return this.#h.deciderFor(bundle);
    if (this.#decider?.bundle !== bundle) this.#decider = { bundle, decider: new SqlDecider(bundle, { searchPath }) };
    return this.#decider.decider;
  }

  /** The lineage of a query's statements (column rules only: others do not need it). */
  #lineageOf(sql: string | undefined): QueryLineage | undefined {
    return this.#s.plans.lineageOf(sql, this.#s.bundle);
  }

  /**
   * Appends and flushes the statement's record (write-ahead). ok=false when the recorder failed and
   * the connection's failurePolicy is Closed: the statement must then be refused.
   */
  #statementRecord(sql: string, via: 'simple' | 'parse' | 'execute', d: Decision, extra: Readonly<Record<string, string>>, recorded?: string, parts?: readonly StatementPart[]): RecordResult {
    const s = this.#s;
    const id = ++this.#statementSeq;
    s.counts.statements += 1;
    const text = recorded ?? this.#recordedText(sql);
    try {
      s.hooks.recordJson(statementJson(id, via, extra, text, d, parts));
      this.#h.flushRecord();
    } catch (err) {
      if (s.pol?.upstream.failurePolicy !== 'Open') return { rec: undefined, ok: false, error: err };
      this.#h.log.warn('recording failed; forwarding anyway (failurePolicy Open)', { error: (err as Error).message });
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
    const masker = this.#s.bundle?.masker;
    return masker === undefined ? sql : masker.maskText(sql).text;
  }

  /** Re-executed statements may come without a Describe: asks for the portal's columns, just before its Execute. */
  #describeBeforeExecute(portal: Portal, name: string, into: Buffer[]): void {
    if (portal.fields !== undefined || portal.describing || portal.statement?.fields !== undefined || !this.#s.masking) return;
    portal.describing = true;
    this.#s.expect({ k: 'describe', of: portal, swallow: true });
    into.push(frontendMessage('D', Buffer.from(`P${name}\0`, 'utf8')));
  }

  /**
   * For a COPY … TO STDOUT whose rows column rules may apply to: the messages that describe its
   * columns just before it runs (a prepared statement of the same columns, described and
   * closed, then Sync), or the decision refusing it when its layout cannot be known.
   */
  #copyProbe(d: Decision): { state: CopyState; bytes: Buffer } | Decision | undefined {
    const s = this.#s;
    const c = d.copyOut;
    if (c === undefined || d.decision === 'Block' || !s.masking || s.bundle?.columnRules !== true) return undefined;
    let why: string | undefined;
    if (s.inBatch) why = 'it follows extended-protocol messages not ended by a Sync (send Sync first)';
    else if (c === 'unknown') why = 'it shares its query with other statements';
    else if (c.format === 'binary') why = 'it is in the binary format';
    else if (!c.plain) why = 'it sets options that change how rows are written (delimiter, null, quote, …)';
    else if (c.probe === undefined) why = 'its columns cannot be found';
    if (why !== undefined || c === 'unknown' || c.format === 'binary' || c.probe === undefined || s.inBatch) {
      return { ...d, decision: 'Block', rules: [], message: `COPY TO STDOUT cannot apply column masking rules here: ${why ?? 'unknown layout'}; send it alone with the default text or csv options, or use SELECT` };
    }
    const name = Buffer.from(`S${COPY_PROBE}\0`, 'utf8');
    const bytes = Buffer.concat([parseMessage(COPY_PROBE, c.probe), frontendMessage('D', name), frontendMessage('C', name), frontendMessage('S', Buffer.alloc(0))]);
    return { state: { format: c.format, header: c.header, headerSeen: false, plan: undefined, lineage: this.#lineageOf(c.probe)?.statements[0] }, bytes };
  }

  /** The ErrorResponse that replaces a refused statement's, or undefined when it may run. */
  #refusalFor(d: Decision, rec: { ok: boolean; error?: unknown }): Buffer | undefined {
    const counts = this.#s.counts;
    let err: unknown;
    if (!rec.ok) {
      err = rec.error instanceof RecorderError ? rec.error : new RecorderError(String(rec.error));
      counts.blocked += 1;
    } else if (d.decision === 'Allow') return undefined;
    else {
      err = this.#s.enforcer.refusal(d, counts);
      if (err === undefined) {
        // held statements go through #hold: one that cannot be held (a cursor's FETCH) is refused
        counts.blocked += 1;
        err = new SidecarError('Blocked', d.message, d.rules);
      }
    }
    return errorReply(err);
  }

  /**
   * Holds a statement for approval. Resolves with the bytes to forward: the statement itself when
   * approved, the failing replacement when not (its ErrorResponse is swapped for the refusal).
   */
  async #hold(sql: string, d: Decision, rec: StatementRecord | undefined, raw: Buffer, refusedRaw: Buffer, expect: (refusal: Buffer | undefined) => void): Promise<Buffer> {
    try {
      // every statement of the query, each with its classes: what is approved is all that runs
      const text = this.#recordedText(sql);
      const parts = this.#statementsOf(sql);
      await this.#s.enforcer.approve(
        {
          subject: { statement: rec?.id },
          command: reviewCommand(text, parts),
          statements: parts ?? [{ text, classes: [...d.classes].sort() }],
          decision: d,
          signal: this.#h.signal,
          waiting: (pending) => {
            this.#h.toAgent(noticeResponse({ severity: 'NOTICE', code: '01000', message: `airlock: ${d.message}; waiting for approval until ${pending.expiresAt.toISOString()}`, hint: pending.where }));
          },
        },
        this.#s.counts,
      );
    } catch (err) {
      expect(errorReply(err));
      return refusedRaw;
    }
    expect(undefined);
    return raw;
  }
}

/** The ErrorResponse of a refusal (replies.ts maps it). */
function errorReply(err: unknown): Buffer {
  const r = pgReply(err);
  return errorResponse({ severity: 'ERROR', code: r.sqlState, message: r.message, ...(r.detail !== undefined ? { detail: r.detail } : {}) });
}
