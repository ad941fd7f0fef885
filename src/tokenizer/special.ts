/**
 * Special-token handling shared by the tokenizers, following llama.cpp's `llama_vocab`:
 * {@linkcode SpecialTokenSplitter} cuts special tokens written in a text out of it before the
 * tokenizer proper runs, {@linkcode encodeFramed} adds BOS and EOS around the result, and
 * {@linkcode endOfGenerationIds} finds the tokens that end a generation.
 *
 * @module
 */

/**
 * Values of `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`), repeated here so that this
 * module does not import a tokenizer; `TokenType` in `./spm.ts` is the exported copy.
 */
const UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4;

const utf8 = new TextEncoder();

/**
 * Runs `body` (which appends the text's ids) between the BOS and EOS that `options`, or else the
 * vocabulary's `add_bos_token` / `add_eos_token`, ask for; a RangeError when the vocabulary has none.
 *
 * @example
 * ```ts
 * import { encodeFramed } from "./special.ts";
 * const vocab = { bos: 1, eos: 2, addBos: true, addEos: false };
 * console.log(encodeFramed(vocab, {}, (out) => out.push(7, 8))); // [ 1, 7, 8 ]
 * console.log(encodeFramed(vocab, { addBos: false, addEos: true }, (out) => out.push(7))); // [ 7, 2 ]
 * ```
 */
export function encodeFramed(
  vocab: { bos: number; eos: number; addBos: boolean; addEos: boolean },
  options: { addBos?: boolean; addEos?: boolean },
  body: (out: number[]) => void,
): number[] {
  const out: number[] = [];
  if (options.addBos ?? vocab.addBos) {
    if (vocab.bos < 0) throw new RangeError("Cannot add BOS: the vocabulary has no BOS token");
    out.push(vocab.bos);
  }
  body(out);
  if (options.addEos ?? vocab.addEos) {
    if (vocab.eos < 0) throw new RangeError("Cannot add EOS: the vocabulary has no EOS token");
    out.push(vocab.eos);
  }
  return out;
}

/**
 * Cuts special tokens out of text, as llama.cpp's `tokenizer_st_partition`: the special tokens are
 * CONTROL, USER_DEFINED and UNKNOWN ones; they are searched longest first (by UTF-8 length), each
 * in whatever text the longer ones left. USER_DEFINED tokens are always cut out; CONTROL and
 * UNKNOWN tokens only when special parsing is asked for (`parse_special = true`).
 *
 * @example
 * ```ts
 * import { SpecialTokenSplitter } from "./special.ts";
 * const s = new SpecialTokenSplitter(["a", "<s>", "<tag>"], [1, 3, 4]);
 * console.log(s.split("x<s>y<tag>", false)); // [ "x<s>y", 2 ]
 * console.log(s.split("x<s>y<tag>", true)); // [ "x", 1, "y", 2 ]
 * ```
 */
export class SpecialTokenSplitter {
  #all: { text: string; id: number; always: boolean }[];

  /** Collects the special tokens from the vocabulary's strings and token types. */
  constructor(tokens: readonly string[], types: ArrayLike<number>) {
    const all: { text: string; id: number; always: boolean; bytes: number }[] = [];
    for (let id = 0; id < tokens.length; id++) {
      const t = types[id];
      if ((t !== CONTROL && t !== USER_DEFINED && t !== UNKNOWN) || tokens[id] === "") continue;
      all.push({ text: tokens[id], id, always: t === USER_DEFINED, bytes: utf8.encode(tokens[id]).length });
    }
    all.sort((a, b) => b.bytes - a.bytes || a.id - b.id);
    this.#all = all.map(({ text, id, always }) => ({ text, id, always }));
  }

  /** Whether some token would be cut out (with `parseSpecial`, any special token; else USER_DEFINED ones). */
  has(parseSpecial: boolean): boolean {
    return this.#all.some((s) => parseSpecial || s.always);
  }

  /**
   * Splits `text` into plain-text pieces (strings, never empty) and special-token ids, in order.
   *
   * @example
   * ```ts
   * import { SpecialTokenSplitter } from "./special.ts";
   * const s = new SpecialTokenSplitter(["<|a|>", "<|a|>x"], [3, 3]);
   * console.log(s.split("<|a|>x<|a|>", true)); // [ 1, 0 ]: the longer token is cut out first
   * ```
   */
  split(text: string, parseSpecial: boolean): (string | number)[] {
    let parts: (string | number)[] = text === "" ? [] : [text];
    for (const special of this.#all) {
      if (!special.always && !parseSpecial) continue;
      if (!text.includes(special.text)) continue; // cheap filter: most tokens do not occur at all
      const next: (string | number)[] = [];
      for (const part of parts) {
        if (typeof part === "number") {
          next.push(part);
          continue;
        }
        let from = 0;
        for (let at = part.indexOf(special.text); at >= 0; at = part.indexOf(special.text, from)) {
          if (at > from) next.push(part.slice(from, at));
          next.push(special.id);
          from = at + special.text.length;
        }
        if (from < part.length) next.push(from === 0 ? part : part.slice(from));
      }
      parts = next;
    }
    return parts;
  }
}

/** Token texts llama.cpp takes as the end-of-turn token when `tokenizer.ggml.eot_token_id` is absent. */
export const EOT_TEXTS: readonly string[] = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<EOT>",
  "<｜end▁of▁sentence｜>",
];

/** Token texts llama.cpp always counts as end of generation (besides EOS, EOT and EOM). */
export const EOG_TEXTS: readonly string[] = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|eom_id|>",
  "<EOT>",
];

/**
 * The lowest id whose token text is one of `texts`, or -1. (llama.cpp takes whichever its hash map
 * yields first; vocabularies have at most one of these in practice.)
 *
 * @example
 * ```ts
 * import { EOT_TEXTS, findTokenByText } from "./special.ts";
 * console.log(findTokenByText(["a", "<|im_end|>"], EOT_TEXTS)); // 1
 * ```
 */
export function findTokenByText(tokens: readonly string[], texts: readonly string[]): number {
  const wanted = new Set(texts);
  for (let id = 0; id < tokens.length; id++) if (wanted.has(tokens[id])) return id;
  return -1;
}

/**
 * The ids that end a generation, as llama.cpp's `special_eog_ids`: every token whose text is in
 * {@linkcode EOG_TEXTS}, plus the given EOS / EOT / EOM ids (negative ids are ignored).
 *
 * @example
 * ```ts
 * import { endOfGenerationIds } from "./special.ts";
 * console.log(endOfGenerationIds(["<s>", "</s>", "<|im_end|>"], [1, -1])); // Set(2) { 2, 1 }
 * ```
 */
export function endOfGenerationIds(tokens: readonly string[], ids: readonly number[]): Set<number> {
  const eog = new Set<number>();
  const texts = new Set(EOG_TEXTS);
  for (let id = 0; id < tokens.length; id++) if (texts.has(tokens[id])) eog.add(id);
  for (const id of ids) if (id >= 0) eog.add(id);
  return eog;
}
