/**
 * The SentencePiece-style BPE tokenizer of LLaMA / LLaMA-2 vocabularies (`tokenizer.ggml.model =
 * "llama"`), matching llama.cpp's `llm_tokenizer_spm` token for token.
 *
 * Encoding: spaces become "▁" (U+2581), a "▁" is put in front when the vocabulary asks for a space
 * prefix, the text is split into characters, and then the adjacent pair whose concatenation is the
 * highest-scoring vocabulary token is merged, again and again (ties: the leftmost pair), until no pair
 * is a token. A priority queue with lazy deletion keeps this O(n log n). Whatever is left that is not a
 * token is written as one `<0xXX>` byte token per UTF-8 byte.
 *
 * Decoding: "▁" becomes a space, byte tokens become their byte, control tokens print nothing.
 *
 * @module
 */

import { ModelFormatError } from "../errors.ts";
import type { GgufValue } from "../model/gguf.ts";
import { encodeFramed, endOfGenerationIds, SpecialTokenSplitter } from "./special.ts";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";
import { Utf8StreamDecoder } from "./utf8_stream.ts";

/**
 * Values of `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
 *
 * @example
 * ```ts
 * import { TokenType } from "./spm.ts";
 * console.log(TokenType.BYTE); // 6
 * ```
 */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** A SentencePiece vocabulary, as stored under `tokenizer.ggml.*` in a GGUF file. */
export interface SpmVocab {
  /** Token strings, indexed by id (`tokenizer.ggml.tokens`). */
  tokens: readonly string[];
  /** Merge priority per token, higher merges first (`tokenizer.ggml.scores`). Default: all 0. */
  scores?: ArrayLike<number>;
  /** {@linkcode TokenType} per token (`tokenizer.ggml.token_type`). Default: all NORMAL. */
  types?: ArrayLike<number>;
  /** BOS id. Default 1 (llama.cpp's default for SPM), or -1 if the vocabulary is smaller. */
  bos?: number;
  /** EOS id. Default 2, or -1 if the vocabulary is smaller. */
  eos?: number;
  /** Unknown-token id, used when a byte has no `<0xXX>` token. Default 0. */
  unk?: number;
  /** Whether `encode` puts BOS first by default (`tokenizer.ggml.add_bos_token`). Default true. */
  addBos?: boolean;
  /** Whether `encode` puts EOS last by default (`tokenizer.ggml.add_eos_token`). Default false. */
  addEos?: boolean;
  /** Whether a "▁" is put before the text (`tokenizer.ggml.add_space_prefix`). Default true. */
  addSpacePrefix?: boolean;
}

const SPACE_MARK = "\u2581"; // "▁"
const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/**
 * LLaMA's SentencePiece BPE tokenizer with byte fallback.
 *
 * @example
 * ```ts
 * import { SpmTokenizer } from "./spm.ts";
 * // A toy vocabulary: "▁" and "▁a" exist, "b" does not (so it falls back to its byte token).
 * const tokens = ["<unk>", "<s>", "</s>", "▁", "a", "▁a", "<0x62>"];
 * const tok = new SpmTokenizer({ tokens, scores: [0, 0, 0, -1, -2, -0.5, 0], types: [2, 3, 3, 1, 1, 1, 6] });
 * const ids = tok.encode("a b");
 * console.log(ids); // [1, 5, 3, 6]: <s> "▁a" "▁" <0x62>
 * console.log(tok.decode(ids)); // "a b"
 * ```
 */
export class SpmTokenizer implements Tokenizer {
  /** Always `"llama"`. */
  readonly model: "llama" = "llama";
  /** Number of tokens in the vocabulary. */
  readonly vocabSize: number;
  /** BOS id, or -1. */
  readonly bos: number;
  /** EOS id, or -1. */
  readonly eos: number;
  /** Unknown-token id, or -1. */
  readonly unk: number;
  /** Default of {@linkcode EncodeOptions.addBos}. */
  readonly addBos: boolean;
  /** Default of {@linkcode EncodeOptions.addEos}. */
  readonly addEos: boolean;
  /** Whether encoding puts a "▁" before the text (and decoding removes the resulting space). */
  readonly addSpacePrefix: boolean;

  #tokens: readonly string[];
  #scores: Float64Array;
  #types: Uint8Array;
  #ids = new Map<string, number>(); // vocabulary string → id (a duplicate string maps to the last id)
  #byteIds = new Int32Array(256).fill(-1); // byte → its <0xXX> token (or fallback), -1 if none
  #pieces: (Uint8Array | undefined)[]; // lazily filled tokenBytes cache
  #specials: SpecialTokenSplitter; // user-defined (and, when parsing specials, control) tokens
  #endOfGeneration: Set<number>;

  /** Builds the tokenizer from a vocabulary; throws {@linkcode ModelFormatError} if it is malformed. */
  constructor(vocab: SpmVocab) {
    const n = vocab.tokens.length;
    if (n === 0) throw new ModelFormatError("Cannot create a tokenizer: the vocabulary is empty");
    for (const [name, arr] of [["scores", vocab.scores], ["token types", vocab.types]] as const) {
      if (arr !== undefined && arr.length !== n) {
        throw new ModelFormatError(
          `Cannot create a tokenizer: ${arr.length} ${name} for ${n} tokens; the vocabulary is corrupt`,
        );
      }
    }
    this.vocabSize = n;
    this.#tokens = vocab.tokens;
    this.#scores = Float64Array.from(vocab.scores ?? new Float64Array(n));
    this.#types = Uint8Array.from(vocab.types ?? new Uint8Array(n).fill(TokenType.NORMAL));
    this.#pieces = new Array(n);
    const idOrNone = (id: number | undefined, dflt: number) => {
      const v = id ?? dflt;
      return Number.isInteger(v) && v >= 0 && v < n ? v : -1;
    };
    this.bos = idOrNone(vocab.bos, 1);
    this.eos = idOrNone(vocab.eos, 2);
    this.unk = idOrNone(vocab.unk, 0);
    this.addBos = vocab.addBos ?? true;
    this.addEos = vocab.addEos ?? false;
    this.addSpacePrefix = vocab.addSpacePrefix ?? true;

    for (let id = 0; id < n; id++) {
      const text = vocab.tokens[id] === "" ? `[EMPTY_${id}]` : vocab.tokens[id]; // as llama.cpp does
      this.#ids.set(text, id);
      if (this.#types[id] === TokenType.BYTE && !/^<0x[0-9A-Fa-f]{2}>$/.test(text)) {
        throw new ModelFormatError(
          `Cannot create a tokenizer: byte token ${id} is ${
            JSON.stringify(text)
          }, expected the form "<0xXX>"`,
        );
      }
    }
    const texts = vocab.tokens.map((t, id) => t === "" ? `[EMPTY_${id}]` : t);
    this.#specials = new SpecialTokenSplitter(texts, this.#types);
    this.#endOfGeneration = endOfGenerationIds(texts, [this.eos]);
    for (let b = 0; b < 256; b++) {
      const hex = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      this.#byteIds[b] = this.#ids.get(hex) ??
        (b < 0x80 ? this.#ids.get(String.fromCharCode(b)) : undefined) ??
        this.unk;
    }
  }

  /**
   * Reads the vocabulary from GGUF metadata (`tokenizer.ggml.tokens`, `.scores`, `.token_type`,
   * `.bos_token_id`, `.eos_token_id`, `.unknown_token_id`, `.add_bos_token`, `.add_eos_token`,
   * `.add_space_prefix`).
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { SpmTokenizer } from "./spm.ts";
   * const f = await GgufFile.open("../shared/models/stories260K.gguf");
   * const tok = SpmTokenizer.fromGguf(f.metadata);
   * f.close();
   * console.log(tok.vocabSize, tok.bos, tok.eos); // 512 1 2
   * ```
   */
  static fromGguf(metadata: ReadonlyMap<string, GgufValue>): SpmTokenizer {
    const tokens = metadata.get("tokenizer.ggml.tokens");
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
      throw new ModelFormatError(
        "Cannot create a tokenizer: tokenizer.ggml.tokens is missing or is not an array of strings",
      );
    }
    const numbers = (key: string): ArrayLike<number> | undefined => {
      const v = metadata.get(key);
      if (v === undefined) return undefined;
      if (v instanceof Float32Array || v instanceof Float64Array || v instanceof Int32Array) return v;
      if (ArrayBuffer.isView(v) && !(v instanceof BigInt64Array || v instanceof BigUint64Array)) {
        return v as unknown as ArrayLike<number>;
      }
      if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
      throw new ModelFormatError(`Cannot create a tokenizer: ${key} is not an array of numbers`);
    };
    const id = (key: string): number | undefined => {
      const v = metadata.get(key);
      return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
    };
    const flag = (key: string): boolean | undefined => {
      const v = metadata.get(key);
      return typeof v === "boolean" ? v : undefined;
    };
    return new SpmTokenizer({
      tokens: tokens as string[],
      scores: numbers("tokenizer.ggml.scores"),
      types: numbers("tokenizer.ggml.token_type"),
      bos: id("tokenizer.ggml.bos_token_id"),
      eos: id("tokenizer.ggml.eos_token_id"),
      unk: id("tokenizer.ggml.unknown_token_id"),
      addBos: flag("tokenizer.ggml.add_bos_token"),
      addEos: flag("tokenizer.ggml.add_eos_token"),
      addSpacePrefix: flag("tokenizer.ggml.add_space_prefix"),
    });
  }

  /**
   * Encodes text like llama.cpp's `llama_tokenize(text, add_special = addBos, parse_special = false)`.
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { SpmTokenizer } from "./spm.ts";
   * const f = await GgufFile.open("../shared/models/ggml-vocab-llama-spm.gguf");
   * const tok = SpmTokenizer.fromGguf(f.metadata);
   * f.close();
   * console.log(tok.encode(" Hello world", { addBos: false })); // [29871, 15043, 3186]
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return encodeFramed(this, options, (out) => {
      let afterSpecial = true; // the space prefix goes at the start and after every special token
      for (const fragment of this.#specials.split(text, options.parseSpecial ?? false)) {
        if (typeof fragment === "number") {
          out.push(fragment);
          afterSpecial = true;
          continue;
        }
        const prefixed = this.addSpacePrefix && afterSpecial ? " " + fragment : fragment;
        this.#bpe(prefixed.replaceAll(" ", SPACE_MARK), out);
        afterSpecial = false;
      }
    });
  }

  /**
   * Decodes ids to text. By default the space the prefix introduced before the first word is removed,
   * so `decode(encode(text)) === text` (a leading BOS is skipped first, since it prints nothing).
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { SpmTokenizer } from "./spm.ts";
   * const f = await GgufFile.open("../shared/models/ggml-vocab-llama-spm.gguf");
   * const tok = SpmTokenizer.fromGguf(f.metadata);
   * f.close();
   * console.log(tok.decode([1, 15043, 3186])); // "Hello world"
   * console.log(tok.decode([3186], { stripLeadingSpace: false })); // " world"
   * ```
   */
  decode(ids: Iterable<number>, options: DecodeOptions = {}): string {
    const dec = this.streamDecoder({ ...options, stripLeadingSpace: options.stripLeadingSpace ?? true });
    return dec.push(ids) + dec.flush();
  }

  /**
   * A {@linkcode Utf8StreamDecoder} over this vocabulary. `stripLeadingSpace` defaults to `false`
   * here: streamed tokens usually continue a prompt.
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { SpmTokenizer } from "./spm.ts";
   * const f = await GgufFile.open("../shared/models/ggml-vocab-llama-spm.gguf");
   * const tok = SpmTokenizer.fromGguf(f.metadata);
   * f.close();
   * const dec = tok.streamDecoder();
   * // "🚀" has no token: it is four byte tokens, and comes out whole with the last one.
   * console.log([243, 162, 157, 131].map((id) => dec.push(id))); // [ "", "", "", "🚀" ]
   * ```
   */
  streamDecoder(options: DecodeOptions = {}): Utf8StreamDecoder {
    const source = options.renderSpecial ? { tokenBytes: (id: number) => this.#renderBytes(id) } : this;
    return new Utf8StreamDecoder(source, {
      stripLeadingSpace: this.addSpacePrefix && (options.stripLeadingSpace ?? false),
    });
  }

  /**
   * The token's vocabulary string.
   *
   * @example
   * ```ts
   * import { SpmTokenizer } from "./spm.ts";
   * const tok = new SpmTokenizer({ tokens: ["<unk>", "<s>", "</s>", "▁hi"] });
   * console.log(tok.tokenText(3)); // "▁hi"
   * ```
   */
  tokenText(id: number): string {
    this.#check(id);
    return this.#tokens[id];
  }

  /**
   * The bytes the token decodes to: "▁" → space for normal tokens, the byte for `<0xXX>`, the text
   * as is for user-defined tokens, nothing for control, unknown and unused tokens.
   *
   * @example
   * ```ts
   * import { SpmTokenizer } from "./spm.ts";
   * const tok = new SpmTokenizer({ tokens: ["<unk>", "<s>", "</s>", "<0x0A>"], types: [2, 3, 3, 6] });
   * console.log(tok.tokenBytes(3), tok.tokenBytes(1)); // Uint8Array(1) [ 10 ] Uint8Array(0) []
   * ```
   */
  tokenBytes(id: number): Uint8Array {
    this.#check(id);
    let piece = this.#pieces[id];
    if (piece === undefined) {
      const text = this.#tokens[id];
      switch (this.#types[id]) {
        case TokenType.NORMAL:
          piece = utf8.encode(text.replaceAll(SPACE_MARK, " "));
          break;
        case TokenType.BYTE:
          piece = new Uint8Array([parseInt(text.slice(3, 5), 16)]);
          break;
        case TokenType.USER_DEFINED:
          piece = utf8.encode(text);
          break;
        default: // control, unknown, unused, undefined: print nothing (llama.cpp with special = false)
          piece = EMPTY;
      }
      this.#pieces[id] = piece;
    }
    return piece;
  }

  /**
   * Whether generating this id ends the generation: EOS, or a token whose text llama.cpp counts as an
   * end of turn (`<|im_end|>`, `<end_of_turn>`, …).
   *
   * @example
   * ```ts
   * import { SpmTokenizer } from "./spm.ts";
   * const tok = new SpmTokenizer({ tokens: ["<unk>", "<s>", "</s>", "a"] });
   * console.log(tok.isEndOfGeneration(2), tok.isEndOfGeneration(3)); // true false
   * ```
   */
  isEndOfGeneration(id: number): boolean {
    return this.#endOfGeneration.has(id);
  }

  #check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(
        `Cannot look up token: id must be an integer in [0, ${this.vocabSize}): current value is ${id}`,
      );
    }
  }

  /** Bytes with control and unknown tokens rendered as their text (llama.cpp's `special = true`). */
  #renderBytes(id: number): Uint8Array {
    const t = this.#types[id];
    return t === TokenType.CONTROL || t === TokenType.UNKNOWN
      ? utf8.encode(this.#tokens[id])
      : this.tokenBytes(id);
  }

  /** The SentencePiece BPE on one escaped fragment; appends ids to `out`. */
  #bpe(s: string, out: number[]): void {
    // Symbols are code points of `s` (a surrogate pair is one symbol), kept as a linked list of
    // [start, start + len) ranges; merging folds the right symbol into the left one (len 0 = gone).
    const n = s.length;
    const start = new Int32Array(n);
    const len = new Int32Array(n);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    let count = 0;
    for (let i = 0; i < n; count++) {
      const c = s.charCodeAt(i);
      const pair = c >= 0xd800 && c < 0xdc00 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      start[count] = i;
      len[count] = pair ? 2 : 1;
      prev[count] = count - 1;
      next[count] = count + 1;
      i += len[count];
    }
    if (count === 0) return;
    next[count - 1] = -1;

    const queue = new BigramQueue(count);
    const tryAdd = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const size = len[left] + len[right];
      const id = this.#ids.get(s.substring(start[left], start[left] + size));
      if (id !== undefined) queue.push(this.#scores[id], left, right, size);
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);

    while (queue.length > 0) {
      const { left, right, size } = queue.pop();
      // Stale entry: one side was merged since it was queued (symbols only ever grow).
      if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== size) continue;
      len[left] = size;
      len[right] = 0;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryAdd(prev[left], left);
      tryAdd(left, next[left]);
    }

    for (let i = 0; i !== -1; i = next[i]) {
      const text = s.substring(start[i], start[i] + len[i]);
      const id = this.#ids.get(text);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const b of utf8.encode(text)) {
        const byteId = this.#byteIds[b];
        if (byteId < 0) {
          throw new ModelFormatError(
            `Cannot encode byte 0x${
              b.toString(16).padStart(2, "0")
            }: the vocabulary has no byte token for it ` +
              "and no unknown token",
          );
        }
        out.push(byteId);
      }
    }
  }
}

/**
 * Max-priority queue of candidate merges: higher score first, then the leftmost. A binary heap over
 * parallel typed arrays (no per-entry objects: a 1 MB text queues a few million candidates).
 */
class BigramQueue {
  #score: Float64Array;
  #left: Int32Array;
  #right: Int32Array;
  #size: Int32Array;
  length = 0;
  #top = { left: 0, right: 0, size: 0 };

  constructor(capacity: number) {
    const cap = Math.max(16, capacity);
    this.#score = new Float64Array(cap);
    this.#left = new Int32Array(cap);
    this.#right = new Int32Array(cap);
    this.#size = new Int32Array(cap);
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.length === this.#score.length) this.#grow();
    let i = this.length++;
    // sift up
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#before(score, left, p)) break;
      this.#move(p, i);
      i = p;
    }
    this.#set(i, score, left, right, size);
  }

  /** Removes and returns the best entry (the returned object is reused by the next call). */
  pop(): { left: number; right: number; size: number } {
    const top = this.#top;
    top.left = this.#left[0];
    top.right = this.#right[0];
    top.size = this.#size[0];
    const last = --this.length;
    if (last > 0) {
      const score = this.#score[last],
        left = this.#left[last],
        right = this.#right[last],
        size = this.#size[last];
      // sift down
      let i = 0;
      for (;;) {
        const a = 2 * i + 1;
        if (a >= last) break;
        const b = a + 1;
        const c = b < last && this.#before(this.#score[b], this.#left[b], a) ? b : a;
        if (!this.#before(this.#score[c], this.#left[c], i, score, left)) break;
        this.#move(c, i);
        i = c;
      }
      this.#set(i, score, left, right, size);
    }
    return top;
  }

  /** Whether (score, left) comes before entry j, or before (jScore, jLeft) when given. */
  #before(score: number, left: number, j: number, jScore = this.#score[j], jLeft = this.#left[j]): boolean {
    return score > jScore || (score === jScore && left < jLeft);
  }

  #move(from: number, to: number): void {
    this.#score[to] = this.#score[from];
    this.#left[to] = this.#left[from];
    this.#right[to] = this.#right[from];
    this.#size[to] = this.#size[from];
  }

  #set(i: number, score: number, left: number, right: number, size: number): void {
    this.#score[i] = score;
    this.#left[i] = left;
    this.#right[i] = right;
    this.#size[i] = size;
  }

  #grow(): void {
    const cap = 2 * this.#score.length;
    const grow = <T extends Float64Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
    this.#score = grow(this.#score, new Float64Array(cap));
    this.#left = grow(this.#left, new Int32Array(cap));
    this.#right = grow(this.#right, new Int32Array(cap));
    this.#size = grow(this.#size, new Int32Array(cap));
  }
}
