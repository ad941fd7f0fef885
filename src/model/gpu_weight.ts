/**
 * Weights on the GPU: GGUF tensor bytes repacked once at load time into a 4-byte-aligned layout that
 * WGSL reads as `u32` words (never a dequantized copy), split by whole rows into chunks that each fit
 * one storage binding.
 *
 * GPU weight layout (per chunk; a chunk holds rows rowStart..rowStart+rowCount−1, blocks in
 * row-major order, so row r of the chunk starts at word r · wordsPerRow):
 *
 * | type      | block → words                                                                   |
 * |-----------|---------------------------------------------------------------------------------|
 * | F32       | the f32 words as is (1 element per word)                                         |
 * | F16, BF16 | the raw halves flattened: element e is halfword e (word e>>1, low half when e is even); the tail padded to a word |
 * | Q8_0      | 9 words / 32 elements: word 0 = f16 d in the low 16 bits (high 16 bits zero), words 1..8 = the 32 int8 in byte order |
 * | Q4_0      | 5 words / 32 elements: word 0 = f16 d (low 16 bits), words 1..4 = the 16 nibble bytes (byte j: element j low, j+16 high) |
 * | Q4_K      | 36 words / 256 elements: the 144 GGUF bytes unchanged (d | dmin<<16, 3 words of scales, 32 of nibbles) |
 * | Q6_K      | 53 words / 256 elements: the 210 GGUF bytes (ql, qh, scales, d) + 2 zero bytes   |
 *
 * WGSL reads f16 with `unpack2x16float` (core WGSL, no `shader-f16`), so every type works on every
 * adapter. The per-type WGSL readers are `wgsl/weights_<type>.wgsl`.
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import { GgmlType, tensorBytes, typeInfo } from "./quant.ts";
import weightsF32 from "../../wgsl/weights_f32.wgsl" with { type: "text" };
import weightsF16 from "../../wgsl/weights_f16.wgsl" with { type: "text" };
import weightsBf16 from "../../wgsl/weights_bf16.wgsl" with { type: "text" };
import weightsQ8_0 from "../../wgsl/weights_q8_0.wgsl" with { type: "text" };
import weightsQ4_0 from "../../wgsl/weights_q4_0.wgsl" with { type: "text" };
import weightsQ4_K from "../../wgsl/weights_q4_k.wgsl" with { type: "text" };
import weightsQ6_K from "../../wgsl/weights_q6_k.wgsl" with { type: "text" };

/** One buffer of a weight: rows rowStart..rowStart+rowCount−1, in the GPU layout. */
export interface GpuWeightChunk {
  /** The storage buffer. */
  buffer: GPUBuffer;
  /** First row (of the whole tensor) held by this chunk. */
  rowStart: number;
  /** Number of rows in this chunk. */
  rowCount: number;
}

/** A 2-D weight tensor `[rows, cols]` (cols = GGUF ne0, the row length) on the GPU. */
export interface GpuWeight {
  /** Tensor name, e.g. `"blk.0.attn_q.weight"`. */
  name: string;
  /** GGML type id (see {@linkcode GgmlType}). */
  type: GgmlType;
  /** Number of rows (output features). */
  rows: number;
  /** Row length (input features). */
  cols: number;
  /** Row chunks in order; each fits one storage binding. */
  chunks: GpuWeightChunk[];
}

/** Options for {@linkcode uploadWeight}. */
export interface UploadWeightOptions {
  /**
   * Largest chunk in bytes; defaults to the device's storage-binding (and buffer) size limit.
   * Tests lower it to force a split.
   */
  maxChunkBytes?: number;
}

const READERS: Record<GgmlType, string> = {
  [GgmlType.F32]: weightsF32,
  [GgmlType.F16]: weightsF16,
  [GgmlType.BF16]: weightsBf16,
  [GgmlType.Q8_0]: weightsQ8_0,
  [GgmlType.Q4_0]: weightsQ4_0,
  [GgmlType.Q4_K]: weightsQ4_K,
  [GgmlType.Q6_K]: weightsQ6_K,
};

/** A weight type's WGSL reader: its file name and text. */
export interface WeightReader {
  /** The source file, `weights_<type>.wgsl`. */
  file: string;
  /** Its WGSL: the weight binding at `@binding(1)` and `fn load4(row: u32, g: u32) -> vec4<f32>`. */
  code: string;
}

/**
 * The WGSL reader of a weight type, to be included by a kernel as `weights.wgsl`. It declares the
 * weight chunk at `@group(0) @binding(1)` and `fn load4(row, g) -> vec4<f32>` (weights 4g..4g+3 of
 * a chunk row), and reads the row length from the kernel's uniform `P.cols`.
 *
 * @example
 * ```ts
 * import { GgmlType } from "./quant.ts";
 * import { weightReader } from "./gpu_weight.ts";
 * console.log(weightReader(GgmlType.Q4_K).file); // "weights_q4_k.wgsl"
 * ```
 */
export function weightReader(type: number): WeightReader {
  const t = typeInfo(type);
  return { file: `weights_${t.name}.wgsl`, code: READERS[t.id] };
}

/** Repacked words per GPU block (F32/F16/BF16 are handled per element). */
const BLOCK_WORDS: Partial<Record<GgmlType, number>> = {
  [GgmlType.Q4_0]: 5,
  [GgmlType.Q8_0]: 9,
  [GgmlType.Q4_K]: 36,
  [GgmlType.Q6_K]: 53,
};

/**
 * Bytes one row takes in the GPU layout (before tail padding of odd-length F16/BF16 tensors).
 *
 * @example
 * ```ts
 * import { GgmlType } from "./quant.ts";
 * import { gpuRowBytes } from "./gpu_weight.ts";
 * console.log(gpuRowBytes(GgmlType.Q4_0, 64)); // 40
 * ```
 */
export function gpuRowBytes(type: number, cols: number): number {
  const t = typeInfo(type);
  tensorBytes(type, cols); // validates cols % blockSize
  if (t.id === GgmlType.F32) return cols * 4;
  if (t.id === GgmlType.F16 || t.id === GgmlType.BF16) return cols * 2;
  return (cols / t.blockSize) * BLOCK_WORDS[t.id]! * 4;
}

/**
 * Repacks GGUF bytes of a `[rows, cols]` tensor into the GPU layout described in this module's docs.
 *
 * @example
 * ```ts
 * import { GgmlType, quantizeQ8_0 } from "./quant.ts";
 * import { repackForGpu } from "./gpu_weight.ts";
 * const words = repackForGpu(GgmlType.Q8_0, quantizeQ8_0(new Float32Array(32).fill(1)), 1, 32);
 * console.log(words.length); // 9
 * ```
 */
export function repackForGpu(type: number, bytes: Uint8Array, rows: number, cols: number): Uint32Array {
  const t = typeInfo(type);
  const n = rows * cols;
  const need = tensorBytes(type, n);
  if (rows * cols !== 0) tensorBytes(type, cols); // each row a whole number of blocks
  if (bytes.byteLength < need) {
    throw new RangeError(
      `Cannot repack ${t.name} tensor [${rows}, ${cols}]: needs ${need} bytes: current length is ${bytes.byteLength}`,
    );
  }
  const src = bytes.subarray(0, need);
  if (t.blockSize === 1) {
    // F32, F16, BF16: plain copy, padded to a whole word.
    const out = new Uint32Array(Math.ceil(need / 4));
    new Uint8Array(out.buffer).set(src);
    return out;
  }
  const nBlocks = n / t.blockSize;
  const words = BLOCK_WORDS[t.id]!;
  const out = new Uint32Array(nBlocks * words);
  const u8 = new Uint8Array(out.buffer);
  for (let b = 0; b < nBlocks; b++) {
    const s = b * t.blockBytes, d = b * words * 4;
    if (t.id === GgmlType.Q4_0 || t.id === GgmlType.Q8_0) {
      u8[d] = src[s]; // f16 d in the low half of word 0, high half zero
      u8[d + 1] = src[s + 1];
      u8.set(src.subarray(s + 2, s + t.blockBytes), d + 4);
    } else {
      u8.set(src.subarray(s, s + t.blockBytes), d); // K-quants: bytes unchanged (+ zero padding)
    }
  }
  return out;
}

/**
 * Repacks a GGUF tensor and uploads it, split by whole rows so that no chunk exceeds the device's
 * storage-binding limit (or `opts.maxChunkBytes`). Each chunk is repacked separately, so peak host
 * memory stays near one chunk.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { GgmlType, quantizeQ8_0 } from "./quant.ts";
 * import { uploadWeight } from "./gpu_weight.ts";
 * const gpu = await Gpu.create();
 * const raw = quantizeQ8_0(new Float32Array(4 * 64));
 * const w = uploadWeight(gpu, "demo", GgmlType.Q8_0, 4, 64, raw);
 * console.log(w.chunks.length); // 1
 * ```
 */
export function uploadWeight(
  gpu: Gpu,
  name: string,
  type: number,
  rows: number,
  cols: number,
  rawGgufBytes: Uint8Array,
  opts: UploadWeightOptions = {},
): GpuWeight {
  const t = typeInfo(type);
  if (!Number.isInteger(rows) || rows <= 0 || !Number.isInteger(cols) || cols <= 0) {
    throw new RangeError(
      `Cannot upload weight "${name}": shape must be positive integers: current value is [${rows}, ${cols}]`,
    );
  }
  const rawRow = tensorBytes(type, cols);
  if (rawGgufBytes.byteLength < rawRow * rows) {
    throw new RangeError(
      `Cannot upload weight "${name}": [${rows}, ${cols}] ${t.name} needs ${
        rawRow * rows
      } bytes: current length is ${rawGgufBytes.byteLength}`,
    );
  }
  const limit = opts.maxChunkBytes ?? Math.min(gpu.maxStorageBinding, gpu.maxBufferSize);
  const rowBytes = gpuRowBytes(type, cols);
  // An odd-length F16/BF16 row does not end on a word: such a tensor must fit one chunk.
  const rowsPerChunk = rowBytes % 4 === 0
    ? Math.floor(limit / rowBytes)
    : (Math.ceil((rowBytes * rows) / 4) * 4 <= limit ? rows : 0);
  if (rowsPerChunk < 1) {
    throw new RangeError(
      `Cannot upload weight "${name}": a chunk of [${rows}, ${cols}] ${t.name} exceeds the ${limit}-byte storage binding limit`,
    );
  }
  const chunks: GpuWeightChunk[] = [];
  for (let rowStart = 0; rowStart < rows; rowStart += rowsPerChunk) {
    const rowCount = Math.min(rowsPerChunk, rows - rowStart);
    const raw = rawGgufBytes.subarray(rowStart * rawRow, (rowStart + rowCount) * rawRow);
    const words = repackForGpu(type, raw, rowCount, cols);
    const label = chunks.length === 0 && rowCount === rows ? name : `${name}[rows ${rowStart}..]`;
    chunks.push({ buffer: gpu.upload(label, words), rowStart, rowCount });
  }
  return { name, type: t.id, rows, cols, chunks };
}

/**
 * Total GPU bytes of a weight (all chunks).
 *
 * @example
 * ```ts ignore
 * import { weightBytes } from "./gpu_weight.ts";
 * console.log(weightBytes(w));
 * ```
 */
export function weightBytes(w: GpuWeight): number {
  return w.chunks.reduce((sum, c) => sum + c.buffer.size, 0);
}
