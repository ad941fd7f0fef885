/**
 * The compression plan: how many prompt tokens and key channels each layer keeps, decided on the CPU
 * from the options, the model shape and the prompt length alone, before any GPU work. The GPU cache
 * sizes its buffers from it (no readback), and the TypeScript references follow the same plan.
 *
 * Every eviction policy has the same shape (the policies differ in scoring, not in compaction): the
 * prompt `[0, L)` splits into a scored prefix `[0, prefixLength)` of which the `selected` best-scoring
 * tokens are kept, and an always-kept window `[prefixLength, L)`. Kept tokens stay in position order.
 * Then ThinK stores the first `kept − recent` of them with `nKeep` key channels (the thin segment) and
 * the rest full width, followed by every generated token (the tail segment).
 *
 * With KIVI ({@linkcode QuantPlan}) there is no f32 thin segment: the kept tokens split into a
 * quantized segment (keys thin when ThinK prunes) and a full-precision residual ring, with different
 * boundaries for keys and values (THINK.md §4.2): after the prompt the first `T − T mod R` keys and
 * the first `T − min(T, R)` values are codes; see `src/kv/cache.ts` for the flush schedule.
 *
 * @module
 */

import type { ResolvedKvOptions, ResolvedQuant } from "./options.ts";

/** How the prefix tokens are scored (see `src/kv/compress.ts`). */
export type Scoring =
  | "none" // no eviction in any layer
  | "window" // SnapKV / PyramidKV: softmax votes of the last `window` queries, pooled
  | "accumulated" // H2O: attention summed over all prompt queries
  | "position"; // StreamingLLM: earlier is better (the sinks)

/** One layer's share of a {@linkcode CompressionPlan}. */
export interface LayerPlan {
  /** Layer index. */
  layer: number;
  /** True when tokens are evicted in this layer (scores are computed and ranked). */
  evict: boolean;
  /** Prefix positions `[0, prefixLength)` compete for `selected` slots; 0 without eviction. */
  prefixLength: number;
  /** Prefix tokens kept by score; 0 without eviction. */
  selected: number;
  /** Kept prompt tokens T: `selected + (L − prefixLength)`. */
  kept: number;
  /** Kept tokens stored thin (the first `kept − min(recent, kept)`); 0 without ThinK. */
  thinTokens: number;
  /** Key channels kept in the thin segment: `D − ⌊ratio·D⌋` (D without ThinK). */
  nKeep: number;
  /** f32 per thin key row: `nKeep`, or `nKeep` rounded up to 4 with `pad`. */
  thinStride: number;
  /**
   * Rows of the full-width tail: the last kept tokens, then room for `capacity − L` generated ones.
   * With KIVI: rows of the residual ring, `min(kept + capacity − L, residual + maxBatch)`.
   */
  tailCapacity: number;
  /**
   * Kept tokens whose keys score the ThinK channels: all `kept`, or with KIVI the keys quantized at the
   * end of the prompt (all `kept` when none are: the mask is defined for prompts shorter than R too).
   */
  channelTokens: number;
  /** KIVI sizes of this layer, or null without quantization. */
  quant: LayerQuantPlan | null;
}

/** One layer's KIVI segment sizes (rows per KV head). */
export interface LayerQuantPlan {
  /** Keys quantized at the end of the prompt: `T − T mod R` (0 when T < R). */
  keyRows: number;
  /** Values quantized at the end of the prompt: `T − min(T, R)`. */
  valueRows: number;
  /** Most rows the cache ever holds: `kept + capacity − L`. */
  maxRows: number;
  /** Key rows the codes can hold: `⌊maxRows / R⌋ · R` (keys flush R at a time). */
  keyCapacity: number;
  /** Value rows the codes can hold: `max(0, maxRows − R)`. */
  valueCapacity: number;
  /** Key channels stored as codes: nKeep with ThinK, else D. */
  keyChannels: number;
}

/** The KIVI settings of a plan, with the value group fitted to the head. */
export interface QuantPlan extends ResolvedQuant {
  /** Channels per value group: `min(group, headDim)`. */
  valueGroup: number;
  /** Most tokens one forward call appends after the prompt (sizes the residual ring). */
  maxBatch: number;
}

/** The per-layer compression of one prompt. */
export interface CompressionPlan {
  /** Prompt length L. */
  promptLength: number;
  /** Context length (positions) of the model. */
  capacity: number;
  /** Channels per head D. */
  headDim: number;
  /** How prefix tokens are scored; `"none"` when no layer evicts. */
  scoring: Scoring;
  /** SnapKV / PyramidKV pooling. */
  pool: "max" | "avg" | "none";
  /** Pooling kernel (odd). */
  kernel: number;
  /** Last prompt queries captured per layer during prefill (0 when none are needed). */
  obsQueries: number;
  /** Of the captured queries, the last `voteQueries` vote (SnapKV window); 0 unless scoring is "window". */
  voteQueries: number;
  /** Of the captured queries, the last `thinkQueries` score the key channels; 0 without ThinK. */
  thinkQueries: number;
  /** True when ThinK prunes key channels. */
  think: boolean;
  /** KIVI settings, or null. */
  quant: QuantPlan | null;
  /** One entry per layer. */
  layers: LayerPlan[];
}

/**
 * PyramidKV's per-layer prefix budgets (KVCache-Factory's schedule, THINK.md §3.3): `B̄ = B − w`,
 * `min = ⌊B̄/β⌋`, `max = 2B̄ − min` (clamped to `L − w`, then `min = 2B̄ − max`), `step =
 * ⌊(max − min)/(N − 1)⌋`, `budget_l = max − l·step`. Below `2B̄` prompt tokens every layer gets `B̄`.
 *
 * @example
 * ```ts
 * import { pyramidBudgets } from "./plan.ts";
 * console.log(pyramidBudgets({ budget: 64, window: 32, beta: 20, nLayers: 4, promptLength: 300 })); // [63, 43, 23, 3]
 * ```
 */
export function pyramidBudgets(
  o: { budget: number; window: number; beta: number; nLayers: number; promptLength: number },
): number[] {
  const bBar = o.budget - o.window;
  const L = o.promptLength;
  if (L < 2 * bBar) return new Array(o.nLayers).fill(bBar);
  let min = Math.floor(bBar / o.beta);
  let max = 2 * bBar - min;
  if (max >= L - o.window) {
    max = L - o.window;
    min = 2 * bBar - max;
  }
  const step = o.nLayers > 1 ? Math.floor((max - min) / (o.nLayers - 1)) : 0;
  return Array.from({ length: o.nLayers }, (_, l) => max - l * step);
}

/**
 * `D − ⌊ratio·D⌋`: key channels ThinK keeps (77 of 128 at ratio 0.4, not ⌊0.6·128⌋ = 76).
 *
 * @example
 * ```ts
 * import { keptChannels } from "./plan.ts";
 * console.log(keptChannels(128, 0.4), keptChannels(128, 0.5)); // 77 64
 * ```
 */
export function keptChannels(headDim: number, ratio: number): number {
  return headDim - Math.floor(ratio * headDim);
}

/**
 * Plans the compression of a prompt of `promptLength` tokens. `maxBatch` is the most tokens one
 * forward call appends after the prompt (KIVI sizes its residual ring with it; default 1).
 *
 * @example
 * ```ts
 * import { resolveKvOptions } from "./options.ts";
 * import { planCompression } from "./plan.ts";
 * const kv = resolveKvOptions({ eviction: { policy: "snapkv", budget: 512 }, think: { ratio: 0.4 } });
 * const plan = planCompression(kv, { nLayers: 1, headDim: 128 }, 2000, 2048);
 * console.log(plan.layers[0]); // selected 480, kept 512, thinTokens 480, nKeep 77, tailCapacity 32 + 48
 * ```
 */
export function planCompression(
  options: ResolvedKvOptions,
  shape: { nLayers: number; headDim: number },
  promptLength: number,
  capacity: number,
  maxBatch = 1,
): CompressionPlan {
  const L = promptLength;
  const D = shape.headDim;
  const e = options.eviction;
  const t = options.think;
  const q = options.quant;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new RangeError(
      `Cannot plan the KV cache: maxBatch must be an integer ≥ 1: current value is ${maxBatch}`,
    );
  }
  const evicting = e.policy !== "full" && L > e.budget;
  const scoring: Scoring = !evicting
    ? "none"
    : e.policy === "h2o"
    ? "accumulated"
    : e.policy === "streamingllm"
    ? "position"
    : "window";
  const window = e.policy === "streamingllm" ? e.budget - e.sinks : e.window;
  const pyramid = e.policy === "pyramidkv"
    ? pyramidBudgets({ budget: e.budget, window, beta: e.beta, nLayers: shape.nLayers, promptLength: L })
    : null;
  const nKeep = t ? keptChannels(D, t.ratio) : D;
  const thinStride = t?.pad ? Math.ceil(nKeep / 4) * 4 : nKeep;
  const layers: LayerPlan[] = [];
  for (let l = 0; l < shape.nLayers; l++) {
    const prefixLength = evicting ? L - window : 0;
    const selected = !evicting
      ? 0
      : e.policy === "streamingllm"
      ? e.sinks
      : pyramid
      ? pyramid[l]
      : e.budget - window;
    const kept = selected + (L - prefixLength);
    const thinTokens = t && !q ? kept - Math.min(t.recent, kept) : 0;
    let quant: LayerQuantPlan | null = null;
    if (q) {
      const R = q.residual, maxRows = kept + capacity - L;
      const keyRows = Math.floor(kept / R) * R;
      quant = {
        keyRows,
        valueRows: kept - Math.min(kept, R),
        maxRows,
        keyCapacity: Math.floor(maxRows / R) * R,
        valueCapacity: Math.max(0, maxRows - R),
        keyChannels: nKeep,
      };
    }
    layers.push({
      layer: l,
      evict: evicting,
      prefixLength,
      selected,
      kept,
      thinTokens,
      nKeep,
      thinStride,
      tailCapacity: quant
        ? Math.min(quant.maxRows, q!.residual + maxBatch)
        : kept - thinTokens + (capacity - L),
      channelTokens: quant && quant.keyRows > 0 ? quant.keyRows : kept,
      quant,
    });
  }
  const voteQueries = scoring === "window" ? Math.min(window, L) : 0;
  const thinkQueries = t ? Math.min(t.window, L) : 0;
  return {
    promptLength: L,
    capacity,
    headDim: D,
    scoring,
    pool: e.pool,
    kernel: e.kernel,
    obsQueries: Math.max(voteQueries, thinkQueries),
    voteQueries,
    thinkQueries,
    think: t !== null,
    quant: q ? { ...q, valueGroup: Math.min(q.group, D), maxBatch } : null,
    layers,
  };
}

/**
 * True when the options compress the cache at all (anything but a plain full f32 cache).
 *
 * @example
 * ```ts
 * import { resolveKvOptions } from "./options.ts";
 * import { compresses } from "./plan.ts";
 * console.log(compresses(resolveKvOptions({})), compresses(resolveKvOptions({ think: { ratio: 0 } }))); // false true
 * ```
 */
export function compresses(options: ResolvedKvOptions): boolean {
  return options.eviction.policy !== "full" || options.think !== null || options.quant !== null;
}
