/**
 * Plain-TypeScript references for every per-layer kernel except the matrix products: the oracles the
 * GPU tests compare against (STYLE.md lesson 11). Inputs are f32 arrays, maths is done in float64.
 *
 * Layouts match the kernels, without offsets (tests slice instead):
 * - activations: row-major `[nTokens, width]`;
 * - q / k rows: `[nTokens, nHeads·headDim]`, head h at columns `h·headDim …`;
 * - KV cache (one layer): `[nKvHeads, capacity, headDim]`.
 *
 * @module
 */

/**
 * RMSNorm of each row: `out[t,c] = x[t,c] / sqrt(mean(x[t,:]²) + eps) · w[c]`.
 *
 * @example
 * ```ts
 * import { rmsNorm } from "./ops.ts";
 * const out = rmsNorm(new Float32Array([3, 4]), new Float32Array([1, 1]), 1, 2, 0);
 * console.log(out); // ≈ [0.8485, 1.1314]
 * ```
 */
export function rmsNorm(
  x: Float32Array,
  w: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c] ** 2;
    const scale = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] * scale * w[c];
  }
  return out;
}

/** Shape and frequency options for {@linkcode rope} and {@linkcode ropeAngle}. */
export interface RopeOptions {
  /** Tokens (rows). */
  nTokens: number;
  /** Heads per row. */
  nHeads: number;
  /** Channels per head. */
  headDim: number;
  /** Rotated channels per head (`llama.rope.dimension_count`); defaults to `headDim`. */
  ropeDim?: number;
  /** Absolute position of row 0. */
  pos0: number;
  /** `llama.rope.freq_base` (10000 for Llama 2, 500000 for Llama 3). */
  freqBase: number;
  /** Linear scaling factor multiplied into every angle (`1 / rope.scaling.factor`); default 1. */
  freqScale?: number;
  /** Per-pair divisors from the `rope_freqs` tensor (Llama 3.1+), length `ropeDim / 2`. */
  freqFactors?: Float32Array;
  /** Elements between rows; defaults to `nHeads · headDim`. */
  rowStride?: number;
  /**
   * `"f64"`: the exact angle `pos · base^(−2i/ropeDim) / ff · freqScale` in float64 (default).
   * `"ggml"`: llama.cpp's CPU angle, rounded to f32 at every step like `ggml_rope_cache_init`.
   */
  angles?: "f64" | "ggml";
}

/**
 * `theta_scale = powf(base, −2/ropeDim)` in f32, as llama.cpp computes it (the GPU kernel's uniform).
 *
 * @example
 * ```ts
 * import { ropeThetaScale } from "./ops.ts";
 * console.log(ropeThetaScale(10000, 8)); // 0.1
 * ```
 */
export function ropeThetaScale(freqBase: number, ropeDim: number): number {
  return Math.fround(Math.pow(Math.fround(freqBase), Math.fround(-2 / ropeDim)));
}

/**
 * The rotation angle of pair `i` at position `pos`: exact in float64 (`"f64"`), or llama.cpp's f32
 * cumulative product `θ_i = fl(θ_{i−1} · theta_scale)`, `θ_0 = pos`, then `/ ff`, `· freqScale` (`"ggml"`).
 *
 * @example
 * ```ts
 * import { ropeAngle } from "./ops.ts";
 * console.log(ropeAngle(100, 1, 8, 10000)); // ≈ 10
 * ```
 */
export function ropeAngle(
  pos: number,
  i: number,
  ropeDim: number,
  freqBase: number,
  options: { freqScale?: number; freqFactors?: Float32Array; angles?: "f64" | "ggml" } = {},
): number {
  const ff = options.freqFactors ? options.freqFactors[i] : 1;
  const freqScale = options.freqScale ?? 1;
  if (options.angles !== "ggml") return pos * Math.pow(freqBase, (-2 * i) / ropeDim) / ff * freqScale;
  const f = Math.fround;
  const scale = ropeThetaScale(freqBase, ropeDim);
  let theta = f(pos);
  for (let k = 0; k < i; k++) theta = f(theta * scale);
  const extrap = options.freqFactors ? f(theta / ff) : theta;
  return f(f(freqScale) * extrap);
}

/**
 * RoPE in GGUF's "normal" mode: rotates adjacent pairs (2i, 2i+1), i < ropeDim/2, of every head of row
 * t by the angle of position `pos0 + t`. Returns a rotated copy; channels ≥ ropeDim are unchanged.
 *
 * @example
 * ```ts
 * import { rope } from "./ops.ts";
 * const x = new Float32Array([1, 0, 1, 0]);
 * console.log(rope(x, { nTokens: 1, nHeads: 1, headDim: 4, pos0: 1, freqBase: 10000 }));
 * ```
 */
export function rope(x: Float32Array, options: RopeOptions): Float32Array {
  const { nTokens, nHeads, headDim, pos0, freqBase } = options;
  const ropeDim = options.ropeDim ?? headDim;
  const stride = options.rowStride ?? nHeads * headDim;
  const out = x.slice();
  for (let t = 0; t < nTokens; t++) {
    for (let i = 0; i < ropeDim / 2; i++) {
      const theta = ropeAngle(pos0 + t, i, ropeDim, freqBase, options);
      const cos = Math.cos(theta);
      const sin = Math.sin(theta);
      for (let h = 0; h < nHeads; h++) {
        const b = t * stride + h * headDim + 2 * i;
        const x0 = x[b];
        const x1 = x[b + 1];
        out[b] = x0 * cos - x1 * sin;
        out[b + 1] = x0 * sin + x1 * cos;
      }
    }
  }
  return out;
}

/** Shape of a KV-cache write for {@linkcode kvStore}. */
export interface KvStoreShape {
  /** Rows to store. */
  nTokens: number;
  /** KV heads per row. */
  nKvHeads: number;
  /** Channels per head. */
  headDim: number;
  /** Positions per head in the cache. */
  capacity: number;
  /** Cache position of row 0. */
  pos0: number;
}

/**
 * Writes rows `[nTokens, nKvHeads·headDim]` into a cache `[nKvHeads, capacity, headDim]` at
 * positions `pos0 …`, in place.
 *
 * @example
 * ```ts
 * import { kvStore } from "./ops.ts";
 * const cache = new Float32Array(2 * 4 * 2);
 * kvStore(cache, new Float32Array([1, 2, 3, 4]), { nTokens: 1, nKvHeads: 2, headDim: 2, capacity: 4, pos0: 3 });
 * console.log(cache[6], cache[14]); // 1 3
 * ```
 */
export function kvStore(cache: Float32Array, rows: Float32Array, shape: KvStoreShape): void {
  const { nTokens, nKvHeads, headDim, capacity, pos0 } = shape;
  for (let t = 0; t < nTokens; t++) {
    for (let h = 0; h < nKvHeads; h++) {
      const src = rows.subarray((t * nKvHeads + h) * headDim, (t * nKvHeads + h + 1) * headDim);
      cache.set(src, (h * capacity + pos0 + t) * headDim);
    }
  }
}

/** Shape of a causal GQA attention call for {@linkcode attention}. */
export interface AttentionShape {
  /** Query rows. */
  nTokens: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads (divides nHeads). */
  nKvHeads: number;
  /** Channels per head. */
  headDim: number;
  /** Positions per head in the caches. */
  capacity: number;
  /** Absolute position of query row 0; query t attends cache positions 0 … pos0 + t. */
  pos0: number;
}

/**
 * Causal grouped-query attention over a KV cache, softmax in float64, scale `1/√headDim`.
 * q: `[nTokens, nHeads·headDim]`; caches `[nKvHeads, capacity, headDim]`; returns `[nTokens, nHeads·headDim]`.
 *
 * @example
 * ```ts
 * import { attention } from "./ops.ts";
 * const shape = { nTokens: 1, nHeads: 1, nKvHeads: 1, headDim: 2, capacity: 2, pos0: 1 };
 * const out = attention(new Float32Array([1, 0]), new Float32Array([1, 0, 0, 1]), new Float32Array([1, 2, 3, 4]), shape);
 * console.log(out);
 * ```
 */
export function attention(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  shape: AttentionShape,
): Float32Array {
  const { nTokens, nHeads, nKvHeads, headDim: d, capacity, pos0 } = shape;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(d);
  const out = new Float32Array(nTokens * nHeads * d);
  for (let t = 0; t < nTokens; t++) {
    const ctx = pos0 + t + 1;
    const logits = new Float64Array(ctx);
    for (let h = 0; h < nHeads; h++) {
      const kvBase = Math.floor(h / group) * capacity * d;
      const qb = (t * nHeads + h) * d;
      let max = -Infinity;
      for (let j = 0; j < ctx; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[qb + c] * kCache[kvBase + j * d + c];
        logits[j] = s * scale;
        max = Math.max(max, logits[j]);
      }
      let sum = 0;
      for (let j = 0; j < ctx; j++) sum += logits[j] = Math.exp(logits[j] - max);
      const acc = new Float64Array(d);
      for (let j = 0; j < ctx; j++) {
        for (let c = 0; c < d; c++) acc[c] += logits[j] * vCache[kvBase + j * d + c];
      }
      for (let c = 0; c < d; c++) out[qb + c] = acc[c] / sum;
    }
  }
  return out;
}

/**
 * SwiGLU: `out = silu(gate) · up` with `silu(x) = x / (1 + e^−x)`.
 *
 * @example
 * ```ts
 * import { swiglu } from "./ops.ts";
 * console.log(swiglu(new Float32Array([0, 1]), new Float32Array([2, 2]))); // ≈ [0, 1.4621]
 * ```
 */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  return gate.map((g, i) => g / (1 + Math.exp(-g)) * up[i]);
}

/**
 * Residual add: returns `x + y` (elementwise).
 *
 * @example
 * ```ts
 * import { add } from "./ops.ts";
 * console.log(add(new Float32Array([1, 2]), new Float32Array([3, 4]))); // [4, 6]
 * ```
 */
export function add(x: Float32Array, y: Float32Array): Float32Array {
  return x.map((v, i) => v + y[i]);
}

/**
 * Index of the largest value; ties go to the lowest index (NaNs are skipped).
 *
 * @example
 * ```ts
 * import { argmax } from "./ops.ts";
 * console.log(argmax(new Float32Array([1, 5, 5, 2]))); // 1
 * ```
 */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < logits.length; i++) {
    if (best < 0 ? !Number.isNaN(logits[i]) : logits[i] > logits[best]) best = i;
  }
  return best;
}
