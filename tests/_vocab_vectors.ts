/**
 * Reads llama.cpp's tokenizer test vectors (`<vocab>.gguf.inp` / `.out`, as `test-tokenizer-0` does).
 *
 * @module
 */

import assert from "node:assert/strict";

/** The shared model fixtures (`../shared/models/` from the repository root). */
export const MODELS: URL = new URL("../../shared/models/", import.meta.url);

/** One test vector: the input text and its expected ids, without BOS. */
export interface VocabVector {
  /** The text to tokenize. */
  input: string;
  /** llama.cpp's ids for it (`add_special = false`, `parse_special = false`). */
  ids: number[];
}

/**
 * llama.cpp's vocab test files: `.inp` is the inputs, each followed by "\n__ggml_vocab_test__\n"
 * (so the text after the last separator is empty and is not an input); `.out` has one line of
 * space-separated ids per input (an empty line for an empty input), without BOS.
 */
export async function vocabVectors(name: string): Promise<VocabVector[]> {
  const inp = (await Deno.readTextFile(new URL(name + ".inp", MODELS))).split("\n__ggml_vocab_test__\n");
  assert.equal(inp.pop(), "", "the .inp file ends with a separator");
  const out = (await Deno.readTextFile(new URL(name + ".out", MODELS))).split("\n");
  assert.equal(out.pop(), "", "the .out file ends with a newline");
  assert.equal(inp.length, out.length);
  return inp.map((input, i) => ({ input, ids: out[i].split(" ").filter((s) => s !== "").map(Number) }));
}
