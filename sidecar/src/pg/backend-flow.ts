/**
 * What the server answers, one backend message at a time: matched to the reply queue's head,
 * DataRows and COPY rows masked with their statement's row plan, errors and notices masked (or
 * swapped for the sidecar's own refusal), results counted and recorded, pinned settings
 * checked. Pure: no sockets, no timers (flow-state.ts holds the state, the shell the sockets).
 *
 * `onBackend` returns undefined to pass the message through unchanged, a Buffer to send
 * instead, DROP to swallow it, or a promise when it must wait for the catalogue (the shell
 * waits, then gives the same message again).
 */
import { SidecarError } from '../errors.ts';
import { pgReply } from '../replies.ts';
import { errorResponse } from './backend.ts';
import { maskCopyRow } from './copy.ts';
import { DROP } from './copy-in.ts';
import type { Expect } from './expects.ts';
import { ProtocolError } from './errors.ts';
import type { FlowState } from './flow-state.ts';
import { maskNotice, maskNotification, maskParameterStatus, noticeField, parameterStatus } from './notices.ts';
import { masks } from './plans.ts';
import { maskDataRow } from './rows.ts';
import { PINNED, pinnedViolation } from './startup.ts';
import { frontendMessage } from './wire.ts';

export { DROP } from './copy-in.ts';

export type BackendVerdict = Buffer | typeof DROP | Promise<void> | undefined;

export class BackendFlow {
  readonly #s: FlowState;

  constructor(state: FlowState) {
    this.#s = state;
  }

  /** One backend message `buf[start, end)` of type `type`. */
  onBackend(type: number, buf: Buffer, start: number, end: number): BackendVerdict {
    const s = this.#s;
    const head = s.queue.current();
    if (head?.k === 'probe' && (type === 0x31 || type === 0x74 || type === 0x6e || type === 0x33 || type === 0x54 || type === 0x45 || type === 0x5a)) {
      return this.#onProbe(head, type, buf, start, end);
    }
    switch (type) {
      case 0x44 /* D DataRow */: {
        const e = head;
        if (e === undefined || (e.k !== 'query' && e.k !== 'execute')) return undefined;
        let plan = e.plan;
        if (plan === undefined) {
          const p = s.plans.planFor(e, s.bundle);
          if (p instanceof Promise) return p;
          plan = p;
        }
        if (plan.fieldCount >= 0 && buf.readInt16BE(start + 5) !== plan.fieldCount) {
          // not the layout the rows were described with: what they hold is not known
          throw new SidecarError('NotPermitted', 'a result row does not have the columns its statement was described with (its name was redefined where the sidecar cannot see); the session ends rather than pass it unmasked');
        }
        const rec = e.rec;
        if (rec !== undefined) rec.rows += 1;
        s.counts.rows += 1;
        if (plan.columns.length === 0) return undefined;
        const r = maskDataRow(plan, buf, start, end, s.slab);
        if (r.message === undefined) return undefined;
        if (rec !== undefined) {
          rec.masked += r.masked;
          for (const rule of r.rules) (rec.rules ??= new Set()).add(rule);
        }
        s.counts.masked += r.masked;
        return r.message;
      }
      case 0x54 /* T RowDescription */: {
        const fields = s.described.of(buf, start, end);
        const e = head;
        if (e?.k === 'describe') {
          s.pop();
          if (e.of !== undefined) e.of.fields = fields;
          return e.swallow ? DROP : undefined;
        }
        if (e?.k === 'query') {
          e.fields = fields;
          e.plan = undefined;
          const p = s.plans.planFor(e, s.bundle);
          if (p instanceof Promise) return p;
        }
        return undefined;
      }
      case 0x43 /* C CommandComplete */:
      case 0x49 /* I EmptyQueryResponse */: {
        const tag = type === 0x43 ? buf.toString('utf8', start + 5, end - 1) : '';
        const e = head;
        s.copyOut = false;
        const refused = s.binaryCopyOut ? this.#binaryCopyRefusal() : undefined;
        if (refused !== undefined && (e?.k === 'query' || e?.k === 'execute') && e.rec !== undefined) e.rec.error = 'refused';
        if (e?.k === 'query') {
          if (tag !== '') e.rec?.tags.push(tag);
          e.results = (e.results ?? 0) + 1;
          e.fields = undefined;
          e.plan = undefined;
        } else if (e?.k === 'execute') {
          s.pop();
          if (tag !== '') e.rec?.tags.push(tag);
          s.finishResult(e.rec);
        }
        return refused;
      }
      case 0x73 /* s PortalSuspended */: {
        const e = head;
        if (e?.k === 'execute') {
          s.pop();
          e.rec?.tags.push('(portal suspended)');
          s.finishResult(e.rec);
        }
        return undefined;
      }
      case 0x31 /* 1 ParseComplete */:
      case 0x32 /* 2 BindComplete */:
      case 0x33 /* 3 CloseComplete */:
        s.pop();
        return undefined;
      case 0x74 /* t ParameterDescription */:
        return head?.k === 'describe' && head.swallow ? DROP : undefined;
      case 0x6e /* n NoData */: {
        const e = head;
        if (e?.k === 'describe') {
          s.pop();
          if (e.of !== undefined) e.of.fields = null;
          return e.swallow ? DROP : undefined;
        }
        return undefined;
      }
      case 0x45 /* E ErrorResponse */:
        return this.#onError(buf, start, end);
      case 0x5a /* Z ReadyForQuery */: {
        s.copyOut = false;
        s.binaryCopyOut = false;
        s.answeredReady();
        // everything up to the Sync or Query that this answers is done
        for (let e = s.pop(); e !== undefined; e = s.pop()) {
          if (e.k === 'query') {
            s.finishResult(e.rec);
            break;
          }
          if (e.k === 'execute') s.finishResult(e.rec, 'not run: an earlier message of the batch failed');
          if (e.k === 'sync') break;
        }
        return undefined;
      }
      case 0x47 /* G CopyInResponse */: {
        const e = head;
        if (e?.k === 'query' || e?.k === 'execute') {
          s.copyIn.started(e);
          s.copyInChanged();
        }
        return undefined;
      }
      case 0x48 /* H CopyOutResponse */: {
        s.copyOut = true;
        if (buf[start + 5] === 1 && s.masking) {
          // not stopped before it ran (the policy refuses every binary COPY TO STDOUT it sees): its
          // rows are discarded and its end is an ErrorResponse; the session goes on
          s.binaryCopyOut = true;
          return DROP;
        }
        return undefined;
      }
      case 0x64 /* d CopyData */:
        return this.#onCopyData(head, buf, start, end);
      case 0x4e /* N NoticeResponse */:
        return this.#maskNotice('N', buf, start, end, s.plans.echoesMasked(head, s.bundle));
      case 0x53 /* S ParameterStatus */:
        return this.#onParameterStatus(buf, start, end);
      case 0x41 /* A NotificationResponse */: {
        const r = maskNotification(s.masking ? s.bundle?.masker : undefined, buf, start, end);
        if (r === undefined) return undefined;
        s.counts.masked += r.masked;
        return r.message;
      }
      case 0x63 /* c CopyDone */:
        return s.binaryCopyOut ? DROP : undefined;
      case 0x4b /* K BackendKeyData */:
      case 0x76 /* v NegotiateProtocolVersion */:
        return undefined;
      default:
        throw new ProtocolError(`upstream sent an unexpected "${String.fromCharCode(type)}" message`);
    }
  }

  /** A row of COPY … TO STDOUT: masked by its columns' plan (column rules) or as text. */
  #onCopyData(e: Expect | undefined, buf: Buffer, start: number, end: number): BackendVerdict {
    const s = this.#s;
    if (s.binaryCopyOut) return DROP;
    if (!s.copyOut) return undefined;
    const bundle = e !== undefined && (e.k === 'query' || e.k === 'execute') ? e.pol?.bundle : s.bundle;
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
      s.counts.masked += m.masked;
      return frontendMessage('d', Buffer.from(m.row, 'utf8'));
    }
    if (copy !== undefined) copy.headerSeen = true;
    const r = masker.maskText(text);
    if (rec !== undefined) rec.rows += 1;
    if (r.masked === 0) return undefined;
    if (rec !== undefined) rec.masked += r.masked;
    s.counts.masked += r.masked;
    return frontendMessage('d', Buffer.from(r.text, 'utf8'));
  }

  /** The answers to a COPY's column description: swallowed; the RowDescription gives the rows' plan. */
  #onProbe(e: Extract<Expect, { k: 'probe' }>, type: number, buf: Buffer, start: number, end: number): typeof DROP | Promise<void> | undefined {
    const s = this.#s;
    switch (type) {
      case 0x54 /* T RowDescription */: {
        const planned = s.plans.probePlan(e.copy, s.bundle, buf, start, end);
        return planned instanceof Promise ? planned : DROP;
      }
      case 0x45 /* E ErrorResponse */: {
        // the COPY's own query will fail the same way; its rows, if any, are refused (no plan)
        const severity = noticeField(buf, start, end, 0x53);
        return severity === 'FATAL' || severity === 'PANIC' ? undefined : DROP;
      }
      case 0x5a /* Z ReadyForQuery */:
        s.pop();
        s.answeredReady();
        return DROP;
      default:
        return DROP;
    }
  }

  #onError(buf: Buffer, start: number, end: number): Buffer | undefined {
    const s = this.#s;
    const e = s.queue.current();
    s.binaryCopyOut = false;
    const echoes = s.plans.echoesMasked(e, s.bundle);
    let replaced: Buffer | undefined;
    const severity = noticeField(buf, start, end, 0x53);
    if (severity === 'FATAL' || severity === 'PANIC') s.fatalSeen = true;
    if (e === undefined) return this.#maskNotice('E', buf, start, end, false);
    s.copyOut = false;
    if (e.k === 'query') {
      replaced = e.refusal;
      if (e.rec !== undefined && e.rec.error === undefined) e.rec.error = e.refusal !== undefined ? 'refused' : (noticeField(buf, start, end, 0x43) ?? 'error');
      e.failed = true;
      return replaced ?? this.#maskNotice('E', buf, start, end, echoes);
    }
    // extended protocol: the failing message, then PostgreSQL discards everything up to Sync
    s.pop();
    if (e.k === 'parse') {
      replaced = e.refusal;
      s.names.undoParse(e, false);
    }
    if (e.k === 'bind') s.names.undoBind(e, false);
    if (e.k === 'execute') {
      if (e.rec !== undefined) e.rec.error = noticeField(buf, start, end, 0x43) ?? 'error';
      s.finishResult(e.rec);
    }
    if (e.k === 'sync') {
      // an error answering a Sync (e.g. a failed COMMIT): ReadyForQuery still follows
      s.queue.unpop();
    } else {
      for (let x = s.queue.current(); x !== undefined && x.k !== 'sync'; x = s.queue.current()) {
        s.pop();
        s.skipped(x);
      }
      // no Sync forwarded yet: what the agent sends until its Sync is skipped as well
      if (s.queue.current() === undefined) s.skipUntilSync = true;
    }
    return replaced ?? this.#maskNotice('E', buf, start, end, echoes);
  }

  /** The ErrorResponse that ends a binary COPY TO STDOUT whose rows were discarded. */
  #binaryCopyRefusal(): Buffer {
    const s = this.#s;
    s.binaryCopyOut = false;
    s.counts.blocked += 1;
    const r = pgReply(new SidecarError('NotPermitted', 'binary COPY TO STDOUT cannot be masked; its rows were not sent: use the text or csv format'));
    return errorResponse({ severity: 'ERROR', code: r.sqlState, message: r.message });
  }

  /** Error and notice texts can quote values (a unique violation's key): they are masked like results. */
  #maskNotice(type: 'E' | 'N', buf: Buffer, start: number, end: number, echoes: boolean): Buffer | undefined {
    const s = this.#s;
    const masker = s.bundle?.masker;
    if (masker === undefined || !s.masking) return undefined;
    const r = maskNotice(masker, type, buf, start, end, echoes);
    if (r === undefined) return undefined;
    s.counts.masked += r.masked;
    return r.message;
  }

  /**
   * A setting's value reported by the server. A pinned lexing setting that changed (a function
   * calling set_config, anything the policy could not see) ends the session: the statements
   * after it could be read differently by the server. Values are masked (application_name can
   * be set by a statement).
   */
  #onParameterStatus(buf: Buffer, start: number, end: number): Buffer | undefined {
    const s = this.#s;
    const [name, value] = parameterStatus(buf, start, end);
    const violation = pinnedViolation(name, value);
    if (violation !== undefined) throw new SidecarError('NotPermitted', violation);
    if (PINNED[name] !== undefined) s.pinnedSeen.add(name);
    const masker = s.bundle?.masker;
    if (masker === undefined || !s.masking) return undefined;
    const r = maskParameterStatus(masker, name, value);
    if (r === undefined) return undefined;
    s.counts.masked += r.masked;
    return r.message;
  }
}
