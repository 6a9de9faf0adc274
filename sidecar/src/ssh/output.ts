/**
 * One output stream of a channel (stdout or stderr) on its way to the agent: bytes are decoded
 * losslessly (codec.ts), masked by the policy's streaming masker (complete lines only, so a
 * value split across chunks is still found; the rest is held until its line ends or the
 * stream ends, or, for a very long line, until no match could still span it), recorded, then
 * encoded back. Pure apart from the callbacks.
 *
 * Output that is not text (a NUL byte, or bytes that are not valid UTF-8) cannot be masked:
 * with `binaryOutput: 'Refuse'` (the default) `push` throws a SidecarError and the channel is
 * refused; with `'Pass'` what the masker holds is flushed (masked) and everything from there on
 * passes byte for byte, unmasked, as Latin-1 text (one character per byte: the cast records the
 * bytes, and `encode` gives them back without a decoding pass). Binary output is never altered.
 */
import type { StreamMasker } from '@airlock/policy';
import { SidecarError } from '../errors.ts';
import { OutputDecoder, encodeOutput } from './codec.ts';

export type BinaryOutput = 'Refuse' | 'Pass';

/** Index of the first character that is not text (NUL, or an escaped byte), or the length. */
function firstBinary(text: string): number {
  const m = /[\0\uDC80-\uDCFF]/u.exec(text);
  return m === null ? text.length : m.index;
}

export class MaskedOutput {
  readonly #masker: StreamMasker | undefined;
  readonly #binary: BinaryOutput;
  readonly #decoder = new OutputDecoder();
  /** bytes seen so far */
  #offset = 0;
  /** binary output was seen and is passed as it is */
  #raw = false;

  /** Without a masker (no policy) the output is passed as it is. */
  constructor(masker: StreamMasker | undefined, binary: BinaryOutput = 'Refuse') {
    this.#masker = masker;
    this.#binary = binary;
  }

  get masked(): number {
    return this.#masker?.masked ?? 0;
  }

  /** true once binary output switched the stream to passing bytes unmasked */
  get raw(): boolean {
    return this.#raw;
  }

  /** Feeds upstream bytes; returns the text now safe to show ('' when everything is held). */
  push(chunk: Buffer): string {
    const start = this.#offset;
    this.#offset += chunk.length;
    if (this.#raw) return chunk.toString('latin1');
    const escapedBefore = this.#decoder.escaped;
    const text = this.#decoder.decode(chunk);
    if (this.#masker === undefined) return text;
    const nul = chunk.indexOf(0);
    if (nul >= 0 || (this.#decoder.escaped && !escapedBefore)) return this.#binaryOutput(text, nul >= 0 ? `a NUL byte at byte ${start + nul}` : `bytes that are not UTF-8 text from byte ${start} on`);
    return this.#masker.push(text);
  }

  /** End of stream: the held rest, masked. */
  end(): string {
    if (this.#raw) return '';
    const escapedBefore = this.#decoder.escaped;
    const text = this.#decoder.end();
    if (this.#masker === undefined) return text;
    if (this.#decoder.escaped && !escapedBefore) return this.#binaryOutput(text, "an incomplete UTF-8 character in its last bytes");
    return this.#masker.push(text) + this.#masker.end();
  }

  encode(text: string): Buffer {
    return this.#raw ? Buffer.from(text, 'latin1') : encodeOutput(text, this.#decoder.escaped);
  }

  #binaryOutput(text: string, what: string): string {
    if (this.#binary === 'Refuse') {
      throw new SidecarError(
        'NotPermitted',
        `the command's output is not text (${what}); binary output cannot be masked, so the command was stopped (spec.ssh.binaryOutput is Refuse). ` +
          'Encode it as text on the server (e.g. `| base64`), or ask for binaryOutput: Pass on this connection.',
      );
    }
    // The chunk's text up to its first binary character still goes through the masker, then
    // what the masker holds is flushed (masked); the rest of the chunk follows as bytes, and
    // everything after it passes as Latin-1.
    const cut = firstBinary(text);
    const masked = this.#masker === undefined ? text.slice(0, cut) : this.#masker.push(text.slice(0, cut)) + this.#masker.end();
    const carried = this.#decoder.end(); // an incomplete character at the chunk's end
    const bytes = Buffer.concat([Buffer.from(masked, 'utf8'), encodeOutput(text.slice(cut) + carried, true)]);
    this.#raw = true;
    return bytes.toString('latin1');
  }
}
