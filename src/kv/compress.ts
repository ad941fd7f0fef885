/**
 * The one compression mechanism every policy shares, encoded at the end of a compressing prefill in the
 * same compute pass (no readback; buffer sizes come from the CPU-side {@linkcode CompressionPlan}).
 * Per layer:
 *
 *   score prefix tokens  (policy-specific: window votes + pooling | accumulated attention | position)
 *   -> top-k tokens      (kv_select: the `selected` best, ascending; then the window follows)
 *   -> channel scores    (ThinK: window queries² × kept keys², per KV head)
 *   -> top-k channels    (the same kv_select kernel: nKeep best, ascending)
 *   -> compact           (kept tokens and channels into [thin | tail])
 *
 * With KIVI ({@linkcode encodeLayerQuantization}) the last step becomes: compact the kept tokens at full
 * width into a scratch (only when tokens were evicted), quantize the first `T − T mod R` keys (at the
 * kept channels: prune, then quantize) and the first `T − min(T, R)` values into the quantized segment,
 * and copy the rest into the residual ring. ThinK then scores the channels on the keys it quantizes.
 *
 * The policies differ only in the first step.
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import type { CompactKernel } from "./kernels/compact.ts";
import type { QuantKernel } from "./kernels/quant.ts";
import type { ScoreKernel } from "./kernels/score.ts";
import type { SelectKernel } from "./kernels/select.ts";
import type { CompressionPlan, LayerPlan } from "./plan.ts";
import type { KvSegment } from "./segment.ts";

/** One layer's uncompressed prompt and what prefill observed, from `src/kv/cache.ts`. */
export interface StagedLayer {
  /** Prompt keys `[nKvHeads, L, D]`, post-RoPE (a full segment of capacity L). */
  stage: KvSegment;
  /** The last `plan.obsQueries` prompt queries `[nHeads, obsQueries, D]` (null when none are needed). */
  obs: GPUBuffer | null;
  /** Their `(M, Λ)` `[nHeads, obsQueries]` vec2 (null unless scoring is "window"). */
  obsStats: GPUBuffer | null;
  /** H2O accumulated attention `[nKvHeads, L]` (null unless scoring is "accumulated"). */
  acc: GPUBuffer | null;
}

/** The kernels compression uses. */
export interface CompressKernels {
  /** Token and channel scores. */
  score: ScoreKernel;
  /** Top-k. */
  select: SelectKernel;
  /** Compaction. */
  compact: CompactKernel;
  /** KIVI quantization (only for plans with `quant`). */
  quant?: QuantKernel;
}

/**
 * Scratch shared by all layers of one compression (dispatches run in order, so reuse is safe).
 *
 * @example
 * ```ts ignore
 * const scratch = new CompressScratch(gpu, plan, config.nKvHeads);
 * // ... encodeLayerCompression(...) for every layer, submit ...
 * scratch.dispose();
 * ```
 */
export class CompressScratch {
  /** Token scores `[nKvHeads, L]` f32. */
  readonly scores: GPUBuffer;
  /** Pooled token scores `[nKvHeads, L]` f32. */
  readonly pooled: GPUBuffer;
  /** Top-k flags `[nKvHeads, L]` u32. */
  readonly flags: GPUBuffer;
  /** Prefix tokens kept by score `[nKvHeads, maxSelected]` u32. */
  readonly tokens: GPUBuffer;
  /** Channel scores `[nKvHeads, D]` f32. */
  readonly channelScores: GPUBuffer;
  /** Unused thin storage for layers without a thin segment (each binding gets its own buffer). */
  readonly dummies: GPUBuffer[];
  /**
   * KIVI after eviction: the kept tokens compacted at full width, `[nKvHeads, maxKept, D]` keys and values
   * (the source of the prompt's quantization); null otherwise.
   */
  readonly kept: { keys: GPUBuffer; values: GPUBuffer; capacity: number } | null;
  readonly #gpu: Gpu;

  /** Allocates the scratch for a plan. */
  constructor(gpu: Gpu, plan: CompressionPlan, nKvHeads: number) {
    this.#gpu = gpu;
    const L = plan.promptLength;
    const maxSelected = Math.max(1, ...plan.layers.map((l) => l.selected));
    const f32 = (label: string, n: number) => gpu.createBuffer(`kv compress: ${label}`, n * 4);
    this.scores = f32("token scores", nKvHeads * L);
    this.pooled = f32("pooled scores", nKvHeads * L);
    this.flags = f32("top-k flags", nKvHeads * Math.max(L, plan.headDim));
    this.tokens = f32("kept tokens", nKvHeads * maxSelected);
    this.channelScores = f32("channel scores", nKvHeads * plan.headDim);
    this.dummies = [f32("no thin keys", 4), f32("no thin values", 4), f32("no channels", 4)]; // 16 bytes: a vec4 binding minimum
    const maxKept = Math.max(...plan.layers.map((l) => (l.evict ? l.kept : 0)));
    this.kept = plan.quant && maxKept > 0
      ? {
        keys: f32("kept keys", nKvHeads * maxKept * plan.headDim),
        values: f32("kept values", nKvHeads * maxKept * plan.headDim),
        capacity: maxKept,
      }
      : null;
  }

  /** Frees the scratch (after the submit that used it). */
  dispose(): void {
    for (
      const b of [
        this.scores,
        this.pooled,
        this.flags,
        this.tokens,
        this.channelScores,
        ...this.dummies,
        ...(this.kept ? [this.kept.keys, this.kept.values] : []),
      ]
    ) {
      this.#gpu.free(b);
    }
  }
}

/** Shape of the model's attention. */
export interface HeadShape {
  /** Query heads. */
  nHeads: number;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head. */
  headDim: number;
}

/**
 * Encodes the compression of one layer: from its staged prompt into `thin` (may be null when the plan
 * stores no thin tokens) and `tail`, whose `length` fields are set to the rows written.
 *
 * @example
 * ```ts ignore
 * encodeLayerCompression(pass, kernels, scratch, plan, plan.layers[l], shape, staged[l], { thin, tail });
 * ```
 */
export function encodeLayerCompression(
  pass: GPUComputePassEncoder,
  k: CompressKernels,
  scratch: CompressScratch,
  plan: CompressionPlan,
  layer: LayerPlan,
  shape: HeadShape,
  staged: StagedLayer,
  out: { thin: KvSegment | null; tail: KvSegment },
): void {
  const L = plan.promptLength;
  const { nKvHeads, headDim } = shape;
  const kStage = staged.stage.keys;
  const selection = encodeTokenSelection(pass, k, scratch, plan, layer, shape, staged);
  if (out.thin) encodeChannelSelection(pass, k, scratch, plan, layer, shape, staged, out.thin.channels!);

  // 3. compact kept tokens and channels into [thin | tail]
  const [noKeys, noValues, noChannels] = scratch.dummies;
  k.compact.compact(pass, {
    kStage,
    vStage: staged.stage.values,
    tokens: scratch.tokens,
    channels: out.thin?.channels ?? noChannels,
    kThin: out.thin?.keys ?? noKeys,
    vThin: out.thin?.values ?? noValues,
    kTail: out.tail.keys,
    vTail: out.tail.values,
    nKvHeads,
    headDim,
    capacity: L,
    thinTokens: out.thin ? layer.thinTokens : 0,
    nKeep: layer.nKeep,
    thinStride: layer.thinStride,
    tailCapacity: out.tail.capacity,
    ...selection,
  });
  if (out.thin) out.thin.length = layer.thinTokens;
  out.tail.length = layer.kept - (out.thin ? layer.thinTokens : 0);
}

/**
 * Encodes the KIVI compression of one layer (THINK.md §4.2–4.3): token selection and ThinK channels as
 * {@linkcode encodeLayerCompression}, then the first `plan.quant.keyRows` kept keys (at the kept
 * channels) and `valueRows` values into the quantized segment `quant`, and every later kept row into
 * the residual ring `tail`. Sets the segments' lengths.
 *
 * @example
 * ```ts ignore
 * encodeLayerQuantization(pass, kernels, scratch, plan, plan.layers[l], shape, staged[l], { quant, tail });
 * ```
 */
export function encodeLayerQuantization(
  pass: GPUComputePassEncoder,
  k: CompressKernels,
  scratch: CompressScratch,
  plan: CompressionPlan,
  layer: LayerPlan,
  shape: HeadShape,
  staged: StagedLayer,
  out: { quant: KvSegment; tail: KvSegment },
): void {
  const lq = layer.quant, q = out.quant.quant, quantKernel = k.quant;
  if (!lq || !q || !quantKernel || !out.tail.ring) {
    throw new Error(`InternalError: layer ${layer.layer} is quantized without a KIVI plan, kernel or ring`);
  }
  const { nKvHeads, headDim } = shape;
  const selection = encodeTokenSelection(pass, k, scratch, plan, layer, shape, staged);
  if (out.quant.channels) {
    encodeChannelSelection(pass, k, scratch, plan, layer, shape, staged, out.quant.channels);
  }
  // the kept tokens in order, full width: the stage itself without eviction, else compacted
  let src = { keys: staged.stage.keys, values: staged.stage.values, capacity: plan.promptLength };
  if (layer.evict) {
    const kept = scratch.kept!;
    const [noKeys, noValues, noChannels] = scratch.dummies;
    k.compact.compact(pass, {
      kStage: staged.stage.keys,
      vStage: staged.stage.values,
      tokens: scratch.tokens,
      channels: noChannels,
      kThin: noKeys,
      vThin: noValues,
      kTail: kept.keys,
      vTail: kept.values,
      nKvHeads,
      headDim,
      capacity: plan.promptLength,
      thinTokens: 0,
      nKeep: layer.nKeep,
      thinStride: layer.thinStride,
      tailCapacity: kept.capacity,
      ...selection,
    });
    src = kept;
  }
  quantKernel.quantKeys(pass, {
    src: { buffer: src.keys, capacity: src.capacity },
    dst: out.quant.keys,
    layout: q,
    channels: out.quant.channels,
    row0: 0,
    nRows: lq.keyRows,
  });
  quantKernel.quantValues(pass, {
    src: { buffer: src.values, capacity: src.capacity },
    dst: out.quant.keys, // one buffer holds keys and values
    layout: q,
    row0: 0,
    nRows: lq.valueRows,
  });
  // rows valueRows … T − 1 (a superset of the key residual keyRows … T − 1: valueRows ≤ keyRows)
  quantKernel.copyRows(pass, {
    kSrc: { buffer: src.keys, capacity: src.capacity },
    vSrc: src.values,
    kDst: out.tail.keys,
    vDst: out.tail.values,
    capacity: out.tail.capacity,
    nKvHeads,
    headDim,
    row0: lq.valueRows,
    nRows: layer.kept - lq.valueRows,
  });
  out.quant.length = lq.keyRows;
  q.valueLength = lq.valueRows;
  out.tail.length = layer.kept;
}

/** Where the kept tokens come from, for the compaction kernel. */
interface Selection {
  kept: number;
  selected: number;
  windowStart: number;
  selStride: number;
}

/** Step 1: scores the prefix tokens and keeps the `selected` best in `scratch.tokens`. */
function encodeTokenSelection(
  pass: GPUComputePassEncoder,
  k: CompressKernels,
  scratch: CompressScratch,
  plan: CompressionPlan,
  layer: LayerPlan,
  shape: HeadShape,
  staged: StagedLayer,
): Selection {
  const L = plan.promptLength;
  const { nHeads, nKvHeads, headDim } = shape;
  const kStage = staged.stage.keys;
  const n = layer.prefixLength;

  // 1. score the prefix tokens (the only policy-specific step), then keep the `selected` best
  if (layer.evict && layer.selected > 0) {
    let scores = scratch.scores;
    switch (plan.scoring) {
      case "window":
        k.score.windowVotes(pass, {
          obs: staged.obs!,
          stats: staged.obsStats!,
          kStage,
          scores: scratch.scores,
          n,
          capacity: L,
          obsRows: plan.obsQueries,
          votes: plan.voteQueries,
          scoreStride: L,
          nHeads,
          nKvHeads,
          headDim,
        });
        if (plan.pool !== "none") {
          k.score.pool(pass, {
            src: scratch.scores,
            dst: scratch.pooled,
            rows: nKvHeads,
            n,
            stride: L,
            kind: plan.pool,
            kernel: plan.kernel,
          });
          scores = scratch.pooled;
        }
        break;
      case "accumulated":
        scores = staged.acc!;
        break;
      case "position":
        k.score.positionScores(pass, { dst: scratch.scores, rows: nKvHeads, n, stride: L });
        break;
      case "none":
        throw new Error(`InternalError: layer ${layer.layer} evicts but the plan has no scoring`);
    }
    k.select.topk(pass, {
      scores,
      flags: scratch.flags,
      out: scratch.tokens,
      rows: nKvHeads,
      n,
      k: layer.selected,
      scoreStride: L,
    });
  }
  return {
    kept: layer.kept,
    selected: layer.evict ? layer.selected : 0,
    windowStart: layer.evict ? layer.prefixLength : 0,
    selStride: Math.max(1, layer.selected),
  };
}

/**
 * Step 2, ThinK: scores the key channels on the first `layer.channelTokens` kept tokens, keeps the
 * nKeep best (ascending) in `channels`.
 */
function encodeChannelSelection(
  pass: GPUComputePassEncoder,
  k: CompressKernels,
  scratch: CompressScratch,
  plan: CompressionPlan,
  layer: LayerPlan,
  shape: HeadShape,
  staged: StagedLayer,
  channels: GPUBuffer,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  k.score.channelScores(pass, {
    obs: staged.obs!,
    kStage: staged.stage.keys,
    tokens: scratch.tokens,
    scores: scratch.channelScores,
    capacity: plan.promptLength,
    obsRows: plan.obsQueries,
    queries: plan.thinkQueries,
    nHeads,
    nKvHeads,
    headDim,
    kept: layer.channelTokens,
    selected: layer.evict ? Math.min(layer.selected, layer.channelTokens) : 0,
    windowStart: layer.evict ? layer.prefixLength : 0,
    selStride: Math.max(1, layer.selected),
  });
  k.select.topk(pass, {
    scores: scratch.channelScores,
    flags: scratch.flags,
    out: channels,
    rows: nKvHeads,
    n: headDim,
    k: layer.nKeep,
    scoreStride: headDim,
  });
}
