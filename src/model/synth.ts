/**
 * Synthetic LLaMA models for speed runs and tests: a valid GGUF with seeded random weights for a named
 * shape (TinyLlama 1.1B, Llama 3.2 1B, Llama 2 7B, and small test shapes), written tensor by tensor
 * with {@linkcode writeGgufStream} so that even a 27 GB F32 7B model needs a few MB of memory.
 *
 * Weights: row-major, uniform in ±√3·σ with σ = 1/√(row length) (so every product keeps unit scale and
 * activations stay finite through any depth), token embeddings with σ = 1/√dim (sane logits when tied),
 * norms 1. Matrices take the requested type through quant.ts's quantizers (ggml's reference
 * rounding); 1-D tensors stay F32, as in llama.cpp. The same seed gives the same bytes.
 *
 * Vocabulary: a SentencePiece (`tokenizer.ggml.model = "llama"`) vocabulary: the first `vocabSize`
 * pieces of LLaMA's real 32000-piece vocabulary (`ggml-vocab-llama-spm.gguf`: the 3 specials, the 256
 * byte tokens, then pieces in merge order, so a prefix is a working tokenizer), extended for larger
 * sizes (Llama 3's 128256) with unique pieces `▁<n>` of the lowest scores, which encoding never forms
 * but decoding prints. Any GGUF with `tokenizer.*` keys and the right token count can replace it.
 *
 * @module
 */

import { llama3RopeFactors } from "./rope_scaling.ts";
import { GgufFile, type GgufValue } from "./gguf.ts";
import { ggufHeader, type GgufMetadataEntry, type GgufTensorSource, writeGgufStream } from "./gguf_writer.ts";
import { f32ToF16, GgmlType, quantizeQ4_0, quantizeQ8_0, tensorBytes, typeInfo } from "./quant.ts";

/** Hyperparameters of a synthetic model. */
export interface SynthShape {
  /** Shape name, e.g. `"tinyllama-1.1b"`. */
  name: string;
  /** Model width. */
  dim: number;
  /** Transformer blocks. */
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads. */
  nKvHeads: number;
  /** FFN hidden size. */
  ffnDim: number;
  /** Vocabulary size. */
  vocabSize: number;
  /** Trained context length (metadata only). */
  contextLength: number;
  /** RoPE base. */
  ropeBase: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** No `output.weight`: the LM head reuses `token_embd` (Llama 3.2 1B). */
  tiedEmbeddings?: boolean;
  /** Llama 3.1-style RoPE scaling, written as a `rope_freqs` tensor of per-frequency divisors. */
  ropeScaling?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };
}

/**
 * The named shapes. The real ones follow the published configs; the small ones are for tests and
 * benchmarks (`tiny-hd128` has head_dim 128 like the 7B, `tiny-l3` is Llama-3-shaped: GQA, tied
 * embeddings, `rope_freqs`, a 128256-token vocabulary).
 *
 * @example
 * ```ts
 * import { SYNTH_SHAPES } from "./synth.ts";
 * console.log(Object.keys(SYNTH_SHAPES));
 * ```
 */
export const SYNTH_SHAPES: Readonly<Record<string, SynthShape>> = {
  "tinyllama-1.1b": {
    name: "tinyllama-1.1b",
    dim: 2048,
    nLayers: 22,
    nHeads: 32,
    nKvHeads: 4,
    ffnDim: 5632,
    vocabSize: 32000,
    contextLength: 2048,
    ropeBase: 10000,
    normEps: 1e-5,
  },
  "llama-3.2-1b": {
    name: "llama-3.2-1b",
    dim: 2048,
    nLayers: 16,
    nHeads: 32,
    nKvHeads: 8,
    ffnDim: 8192,
    vocabSize: 128256,
    contextLength: 131072,
    ropeBase: 500000,
    normEps: 1e-5,
    tiedEmbeddings: true,
    ropeScaling: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
  },
  "llama-2-7b": {
    name: "llama-2-7b",
    dim: 4096,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    ffnDim: 11008,
    vocabSize: 32000,
    contextLength: 4096,
    ropeBase: 10000,
    normEps: 1e-5,
  },
  "tiny-hd128": {
    name: "tiny-hd128",
    dim: 256,
    nLayers: 2,
    nHeads: 2,
    nKvHeads: 1,
    ffnDim: 768,
    vocabSize: 1024,
    contextLength: 2048,
    ropeBase: 10000,
    normEps: 1e-5,
  },
  "tiny-64": {
    name: "tiny-64",
    dim: 64,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    ffnDim: 192,
    vocabSize: 512,
    contextLength: 512,
    ropeBase: 10000,
    normEps: 1e-5,
  },
  "tiny-l3": {
    name: "tiny-l3",
    dim: 128,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    ffnDim: 384,
    vocabSize: 128256,
    contextLength: 131072,
    ropeBase: 500000,
    normEps: 1e-5,
    tiedEmbeddings: true,
    ropeScaling: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
  },
};

/** The weight types `synth` writes. */
export const SYNTH_TYPES: readonly number[] = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0];

/** llama.cpp's `general.file_type` (LLAMA_FTYPE_*) per weight type. */
const FILE_TYPE: Record<number, number> = {
  [GgmlType.F32]: 0,
  [GgmlType.F16]: 1,
  [GgmlType.Q4_0]: 2,
  [GgmlType.Q8_0]: 7,
};

/** Options for {@linkcode synthPlan} and {@linkcode writeSynthModel}. */
export interface SynthOptions {
  /** Seed of the weights; default 1. */
  seed?: number;
  /** Tokenizer source: a GGUF whose `tokenizer.*` keys are copied (its token count must match). */
  vocabPath?: string;
  /**
   * The LLaMA SentencePiece vocabulary the default tokenizer is cut from; default
   * `../shared/models/ggml-vocab-llama-spm.gguf` (when that file is absent: specials and byte tokens only).
   */
  spmVocabPath?: string;
}

/** One tensor of a synthetic model: layout plus how to generate it. */
export interface SynthTensor {
  /** GGUF tensor name. */
  name: string;
  /** Dimensions, ne0 (row length) first. */
  dims: number[];
  /** ggml type. */
  type: number;
  /** Bytes of data. */
  byteLength: number;
  /** How the values are made. */
  init: { kind: "uniform"; sigma: number; seed: number } | { kind: "ones" } | { kind: "rope_freqs" };
}

/** Everything a synthetic GGUF holds except the generated data. */
export interface SynthPlan {
  /** The shape. */
  shape: SynthShape;
  /** The matrix type. */
  type: number;
  /** Metadata entries, in file order. */
  metadata: GgufMetadataEntry[];
  /** Tensors, in file order. */
  tensors: SynthTensor[];
  /** Exact file size in bytes. */
  fileBytes: number;
  /** Number of parameters. */
  parameters: number;
}

const DEFAULT_SPM = new URL("../../../shared/models/ggml-vocab-llama-spm.gguf", import.meta.url);

/**
 * Looks up a shape by name; throws a `RangeError` listing the known shapes otherwise.
 *
 * @example
 * ```ts
 * import { synthShape } from "./synth.ts";
 * console.log(synthShape("llama-2-7b").ffnDim); // 11008
 * ```
 */
export function synthShape(name: string): SynthShape {
  const s = SYNTH_SHAPES[name];
  if (!s) {
    throw new RangeError(
      `Cannot synthesize shape "${name}": known shapes are ${Object.keys(SYNTH_SHAPES).join(", ")}`,
    );
  }
  return s;
}

/** FNV-1a of a string, mixed with the seed: each tensor's own stream of random numbers. */
function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

/** Reads the tokenizer.* metadata of a GGUF file (no tensors are read). */
async function readVocab(path: string | URL): Promise<Map<string, GgufValue>> {
  const f = await GgufFile.open(path instanceof URL ? path.pathname : path);
  try {
    return new Map([...f.metadata].filter(([k]) => k.startsWith("tokenizer.")));
  } finally {
    f.close();
  }
}

/** The tokenizer entries: copied from `vocabPath`, or the LLaMA SPM vocabulary cut or extended to size. */
async function vocabMetadata(vocabSize: number, opts: SynthOptions): Promise<GgufMetadataEntry[]> {
  if (opts.vocabPath) {
    const md = await readVocab(opts.vocabPath);
    const tokens = md.get("tokenizer.ggml.tokens");
    if (!Array.isArray(tokens) || tokens.length !== vocabSize) {
      throw new RangeError(
        `Cannot use the vocabulary of ${opts.vocabPath}: the shape needs ${vocabSize} tokens: current count is ${
          Array.isArray(tokens) ? tokens.length : "none"
        }`,
      );
    }
    return [...md].map(([key, value]) => entryOf(key, value));
  }
  let tokens: string[], scores: ArrayLike<number>, types: ArrayLike<number>;
  try {
    const md = await readVocab(opts.spmVocabPath ?? DEFAULT_SPM);
    tokens = md.get("tokenizer.ggml.tokens") as string[];
    scores = md.get("tokenizer.ggml.scores") as Float32Array;
    types = md.get("tokenizer.ggml.token_type") as Int32Array;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) || opts.spmVocabPath) throw e;
    // No LLaMA vocabulary at hand: specials and byte tokens only (text encodes by byte fallback).
    tokens = [
      "<unk>",
      "<s>",
      "</s>",
      ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`),
    ];
    scores = new Float32Array(tokens.length);
    types = Int32Array.from(tokens, (_, i) => (i === 0 ? 2 : i < 3 ? 3 : 6));
  }
  const n = Math.min(vocabSize, tokens.length);
  const outTokens = tokens.slice(0, n);
  const outScores = Array.from(scores).slice(0, n);
  const outTypes = Array.from(types).slice(0, n);
  const low = outScores.reduce((m, v) => Math.min(m, v), 0) - 1;
  for (let i = n; i < vocabSize; i++) {
    outTokens.push(`\u2581<${i}>`);
    outScores.push(low - (i - n));
    outTypes.push(1); // NORMAL
  }
  return [
    { key: "tokenizer.ggml.model", type: "string", value: "llama" },
    { key: "tokenizer.ggml.pre", type: "string", value: "default" },
    { key: "tokenizer.ggml.tokens", type: "string", array: true, value: outTokens },
    { key: "tokenizer.ggml.scores", type: "f32", array: true, value: outScores },
    { key: "tokenizer.ggml.token_type", type: "i32", array: true, value: outTypes },
    { key: "tokenizer.ggml.bos_token_id", type: "u32", value: 1 },
    { key: "tokenizer.ggml.eos_token_id", type: "u32", value: 2 },
    { key: "tokenizer.ggml.unknown_token_id", type: "u32", value: 0 },
    { key: "tokenizer.ggml.add_bos_token", type: "bool", value: true },
    { key: "tokenizer.ggml.add_eos_token", type: "bool", value: false },
  ];
}

/** A metadata entry for a value read back from a GGUF file. */
function entryOf(key: string, v: GgufValue): GgufMetadataEntry {
  if (typeof v === "string") return { key, type: "string", value: v };
  if (typeof v === "boolean") return { key, type: "bool", value: v };
  if (typeof v === "bigint") return { key, type: "u64", value: v };
  if (typeof v === "number") return { key, type: Number.isInteger(v) && v >= 0 ? "u32" : "f32", value: v };
  if (v instanceof Float32Array) return { key, type: "f32", array: true, value: v };
  if (v instanceof Int32Array) return { key, type: "i32", array: true, value: v };
  if (v instanceof Uint32Array) return { key, type: "u32", array: true, value: v };
  if (v instanceof Uint8Array) return { key, type: "u8", array: true, value: v };
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) {
    return { key, type: "string", array: true, value: v };
  }
  throw new TypeError(`Cannot copy metadata key ${key}: unsupported value type`);
}

/**
 * Plans a synthetic model: metadata, tensor list and exact file size, without generating anything
 * (so `thinkv synth` can refuse an absurd size before writing).
 *
 * @example
 * ```ts
 * import { GgmlType } from "./quant.ts";
 * import { synthPlan } from "./synth.ts";
 * const p = await synthPlan("tinyllama-1.1b", GgmlType.Q4_0);
 * console.log(p.parameters, (p.fileBytes / 2 ** 30).toFixed(2)); // 1100048384 "0.58"
 * ```
 */
export async function synthPlan(
  shapeName: string,
  type: number,
  opts: SynthOptions = {},
): Promise<SynthPlan> {
  const s = synthShape(shapeName);
  if (!SYNTH_TYPES.includes(type)) {
    throw new RangeError(
      `Cannot synthesize type ${typeInfo(type).name}: supported types are ${
        SYNTH_TYPES.map((t) => typeInfo(t).name).join(", ")
      }`,
    );
  }
  const seed = opts.seed ?? 1;
  const headDim = s.dim / s.nHeads;
  const kvDim = s.nKvHeads * headDim;
  const tensors: SynthTensor[] = [];
  const matrix = (name: string, cols: number, rows: number, sigma = 1 / Math.sqrt(cols)) =>
    tensors.push({
      name,
      dims: [cols, rows],
      type,
      byteLength: tensorBytes(type, rows * cols),
      init: { kind: "uniform", sigma, seed: tensorSeed(seed, name) },
    });
  const vector = (name: string, n: number, init: SynthTensor["init"] = { kind: "ones" }) =>
    tensors.push({ name, dims: [n], type: GgmlType.F32, byteLength: 4 * n, init });
  matrix("token_embd.weight", s.dim, s.vocabSize, 1 / Math.sqrt(s.dim));
  vector("output_norm.weight", s.dim);
  if (!s.tiedEmbeddings) matrix("output.weight", s.dim, s.vocabSize);
  if (s.ropeScaling) vector("rope_freqs.weight", headDim / 2, { kind: "rope_freqs" });
  for (let l = 0; l < s.nLayers; l++) {
    const b = `blk.${l}`;
    vector(`${b}.attn_norm.weight`, s.dim);
    matrix(`${b}.attn_q.weight`, s.dim, s.dim);
    matrix(`${b}.attn_k.weight`, s.dim, kvDim);
    matrix(`${b}.attn_v.weight`, s.dim, kvDim);
    matrix(`${b}.attn_output.weight`, s.dim, s.dim);
    vector(`${b}.ffn_norm.weight`, s.dim);
    matrix(`${b}.ffn_gate.weight`, s.dim, s.ffnDim);
    matrix(`${b}.ffn_up.weight`, s.dim, s.ffnDim);
    matrix(`${b}.ffn_down.weight`, s.ffnDim, s.dim);
  }
  const arch = "llama";
  const metadata: GgufMetadataEntry[] = [
    { key: "general.architecture", type: "string", value: arch },
    {
      key: "general.name",
      type: "string",
      value: `synthetic ${s.name} ${typeInfo(type).name} (seed ${seed})`,
    },
    { key: "general.file_type", type: "u32", value: FILE_TYPE[type] },
    { key: `${arch}.vocab_size`, type: "u32", value: s.vocabSize },
    { key: `${arch}.context_length`, type: "u32", value: s.contextLength },
    { key: `${arch}.embedding_length`, type: "u32", value: s.dim },
    { key: `${arch}.block_count`, type: "u32", value: s.nLayers },
    { key: `${arch}.feed_forward_length`, type: "u32", value: s.ffnDim },
    { key: `${arch}.attention.head_count`, type: "u32", value: s.nHeads },
    { key: `${arch}.attention.head_count_kv`, type: "u32", value: s.nKvHeads },
    { key: `${arch}.rope.freq_base`, type: "f32", value: s.ropeBase },
    { key: `${arch}.rope.dimension_count`, type: "u32", value: headDim },
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: "f32", value: s.normEps },
    ...await vocabMetadata(s.vocabSize, opts),
  ];
  const header = ggufHeader({ metadata, tensors });
  const parameters = tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);
  return { shape: s, type, metadata, tensors, fileBytes: header.bytes.length + header.dataBytes, parameters };
}

/** Rows generated per chunk: about 4 MiB of f32 values. */
const CHUNK_VALUES = 1 << 20;

/**
 * The bytes of one synthetic tensor, in chunks of whole rows (the generator behind
 * {@linkcode writeSynthModel}; tests use it to check what was written).
 */
export function* synthTensorChunks(t: SynthTensor, shape: SynthShape): Generator<Uint8Array> {
  const cols = t.dims[0];
  const rows = t.dims.length > 1 ? t.dims[1] : 1;
  if (t.init.kind === "ones") {
    yield new Uint8Array(new Float32Array(cols).fill(1).buffer);
    return;
  }
  if (t.init.kind === "rope_freqs") {
    const rs = shape.ropeScaling!;
    const factors = llama3RopeFactors(cols * 2, shape.ropeBase, {
      factor: rs.factor,
      lowFreqFactor: rs.lowFreqFactor,
      highFreqFactor: rs.highFreqFactor,
      originalContextLength: rs.originalContext,
    });
    yield new Uint8Array(factors.buffer);
    return;
  }
  const a = Math.sqrt(3) * t.init.sigma;
  let s = t.init.seed >>> 0;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / cols));
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - r0) * cols;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      x[i] = ((s >>> 0) / 2147483648 - 1) * a;
    }
    switch (t.type) {
      case GgmlType.F32:
        yield new Uint8Array(x.buffer);
        break;
      case GgmlType.F16:
        yield new Uint8Array(Uint16Array.from(x, f32ToF16).buffer);
        break;
      case GgmlType.Q8_0:
        yield quantizeQ8_0(x);
        break;
      case GgmlType.Q4_0:
        yield quantizeQ4_0(x);
        break;
      default:
        throw new RangeError(
          `Cannot synthesize tensor ${t.name}: type ${typeInfo(t.type).name} is not supported`,
        );
    }
  }
}

/** Progress callback of {@linkcode writeSynthModel}: tensors done, tensors total, bytes written. */
export type SynthProgress = (done: number, total: number, bytes: number) => void;

/**
 * Writes a synthetic model to `path` (created or truncated), streaming tensor by tensor. Returns
 * the plan (with the exact size written).
 *
 * @example
 * ```ts ignore
 * import { GgmlType } from "./quant.ts";
 * import { writeSynthModel } from "./synth.ts";
 * const plan = await writeSynthModel("/tmp/tiny.gguf", "tiny-64", GgmlType.Q8_0, { seed: 7 });
 * console.log(plan.fileBytes);
 * ```
 */
export async function writeSynthModel(
  path: string,
  shapeName: string,
  type: number,
  opts: SynthOptions & { onProgress?: SynthProgress } = {},
): Promise<SynthPlan> {
  const plan = await synthPlan(shapeName, type, opts);
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  let done = 0, bytes = 0;
  const total = plan.tensors.length;
  const sources: GgufTensorSource[] = plan.tensors.map((t) => ({
    ...t,
    *chunks() {
      for (const c of synthTensorChunks(t, plan.shape)) {
        bytes += c.length;
        yield c;
      }
      opts.onProgress?.(++done, total, bytes);
    },
  }));
  const written = await writeGgufStream(file, { metadata: plan.metadata, tensors: sources });
  if (written !== plan.fileBytes) {
    throw new Error(`InternalError: wrote ${written} bytes, planned ${plan.fileBytes}`);
  }
  return plan;
}
