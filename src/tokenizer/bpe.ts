/**
 * The byte-level BPE tokenizer of GPT-2-style vocabularies (`tokenizer.ggml.model = "gpt2"`: GPT-2,
 * Llama 3, Qwen, …), matching llama.cpp's `llm_tokenizer_bpe` token for token.
 *
 * Encoding, in llama.cpp's order:
 * 1. special tokens written in the text are cut out (USER_DEFINED ones always, CONTROL ones only with
 *    `parseSpecial`; see `./special.ts`);
 * 2. each remaining piece is cut into words by the pre-tokenizer regexes `tokenizer.ggml.pre` names
 *    (`./pretokenize.ts`);
 * 3. each word's UTF-8 bytes become GPT-2's byte characters (printable bytes stand for themselves,
 *    the other 68 become U+0100…U+0143, so a space is "Ġ" and a newline "Ċ");
 * 4. with `ignoreMerges` (Llama 3) a word that is itself a token is that token; otherwise adjacent
 *    symbols are merged, always the pair whose merge comes first in `tokenizer.ggml.merges` (ties: the
 *    leftmost), until no pair has a merge. A binary heap with lazy deletion keeps a word of n bytes at
 *    O(n log n), and every word's result is cached, so ordinary text mostly costs one Map lookup per
 *    word.
 *
 * Decoding maps each character of a token back to its byte. Control tokens (BOS, EOS, `<|eot_id|>`)
 * print nothing unless `renderSpecial` is set, as llama.cpp's `llama_token_to_piece(…, special =
 * false)` which llama-cli uses for output; with `renderSpecial` they print their text (llama.cpp's
 * `common_detokenize` default, the inverse of `parseSpecial`). llama.cpp's `clean_spaces` pass (" ?"
 * → "?" and such, applied by `llama_detokenize` only) is not done: it would break round trips and
 * streaming, where llama.cpp does not apply it either.
 *
 * @module
 */

import { ModelFormatError } from "../errors.ts";
import type { GgufValue } from "../model/gguf.ts";
import { forEachWord, type Pretokenizer, pretokenizerFor, SUPPORTED_PRETOKENIZERS } from "./pretokenize.ts";
import {
  encodeFramed,
  endOfGenerationIds,
  EOG_TEXTS,
  EOT_TEXTS,
  findTokenByText,
  SpecialTokenSplitter,
} from "./special.ts";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";
import { Utf8StreamDecoder } from "./utf8_stream.ts";

/** A byte-level BPE vocabulary, as stored under `tokenizer.ggml.*` in a GGUF file. */
export interface BpeVocab {
  /** Token strings in GPT-2's byte characters, indexed by id (`tokenizer.ggml.tokens`). */
  tokens: readonly string[];
  /** Merges, highest priority first, each "left right" (`tokenizer.ggml.merges`). */
  merges: readonly string[];
  /** Token type per token (`tokenizer.ggml.token_type`, see `TokenType`). Default: all NORMAL. */
  types?: ArrayLike<number>;
  /** The pre-tokenizer (`tokenizer.ggml.pre`). Default `"default"`, as llama.cpp. */
  pre?: string;
  /** BOS id. Default 11 (llama.cpp's default for BPE vocabularies), or -1 if the vocabulary is smaller. */
  bos?: number;
  /** EOS id. Default 11, or -1 if the vocabulary is smaller. */
  eos?: number;
  /** End-of-turn id. Default: the token whose text is `<|eot_id|>`, `<|im_end|>`, … (llama.cpp's list), or -1. */
  eot?: number;
  /** End-of-message id (Llama 3.1 tool calls). Default: the `<|eom_id|>` token, or -1. */
  eom?: number;
  /** Whether `encode` puts BOS first by default. Default: true for Llama 3's pre-tokenizer, else false. */
  addBos?: boolean;
  /** Whether `encode` puts EOS last by default. Default false. */
  addEos?: boolean;
}

const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4;
const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** GPT-2's byte → character table: bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for themselves. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return chars;
})();
/** The inverse: character code (< 0x144) → byte, or -1. */
const CHAR_TO_BYTE: Int16Array = (() => {
  const t = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => (t[c.charCodeAt(0)] = b));
  return t;
})();

/**
 * Maps raw bytes to GPT-2's byte characters (the form `tokenizer.ggml.tokens` and `.merges` use).
 *
 * @example
 * ```ts
 * import { bytesToBpeChars } from "./bpe.ts";
 * console.log(bytesToBpeChars(new TextEncoder().encode(" hi\n"))); // "ĠhiĊ"
 * ```
 */
export function bytesToBpeChars(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

/**
 * Maps GPT-2 byte characters back to bytes; a character outside the table (not produced by
 * {@linkcode bytesToBpeChars}) is kept as its own UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { bpeCharsToBytes } from "./bpe.ts";
 * console.log(new TextDecoder().decode(bpeCharsToBytes("ĠhiĊ"))); // " hi\n"
 * ```
 */
export function bpeCharsToBytes(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    const b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    if (b >= 0) out.push(b);
    else out.push(...utf8.encode(ch));
  }
  return new Uint8Array(out);
}

/**
 * Byte-level BPE with merge ranks, GPT-2's byte mapping and a pre-tokenizer chosen by name.
 *
 * @example
 * ```ts
 * import { BpeTokenizer } from "./bpe.ts";
 * // A toy vocabulary: "Ġ" is the space byte; merges make "Ġa" first, then "Ġab".
 * const tok = new BpeTokenizer({
 *   tokens: ["a", "b", "Ġ", "Ġa", "Ġab", "<|end|>"],
 *   types: [1, 1, 1, 1, 1, 3],
 *   merges: ["Ġ a", "Ġa b"],
 *   pre: "gpt-2",
 *   eos: 5,
 * });
 * const ids = tok.encode(" ab b<|end|>", { parseSpecial: true });
 * console.log(ids); // [ 4, 2, 1, 5 ]
 * console.log(JSON.stringify(tok.decode(ids))); // " ab b"
 * console.log(tok.decode(ids, { renderSpecial: true })); // " ab b<|end|>"
 * console.log(tok.isEndOfGeneration(5)); // true
 * ```
 */
export class BpeTokenizer implements Tokenizer {
  /** Always `"gpt2"`. */
  readonly model: "gpt2" = "gpt2";
  /** Number of tokens in the vocabulary. */
  readonly vocabSize: number;
  /** BOS id, or -1. */
  readonly bos: number;
  /** EOS id, or -1. */
  readonly eos: number;
  /** End-of-turn id (Llama 3: `<|eot_id|>`), or -1. */
  readonly eot: number;
  /** End-of-message id (Llama 3.1: `<|eom_id|>`), or -1. */
  readonly eom: number;
  /** Default of {@linkcode EncodeOptions.addBos}. */
  readonly addBos: boolean;
  /** Default of {@linkcode EncodeOptions.addEos}. */
  readonly addEos: boolean;
  /** The pre-tokenizer in use. */
  readonly pretokenizer: Pretokenizer;
  /** The ids that end a generation (llama.cpp's `special_eog_ids`): EOS, EOT, EOM and the like. */
  readonly endOfGeneration: ReadonlySet<number>;

  #tokens: readonly string[];
  #types: Uint8Array;
  #ids = new Map<string, number>(); // token string → id (a duplicate string maps to the last id)
  #maxTokenChars = 0;
  #specials: SpecialTokenSplitter;
  // Symbols are token ids, plus "virtual" ids from vocabSize up for merge strings that are no token.
  #virtual: string[] = [];
  #byteSym = new Int32Array(256);
  #mergeRanks = new Map<string, number>(); // "left right" → rank (the first one for a repeated merge)
  #pairs = new PairMap(); // (left symbol, right symbol) → rank or -1: #mergeRanks by id, filled lazily
  #mergeResult: Int32Array; // rank → merged symbol, -1 until first used
  #cache = new Map<string, number | Int32Array>(); // pre-token word → its ids
  #pieces: (Uint8Array | undefined)[];
  // scratch for #bpe, grown on demand
  #bytes = new Uint8Array(256);
  #sym = new Int32Array(256);
  #prev = new Int32Array(256);
  #next = new Int32Array(256);
  #heap = new MinHeap(256);

  /** Builds the tokenizer; throws {@linkcode ModelFormatError} if the vocabulary is malformed. */
  constructor(vocab: BpeVocab) {
    const n = vocab.tokens.length;
    if (n === 0) throw new ModelFormatError("Cannot create a tokenizer: the vocabulary is empty");
    if (vocab.types !== undefined && vocab.types.length !== n) {
      throw new ModelFormatError(
        `Cannot create a tokenizer: ${vocab.types.length} token types for ${n} tokens; the vocabulary is corrupt`,
      );
    }
    const pre = pretokenizerFor(vocab.pre);
    if (pre === undefined) {
      throw new ModelFormatError(
        `Cannot create a tokenizer: tokenizer.ggml.pre ${JSON.stringify(vocab.pre)} is not supported ` +
          `(supported: ${SUPPORTED_PRETOKENIZERS.map((p) => JSON.stringify(p)).join(", ")})`,
      );
    }
    this.pretokenizer = pre;
    this.vocabSize = n;
    this.#tokens = vocab.tokens.map((t, id) => t === "" ? `[EMPTY_${id}]` : t); // as llama.cpp does
    this.#types = Uint8Array.from(vocab.types ?? new Uint8Array(n).fill(NORMAL));
    this.#pieces = new Array(n);
    for (let id = 0; id < n; id++) {
      this.#ids.set(this.#tokens[id], id);
      this.#maxTokenChars = Math.max(this.#maxTokenChars, this.#tokens[id].length);
    }

    const idOrNone = (id: number | undefined, dflt: number) => {
      const v = id ?? dflt;
      return Number.isInteger(v) && v >= 0 && v < n ? v : -1;
    };
    this.bos = idOrNone(vocab.bos, 11);
    this.eos = idOrNone(vocab.eos, 11);
    this.eot = idOrNone(vocab.eot, findTokenByText(this.#tokens, EOT_TEXTS));
    this.eom = idOrNone(vocab.eom, findTokenByText(this.#tokens, ["<|eom_id|>"]));
    this.addBos = vocab.addBos ?? pre.addBos;
    this.addEos = vocab.addEos ?? false;
    this.endOfGeneration = endOfGenerationIds(this.#tokens, [this.eos, this.eot, this.eom]);
    // llama.cpp makes EOT, EOM and the end-of-generation texts control tokens whatever the file says.
    const eogTexts = new Set(EOG_TEXTS);
    for (let id = 0; id < n; id++) {
      if (id === this.eot || id === this.eom || eogTexts.has(this.#tokens[id])) this.#types[id] = CONTROL;
    }
    this.#specials = new SpecialTokenSplitter(this.#tokens, this.#types);

    for (let b = 0; b < 256; b++) this.#byteSym[b] = this.#symbol(BYTE_TO_CHAR[b]);
    // Interning 280k merges as id pairs up front costs about a second (string hashing), so only the
    // merge strings are indexed here; pairs are resolved to ranks by id when encoding first meets them.
    const merges = vocab.merges;
    this.#mergeResult = new Int32Array(merges.length).fill(-1);
    for (let rank = 0; rank < merges.length; rank++) {
      const m = merges[rank];
      // llama.cpp splits at the first space after the first character; without one it ranks the pair
      // ("", ""), which never matches.
      if (m.indexOf(" ", 1) > 0 && !this.#mergeRanks.has(m)) this.#mergeRanks.set(m, rank);
    }
  }

  /**
   * Reads the vocabulary from GGUF metadata (`tokenizer.ggml.tokens`, `.merges`, `.token_type`,
   * `.pre`, `.bos_token_id`, `.eos_token_id`, `.eot_token_id`, `.eom_token_id`, `.add_bos_token`,
   * `.add_eos_token`).
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { BpeTokenizer } from "./bpe.ts";
   * const f = await GgufFile.open("../shared/models/ggml-vocab-gpt-2.gguf");
   * const tok = BpeTokenizer.fromGguf(f.metadata);
   * f.close();
   * console.log(tok.vocabSize, tok.eos, tok.encode("Hello world")); // 50257 50256 [ 15496, 995 ]
   * ```
   */
  static fromGguf(metadata: ReadonlyMap<string, GgufValue>): BpeTokenizer {
    const strings = (key: string): string[] => {
      const v = metadata.get(key);
      if (!Array.isArray(v) || v.some((t) => typeof t !== "string")) {
        throw new ModelFormatError(
          `Cannot create a tokenizer: ${key} is missing or is not an array of strings`,
        );
      }
      return v as string[];
    };
    const types = metadata.get("tokenizer.ggml.token_type");
    if (types !== undefined && !(ArrayBuffer.isView(types) && !(types instanceof DataView))) {
      throw new ModelFormatError(
        "Cannot create a tokenizer: tokenizer.ggml.token_type is not an array of integers",
      );
    }
    const id = (key: string): number | undefined => {
      const v = metadata.get(key);
      return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
    };
    const flag = (key: string): boolean | undefined => {
      const v = metadata.get(key);
      return typeof v === "boolean" ? v : undefined;
    };
    const pre = metadata.get("tokenizer.ggml.pre");
    return new BpeTokenizer({
      tokens: strings("tokenizer.ggml.tokens"),
      merges: strings("tokenizer.ggml.merges"),
      types: types as ArrayLike<number> | undefined,
      pre: typeof pre === "string" && pre !== "" ? pre : undefined,
      bos: id("tokenizer.ggml.bos_token_id"),
      eos: id("tokenizer.ggml.eos_token_id"),
      eot: id("tokenizer.ggml.eot_token_id"),
      eom: id("tokenizer.ggml.eom_token_id"),
      addBos: flag("tokenizer.ggml.add_bos_token"),
      addEos: flag("tokenizer.ggml.add_eos_token"),
    });
  }

  /**
   * Encodes text like llama.cpp's `llama_tokenize(text, add_special = addBos, parse_special)`.
   * `parseSpecial` (default false) turns control tokens written in the text, such as `<|eot_id|>`,
   * into their ids; without it they are tokenized as ordinary text.
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { BpeTokenizer } from "./bpe.ts";
   * const f = await GgufFile.open("../shared/models/llama3-vocab.gguf");
   * const tok = BpeTokenizer.fromGguf(f.metadata);
   * f.close();
   * console.log(tok.encode("Hello world")); // [ 128000, 9906, 1917 ]
   * console.log(tok.encode("<|eot_id|>", { addBos: false, parseSpecial: true })); // [ 128009 ]
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return encodeFramed(this, options, (out) => {
      const emit = (word: string) => this.#encodeWord(word, out);
      for (const fragment of this.#specials.split(text, options.parseSpecial ?? false)) {
        if (typeof fragment === "number") out.push(fragment);
        else forEachWord(this.pretokenizer, fragment, emit);
      }
    });
  }

  /**
   * Decodes ids to text: byte characters become their bytes, then UTF-8 (invalid bytes become
   * U+FFFD). Control tokens print nothing unless `renderSpecial` is set.
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { BpeTokenizer } from "./bpe.ts";
   * const f = await GgufFile.open("../shared/models/llama3-vocab.gguf");
   * const tok = BpeTokenizer.fromGguf(f.metadata);
   * f.close();
   * console.log(tok.decode([128000, 9906, 1917, 128009])); // "Hello world"
   * console.log(tok.decode([128000, 9906, 1917], { renderSpecial: true })); // "<|begin_of_text|>Hello world"
   * ```
   */
  decode(ids: Iterable<number>, options: DecodeOptions = {}): string {
    const dec = this.streamDecoder(options);
    return dec.push(ids) + dec.flush();
  }

  /**
   * A {@linkcode Utf8StreamDecoder} over this vocabulary (`stripLeadingSpace` does not apply: byte-level
   * BPE adds no space prefix).
   *
   * @example
   * ```ts
   * import { GgufFile } from "../model/gguf.ts";
   * import { BpeTokenizer } from "./bpe.ts";
   * const f = await GgufFile.open("../shared/models/ggml-vocab-gpt-2.gguf");
   * const tok = BpeTokenizer.fromGguf(f.metadata);
   * f.close();
   * const dec = tok.streamDecoder();
   * // "🦙" is two tokens (F0 9F A6 + 99); it comes out whole with the second.
   * console.log(tok.encode(" 🦙").map((id) => dec.push(id))); // [ " ", "", "🦙" ]
   * ```
   */
  streamDecoder(options: DecodeOptions = {}): Utf8StreamDecoder {
    if (!options.renderSpecial) return new Utf8StreamDecoder(this);
    return new Utf8StreamDecoder({ tokenBytes: (id: number) => this.#renderBytes(id) });
  }

  /**
   * The token's vocabulary string, in GPT-2 byte characters (`"Ġworld"`, `"<|eot_id|>"`).
   *
   * @example
   * ```ts
   * import { BpeTokenizer } from "./bpe.ts";
   * const tok = new BpeTokenizer({ tokens: ["Ġ", "hi"], merges: [] });
   * console.log(tok.tokenText(0)); // "Ġ"
   * ```
   */
  tokenText(id: number): string {
    this.#check(id);
    return this.#tokens[id];
  }

  /**
   * The bytes the token decodes to: byte characters mapped back for normal tokens, the text as is for
   * user-defined tokens, nothing for control, unknown and unused tokens.
   *
   * @example
   * ```ts
   * import { BpeTokenizer } from "./bpe.ts";
   * const tok = new BpeTokenizer({ tokens: ["Ġhi", "<|end|>"], types: [1, 3], merges: [] });
   * console.log(tok.tokenBytes(0), tok.tokenBytes(1)); // Uint8Array(3) [ 32, 104, 105 ] Uint8Array(0) []
   * ```
   */
  tokenBytes(id: number): Uint8Array {
    this.#check(id);
    let piece = this.#pieces[id];
    if (piece === undefined) {
      switch (this.#types[id]) {
        case NORMAL:
          piece = bpeCharsToBytes(this.#tokens[id]);
          break;
        case USER_DEFINED:
          piece = utf8.encode(this.#tokens[id]);
          break;
        default: // control, unknown, unused, byte, undefined: nothing (llama.cpp with special = false)
          piece = EMPTY;
      }
      this.#pieces[id] = piece;
    }
    return piece;
  }

  /**
   * Whether generating this id ends the generation (EOS, `<|eot_id|>`, `<|eom_id|>`, …).
   *
   * @example
   * ```ts
   * import { BpeTokenizer } from "./bpe.ts";
   * const tok = new BpeTokenizer({ tokens: ["a", "<|eot_id|>", "<|end_of_text|>"], types: [1, 3, 3], merges: [], eos: 2 });
   * console.log(tok.eot, [0, 1, 2].map((id) => tok.isEndOfGeneration(id))); // 1 [ false, true, true ]
   * ```
   */
  isEndOfGeneration(id: number): boolean {
    return this.endOfGeneration.has(id);
  }

  /** Bytes with special tokens rendered as their text (llama.cpp's `special = true`). */
  #renderBytes(id: number): Uint8Array {
    const t = this.#types[id];
    return t === CONTROL || t === UNKNOWN ? utf8.encode(this.#tokens[id]) : this.tokenBytes(id);
  }

  #check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(
        `Cannot look up token: id must be an integer in [0, ${this.vocabSize}): current value is ${id}`,
      );
    }
  }

  /** The rank of merging symbols (left, right), or -1 when they do not merge. */
  #rank(left: number, right: number): number {
    let rank = this.#pairs.get(left, right);
    if (rank === -2) {
      const l = this.#symbolText(left);
      // "l r" names this pair only if llama.cpp would split it after l (l has no space past its start).
      rank = l.indexOf(" ", 1) < 0 ? this.#mergeRanks.get(l + " " + this.#symbolText(right)) ?? -1 : -1;
      this.#pairs.set(left, right, rank);
    }
    return rank;
  }

  /** The symbol a merge of rank `rank` of (left, right) produces. */
  #merged(rank: number, left: number, right: number): number {
    let s = this.#mergeResult[rank];
    if (s < 0) s = this.#mergeResult[rank] = this.#symbol(this.#symbolText(left) + this.#symbolText(right));
    return s;
  }

  #symbolText(sym: number): string {
    return sym < this.vocabSize ? this.#tokens[sym] : this.#virtual[sym - this.vocabSize];
  }

  /** The symbol for a string: its token id, else a virtual id (allocated on first use). */
  #symbol(text: string): number {
    let id = this.#ids.get(text);
    if (id === undefined) {
      id = this.vocabSize + this.#virtual.length;
      this.#virtual.push(text);
      this.#ids.set(text, id);
    }
    return id;
  }

  /** Appends one pre-token word's ids to `out`, through the word cache. */
  #encodeWord(word: string, out: number[]): void {
    const hit = this.#cache.get(word);
    if (hit !== undefined) {
      if (typeof hit === "number") out.push(hit);
      else for (let i = 0; i < hit.length; i++) out.push(hit[i]);
      return;
    }
    const start = out.length;
    this.#bpe(word, out);
    if (word.length <= 256) { // long words are rare and would bloat the cache
      if (this.#cache.size >= 1 << 17) this.#cache.clear();
      // A regex match of 13+ characters is a slice that keeps the whole input text alive: cache a copy.
      const key = word.length < 13 ? word : word.split("").join("");
      const n = out.length - start;
      const ids = n === 1 ? out[start] : new Int32Array(n);
      if (typeof ids !== "number") { for (let i = 0; i < n; i++) ids[i] = out[start + i]; }
      this.#cache.set(key, ids);
    }
  }

  /** BPE on one word; appends its ids to `out`. */
  #bpe(word: string, out: number[]): void {
    const n = this.#utf8(word);
    const bytes = this.#bytes;
    if (this.pretokenizer.ignoreMerges && n <= this.#maxTokenChars) {
      let chars = "";
      for (let i = 0; i < n; i++) chars += BYTE_TO_CHAR[bytes[i]];
      const id = this.#ids.get(chars);
      if (id !== undefined && id < this.vocabSize) {
        out.push(id);
        return;
      }
    }
    if (this.#sym.length < n) {
      const cap = Math.max(n, 2 * this.#sym.length);
      this.#sym = new Int32Array(cap);
      this.#prev = new Int32Array(cap);
      this.#next = new Int32Array(cap);
    }
    const sym = this.#sym, prev = this.#prev, next = this.#next, heap = this.#heap;
    for (let i = 0; i < n; i++) {
      sym[i] = this.#byteSym[bytes[i]];
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    next[n - 1] = -1;
    // Heap keys: rank * 2^32 + left position, so the smallest rank wins and then the leftmost pair.
    heap.clear();
    for (let i = 0; i + 1 < n; i++) {
      const r = this.#rank(sym[i], sym[i + 1]);
      if (r >= 0) heap.push(r * 0x1_0000_0000 + i);
    }
    while (heap.length > 0) {
      const key = heap.pop();
      const rank = Math.floor(key / 0x1_0000_0000);
      const left = key - rank * 0x1_0000_0000;
      const right = next[left];
      // Stale entry: the left symbol was merged away, or either side changed since it was queued.
      if (sym[left] < 0 || right < 0 || this.#rank(sym[left], sym[right]) !== rank) continue;
      sym[left] = this.#merged(rank, sym[left], sym[right]);
      sym[right] = -1;
      const after = next[right];
      next[left] = after;
      if (after >= 0) prev[after] = left;
      const before = prev[left];
      if (before >= 0) {
        const r = this.#rank(sym[before], sym[left]);
        if (r >= 0) heap.push(r * 0x1_0000_0000 + before);
      }
      if (after >= 0) {
        const r = this.#rank(sym[left], sym[after]);
        if (r >= 0) heap.push(r * 0x1_0000_0000 + left);
      }
    }
    for (let i = 0; i >= 0; i = next[i]) {
      const s = sym[i];
      if (s < this.vocabSize) {
        out.push(s);
        continue;
      }
      // A merge produced a string that is no token: llama.cpp then looks up each of its UTF-8 bytes
      // as a one-byte token, which only ASCII bytes can match.
      for (const b of utf8.encode(this.#virtual[s - this.vocabSize])) {
        const id = b < 0x80 ? this.#ids.get(String.fromCharCode(b)) : undefined;
        if (id !== undefined && id < this.vocabSize) out.push(id);
      }
    }
    if (n > 1 << 16) { // do not keep megabytes of scratch after one huge word
      this.#bytes = new Uint8Array(256);
      this.#sym = new Int32Array(256);
      this.#prev = new Int32Array(256);
      this.#next = new Int32Array(256);
      this.#heap = new MinHeap(256);
    }
  }

  /** Writes the UTF-8 bytes of `s` into the scratch buffer (lone surrogates as U+FFFD); returns the length. */
  #utf8(s: string): number {
    if (this.#bytes.length < 3 * s.length) {
      this.#bytes = new Uint8Array(Math.max(3 * s.length, 2 * this.#bytes.length));
    }
    const b = this.#bytes;
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        b[n++] = c;
        continue;
      }
      if (c < 0x800) {
        b[n++] = 0xc0 | (c >> 6);
        b[n++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (c >= 0xd800 && c < 0xe000) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          b[n++] = 0xf0 | (c >> 18);
          b[n++] = 0x80 | ((c >> 12) & 0x3f);
          b[n++] = 0x80 | ((c >> 6) & 0x3f);
          b[n++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      b[n++] = 0xe0 | (c >> 12);
      b[n++] = 0x80 | ((c >> 6) & 0x3f);
      b[n++] = 0x80 | (c & 0x3f);
    }
    return n;
  }
}

/**
 * Open-addressing hash map from a pair of non-negative int32 (left, right) to an int32 value >= -1;
 * `get` answers -2 for an absent pair. It doubles when half full.
 */
class PairMap {
  #left = new Int32Array(1 << 12).fill(-1);
  #right = new Int32Array(1 << 12);
  #value = new Int32Array(1 << 12);
  #size = 0;

  /** The value stored for (left, right), or -2. */
  get(left: number, right: number): number {
    const keys = this.#left, mask = keys.length - 1;
    for (let i = hashPair(left, right) & mask;; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === -1) return -2;
      if (k === left && this.#right[i] === right) return this.#value[i];
    }
  }

  /** Stores the value of a pair that is not in the map yet. */
  set(left: number, right: number, value: number): void {
    if (2 * (this.#size + 1) > this.#left.length) this.#grow();
    this.#insert(left, right, value);
    this.#size++;
  }

  #insert(left: number, right: number, value: number): void {
    const keys = this.#left, mask = keys.length - 1;
    let i = hashPair(left, right) & mask;
    while (keys[i] !== -1) i = (i + 1) & mask;
    keys[i] = left;
    this.#right[i] = right;
    this.#value[i] = value;
  }

  #grow(): void {
    const left = this.#left, right = this.#right, value = this.#value;
    this.#left = new Int32Array(2 * left.length).fill(-1);
    this.#right = new Int32Array(2 * left.length);
    this.#value = new Int32Array(2 * left.length);
    for (let i = 0; i < left.length; i++) if (left[i] !== -1) this.#insert(left[i], right[i], value[i]);
  }
}

function hashPair(left: number, right: number): number {
  let h = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) >>> 0;
}

/** A binary min-heap of non-negative numbers (merge keys) in a growable Float64Array. */
class MinHeap {
  #a: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.#a = new Float64Array(capacity);
  }

  clear(): void {
    this.length = 0;
  }

  push(x: number): void {
    if (this.length === this.#a.length) {
      const grown = new Float64Array(2 * this.#a.length);
      grown.set(this.#a);
      this.#a = grown;
    }
    const a = this.#a;
    let i = this.length++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }

  pop(): number {
    const a = this.#a;
    const top = a[0];
    const last = a[--this.length];
    const n = this.length;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1] < a[c]) c++;
      if (a[c] >= last) break;
      a[i] = a[c];
      i = c;
    }
    if (n > 0) a[i] = last;
    return top;
  }
}
