/**
 * Uploads a LLaMA model's tensors from a GGUF file to the GPU, one tensor at a time (the file is
 * never held in memory whole). Matrices keep their quantized encoding (repacked to 4-byte-aligned
 * blocks, see gpu_weight.ts); norms and `rope_freqs` are f32 vectors.
 *
 * @module
 */

import { ModelFormatError } from "../errors.ts";
import type { Gpu } from "../gpu/gpu.ts";
import type { LlamaConfig } from "./config.ts";
import type { GgufFile, GgufTensorInfo } from "./gguf.ts";
import { type GpuWeight, uploadWeight } from "./gpu_weight.ts";
import { isSupportedType, tensorBytes } from "./quant.ts";

const GGML_TYPE_NAMES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  8: "Q8_0",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  29: "IQ1_M",
  30: "BF16",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
};

/**
 * The ggml name of a tensor type id, supported or not (for messages and `thinkv info`).
 *
 * @example
 * ```ts
 * import { ggmlTypeName } from "./weights.ts";
 * console.log(ggmlTypeName(12), ggmlTypeName(13)); // Q4_K Q5_K
 * ```
 */
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? `type ${type}`;
}

/** One transformer block's weights. Matrices are [rows = output features, cols = input features]. */
export interface LayerWeights {
  /** RMSNorm weight before attention, f32 [dim]. */
  attnNorm: GPUBuffer;
  /** Query projection [nHeads·headDim, dim]. */
  wq: GpuWeight;
  /** Key projection [nKvHeads·headDim, dim]. */
  wk: GpuWeight;
  /** Value projection [nKvHeads·headDim, dim]. */
  wv: GpuWeight;
  /** Attention output projection [dim, nHeads·headDim]. */
  wo: GpuWeight;
  /** RMSNorm weight before the FFN, f32 [dim]. */
  ffnNorm: GPUBuffer;
  /** FFN gate [ffnDim, dim]. */
  wGate: GpuWeight;
  /** FFN up [ffnDim, dim]. */
  wUp: GpuWeight;
  /** FFN down [dim, ffnDim]. */
  wDown: GpuWeight;
}

/** All weights of a LLaMA model on the GPU. */
export interface LlamaWeights {
  /** Token embeddings [vocab, dim]. */
  tokenEmbd: GpuWeight;
  /** LM head [vocab, dim]; the same object as `tokenEmbd` when embeddings are tied. */
  output: GpuWeight;
  /** Final RMSNorm weight, f32 [dim]. */
  outputNorm: GPUBuffer;
  /** RoPE frequency divisors, f32 [ropeDim/2] (ones when the file has no `rope_freqs`). */
  ropeFreqs: GPUBuffer;
  /** The blocks. */
  layers: LayerWeights[];
  /** Bytes of GPU memory the weights occupy. */
  bytes: number;
}

/** Progress callback: bytes uploaded so far of `total`. */
export type UploadProgress = (done: number, total: number) => void;

/**
 * Checks that every tensor in the file has a type thinkv supports. Throws {@linkcode ModelFormatError}
 * naming the first unsupported tensor and its type.
 */
export function checkTensorTypes(file: GgufFile): void {
  for (const t of file.tensors) {
    if (!isSupportedType(t.type)) {
      throw new ModelFormatError(
        `Cannot load ${file.path}: tensor ${t.name} has type ${
          ggmlTypeName(t.type)
        }, which thinkv does not support ` +
          "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K); re-quantize the model with one of those",
      );
    }
  }
}

/**
 * Checks that every tensor the model needs exists with a supported type and the expected shape.
 * Throws {@linkcode ModelFormatError} naming the tensor otherwise.
 */
export function checkTensors(file: GgufFile, config: LlamaConfig): void {
  checkTensorTypes(file);
  for (const [name, rows, cols] of expectedMatrices(config)) {
    const t = file.tensor(name);
    if (!t) throw new ModelFormatError(`Cannot load ${file.path}: tensor ${name} is missing`);
    if (t.dims[0] !== cols || (t.dims[1] ?? 1) !== rows) {
      throw new ModelFormatError(
        `Cannot load ${file.path}: tensor ${name} has shape [${t.dims}], expected [${cols},${rows}]`,
      );
    }
  }
}

function expectedMatrices(c: LlamaConfig): [string, number, number][] {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const out: [string, number, number][] = [["token_embd.weight", c.vocabSize, c.dim]];
  if (!c.tiedEmbeddings) out.push(["output.weight", c.vocabSize, c.dim]);
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    out.push(
      [`${b}attn_q.weight`, q, c.dim],
      [`${b}attn_k.weight`, kv, c.dim],
      [`${b}attn_v.weight`, kv, c.dim],
      [`${b}attn_output.weight`, c.dim, q],
      [`${b}ffn_gate.weight`, c.ffnDim, c.dim],
      [`${b}ffn_up.weight`, c.ffnDim, c.dim],
      [`${b}ffn_down.weight`, c.dim, c.ffnDim],
    );
  }
  return out;
}

/** Total bytes of the tensors the model uploads (for progress and memory estimates). */
export function modelTensorBytes(file: GgufFile): number {
  return file.tensors.reduce(
    (s, t) => s + (isSupportedType(t.type) ? tensorBytes(t.type, t.nElements) : 0),
    0,
  );
}

/**
 * Uploads every tensor of a checked model. Calls `onProgress` after each tensor.
 *
 * @example
 * ```ts ignore
 * const weights = await uploadLlamaWeights(gpu, file, config, (d, t) => console.log(d / t));
 * ```
 */
export async function uploadLlamaWeights(
  gpu: Gpu,
  file: GgufFile,
  config: LlamaConfig,
  onProgress?: UploadProgress,
): Promise<LlamaWeights> {
  checkTensors(file, config);
  const total = modelTensorBytes(file);
  let done = 0;
  const bytesBefore = gpu.bytesAllocated;
  const read = async (info: GgufTensorInfo): Promise<Uint8Array> => {
    const bytes = await file.readTensor(info.name, tensorBytes(info.type, info.nElements));
    done += bytes.byteLength;
    onProgress?.(done, total);
    return bytes;
  };
  const matrix = async (name: string): Promise<GpuWeight> => {
    const info = file.tensor(name)!;
    return uploadWeight(gpu, name, info.type, info.dims[1] ?? 1, info.dims[0], await read(info));
  };
  const vector = async (name: string, length: number): Promise<GPUBuffer> => {
    const info = file.tensor(name);
    if (!info) throw new ModelFormatError(`Cannot load ${file.path}: tensor ${name} is missing`);
    if (info.type !== 0 || info.nElements !== length) {
      throw new ModelFormatError(
        `Cannot load ${file.path}: tensor ${name} must be F32 with ${length} elements (is ${
          ggmlTypeName(info.type)
        }, ${info.nElements})`,
      );
    }
    return gpu.upload(name, await read(info));
  };
  const tokenEmbd = await matrix("token_embd.weight");
  const output = config.tiedEmbeddings ? tokenEmbd : await matrix("output.weight");
  const outputNorm = await vector("output_norm.weight", config.dim);
  const ropeFreqs = config.hasRopeFreqs
    ? await vector("rope_freqs.weight", config.ropeDim / 2)
    : gpu.upload("rope_freqs (ones)", new Float32Array(config.ropeDim / 2).fill(1));
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const b = `blk.${l}.`;
    layers.push({
      attnNorm: await vector(`${b}attn_norm.weight`, config.dim),
      wq: await matrix(`${b}attn_q.weight`),
      wk: await matrix(`${b}attn_k.weight`),
      wv: await matrix(`${b}attn_v.weight`),
      wo: await matrix(`${b}attn_output.weight`),
      ffnNorm: await vector(`${b}ffn_norm.weight`, config.dim),
      wGate: await matrix(`${b}ffn_gate.weight`),
      wUp: await matrix(`${b}ffn_up.weight`),
      wDown: await matrix(`${b}ffn_down.weight`),
    });
  }
  return { tokenEmbd, output, outputNorm, ropeFreqs, layers, bytes: gpu.bytesAllocated - bytesBefore };
}
