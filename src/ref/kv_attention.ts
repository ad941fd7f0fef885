/**
 * Plain-TypeScript reference of decode attention over a compressed cache (THINK.md §2.2): one softmax
 * over `[thin segment (q gathered at the kept channels) | tail segment (full q)]` at scale `1/√D`,
 * values in the same token order. Causal in the tail: query row t sees tail rows `0 … tailRow0 + t`.
 * Maths in float64.
 *
 * @module
 */

/** A compressed layer as attention reads it. */
export interface SegmentedKv {
  /** Thin keys `[nKvHeads, thinLength, thinStride]`; the first `channels[h].length` of each row are used. */
  thinKeys: Float32Array;
  /** Thin values `[nKvHeads, thinLength, D]`. */
  thinValues: Float32Array;
  /** Rows of the thin segment. */
  thinLength: number;
  /** f32 per thin key row. */
  thinStride: number;
  /** Kept channel ids per KV head, ascending. */
  channels: number[][];
  /** Tail keys `[nKvHeads, tailCapacity, D]`. */
  tailKeys: Float32Array;
  /** Tail values `[nKvHeads, tailCapacity, D]`. */
  tailValues: Float32Array;
  /** Rows per KV head in the tail arrays. */
  tailCapacity: number;
}

/** Shape of a segmented attention call. */
export interface SegmentAttentionShape {
  /** Query rows. */
  nTokens: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head D (the scale is `1/√D`). */
  headDim: number;
  /** Tail row of query 0's own key; query t sees tail rows `0 … tailRow0 + t`. */
  tailRow0: number;
}

/**
 * Attention of `q` rows `[nTokens, nHeads·D]` over a segmented cache; returns `[nTokens, nHeads·D]`.
 *
 * @example
 * ```ts
 * import { segmentAttention } from "./kv_attention.ts";
 * const kv = {
 *   thinKeys: new Float32Array([1]), thinValues: new Float32Array([1, 1]), thinLength: 1, thinStride: 1,
 *   channels: [[0]], tailKeys: new Float32Array([0, 1]), tailValues: new Float32Array([3, 3]), tailCapacity: 1,
 * };
 * const out = segmentAttention(new Float32Array([2, 0]), kv, { nTokens: 1, nHeads: 1, nKvHeads: 1, headDim: 2, tailRow0: 0 });
 * console.log(out); // softmax([2/√2, 0]) · [1, 3]
 * ```
 */
export function segmentAttention(
  q: Float32Array,
  kv: SegmentedKv,
  shape: SegmentAttentionShape,
): Float32Array {
  const { nTokens, nHeads, nKvHeads, headDim: D, tailRow0 } = shape;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(D);
  const out = new Float32Array(nTokens * nHeads * D);
  for (let t = 0; t < nTokens; t++) {
    const nTail = tailRow0 + t + 1;
    const n = kv.thinLength + nTail;
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / group);
      const qb = (t * nHeads + h) * D;
      const logits = new Float64Array(n);
      const ch = kv.channels[kvh];
      for (let j = 0; j < kv.thinLength; j++) {
        const kb = (kvh * kv.thinLength + j) * kv.thinStride;
        let s = 0;
        for (let i = 0; i < ch.length; i++) s += q[qb + ch[i]] * kv.thinKeys[kb + i];
        logits[j] = s * scale;
      }
      for (let j = 0; j < nTail; j++) {
        const kb = (kvh * kv.tailCapacity + j) * D;
        let s = 0;
        for (let c = 0; c < D; c++) s += q[qb + c] * kv.tailKeys[kb + c];
        logits[kv.thinLength + j] = s * scale;
      }
      let max = -Infinity;
      for (const x of logits) max = Math.max(max, x);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += logits[j] = Math.exp(logits[j] - max);
      const acc = new Float64Array(D);
      for (let j = 0; j < n; j++) {
        const thin = j < kv.thinLength;
        const vb = thin ? (kvh * kv.thinLength + j) * D : (kvh * kv.tailCapacity + j - kv.thinLength) * D;
        const vals = thin ? kv.thinValues : kv.tailValues;
        for (let c = 0; c < D; c++) acc[c] += logits[j] * vals[vb + c];
      }
      for (let c = 0; c < D; c++) out[qb + c] = acc[c] / sum;
    }
  }
  return out;
}
