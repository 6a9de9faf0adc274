/**
 * One output stream of a channel (stdout or stderr) on its way to the agent: bytes are decoded
 * losslessly (codec.ts), masked by the policy's streaming masker (complete lines only, so a
 * value split across chunks is still found; the rest is held until its line ends or the
 * stream ends), recorded, then encoded back. Pure apart from the callbacks.
 */
import type { StreamMasker } from '@airlock/policy';
import { OutputDecoder, encodeOutput } from './codec.ts';

export class MaskedOutput {
  readonly #masker: StreamMasker | undefined;
  readonly #decoder = new OutputDecoder();

  /** Without a masker (no policy) the output is passed as it is. */
  constructor(masker: StreamMasker | undefined) {
    this.#masker = masker;
  }

  get masked(): number {
    return this.#masker?.masked ?? 0;
  }

  /** Feeds upstream bytes; returns the text now safe to show ('' when everything is held). */
  push(chunk: Buffer): string {
    const text = this.#decoder.decode(chunk);
    return this.#masker === undefined ? text : this.#masker.push(text);
  }

  /** End of stream: the held rest, masked. */
  end(): string {
    const text = this.#decoder.end();
    if (this.#masker === undefined) return text;
    return this.#masker.push(text) + this.#masker.end();
  }

  encode(text: string): Buffer {
    return encodeOutput(text, this.#decoder.escaped);
  }
}
