/**
 * The tokenizer interface every vocabulary type implements, and {@linkcode tokenizerFromGguf}, which
 * picks the implementation from `tokenizer.ggml.model`:
 *
 * | `tokenizer.ggml.model` | implementation |
 * |---|---|
 * | `"llama"` | {@linkcode SpmTokenizer} (SentencePiece BPE with byte fallback), `./spm.ts` |
 * | `"gpt2"` | {@linkcode BpeTokenizer} (byte-level BPE: GPT-2, Llama 3, …), `./bpe.ts` |
 *
 * @module
 */

import { ModelFormatError } from "../errors.ts";
import type { GgufValue } from "../model/gguf.ts";
import { BpeTokenizer } from "./bpe.ts";
import { SpmTokenizer } from "./spm.ts";
import type { Utf8StreamDecoder } from "./utf8_stream.ts";

/** Options of {@linkcode Tokenizer.encode}. */
export interface EncodeOptions {
  /** Put BOS first. Default: the model's `tokenizer.ggml.add_bos_token` (true when absent for llama). */
  addBos?: boolean;
  /** Put EOS last. Default: the model's `tokenizer.ggml.add_eos_token` (false when absent). */
  addEos?: boolean;
  /**
   * Encode control tokens written in the text (`"<|eot_id|>"`, `"<s>"`) as those tokens, as llama.cpp's
   * `parse_special = true` does; use it for text rendered from a chat template. Default `false`: such
   * text is ordinary text (llama.cpp's default, and what its tokenizer test vectors use).
   * User-defined tokens are split out either way.
   */
  parseSpecial?: boolean;
}

/** Options of {@linkcode Tokenizer.decode} and {@linkcode Tokenizer.streamDecoder}. */
export interface DecodeOptions {
  /**
   * Remove the space that encoding's space prefix put before the first word (SentencePiece only; other
   * tokenizers ignore it). `decode` defaults to `true` (the ids start a text); `streamDecoder` defaults
   * to `false` (the ids usually continue a prompt that was printed already).
   */
  stripLeadingSpace?: boolean;
  /**
   * Print control tokens (BOS, EOS, `<|eot_id|>`) as their text, as llama.cpp's `special = true`
   * (`common_detokenize`'s default) does; `decode(encode(text, { parseSpecial: true }), { renderSpecial:
   * true })` gives `text` back. Default `false`: they print nothing (llama-cli's output).
   */
  renderSpecial?: boolean;
}

/**
 * A text ↔ token-id mapping loaded from a model's vocabulary. Special tokens written in the text (such
 * as `"<s>"`) are encoded as plain text unless `parseSpecial` is set (llama.cpp's `parse_special`).
 * Control tokens (BOS, EOS) decode to nothing unless `renderSpecial` is set.
 *
 * @example
 * ```ts
 * import { GgufFile } from "../model/gguf.ts";
 * import { tokenizerFromGguf } from "./tokenizer.ts";
 * const f = await GgufFile.open("../shared/models/stories260K.gguf");
 * const tok = tokenizerFromGguf(f.metadata);
 * f.close();
 * const ids = tok.encode("Once upon a time"); // [1, 403, 407, 261, 378]
 * console.log(ids, JSON.stringify(tok.decode(ids))); // ... "Once upon a time"
 * ```
 */
export interface Tokenizer {
  /** The `tokenizer.ggml.model` value this tokenizer implements, e.g. `"llama"`. */
  readonly model: string;
  /** Number of tokens in the vocabulary (valid ids are `0 … vocabSize - 1`). */
  readonly vocabSize: number;
  /** Beginning-of-sequence token id, or -1 when the vocabulary has none. */
  readonly bos: number;
  /** End-of-sequence token id, or -1 when the vocabulary has none. */
  readonly eos: number;
  /**
   * Whether generating this id ends the generation: EOS, and also end-of-turn tokens such as Llama 3's
   * `<|eot_id|>` (llama.cpp's `llama_vocab_is_eog`). Stop on this rather than on `id === eos`.
   */
  isEndOfGeneration(id: number): boolean;
  /** Encodes text to token ids. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Decodes token ids to text; bytes that are not valid UTF-8 become U+FFFD. */
  decode(ids: Iterable<number>, options?: DecodeOptions): string;
  /** The token's vocabulary string as stored in the model (`"▁Hello"`, `"<0x0A>"`, `"<s>"`). */
  tokenText(id: number): string;
  /** The bytes the token stands for when decoded; empty for control tokens. */
  tokenBytes(id: number): Uint8Array;
  /** A decoder for tokens that arrive one at a time; it never splits a UTF-8 character. */
  streamDecoder(options?: DecodeOptions): Utf8StreamDecoder;
}

/** The `tokenizer.ggml.model` values {@linkcode tokenizerFromGguf} accepts. */
export const SUPPORTED_TOKENIZER_MODELS: readonly string[] = ["llama", "gpt2"];

/**
 * Creates the tokenizer a GGUF file's metadata describes. Throws {@linkcode ModelFormatError} when
 * `tokenizer.ggml.model` is missing or names an unsupported tokenizer, or the vocabulary is malformed.
 *
 * @example
 * ```ts
 * import { GgufFile } from "../model/gguf.ts";
 * import { tokenizerFromGguf } from "./tokenizer.ts";
 * const f = await GgufFile.open("../shared/models/ggml-vocab-llama-spm.gguf");
 * const tok = tokenizerFromGguf(f.metadata);
 * f.close();
 * console.log(tok.encode("Hello world", { addBos: false })); // [15043, 3186]
 * ```
 */
export function tokenizerFromGguf(metadata: ReadonlyMap<string, GgufValue>): Tokenizer {
  const model = metadata.get("tokenizer.ggml.model");
  if (model === undefined) {
    throw new ModelFormatError(
      "Cannot create a tokenizer: the model has no tokenizer.ggml.model key (is it a GGUF without a vocabulary?)",
    );
  }
  switch (model) {
    case "llama":
      return SpmTokenizer.fromGguf(metadata);
    case "gpt2":
      return BpeTokenizer.fromGguf(metadata);
    default:
      throw new ModelFormatError(
        `Cannot create a tokenizer: tokenizer.ggml.model ${JSON.stringify(model)} is not supported ` +
          `(supported: ${SUPPORTED_TOKENIZER_MODELS.map((m) => JSON.stringify(m)).join(", ")})`,
      );
  }
}
