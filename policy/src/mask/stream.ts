/**
 * Streaming masking of free text (SSH output). Only complete lines are masked and emitted: no
 * detector and no free-text pattern match spans a newline, so masking line by line gives
 * exactly `maskText` of the whole text, whatever the chunking. The one multi-line detector,
 * `private_key`, is handled by holding a line back while a `-----BEGIN ... PRIVATE KEY-----`
 * above it has no END line yet.
 *
 * Held text is bounded (`maxHeld`, 64 KiB by default). When a line, or an unterminated private
 * key block, outgrows it, the stream decides conservatively: everything held is replaced by
 * one redact marker, and output stays suppressed until the end of that line, or of that key
 * block (its END line) when one is open; masking resumes after the next newline. Nothing is
 * leaked, but the output then differs from `maskText` (the marker replaces the whole line).
 * Text without a trailing newline (a shell prompt) is held until a newline arrives or `end()`.
 */
import { scanPrivateKeys, spanBuffer } from './detectors.ts';

export interface StreamMasker {
  /** feeds a chunk; returns the masked text that is now safe to emit (may be '') */
  push(chunk: string): string;
  /** end of stream: returns the rest, masked; the stream can then be reused from scratch */
  end(): string;
  /** spans masked so far (a suppressed overlong line counts as one) */
  readonly masked: number;
}

export interface StreamOptions {
  /** most characters held back before the stream suppresses instead (default 64 KiB) */
  readonly maxHeld?: number;
}

export const DEFAULT_MAX_HELD = 64 * 1024;

type TextMask = (text: string) => { readonly text: string; readonly masked: number };

/** Longest BEGIN marker: "-----BEGIN " + a 64-character label + "-----". */
const BEGIN_CARRY = 80;

interface Skipping {
  /** the tail of skipped text a marker may still start in */
  carry: string;
  /** the END line of the private key block being skipped, if any */
  endMarker: string | null;
}

export function createStreamMasker(mask: TextMask, marker: string, options: StreamOptions = {}): StreamMasker {
  const maxHeld = Math.max(1, options.maxHeld ?? DEFAULT_MAX_HELD);
  /** not yet emitted text; it starts at the start of a line */
  let held = '';
  /** a private key block open in `held`: the END marker and where to look for it */
  let open: { readonly endMarker: string; readonly searchFrom: number } | null = null;
  let skip: Skipping | null = null;
  let masked = 0;
  const blocks = spanBuffer();

  const emit = (text: string): string => {
    if (text === '') return '';
    const r = mask(text);
    masked += r.masked;
    return r.text;
  };

  /** Emits the complete lines of `held` that precede any open private key block. */
  function drain(): string {
    if (open !== null && !held.includes(open.endMarker, open.searchFrom)) {
      open = { endMarker: open.endMarker, searchFrom: Math.max(open.searchFrom, held.length - open.endMarker.length + 1) };
      return '';
    }
    blocks.n = 0;
    const block = scanPrivateKeys(held, blocks);
    // Cut after the last newline before the open block, and not inside a closed one.
    const lineStart = (i: number): number => (i === 0 ? 0 : held.lastIndexOf('\n', i - 1) + 1);
    let cut = lineStart(block === null ? held.length : block.start);
    for (let k = blocks.n - 2; k >= 0; k -= 2) {
      const b = blocks.pairs[k] ?? 0;
      if (b < cut && cut < (blocks.pairs[k + 1] ?? 0)) cut = lineStart(b);
    }
    let out = '';
    if (cut > 0) {
      out = emit(held.slice(0, cut));
      held = held.slice(cut);
    }
    open = block === null ? null : { endMarker: block.endMarker, searchFrom: block.searchFrom - cut };
    return out;
  }

  /** Drops skipped text up to a safe point; returns what to emit and the text after that point. */
  function skipThrough(state: Skipping, chunk: string): { readonly out: string; readonly rest: string } {
    const s = state.carry + chunk;
    let i = 0;
    for (;;) {
      if (state.endMarker !== null) {
        const e = s.indexOf(state.endMarker, i);
        if (e < 0) {
          state.carry = s.slice(Math.max(i, s.length - state.endMarker.length + 1));
          return { out: '', rest: '' };
        }
        i = e + state.endMarker.length;
        state.endMarker = null;
      }
      const nl = s.indexOf('\n', i);
      const block = scanPrivateKeys(s.slice(i, nl < 0 ? s.length : nl), null);
      if (block !== null) {
        state.endMarker = block.endMarker;
        i += block.searchFrom;
        continue;
      }
      if (nl < 0) {
        state.carry = s.slice(Math.max(i, s.length - BEGIN_CARRY));
        return { out: '', rest: '' };
      }
      skip = null;
      return { out: '\n', rest: s.slice(nl + 1) };
    }
  }

  return {
    push(chunk) {
      let out = '';
      let input = chunk;
      while (input !== '') {
        if (skip !== null) {
          const r = skipThrough(skip, input);
          out += r.out;
          input = r.rest;
          continue;
        }
        const newline = input.includes('\n');
        held += input;
        input = '';
        if (newline || open !== null) out += drain();
        if (held.length > maxHeld) {
          // Cannot be cut: one marker for all of it, then skip to a safe point.
          input = held;
          held = '';
          open = null;
          skip = { carry: '', endMarker: null };
          masked++;
          out += marker;
        }
      }
      return out;
    },
    end() {
      const out = skip === null ? emit(held) : '';
      held = '';
      open = null;
      skip = null;
      return out;
    },
    get masked() {
      return masked;
    },
  };
}
