/**
 * The typed LLaMA configuration, read from a GGUF header's `llama.*` keys and tensor shapes.
 *
 * @module
 */

import { ModelFormatError } from "../errors.ts";
import type { GgufFile, GgufValue } from "./gguf.ts";

/**
 * Hyperparameters of a LLaMA-family model.
 *
 * @example
 * ```ts
 * import { GgufFile } from "./gguf.ts";
 * import { readLlamaConfig } from "./config.ts";
 * const f = await GgufFile.open("../shared/models/stories260K.gguf");
 * const c = readLlamaConfig(f);
 * console.log(c.dim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim); // 64 5 8 4 8
 * f.close();
 * ```
 */
export interface LlamaConfig {
  /** `general.architecture` (always "llama" for now). */
  architecture: string;
  /** `general.name`, or the file name. */
  name: string;
  /** Model width (`embedding_length`). */
  dim: number;
  /** Number of transformer blocks. */
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (GQA when fewer than nHeads). */
  nKvHeads: number;
  /** Channels per head. */
  headDim: number;
  /** FFN hidden size. */
  ffnDim: number;
  /** Vocabulary size (rows of `token_embd`). */
  vocabSize: number;
  /** Trained context length. */
  contextLength: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency. */
  ropeBase: number;
  /** Channels rotated by RoPE per head. */
  ropeDim: number;
  /** True when `output.weight` is absent and the LM head reuses `token_embd`. */
  tiedEmbeddings: boolean;
  /** True when a `rope_freqs` tensor (Llama 3.1+ scaling factors) is present. */
  hasRopeFreqs: boolean;
}

const SUPPORTED_ARCHITECTURES = ["llama"];

function num(v: GgufValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/**
 * Reads the {@linkcode LlamaConfig} of a GGUF file. Throws {@linkcode ModelFormatError} naming the
 * architecture if it is not supported, or the key if a required one is missing.
 */
export function readLlamaConfig(file: GgufFile): LlamaConfig {
  const md = file.metadata;
  const arch = md.get("general.architecture");
  if (typeof arch !== "string") {
    throw new ModelFormatError(
      `Cannot load ${file.path}: general.architecture is missing (is this a vocabulary-only GGUF?)`,
    );
  }
  if (!SUPPORTED_ARCHITECTURES.includes(arch)) {
    throw new ModelFormatError(
      `Cannot load ${file.path}: architecture "${arch}" is not supported (supported: ${
        SUPPORTED_ARCHITECTURES.join(", ")
      })`,
    );
  }
  const need = (key: string): number => {
    const v = num(md.get(`${arch}.${key}`));
    if (v === undefined) {
      throw new ModelFormatError(`Cannot load ${file.path}: metadata key ${arch}.${key} is missing`);
    }
    return v;
  };
  const opt = (key: string, fallback: number): number => num(md.get(`${arch}.${key}`)) ?? fallback;
  const embd = file.tensor("token_embd.weight");
  if (!embd) throw new ModelFormatError(`Cannot load ${file.path}: tensor token_embd.weight is missing`);
  const dim = need("embedding_length");
  const nHeads = need("attention.head_count");
  const nKvHeads = opt("attention.head_count_kv", nHeads);
  const headDim = opt("attention.key_length", dim / nHeads);
  if (!Number.isInteger(headDim) || nHeads % nKvHeads !== 0) {
    throw new ModelFormatError(
      `Cannot load ${file.path}: inconsistent heads (dim ${dim}, heads ${nHeads}, kv heads ${nKvHeads})`,
    );
  }
  const nameValue = md.get("general.name");
  return {
    architecture: arch,
    name: typeof nameValue === "string" ? nameValue : file.path.split("/").pop() ?? file.path,
    dim,
    nLayers: need("block_count"),
    nHeads,
    nKvHeads,
    headDim,
    ffnDim: need("feed_forward_length"),
    vocabSize: embd.dims[1],
    contextLength: opt("context_length", 2048),
    normEps: opt("attention.layer_norm_rms_epsilon", 1e-5),
    ropeBase: opt("rope.freq_base", 10000),
    ropeDim: opt("rope.dimension_count", headDim),
    tiedEmbeddings: !file.tensor("output.weight"),
    hasRopeFreqs: !!file.tensor("rope_freqs.weight"),
  };
}
