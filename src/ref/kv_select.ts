/**
 * Plain-TypeScript references of every KV-cache policy: token scores (SnapKV / PyramidKV window votes
 * with pooling, H2O accumulated attention, StreamingLLM positions), ThinK channel scores, the
 * deterministic top-k, and the compaction into [thin | tail] segments. The oracles of the GPU tests;
 * maths in float64.
 *
 * Layouts (one layer, no offsets):
 * - queries: all prompt queries, post-RoPE, rows `[L, nHeads·D]`, head h at columns `h·D …`;
 * - keys / values: `[nKvHeads, L, D]` (the prefill cache of the prompt);
 * - scores: `[nKvHeads, n]`, one row per KV head.
 *
 * GQA (THINK.md Part 0): one selection per (layer, KV head). Token votes are summed over the KV head's
 * group of query heads; ThinK's query statistic is summed over the group's heads and window queries.
 * Sums replace the reference repository's means: constant factors do not change any ranking.
 *
 * Ties (documented once, used by tokens and channels alike): among equal scores the lower index ranks
 * higher, so it is kept first. The GPU kernels rank the same way.
 *
 * @module
 */

import type { CompressionPlan, LayerPlan } from "../kv/plan.ts";

/** Shape of one layer's attention. */
export interface KvShape {
  /** Prompt length L (rows of the key/value arrays). */
  promptLength: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads (divides nHeads). */
  nKvHeads: number;
  /** Channels per head D. */
  headDim: number;
}

/** Post-RoPE logit `q_t,h · k_kvh,s / √D` in float64. */
function logit(
  q: Float32Array,
  k: Float32Array,
  s: KvShape,
  t: number,
  h: number,
  kvh: number,
  j: number,
): number {
  const D = s.headDim;
  const qb = (t * s.nHeads + h) * D;
  const kb = (kvh * s.promptLength + j) * D;
  let dot = 0;
  for (let c = 0; c < D; c++) dot += q[qb + c] * k[kb + c];
  return dot / Math.sqrt(D);
}

/** Causal softmax row of query t (position t) of head h over keys 0 … t. */
function softmaxRow(q: Float32Array, k: Float32Array, s: KvShape, t: number, h: number): Float64Array {
  const kvh = Math.floor(h / (s.nHeads / s.nKvHeads));
  const p = new Float64Array(t + 1);
  let max = -Infinity;
  for (let j = 0; j <= t; j++) max = Math.max(max, p[j] = logit(q, k, s, t, h, kvh, j));
  let sum = 0;
  for (let j = 0; j <= t; j++) sum += p[j] = Math.exp(p[j] - max);
  for (let j = 0; j <= t; j++) p[j] /= sum;
  return p;
}

/**
 * SnapKV votes: `v[kvh, s] = Σ_{h ∈ group} Σ_{i < votes} P_h[L − votes + i, s]` for prefix positions
 * `s < prefixLength`, where P is the causal softmax over all L keys.
 *
 * @example
 * ```ts
 * import { windowVotes } from "./kv_select.ts";
 * const s = { promptLength: 3, nHeads: 1, nKvHeads: 1, headDim: 1 };
 * console.log(windowVotes(new Float32Array(3), new Float32Array(3), s, 2, 1)); // [1/3, 1/3]
 * ```
 */
export function windowVotes(
  q: Float32Array,
  k: Float32Array,
  s: KvShape,
  prefixLength: number,
  votes: number,
): Float64Array {
  const out = new Float64Array(s.nKvHeads * prefixLength);
  const group = s.nHeads / s.nKvHeads;
  for (let h = 0; h < s.nHeads; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < votes; i++) {
      const t = s.promptLength - votes + i;
      const p = softmaxRow(q, k, s, t, h);
      for (let j = 0; j < Math.min(prefixLength, t + 1); j++) out[kvh * prefixLength + j] += p[j];
    }
  }
  return out;
}

/**
 * H2O: attention accumulated over all prompt queries, `a[kvh, s] = Σ_{h ∈ group} Σ_{t ≥ s} P_h[t, s]`,
 * for `s < prefixLength`.
 *
 * @example
 * ```ts
 * import { accumulatedAttention } from "./kv_select.ts";
 * const s = { promptLength: 2, nHeads: 1, nKvHeads: 1, headDim: 1 };
 * console.log(accumulatedAttention(new Float32Array(2), new Float32Array(2), s, 2)); // [1.5, 0.5]
 * ```
 */
export function accumulatedAttention(
  q: Float32Array,
  k: Float32Array,
  s: KvShape,
  prefixLength: number,
): Float64Array {
  const out = new Float64Array(s.nKvHeads * prefixLength);
  const group = s.nHeads / s.nKvHeads;
  for (let h = 0; h < s.nHeads; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < s.promptLength; t++) {
      const p = softmaxRow(q, k, s, t, h);
      for (let j = 0; j < Math.min(prefixLength, t + 1); j++) out[kvh * prefixLength + j] += p[j];
    }
  }
  return out;
}

/**
 * StreamingLLM: `−s`, so the top-k are the first k tokens (the attention sinks).
 *
 * @example
 * ```ts
 * import { positionScores } from "./kv_select.ts";
 * console.log(positionScores(1, 3)); // [-0, -1, -2]
 * ```
 */
export function positionScores(nKvHeads: number, prefixLength: number): Float64Array {
  const out = new Float64Array(nKvHeads * prefixLength);
  for (let h = 0; h < nKvHeads; h++) for (let j = 0; j < prefixLength; j++) out[h * prefixLength + j] = -j;
  return out;
}

/**
 * 1-D pooling of each row, stride 1, padding `⌊kernel/2⌋`, output as long as the input: `max` ignores
 * pads, `avg` counts them as zeros and always divides by `kernel`, `none` copies.
 *
 * @example
 * ```ts
 * import { pool1d } from "./kv_select.ts";
 * console.log(pool1d(new Float64Array([0, 3, 0, 0]), 1, "max", 3)); // [3, 3, 3, 0]
 * ```
 */
export function pool1d(
  x: Float64Array,
  rows: number,
  kind: "max" | "avg" | "none",
  kernel: number,
): Float64Array {
  if (kind === "none") return x.slice();
  const n = x.length / rows;
  const pad = Math.floor(kernel / 2);
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < n; s++) {
      let acc = kind === "max" ? -Infinity : 0;
      for (let j = Math.max(0, s - pad); j <= Math.min(n - 1, s + pad); j++) {
        acc = kind === "max" ? Math.max(acc, x[r * n + j]) : acc + x[r * n + j];
      }
      out[r * n + s] = kind === "max" ? acc : acc / kernel;
    }
  }
  return out;
}

/**
 * The indices of the `k` largest values of `x[0 … n)`, in ascending index order. Among equal values
 * the lower index ranks higher (is kept first).
 *
 * @example
 * ```ts
 * import { topkAscending } from "./kv_select.ts";
 * console.log(topkAscending([1, 5, 5, 2, 5], 2)); // [1, 2]
 * ```
 */
export function topkAscending(x: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((a, b) => x[b] - x[a] || a - b);
  return idx.slice(0, k).sort((a, b) => a - b);
}

/**
 * ThinK channel scores per KV head: `score[kvh, c] = (Σ_{h ∈ group} Σ_{t ∈ last queries} q[t,h,c]²) ·
 * (Σ_{s ∈ tokens[kvh]} k[kvh,s,c]²)`, over the kept tokens (after eviction).
 *
 * @example
 * ```ts
 * import { channelScores } from "./kv_select.ts";
 * const s = { promptLength: 1, nHeads: 1, nKvHeads: 1, headDim: 2 };
 * console.log(channelScores(new Float32Array([1, 2]), new Float32Array([3, 1]), s, [[0]], 1)); // [9, 4]
 * ```
 */
export function channelScores(
  q: Float32Array,
  k: Float32Array,
  s: KvShape,
  tokens: number[][],
  queries: number,
): Float64Array {
  const D = s.headDim;
  const group = s.nHeads / s.nKvHeads;
  const out = new Float64Array(s.nKvHeads * D);
  for (let kvh = 0; kvh < s.nKvHeads; kvh++) {
    for (let c = 0; c < D; c++) {
      let qs = 0;
      for (let h = kvh * group; h < (kvh + 1) * group; h++) {
        for (let t = s.promptLength - queries; t < s.promptLength; t++) {
          qs += q[(t * s.nHeads + h) * D + c] ** 2;
        }
      }
      let ks = 0;
      for (const j of tokens[kvh]) ks += k[(kvh * s.promptLength + j) * D + c] ** 2;
      out[kvh * D + c] = qs * ks;
    }
  }
  return out;
}

/** One layer compressed by {@linkcode compressLayer}. */
export interface CompressedLayer {
  /** Kept prompt positions per KV head, ascending (length `plan.kept`). */
  tokens: number[][];
  /** Kept key channels per KV head, ascending (length `plan.nKeep`; all D without ThinK). */
  channels: number[][];
  /** Thin keys `[nKvHeads, thinTokens, thinStride]` (pad channels zero). */
  thinKeys: Float32Array;
  /** Thin-segment values `[nKvHeads, thinTokens, D]`. */
  thinValues: Float32Array;
  /** Full-width keys of the last kept tokens `[nKvHeads, kept − thinTokens, D]`. */
  tailKeys: Float32Array;
  /** Their values `[nKvHeads, kept − thinTokens, D]`. */
  tailValues: Float32Array;
}

/**
 * Token scores of one layer by the plan's scoring, `[nKvHeads, prefixLength]` (pooled for "window").
 *
 * @example
 * ```ts
 * import { resolveKvOptions } from "../kv/options.ts";
 * import { planCompression } from "../kv/plan.ts";
 * import { tokenScores } from "./kv_select.ts";
 * const plan = planCompression(resolveKvOptions({ eviction: { policy: "streamingllm", budget: 3, sinks: 1 } }), { nLayers: 1, headDim: 4 }, 5, 5);
 * const s = { promptLength: 5, nHeads: 1, nKvHeads: 1, headDim: 4 };
 * console.log(tokenScores(new Float32Array(20), new Float32Array(20), s, plan, plan.layers[0])); // [-0, -1, -2]
 * ```
 */
export function tokenScores(
  q: Float32Array,
  k: Float32Array,
  s: KvShape,
  plan: CompressionPlan,
  layer: LayerPlan,
): Float64Array {
  switch (plan.scoring) {
    case "window":
      return pool1d(
        windowVotes(q, k, s, layer.prefixLength, plan.voteQueries),
        s.nKvHeads,
        plan.pool,
        plan.kernel,
      );
    case "accumulated":
      return accumulatedAttention(q, k, s, layer.prefixLength);
    case "position":
      return positionScores(s.nKvHeads, layer.prefixLength);
    case "none":
      return new Float64Array(0);
  }
}

/**
 * Compresses one layer as the plan says: evict tokens (scored prefix top-k plus the window), then
 * select ThinK channels on the kept keys, then split into thin and tail segments.
 *
 * @example
 * ```ts
 * import { resolveKvOptions } from "../kv/options.ts";
 * import { planCompression } from "../kv/plan.ts";
 * import { compressLayer } from "./kv_select.ts";
 * const s = { promptLength: 6, nHeads: 2, nKvHeads: 1, headDim: 4 };
 * const plan = planCompression(resolveKvOptions({ eviction: { policy: "streamingllm", budget: 4, sinks: 1 }, think: { ratio: 0.5, recent: 1 } }), { nLayers: 1, headDim: 4 }, 6, 8);
 * const q = new Float32Array(6 * 8).fill(1), kv = new Float32Array(6 * 4).map((_, i) => i);
 * const c = compressLayer(q, kv, kv, s, plan, plan.layers[0]);
 * console.log(c.tokens, c.channels); // [[0, 3, 4, 5]] [[2, 3]]
 * ```
 */
export function compressLayer(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: KvShape,
  plan: CompressionPlan,
  layer: LayerPlan,
): CompressedLayer {
  const L = s.promptLength, D = s.headDim, H = s.nKvHeads;
  const tokens: number[][] = [];
  if (layer.evict) {
    const scores = tokenScores(q, k, s, plan, layer);
    for (let h = 0; h < H; h++) {
      const row = scores.subarray(h * layer.prefixLength, (h + 1) * layer.prefixLength);
      const window = Array.from({ length: L - layer.prefixLength }, (_, i) => layer.prefixLength + i);
      tokens.push([...topkAscending(row, layer.selected), ...window]);
    }
  } else {
    for (let h = 0; h < H; h++) tokens.push(Array.from({ length: L }, (_, i) => i));
  }
  const channels: number[][] = [];
  if (plan.think) {
    // KIVI: the keys quantized at the end of the prompt score the channels (all kept when none are)
    const scored = tokens.map((t) => t.slice(0, layer.channelTokens));
    const cs = channelScores(q, k, s, scored, plan.thinkQueries);
    for (let h = 0; h < H; h++) channels.push(topkAscending(cs.subarray(h * D, (h + 1) * D), layer.nKeep));
  } else {
    for (let h = 0; h < H; h++) channels.push(Array.from({ length: D }, (_, i) => i));
  }
  const thin = layer.thinTokens, tail = layer.kept - thin, stride = layer.thinStride;
  const out: CompressedLayer = {
    tokens,
    channels,
    thinKeys: new Float32Array(H * thin * stride),
    thinValues: new Float32Array(H * thin * D),
    tailKeys: new Float32Array(H * tail * D),
    tailValues: new Float32Array(H * tail * D),
  };
  for (let h = 0; h < H; h++) {
    tokens[h].forEach((src, j) => {
      const kRow = k.subarray((h * L + src) * D, (h * L + src + 1) * D);
      const vRow = v.subarray((h * L + src) * D, (h * L + src + 1) * D);
      if (j < thin) {
        channels[h].forEach((c, i) => out.thinKeys[(h * thin + j) * stride + i] = kRow[c]);
        out.thinValues.set(vRow, (h * thin + j) * D);
      } else {
        out.tailKeys.set(kRow, (h * tail + j - thin) * D);
        out.tailValues.set(vRow, (h * tail + j - thin) * D);
      }
    });
  }
  return out;
}
