/**
 * Plain-TypeScript references for the matrix product and the embedding lookup: the oracles of the
 * GPU tests. Accumulation is in f64.
 *
 * @module
 */

import { f32ToF16, GgmlType, quantizeQ4_0, quantizeQ8_0, tensorBytes, typeInfo } from "../model/quant.ts";
import { add, rmsNorm, rope, type RopeOptions, swiglu } from "./ops.ts";
import { mulberry32 } from "./random.ts";

/**
 * `out[t, r] = Σ_c W[r, c] · x[t, c]` with W `[rows, cols]` and x `[nTokens, cols]`, row-major;
 * returns `[nTokens, rows]`.
 *
 * @example
 * ```ts
 * import { matmulRef } from "./matmul.ts";
 * const W = new Float32Array([1, 2, 3, 4]); // [[1, 2], [3, 4]]
 * console.log(matmulRef(W, new Float32Array([1, 1]), 1, 2, 2)); // Float32Array [3, 7]
 * ```
 */
export function matmulRef(
  W: Float32Array,
  x: Float32Array,
  nTokens: number,
  rows: number,
  cols: number,
): Float32Array {
  if (W.length < rows * cols || x.length < nTokens * cols) {
    throw new RangeError(`Cannot compute matmulRef: W needs ${rows * cols} and x ${nTokens * cols} elements`);
  }
  const out = new Float32Array(nTokens * rows);
  for (let t = 0; t < nTokens; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += W[r * cols + c] * x[t * cols + c];
      out[t * rows + r] = s;
    }
  }
  return out;
}

/** The steps a fused product takes over (see `src/kernels/matmul_fusion.ts`). */
export interface FusedMatmulSteps {
  /** RMSNorm of each x row first, with this gain `[cols]` and epsilon. */
  norm?: { weight: Float32Array; eps: number };
  /** SwiGLU first: x is the gate, this the up projection (laid out like x). */
  swiglu?: Float32Array;
  /** Residual add after: the result is `accumulate + W · x'` (`[nTokens, rows]`). */
  accumulate?: Float32Array;
  /** RoPE of the product's rows (whole heads) at positions pos0 + t. */
  rope?: Omit<RopeOptions, "nTokens" | "nHeads" | "rowStride">;
}

/**
 * The fused product as the unfused steps compute it: `[accumulate +] [rope](W · x')` with x' = x,
 * RMSNorm(x) or SwiGLU(x, up). The oracle of the fused kernels.
 *
 * @example
 * ```ts
 * import { fusedMatmulRef } from "./matmul.ts";
 * const W = new Float32Array([1, 0, 0, 1]);
 * const out = fusedMatmulRef(W, new Float32Array([3, 4]), 1, 2, 2, {
 *   norm: { weight: new Float32Array([1, 1]), eps: 0 },
 *   accumulate: new Float32Array([10, 10]),
 * });
 * console.log(out); // ≈ [10.8485, 11.1314]
 * ```
 */
export function fusedMatmulRef(
  W: Float32Array,
  x: Float32Array,
  nTokens: number,
  rows: number,
  cols: number,
  steps: FusedMatmulSteps,
): Float32Array {
  let input = x.subarray(0, nTokens * cols);
  if (steps.norm) input = rmsNorm(input, steps.norm.weight, nTokens, cols, steps.norm.eps);
  if (steps.swiglu) input = swiglu(input, steps.swiglu.subarray(0, nTokens * cols));
  let out = matmulRef(W, input, nTokens, rows, cols);
  if (steps.rope) out = rope(out, { ...steps.rope, nTokens, nHeads: rows / steps.rope.headDim });
  return steps.accumulate ? add(steps.accumulate, out) : out;
}

/**
 * `out[t, :] = table[ids[t], :]` with table `[rows, cols]`; returns `[ids.length, cols]`.
 *
 * @example
 * ```ts
 * import { embeddingRef } from "./matmul.ts";
 * const table = new Float32Array([1, 2, 3, 4]); // 2 rows of 2
 * console.log(embeddingRef(table, [1, 0], 2)); // Float32Array [3, 4, 1, 2]
 * ```
 */
export function embeddingRef(table: Float32Array, ids: ArrayLike<number>, cols: number): Float32Array {
  const rows = Math.floor(table.length / cols);
  const out = new Float32Array(ids.length * cols);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!(id >= 0 && id < rows)) {
      throw new RangeError(
        `Cannot compute embeddingRef: id must be in 0..${rows - 1}: current value is ${id}`,
      );
    }
    out.set(table.subarray(id * cols, (id + 1) * cols), t * cols);
  }
  return out;
}

/**
 * Deterministic random GGUF bytes of a `[rows, cols]` tensor of `type`, for tests and benchmarks:
 * values in [−1, 1) for F32/F16/BF16, ggml's quantizers for Q8_0/Q4_0, and random bytes with finite
 * f16 scales (|d|, |dmin| < 2⁻⁵) for the K-quants.
 *
 * @example
 * ```ts
 * import { randomWeightBytes } from "./matmul.ts";
 * console.log(randomWeightBytes(12, 2, 256, 1).length); // 288
 * ```
 */
export function randomWeightBytes(type: number, rows: number, cols: number, seed: number): Uint8Array {
  const n = rows * cols;
  const rand = mulberry32(seed);
  const floats = () => Float32Array.from({ length: n }, () => rand() * 2 - 1);
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(floats().buffer);
    case GgmlType.F16:
      return new Uint8Array(Uint16Array.from(floats(), f32ToF16).buffer);
    case GgmlType.BF16:
      return new Uint8Array(Uint16Array.from(new Uint32Array(floats().buffer), (u) => u >>> 16).buffer);
    case GgmlType.Q8_0:
      return quantizeQ8_0(floats());
    case GgmlType.Q4_0:
      return quantizeQ4_0(floats());
  }
  const bytes = Uint8Array.from({ length: tensorBytes(type, n) }, () => Math.floor(rand() * 256));
  const t = typeInfo(type);
  const dv = new DataView(bytes.buffer);
  const scale = () => f32ToF16((rand() * 2 - 1) / 32);
  for (let b = 0; b < n / t.blockSize; b++) {
    const p = b * t.blockBytes;
    if (type === GgmlType.Q4_K) {
      dv.setUint16(p, scale(), true);
      dv.setUint16(p + 2, scale(), true);
    } else dv.setUint16(p + 208, scale(), true); // Q6_K
  }
  return bytes;
}
