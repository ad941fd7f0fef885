/**
 * Synthetic LLaMA GGUF files with random weights, for the KV benches and tests: any head dim, layer
 * count and GQA ratio, F32 or Q8_0 / Q4_0 matrices, and a placeholder vocabulary ("<unk>", "<s>",
 * "</s>", then "▁t3", "▁t4", …). Random weights write meaningless text; their logits are exact test data.
 *
 * @module
 */

import { writeGguf } from "../src/model/gguf_writer.ts";
import { GgmlType, quantizeQ4_0, quantizeQ8_0 } from "../src/model/quant.ts";
import { randomFloats } from "../src/ref/random.ts";

/** Shape and storage of a synthetic model. */
export interface SyntheticModel {
  /** Transformer blocks. */
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads (divides nHeads). */
  nKvHeads: number;
  /** Channels per head. */
  headDim: number;
  /** FFN hidden size. */
  ffnDim: number;
  /** Vocabulary size (≥ 4). */
  vocab: number;
  /** `llama.context_length`. */
  contextLength: number;
  /** Matrix storage; norms are always F32. Default "f32". */
  type?: "f32" | "q8_0" | "q4_0";
  /** Random seed. */
  seed?: number;
  /** Scale of the q and k projections (larger: peakier attention); default 2. */
  qkScale?: number;
}

/**
 * The GGUF bytes of a synthetic model.
 *
 * @example
 * ```ts
 * import { syntheticGguf } from "./kv_synthetic.ts";
 * const bytes = syntheticGguf({ nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 8, ffnDim: 32, vocab: 16, contextLength: 64 });
 * console.log(bytes.byteLength > 0);
 * ```
 */
export function syntheticGguf(m: SyntheticModel): Uint8Array {
  const dim = m.nHeads * m.headDim;
  const type = m.type ?? "f32";
  let seed = m.seed ?? 1;
  const matrix = (name: string, rows: number, cols: number, scale: number) => {
    const w = randomFloats(rows * cols, seed++, scale / Math.sqrt(cols) * Math.sqrt(3));
    const [t, data] = type === "q8_0"
      ? [GgmlType.Q8_0, quantizeQ8_0(w)]
      : type === "q4_0"
      ? [GgmlType.Q4_0, quantizeQ4_0(w)]
      : [GgmlType.F32, new Uint8Array(w.buffer)];
    return { name, dims: [cols, rows], type: t, data };
  };
  const vector = (name: string, n: number, value: number) => ({
    name,
    dims: [n],
    type: GgmlType.F32,
    data: new Uint8Array(new Float32Array(n).fill(value).buffer),
  });
  const qk = m.qkScale ?? 2;
  const tensors = [
    {
      name: "token_embd.weight",
      dims: [dim, m.vocab],
      type: GgmlType.F32,
      data: new Uint8Array(randomFloats(m.vocab * dim, seed++, 1).buffer),
    },
    vector("output_norm.weight", dim, 1),
    matrix("output.weight", m.vocab, dim, 1),
  ];
  for (let l = 0; l < m.nLayers; l++) {
    const b = `blk.${l}.`;
    tensors.push(
      vector(`${b}attn_norm.weight`, dim, 1),
      matrix(`${b}attn_q.weight`, dim, dim, qk),
      matrix(`${b}attn_k.weight`, m.nKvHeads * m.headDim, dim, qk),
      matrix(`${b}attn_v.weight`, m.nKvHeads * m.headDim, dim, 1),
      matrix(`${b}attn_output.weight`, dim, dim, 1),
      vector(`${b}ffn_norm.weight`, dim, 1),
      matrix(`${b}ffn_gate.weight`, m.ffnDim, dim, 1),
      matrix(`${b}ffn_up.weight`, m.ffnDim, dim, 1),
      matrix(`${b}ffn_down.weight`, dim, m.ffnDim, 1),
    );
  }
  const tokens = ["<unk>", "<s>", "</s>", ...Array.from({ length: m.vocab - 3 }, (_, i) => `▁t${i + 3}`)];
  return writeGguf({
    metadata: [
      { key: "general.architecture", type: "string", value: "llama" },
      { key: "general.name", type: "string", value: `synthetic-d${m.headDim}-l${m.nLayers}` },
      { key: "llama.context_length", type: "u32", value: m.contextLength },
      { key: "llama.embedding_length", type: "u32", value: dim },
      { key: "llama.block_count", type: "u32", value: m.nLayers },
      { key: "llama.feed_forward_length", type: "u32", value: m.ffnDim },
      { key: "llama.attention.head_count", type: "u32", value: m.nHeads },
      { key: "llama.attention.head_count_kv", type: "u32", value: m.nKvHeads },
      { key: "llama.rope.freq_base", type: "f32", value: 10000 },
      { key: "llama.attention.layer_norm_rms_epsilon", type: "f32", value: 1e-5 },
      { key: "tokenizer.ggml.model", type: "string", value: "llama" },
      { key: "tokenizer.ggml.tokens", type: "string", array: true, value: tokens },
      { key: "tokenizer.ggml.scores", type: "f32", array: true, value: tokens.map(() => 0) },
      {
        key: "tokenizer.ggml.token_type",
        type: "i32",
        array: true,
        value: tokens.map((_, i) => (i < 3 ? 3 : 1)),
      },
      { key: "tokenizer.ggml.bos_token_id", type: "u32", value: 1 },
      { key: "tokenizer.ggml.eos_token_id", type: "u32", value: 2 },
    ],
    tensors,
  });
}

/**
 * Writes a synthetic model to `path` (e.g. under /tmp) and returns the path.
 *
 * @example
 * ```ts ignore
 * import { writeSyntheticModel } from "./kv_synthetic.ts";
 * const path = await writeSyntheticModel("/tmp/synth.gguf", { nLayers: 2, nHeads: 4, nKvHeads: 4, headDim: 128, ffnDim: 512, vocab: 256, contextLength: 8192, type: "q8_0" });
 * ```
 */
export async function writeSyntheticModel(path: string, m: SyntheticModel): Promise<string> {
  await Deno.writeFile(path, syntheticGguf(m));
  return path;
}
