/**
 * Pre-tokenizers of byte-level BPE vocabularies: the regular expressions that cut text into words
 * before BPE merges run, chosen by `tokenizer.ggml.pre` as llama.cpp's `llm_tokenizer_bpe` does.
 *
 * A pre-tokenizer is a list of regexes applied one after the other: each one cuts every piece the
 * previous ones left into its matches and the text between them (which stays a piece of its own,
 * as in llama.cpp's `unicode_regex_split`). `\s` is written `\p{White_Space}` here, llama.cpp's
 * whitespace set (it includes U+0085 and excludes U+FEFF, unlike JavaScript's `\s`).
 *
 * | `tokenizer.ggml.pre` | regexes | merges |
 * |---|---|---|
 * | `gpt-2` (and `phi-2`, `roberta-bpe`, `mpt`, `olmo`, `jais`, `jina-*`, `gigachat`) | GPT-2's | ranked |
 * | `llama-bpe` (and `llama3`, `llama-v3`, `falcon3`, `dbrx`, `smaug-bpe`) | Llama 3's, digits in threes | whole-word tokens first, except `dbrx`, `smaug-bpe` |
 * | `qwen2` (and `stablelm2`, `megrez`) | Llama 3's with single digits | ranked |
 * | `starcoder` (and `refact`, `command-r`, `smollm`, `codeshell`, `exaone`, `minerva-7b`) | single digits, then GPT-2's | ranked |
 * | `falcon` | punctuation runs, GPT-2's, digit triples | ranked |
 * | `default` (or absent) | llama.cpp's default list | ranked |
 *
 * Only `gpt-2` and `llama-bpe` are checked against reference vectors; the other rows are llama.cpp's
 * regexes transcribed.
 *
 * @module
 */

/** A pre-tokenizer: how to cut text into words, and the vocabulary flags that come with it. */
export interface Pretokenizer {
  /** The canonical name (the first `tokenizer.ggml.pre` value of its row). */
  readonly name: string;
  /** The regexes, applied in order (each has the `gu` flags). */
  readonly regexes: readonly RegExp[];
  /**
   * Whether a word that is itself a vocabulary token is emitted as that token without running the
   * merges (llama.cpp's `ignore_merges`, Hugging Face's `ignore_merges: true`).
   */
  readonly ignoreMerges: boolean;
  /** llama.cpp's default for `add_bos_token` when the GGUF does not say. */
  readonly addBos: boolean;
}

const WS = "\\p{White_Space}";
const NOT_WS = "\\P{White_Space}";
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
const GPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${WS}+(?!${NOT_WS})`;
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
const llama3Like = (digits: string) =>
  `'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}${digits}` +
  `| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*|${WS}*[\\r\\n]+|${WS}+(?!${NOT_WS})|${WS}+`;
const LLAMA3 = llama3Like("{1,3}");

interface Row {
  names: string[];
  regexes: string[];
  ignoreMerges?: boolean;
  addBos?: boolean;
}

const ROWS: Row[] = [
  {
    names: ["default"],
    regexes: ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"],
  },
  {
    names: ["gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais", "gigachat"].concat(
      ["jina-es", "jina-de", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code"],
    ),
    regexes: [GPT2],
  },
  {
    names: ["llama-bpe", "llama3", "llama-v3", "falcon3"],
    regexes: [LLAMA3],
    ignoreMerges: true,
    addBos: true,
  },
  { names: ["dbrx", "smaug-bpe"], regexes: [LLAMA3] },
  { names: ["qwen2", "stablelm2", "megrez"], regexes: [llama3Like("")] },
  {
    names: ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"],
    regexes: ["\\p{N}", GPT2],
  },
  { names: ["falcon"], regexes: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"] },
];

/** Every `tokenizer.ggml.pre` value {@linkcode pretokenizerFor} accepts. */
export const SUPPORTED_PRETOKENIZERS: readonly string[] = ROWS.flatMap((r) => r.names);

const cache = new Map<string, Pretokenizer>();

/**
 * The pre-tokenizer for a `tokenizer.ggml.pre` value (`undefined` means `"default"`, as in llama.cpp),
 * or `undefined` when the value is not supported.
 *
 * @example
 * ```ts
 * import { pretokenize, pretokenizerFor } from "./pretokenize.ts";
 * const pre = pretokenizerFor("llama-bpe")!;
 * console.log(pretokenize(pre, "Hello world 12345!!\n")); // [ "Hello", " world", " ", "123", "45", "!!\n" ]
 * ```
 */
export function pretokenizerFor(pre: string | undefined): Pretokenizer | undefined {
  const key = pre ?? "default";
  let p = cache.get(key);
  if (p === undefined) {
    const row = ROWS.find((r) => r.names.includes(key));
    if (row === undefined) return undefined;
    p = {
      name: row.names[0],
      regexes: row.regexes.map((r) => new RegExp(r, "gu")),
      ignoreMerges: row.ignoreMerges ?? false,
      addBos: row.addBos ?? false,
    };
    cache.set(key, p);
  }
  return p;
}

/**
 * Cuts `text` into words with the pre-tokenizer's regexes; the words concatenate back to `text`.
 * Calls `emit` once per word, in order (no array is built for long texts).
 *
 * @example
 * ```ts
 * import { forEachWord, pretokenizerFor } from "./pretokenize.ts";
 * const words: string[] = [];
 * forEachWord(pretokenizerFor("gpt-2")!, "I'm  here", (w) => words.push(w));
 * console.log(words); // [ "I", "'m", " ", " here" ]
 * ```
 */
export function forEachWord(pre: Pretokenizer, text: string, emit: (word: string) => void): void {
  split(pre.regexes, 0, text, emit);
}

/**
 * {@linkcode forEachWord} collected into an array.
 *
 * @example
 * ```ts
 * import { pretokenize, pretokenizerFor } from "./pretokenize.ts";
 * console.log(pretokenize(pretokenizerFor("gpt-2")!, "a\tb")); // [ "a", "\t", "b" ]
 * ```
 */
export function pretokenize(pre: Pretokenizer, text: string): string[] {
  const words: string[] = [];
  forEachWord(pre, text, (w) => words.push(w));
  return words;
}

function split(regexes: readonly RegExp[], level: number, text: string, emit: (word: string) => void): void {
  if (text === "") return;
  if (level === regexes.length) {
    emit(text);
    return;
  }
  const re = regexes[level];
  re.lastIndex = 0;
  let prev = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const word = m[0];
    if (word === "") { // cannot happen with these regexes; guards against an endless loop
      re.lastIndex++;
      continue;
    }
    if (m.index > prev) split(regexes, level + 1, text.slice(prev, m.index), emit);
    split(regexes, level + 1, word, emit);
    prev = m.index + word.length;
  }
  if (prev < text.length) split(regexes, level + 1, text.slice(prev), emit);
}
