/**
 * Streaming masking of free text (SSH output). Only complete lines are masked and emitted: no
 * detector and no free-text pattern match spans a newline, so masking line by line gives
 * exactly `maskText` of the whole text, whatever the chunking. The one multi-line detector,
 * `private_key`, is handled by holding a line back while a `-----BEGIN ... PRIVATE KEY-----`
 * above it has no END line yet.
 *
 * A line longer than `maxHeld` (64 KiB by default) is not held whole: the masker looks at the
 * held text and emits it up to a point no masked span crosses, at least `maxHeld / 2`
 * characters before the end of what it holds (preferably after a blank or a delimiter), and
 * keeps the rest; the last 1 KiB emitted stays as context for the next look (a span that
 * reaches into it is masked from the cut on). So only what a match could still span is held
 * back, and the output is `maskText`'s for every match shorter than `maxHeld / 2`. A single
 * masked span longer than that, or a private key block that outgrows `maxHeld`, is replaced by
 * one redact marker through the end of its line (or the key block's END line): nothing leaks.
 * Text without a trailing newline (a shell prompt) is held until a newline arrives or `end()`.
 *
 * Fast path: most output (logs, listings) holds no candidate of any detector. A `TextGate`
 * (see `textGate`) looks at the text about to be masked for what every match must contain (`@`
 * for an email, a chain of 13 digits for a card, a key's prefix, a pattern's literal...) in a
 * few native searches; when nothing can match, the text is emitted as it is, without the
 * detectors' scans. The gate only says "certainly nothing" where `mask` would find nothing, so
 * the output is byte for byte the reference path's (property-tested against it).
 */
import type { Detector } from '@airlock/api';
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
  /** characters a line may hold before it is emitted in parts (default 64 KiB, at least 160) */
  readonly maxHeld?: number;
}

export const DEFAULT_MAX_HELD = 64 * 1024;

type TextMask = (text: string) => { readonly text: string; readonly masked: number };

/**
 * A quick look at a text: false only when `mask(text)` certainly masks nothing (the text comes
 * back unchanged); true when it might mask something.
 */
export type TextGate = (text: string) => boolean;

/** What the masking of free text looks for: its detectors, and a literal every match of each pattern contains. */
export interface TextGateSpec {
  readonly detectors: readonly Detector[];
  /** one literal per pattern (every match of it contains the literal); null when some pattern has none */
  readonly literals: readonly string[] | null;
}

// Per detector, what every match contains (the scanners in detectors.ts: each condition is
// implied by the scanner's own search; the tests check gate false => no span). Written out
// rather than with counted repeats: V8 skips ahead through text without candidates three times
// faster on `[0-9][0-9][0-9][0-9]` than on `[0-9]{4}`.
const CARD_GATE = /[0-9][0-9][0-9][0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9][ -]?[0-9]/;
const IBAN_GATE = /[A-Za-z]{2}[0-9]{2}/;
const SSN_GATE = /[0-9]{3}-[0-9]{2}-[0-9]{4}/;
const NANP_GATE = /[0-9]{3}[-.][0-9]{4}/;
const IPV4_GATE = /[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]/;
const AWS_GATE = /A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA)/;
const GITHUB_GATE = /gh[pousr]_|github_pat_/;
const BEARER_GATE = /bearer[ \t]/i;

const DETECTOR_GATES: Readonly<Record<Detector, TextGate>> = {
  // the scanner starts from each '@'
  email: (t) => t.includes('@'),
  // a card chain: four digits, then nine or more, each after at most one space or dash
  credit_card: (t) => CARD_GATE.test(t),
  // a country code (ASCII letters, either case) and two check digits
  iban: (t) => IBAN_GATE.test(t),
  us_ssn: (t) => SSN_GATE.test(t),
  // E.164 starts with '+'; a North-American number ends in 3 digits, '-' or '.', 4 digits
  phone: (t) => t.includes('+') || NANP_GATE.test(t),
  // IPv6 has a ':'; IPv4 is a dotted quad
  ip_address: (t) => t.includes(':') || IPV4_GATE.test(t),
  // the payload after a '.' starts with 'e' (base64 of a JSON object)
  jwt: (t) => t.includes('.e'),
  aws_access_key: (t) => AWS_GATE.test(t),
  github_token: (t) => GITHUB_GATE.test(t),
  slack_token: (t) => t.includes('xox') || t.includes('xapp-'),
  // a BEGIN line whose label contains PRIVATE KEY
  private_key: (t) => t.includes('PRIVATE KEY'),
  url_credentials: (t) => t.includes('://'),
  bearer_token: (t) => BEARER_GATE.test(t),
};

/**
 * The gate of free-text masking with these detectors and patterns; undefined when every text
 * may match (a pattern without a literal).
 */
export function textGate(spec: TextGateSpec): TextGate | undefined {
  if (spec.literals === null || spec.literals.includes('')) return undefined;
  const literals = [...new Set(spec.literals)];
  const gates = [...new Set(spec.detectors)].map((d) => DETECTOR_GATES[d]);
  return (text) => {
    for (const literal of literals) if (text.includes(literal)) return true;
    for (const gate of gates) if (gate(text)) return true;
    return false;
  };
}

/**
 * Masks `text[from, cut)` for some `cut <= upTo` that no masked span crosses (`text[0, from)` is
 * context already emitted); `cut === from` when no such point exists.
 */
export type WindowMask = (text: string, from: number, upTo: number) => { readonly text: string; readonly masked: number; readonly cut: number };

/** Context kept before the held part of a long line (a detector's left context, e.g. `scheme://user:`). */
const CONTEXT = 1024;

/** Longest BEGIN marker: "-----BEGIN " + a 64-character label + "-----". */
const BEGIN_CARRY = 80;

interface Skipping {
  /** the tail of skipped text a marker may still start in */
  carry: string;
  /** the END line of the private key block being skipped, if any */
  endMarker: string | null;
}

/**
 * `gate` (optional): a quick look that rules texts out before `mask` runs (see TextGate); the
 * output is the same with or without it.
 */
export function createStreamMasker(mask: TextMask, marker: string, options: StreamOptions = {}, window?: WindowMask, gate?: TextGate): StreamMasker {
  // A long line keeps at least a BEGIN marker's length held: the limit is at least twice that.
  const maxHeld = Math.max(2 * BEGIN_CARRY, options.maxHeld ?? DEFAULT_MAX_HELD);
  /** not yet emitted text; it starts at the start of a line, or after `context` */
  let held = '';
  /** the end of the emitted part of a long line whose rest is held: context for its next look */
  let context = '';
  /** a private key block open in `held`: the END marker and where to look for it */
  let open: { readonly endMarker: string; readonly searchFrom: number } | null = null;
  let skip: Skipping | null = null;
  let masked = 0;
  const blocks = spanBuffer();

  const emit = (text: string): string => {
    if (text === '') return '';
    if (context !== '' && window !== undefined) {
      // the rest of a long line (and what follows): masked with the line's context
      const whole = context + text;
      context = '';
      const r = window(whole, whole.length - text.length, whole.length);
      masked += r.masked;
      return r.text;
    }
    if (gate !== undefined && !gate(text)) return text;
    const r = mask(text);
    masked += r.masked;
    return r.text;
  };

  /** Emits the part of a long held line that no masked span crosses; false when none can go. */
  function emitLong(): string | undefined {
    if (window === undefined || open !== null) return undefined;
    const whole = context + held;
    const from = context.length;
    // Hold back what a match could span, and a private key's BEGIN marker with all after it.
    const begin = whole.indexOf('-----BEGIN', from);
    const upTo = Math.min(whole.length - Math.max(Math.floor(maxHeld / 2), BEGIN_CARRY), begin < 0 ? Infinity : begin);
    if (upTo <= from) return undefined;
    const r = window(whole, from, upTo);
    if (r.cut <= from) return undefined;
    masked += r.masked;
    context = whole.slice(Math.max(0, r.cut - CONTEXT), r.cut);
    held = whole.slice(r.cut);
    return r.text;
  }

  /** Emits the complete lines of `held` that precede any open private key block. */
  function drain(): string {
    if (open !== null && !held.includes(open.endMarker, open.searchFrom)) {
      open = { endMarker: open.endMarker, searchFrom: Math.max(open.searchFrom, held.length - open.endMarker.length + 1) };
      return '';
    }
    blocks.n = 0;
    // a block's label contains PRIVATE KEY: without it there is none (one native search)
    const block = held.includes('PRIVATE KEY') ? scanPrivateKeys(held, blocks) : null;
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
          const part = emitLong();
          if (part !== undefined) {
            out += part;
            continue;
          }
          // Cannot be cut: one marker for all of it, then skip to a safe point.
          input = held;
          held = '';
          context = '';
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
      context = '';
      open = null;
      skip = null;
      return out;
    },
    get masked() {
      return masked;
    },
  };
}
