/**
 * Streaming detokenization: token ids in, complete UTF-8 text out.
 *
 * A character outside the vocabulary is emitted as one byte token per UTF-8 byte (an emoji is four
 * `<0xXX>` tokens), so printing each token's piece as it arrives would print broken characters.
 * {@linkcode Utf8StreamDecoder} keeps the bytes of an unfinished character until the rest arrives.
 * The UTF-8 state machine is the WHATWG one behind `TextDecoder`'s `stream` mode: invalid bytes become
 * U+FFFD as soon as they are known to be invalid, never later.
 *
 * @module
 */

/** Anything that maps a token id to the bytes of its piece (empty for control tokens). */
export interface TokenByteSource {
  /** The bytes the token stands for when detokenized; empty for tokens that print nothing. */
  tokenBytes(id: number): Uint8Array;
}

/** Options of {@linkcode Utf8StreamDecoder}. */
export interface Utf8StreamOptions {
  /**
   * Drop one leading space from the first token that produces any bytes: set it when the stream starts
   * a sequence whose encoding added a space prefix (SentencePiece). Default `false`.
   */
  stripLeadingSpace?: boolean;
}

const SPACE = 0x20;

/**
 * Turns token ids into text incrementally, holding back a partial multi-byte character until it is
 * complete. {@linkcode Utf8StreamDecoder.flush} ends the stream: it returns what is left (an
 * unfinished character as U+FFFD) and resets the decoder for reuse.
 *
 * @example
 * ```ts
 * import { Utf8StreamDecoder } from "./utf8_stream.ts";
 * // A toy source where token id = byte value.
 * const source = { tokenBytes: (id: number) => new Uint8Array([id]) };
 * const dec = new Utf8StreamDecoder(source);
 * const parts = [0xf0, 0x9f, 0x98, 0x80].map((id) => dec.push(id)); // U+1F600 in four tokens
 * console.log(parts); // [ "", "", "", "😀" ]
 * console.log(dec.push([0x68, 0x69]) + dec.flush()); // "hi"
 * ```
 */
export class Utf8StreamDecoder {
  #source: TokenByteSource;
  #strip: boolean;
  #stripPending: boolean;
  #decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  #buf = new Uint8Array(256);

  /** Creates a decoder that reads token pieces from `source`. */
  constructor(source: TokenByteSource, options: Utf8StreamOptions = {}) {
    this.#source = source;
    this.#strip = options.stripLeadingSpace ?? false;
    this.#stripPending = this.#strip;
  }

  /**
   * Adds one token id or a batch of them and returns the text that is now complete (possibly `""`).
   *
   * @example
   * ```ts
   * import { Utf8StreamDecoder } from "./utf8_stream.ts";
   * const dec = new Utf8StreamDecoder({ tokenBytes: (id: number) => new Uint8Array([id]) });
   * console.log(dec.push([0xc3]), dec.push(0xa9)); // "" "é"
   * ```
   */
  push(ids: number | Iterable<number>): string {
    let n = 0;
    for (const id of typeof ids === "number" ? [ids] : ids) {
      let bytes = this.#source.tokenBytes(id);
      if (bytes.length === 0) continue;
      if (this.#stripPending) {
        this.#stripPending = false;
        if (bytes[0] === SPACE) bytes = bytes.subarray(1);
      }
      if (n + bytes.length > this.#buf.length) {
        const grown = new Uint8Array(Math.max(2 * this.#buf.length, n + bytes.length));
        grown.set(this.#buf.subarray(0, n));
        this.#buf = grown;
      }
      this.#buf.set(bytes, n);
      n += bytes.length;
    }
    return n === 0 ? "" : this.#decoder.decode(this.#buf.subarray(0, n), { stream: true });
  }

  /**
   * Ends the stream: returns the held-back bytes as text (an incomplete character becomes U+FFFD) and
   * resets the decoder, including the leading-space rule.
   *
   * @example
   * ```ts
   * import { Utf8StreamDecoder } from "./utf8_stream.ts";
   * const dec = new Utf8StreamDecoder({ tokenBytes: (id: number) => new Uint8Array([id]) });
   * dec.push([0xe2, 0x82]); // first two bytes of "€"
   * console.log(dec.flush() === "\uFFFD"); // true
   * ```
   */
  flush(): string {
    this.#stripPending = this.#strip;
    return this.#decoder.decode();
  }
}
