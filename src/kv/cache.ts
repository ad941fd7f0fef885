/**
 * The KV cache behind the forward pass, for every policy: `full`, token eviction (SnapKV, PyramidKV,
 * StreamingLLM, H2O), ThinK key-channel pruning and KIVI quantization, composable as eviction → ThinK →
 * KIVI.
 *
 * Life of one sequence (the Model drives it):
 * 1. {@linkcode KvCache.begin}(L): a new prompt. A `full` cache just rewinds. A compressing cache
 *    allocates the *stage*: an uncompressed full segment of L rows per layer, plus what the selection
 *    needs (the last prompt queries, their softmax statistics, H2O's accumulated attention).
 * 2. Prefill batches: per layer {@linkcode KvCache.append} (k, v rows), {@linkcode KvCache.attend}
 *    (prefill attention always sees the uncompressed prompt), {@linkcode KvCache.observe}; then
 *    {@linkcode KvCache.advance}(n) once the batch's layers are encoded.
 * 3. {@linkcode KvCache.compress} in the last prefill batch's pass: allocates the compressed segments
 *    (sizes from the CPU-side plan), encodes selection and compaction, swaps them in. After the submit,
 *    {@linkcode KvCache.release} frees the stage. No readback anywhere.
 * 4. Decode / teacher-forced batches append full-width rows to the tail and attend `[thin | tail]`
 *    (KIVI: `[quant | ring]`, then flush, see below).
 *
 * Layout of a layer after compression (D = head dim, T = kept prompt tokens, r = min(recent, T)):
 *   thin   keys [nKvHeads, T − r, thinStride] f32 (nKeep kept channels, ascending), values
 *          [nKvHeads, T − r, D], channels [nKvHeads, nKeep] u32          (only with ThinK and T > r)
 *   tail   keys / values [nKvHeads, r + (capacity − L), D]: the last r kept prompt tokens, then every
 *          generated token at full width
 * Rows are cache slots, not positions: generated tokens are rotated at their absolute position
 * (L + t), which the Model tracks, never at the cache fill.
 *
 * With KIVI (`quant`; THINK.md §4.2–4.3) a layer is `[quant | tail]` instead, keys and values with their
 * own boundaries Kq ≥ Vq over the layer's rows 0 … n − 1 (n = the fill, `tail.length`):
 *   quant  key codes of rows [0, Kq) (thin with ThinK: pruned with the prefill mask, then quantized),
 *          value codes of rows [0, Vq), with (scale, min) pairs, all in one buffer; capacities ⌊N/R⌋·R
 *          and N − R rows, N = T + capacity − L the most rows the layer will hold (`QuantLayout`)
 *   tail   a ring of min(N, R + maxBatch) f32 full-width rows: row i in slot i mod capacity; it holds
 *          the key residual [Kq, n) and the value residual [Vq, n)
 * After the prompt Kq = T − T mod R, Vq = T − min(T, R). Every forward call after it appends its rows
 * to the ring, attends, then flushes inside the same pass: while n − Kq ≥ R the next R keys are
 * quantized (keys flush in blocks of R), and values down to the last R (one per decode step). The
 * schedule is a function of n alone, known on the CPU: several decode steps can be encoded back to back
 * in one command encoder without a readback.
 *
 * @module
 */

import type { AttentionKernel, AttentionScratch } from "../kernels/attention.ts";
import type { Gpu } from "../gpu/gpu.ts";
import type { LlamaConfig } from "../model/config.ts";
import {
  CompressScratch,
  encodeLayerCompression,
  encodeLayerQuantization,
  type StagedLayer,
} from "./compress.ts";
import { CompactKernel } from "./kernels/compact.ts";
import { ObserveKernel } from "./kernels/observe.ts";
import { ScoreKernel } from "./kernels/score.ts";
import { QuantKernel } from "./kernels/quant.ts";
import { SelectKernel } from "./kernels/select.ts";
import { describeKvOptions, type KvOptions, type ResolvedKvOptions, resolveKvOptions } from "./options.ts";
import { compresses, type CompressionPlan, planCompression } from "./plan.ts";
import {
  allocQuantSegment,
  allocSegment,
  freeSegment,
  type KvSegment,
  quantLayout,
  type ScaleFormat,
  segmentBytes,
} from "./segment.ts";

/** One layer: segments in token order, `[thin | tail]` or `[quant | tail]`. */
export interface KvLayer {
  /** Thin segment (ThinK without KIVI), or null. */
  thin: KvSegment | null;
  /** Quantized segment (KIVI), or null. */
  quant: KvSegment | null;
  /**
   * Full-width segment: the whole cache for `full`, else the last prompt tokens and generated ones;
   * with KIVI the residual ring (its `length` is the layer's fill).
   */
  tail: KvSegment;
}

/** Bytes one layer allocated, beside what an uncompressed cache of the same capacity takes. */
export interface KvLayerStats {
  /** Layer index. */
  layer: number;
  /** Bytes allocated for keys (thin + tail). */
  keys: number;
  /** Bytes allocated for values. */
  values: number;
  /** Bytes of the kept-channel index lists. */
  index: number;
  /** KIVI: bytes of the key and value codes (0 otherwise). */
  codes: number;
  /** KIVI: bytes of the scales. */
  scales: number;
  /** KIVI: bytes of the mins. */
  mins: number;
  /** KIVI: bytes of the full-precision residual ring, keys and values (0 otherwise). */
  residual: number;
  /** Bytes an uncompressed f32 cache takes for this layer's keys (= its values). */
  fullKeys: number;
  /** Kept prompt tokens per KV head (0 before a prompt). */
  promptTokens: number;
  /** Key channels stored for the thin tokens (D without ThinK). */
  keyChannels: number;
}

/** KV-cache memory report: bytes of real GPU buffers, and what an uncompressed f32 cache would take. */
export interface KvStats {
  /** The configuration, e.g. `"snapkv(B=512,w=32,k=7,max) + think(0.4) + kivi(K2V2,G=32,R=128)"`. */
  policy: string;
  /** Positions the cache holds (the context length). */
  capacity: number;
  /** Bytes allocated for keys, values and channel lists, all layers. */
  bytes: number;
  /** Bytes allocated for keys, all layers. */
  keyBytes: number;
  /** Bytes allocated for values, all layers. */
  valueBytes: number;
  /** Bytes of the kept-channel lists, all layers. */
  indexBytes: number;
  /** KIVI: bytes of codes, all layers (part of keyBytes + valueBytes; 0 without KIVI). */
  codeBytes: number;
  /** KIVI: bytes of scales, all layers. */
  scaleBytes: number;
  /** KIVI: bytes of mins, all layers. */
  minBytes: number;
  /** KIVI: bytes of the full-precision residual rings, all layers. */
  residualBytes: number;
  /** Bytes an uncompressed f32 cache of the same capacity takes. */
  fullBytes: number;
  /** Per layer. */
  layers: KvLayerStats[];
}

/** A batch as the cache verbs see it. */
export interface KvBatch {
  /** Tokens in the batch. */
  n: number;
}

/** The kernels a compressing cache uses besides attention. */
interface KvKernels {
  observe: ObserveKernel;
  score: ScoreKernel;
  select: SelectKernel;
  compact: CompactKernel;
  quant?: QuantKernel;
}

/** Sizes and formats of {@linkcode KvCache.create} that come from the model, not the KV options. */
export interface KvCacheLimits {
  /**
   * Most tokens one forward call appends after the prompt (the model's batch size; 1 for decode only):
   * KIVI's residual ring holds R + maxBatch rows. Default 64.
   */
  maxBatch?: number;
  /** KIVI pair format; default f16 when the device has `shader-f16`, else f32. */
  scales?: ScaleFormat;
}

/** Where the cache is in a sequence. */
export type KvPhase = "empty" | "prefill" | "compressed";

/**
 * The KV cache. Create with {@linkcode KvCache.create}.
 *
 * @example
 * ```ts ignore
 * const cache = await KvCache.create(gpu, config, 2048, attention, { eviction: { policy: "snapkv", budget: 512 } });
 * const kivi = await KvCache.create(gpu, config, 2048, attention, { quant: { keyBits: 2, valueBits: 2 } }, { maxBatch: 64 });
 * cache.begin(promptLength);
 * // ... forward passes call cache.append / attend / observe, the last prefill batch cache.compress
 * console.log(cache.stats().bytes);
 * ```
 */
export class KvCache {
  /** The validated options. */
  readonly options: ResolvedKvOptions;
  /** Positions (context length). */
  readonly capacity: number;
  /** The plan of the current prompt (null before the first prompt and for a plain full cache). */
  plan: CompressionPlan | null = null;
  /** Per layer, the segments attention reads now. */
  layers: KvLayer[];
  readonly #gpu: Gpu;
  readonly #config: LlamaConfig;
  readonly #attention: AttentionKernel;
  readonly #kernels: KvKernels;
  readonly #maxBatch: number;
  readonly #scales: ScaleFormat;
  #phase: KvPhase = "empty";
  #staged: StagedLayer[] | null = null;
  #batchStats: GPUBuffer | null = null;
  #retired: (() => void)[] = [];

  private constructor(
    gpu: Gpu,
    config: LlamaConfig,
    capacity: number,
    attention: AttentionKernel,
    kernels: KvKernels,
    options: ResolvedKvOptions,
    limits: Required<KvCacheLimits>,
  ) {
    this.#gpu = gpu;
    this.#config = config;
    this.capacity = capacity;
    this.#attention = attention;
    this.#kernels = kernels;
    this.options = options;
    this.#maxBatch = limits.maxBatch;
    this.#scales = limits.scales;
    this.layers = compresses(options) ? [] : this.#allocFull(capacity);
  }

  /** Validates `options` (a RangeError names the bad setting), compiles the kernels, allocates a full cache. */
  static async create(
    gpu: Gpu,
    config: LlamaConfig,
    capacity: number,
    attention: AttentionKernel,
    options: KvOptions = {},
    limits: KvCacheLimits = {},
  ): Promise<KvCache> {
    const resolved = resolveKvOptions(options);
    if (config.headDim % 4 !== 0) {
      throw new RangeError(
        `Cannot create the KV cache: headDim must be a multiple of 4: current value is ${config.headDim}`,
      );
    }
    const maxBatch = limits.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new RangeError(
        `Cannot create the KV cache: maxBatch must be an integer ≥ 1: current value is ${maxBatch}`,
      );
    }
    const scales = limits.scales ?? (gpu.hasF16 ? "f16" : "f32");
    const q = resolved.quant;
    if (q) {
      const valueGroup = Math.min(q.group, config.headDim), perWord = 32 / q.valueBits;
      if (config.headDim % valueGroup !== 0) {
        throw new RangeError(
          `Cannot configure KIVI quantization: group must divide headDim ${config.headDim} (values are grouped ` +
            `by channel): current value is ${q.group}`,
        );
      }
      if (valueGroup > perWord && valueGroup % perWord !== 0) {
        throw new RangeError(
          `Cannot configure KIVI quantization: a value group (min(group, headDim) = ${valueGroup} channels) must ` +
            `fill whole ${q.valueBits}-bit code words (a multiple of ${perWord} channels, or at most ${perWord}): ` +
            `current headDim is ${config.headDim}`,
        );
      }
      await attention.prepareQuant({ ...q, valueGroup, scales });
    }
    const [observe, score, select, compact, quant] = await Promise.all([
      ObserveKernel.create(gpu),
      ScoreKernel.create(gpu),
      SelectKernel.create(gpu),
      CompactKernel.create(gpu),
      q ? QuantKernel.create(gpu, { keyBits: q.keyBits, valueBits: q.valueBits, scales }) : undefined,
    ]);
    return new KvCache(
      gpu,
      config,
      capacity,
      attention,
      { observe, score, select, compact, quant },
      resolved,
      {
        maxBatch,
        scales,
      },
    );
  }

  /** True when this cache compresses prompts (any policy but a plain full cache). */
  get compressing(): boolean {
    return compresses(this.options);
  }

  /** Where the cache is in the current sequence. */
  get phase(): KvPhase {
    return this.#phase;
  }

  /**
   * Rows in use in layer 0's tail: where its next keys and values go. (After PyramidKV the layers
   * keep different token counts; each layer appends at its own fill.)
   */
  get tailLength(): number {
    return this.layers[0]?.tail.length ?? 0;
  }

  /**
   * Starts a sequence whose prompt has `promptLength` tokens. A full cache rewinds; a compressing
   * cache frees the previous sequence's segments and allocates the stage.
   */
  begin(promptLength: number): void {
    if (!this.compressing) {
      for (const l of this.layers) l.tail.length = 0;
      this.#phase = "prefill";
      return;
    }
    this.#freeLayers();
    this.release();
    const c = this.#config;
    const plan = planCompression(this.options, c, promptLength, this.capacity, this.#maxBatch);
    this.plan = plan;
    const L = promptLength;
    this.#staged = [];
    this.layers = [];
    for (let l = 0; l < c.nLayers; l++) {
      const stage = allocSegment(this.#gpu, `stage ${l}`, {
        kind: "full",
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        capacity: L,
        keyChannels: c.headDim,
        keyStride: c.headDim,
      });
      const f32 = (label: string, n: number) =>
        n > 0 ? this.#gpu.createBuffer(`kv stage ${l}: ${label}`, n * 4) : null;
      this.#staged.push({
        stage,
        obs: f32("window queries", c.nHeads * plan.obsQueries * c.headDim),
        obsStats: plan.scoring === "window"
          ? f32("window query stats", c.nHeads * plan.obsQueries * 2)
          : null,
        acc: plan.scoring === "accumulated" ? f32("accumulated attention", c.nKvHeads * L) : null,
      });
      this.layers.push({ thin: null, quant: null, tail: stage });
    }
    this.#batchStats = plan.scoring === "accumulated"
      ? this.#gpu.createBuffer("kv: batch query stats", c.nHeads * L * 8)
      : null;
    this.#phase = "prefill";
  }

  /**
   * Rewinds a full cache to `rows` (teacher-forced evaluation may restart at any position). A
   * compressed cache cannot rewind: it throws unless `rows` is its current fill.
   */
  seek(rows: number): void {
    if (!this.compressing) {
      for (const l of this.layers) l.tail.length = rows;
      return;
    }
    if (rows !== this.tailLength) {
      throw new RangeError(
        `Cannot continue a compressed KV cache at row ${rows}: it holds ${this.tailLength} tail rows and cannot rewind; ` +
          "start a new sequence at position 0",
      );
    }
  }

  /** Encodes the write of a batch's k and v rows `[n, nKvHeads·D]` into layer `l`'s tail (KIVI: its ring). */
  append(pass: GPUComputePassEncoder, l: number, k: GPUBuffer, v: GPUBuffer, batch: KvBatch): void {
    const tail = this.layers[l].tail;
    const c = this.#config;
    if (tail.ring && batch.n > this.#maxBatch) {
      throw new RangeError(
        `Cannot append ${batch.n} rows to the KIVI cache at once: its residual ring takes at most maxBatch ` +
          `(${this.#maxBatch}) rows per forward call; use smaller batches`,
      );
    }
    this.#attention.storeKv(pass, {
      k,
      v,
      kCache: tail.keys,
      vCache: tail.values,
      nTokens: batch.n,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      capacity: tail.capacity,
      pos0: tail.length,
      ring: tail.ring,
    });
  }

  /**
   * Encodes causal attention of a batch's queries over layer `l`: `[thin | tail]` (or KIVI's
   * `[quant | ring]`), one softmax. KIVI then flushes in the same pass: the residual rows the batch
   * pushed past R are quantized (see the module doc); this is the only per-step work of the cache.
   */
  attend(
    pass: GPUComputePassEncoder,
    l: number,
    a: { q: GPUBuffer; out: GPUBuffer; scratch: AttentionScratch; n: number },
  ): void {
    const { thin, quant, tail } = this.layers[l];
    const c = this.#config;
    if (quant) {
      this.#attention.encodeQuant(pass, {
        q: a.q,
        out: a.out,
        scratch: a.scratch,
        nTokens: a.n,
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        pos0: tail.length,
        quant: {
          layout: quant.quant!,
          buffer: quant.keys,
          channels: quant.channels,
          keyLength: quant.length,
          valueLength: quant.quant!.valueLength,
        },
        ring: { keys: tail.keys, values: tail.values, capacity: tail.capacity },
      });
      return this.#flush(pass, quant, tail, tail.length + a.n);
    }
    const args = {
      q: a.q,
      kCache: tail.keys,
      vCache: tail.values,
      out: a.out,
      scratch: a.scratch,
      nTokens: a.n,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      capacity: tail.capacity,
      pos0: tail.length,
    };
    if (!thin) return this.#attention.encode(pass, args);
    this.#attention.encodeSegments(pass, {
      ...args,
      thin: {
        keys: thin.keys,
        values: thin.values,
        channels: thin.channels!,
        length: thin.length,
        capacity: thin.capacity,
        nKeep: thin.keyChannels,
        stride: thin.keyStride,
      },
    });
  }

  /**
   * During a compressing prefill, records what the selection needs from layer `l` after its attention:
   * the last prompt queries (and their softmax statistics for SnapKV / PyramidKV), and for H2O the
   * attention each key received. A no-op otherwise.
   */
  observe(
    pass: GPUComputePassEncoder,
    l: number,
    a: { q: GPUBuffer; scratch: AttentionScratch; n: number },
  ): void {
    const plan = this.plan;
    if (this.#phase !== "prefill" || !plan || !this.#staged) return;
    const c = this.#config;
    const st = this.#staged[l];
    const row0 = this.tailLength;
    // the partials' layout of the attention call that just ran
    const chunkInfo = {
      pos0: row0,
      nChunks: this.#attention.chunks(row0 + a.n),
      chunk: this.#attention.chunk,
    };
    const first = plan.promptLength - plan.obsQueries;
    const lo = Math.max(row0, first), hi = Math.min(row0 + a.n, plan.promptLength);
    if (st.obs && lo < hi) {
      const window = { count: hi - lo, t0: lo - row0, dst0: lo - first, nHeads: c.nHeads };
      this.#kernels.observe.captureQueries(pass, {
        q: a.q,
        obs: st.obs,
        obsRows: plan.obsQueries,
        headDim: c.headDim,
        ...window,
      });
      if (st.obsStats) {
        this.#kernels.observe.queryStats(pass, {
          ml: a.scratch.ml,
          stats: st.obsStats,
          statsRows: plan.obsQueries,
          ...window,
          ...chunkInfo,
        });
      }
    }
    if (st.acc && this.#batchStats) {
      const statsRows = plan.promptLength;
      this.#kernels.observe.queryStats(pass, {
        ml: a.scratch.ml,
        stats: this.#batchStats,
        count: a.n,
        t0: 0,
        dst0: 0,
        statsRows,
        nHeads: c.nHeads,
        ...chunkInfo,
      });
      this.#kernels.observe.accumulate(pass, {
        q: a.q,
        kStage: st.stage.keys,
        stats: this.#batchStats,
        acc: st.acc,
        nTokens: a.n,
        row0,
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        capacity: plan.promptLength,
        statsRows,
        accStride: plan.promptLength,
      });
    }
  }

  /**
   * KIVI flush of one layer whose fill reaches `rows` (THINK.md §4.2): keys in whole blocks of R while
   * R or more wait in the residual, values down to the last R. Encoded, never read back.
   */
  #flush(pass: GPUComputePassEncoder, quant: KvSegment, ring: KvSegment, rows: number): void {
    const q = quant.quant!, R = this.options.quant!.residual, kernel = this.#kernels.quant!;
    const src = { buffer: ring.keys, capacity: ring.capacity };
    let k1 = quant.length;
    while (rows - k1 >= R) k1 += R;
    if (k1 > quant.length) {
      kernel.quantKeys(pass, {
        src,
        dst: quant.keys,
        layout: q,
        channels: quant.channels,
        row0: quant.length,
        nRows: k1 - quant.length,
      });
      quant.length = k1;
    }
    const v1 = Math.max(q.valueLength, rows - R);
    if (v1 > q.valueLength) {
      kernel.quantValues(pass, {
        src: { buffer: ring.values, capacity: ring.capacity },
        dst: quant.keys,
        layout: q,
        row0: q.valueLength,
        nRows: v1 - q.valueLength,
      });
      q.valueLength = v1;
    }
  }

  /** Marks `n` more rows as filled in every layer (call once the batch's layers are encoded). */
  advance(n: number): void {
    for (const l of this.layers) l.tail.length += n;
  }

  /**
   * Encodes the compression of the whole prompt (every layer) at the end of a compressing prefill and
   * swaps in the compressed segments. The stage stays allocated until {@linkcode KvCache.release},
   * which the caller runs after submitting `pass`'s encoder. A no-op for a plain full cache.
   */
  compress(pass: GPUComputePassEncoder): void {
    const plan = this.plan;
    if (!this.compressing || !plan || !this.#staged) return;
    if (this.tailLength !== plan.promptLength) {
      throw new Error(
        `InternalError: compress() after ${this.tailLength} of ${plan.promptLength} prompt rows`,
      );
    }
    const c = this.#config;
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
    const scratch = new CompressScratch(this.#gpu, plan, c.nKvHeads);
    const layers: KvLayer[] = [];
    for (const lp of plan.layers) {
      if (lp.quant) {
        const q = plan.quant!;
        const layout = quantLayout({
          ...q,
          scales: this.#scales,
          nKvHeads: c.nKvHeads,
          headDim: c.headDim,
          keyChannels: lp.quant.keyChannels,
          keyCapacity: lp.quant.keyCapacity,
          valueCapacity: lp.quant.valueCapacity,
        });
        const quant = allocQuantSegment(this.#gpu, `layer ${lp.layer} quant`, layout, plan.think);
        const tail = allocSegment(this.#gpu, `layer ${lp.layer} residual`, {
          kind: "full",
          nKvHeads: c.nKvHeads,
          headDim: c.headDim,
          capacity: lp.tailCapacity,
          keyChannels: c.headDim,
          keyStride: c.headDim,
          ring: true,
        });
        encodeLayerQuantization(pass, this.#kernels, scratch, plan, lp, shape, this.#staged[lp.layer], {
          quant,
          tail,
        });
        layers.push({ thin: null, quant, tail });
        continue;
      }
      const thin = lp.thinTokens > 0
        ? allocSegment(this.#gpu, `layer ${lp.layer} thin`, {
          kind: "thin",
          nKvHeads: c.nKvHeads,
          headDim: c.headDim,
          capacity: lp.thinTokens,
          keyChannels: lp.nKeep,
          keyStride: lp.thinStride,
        })
        : null;
      const tail = allocSegment(this.#gpu, `layer ${lp.layer} tail`, {
        kind: "full",
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        capacity: lp.tailCapacity,
        keyChannels: c.headDim,
        keyStride: c.headDim,
      });
      encodeLayerCompression(pass, this.#kernels, scratch, plan, lp, shape, this.#staged[lp.layer], {
        thin,
        tail,
      });
      layers.push({ thin, quant: null, tail });
    }
    const staged = this.#staged, batchStats = this.#batchStats;
    this.#retired.push(() => {
      scratch.dispose();
      this.#freeStage(staged, batchStats);
    });
    this.#staged = null;
    this.#batchStats = null;
    this.layers = layers;
    this.#phase = "compressed";
  }

  /** Frees the stage and compression scratch of the last {@linkcode KvCache.compress} (after its submit). */
  release(): void {
    for (const free of this.#retired.splice(0)) free();
  }

  /** Bytes allocated now, per layer and in total, beside the uncompressed size. */
  stats(): KvStats {
    const c = this.#config;
    const fullKeys = c.nKvHeads * this.capacity * c.headDim * 4;
    const layers: KvLayerStats[] = this.layers.map(({ thin, quant, tail }, layer) => {
      const t = segmentBytes(tail);
      const s = thin ?? quant ? segmentBytes((thin ?? quant)!) : null;
      const lp = this.#phase === "compressed" ? this.plan?.layers[layer] : undefined;
      return {
        layer,
        keys: t.keys + (s?.keys ?? 0),
        values: t.values + (s?.values ?? 0),
        index: t.index + (s?.index ?? 0),
        codes: s?.codes ?? 0,
        scales: s?.scales ?? 0,
        mins: s?.mins ?? 0,
        residual: quant ? t.keys + t.values : 0,
        fullKeys,
        promptTokens: lp?.kept ?? this.plan?.promptLength ?? 0,
        keyChannels: (thin ?? quant)?.keyChannels ?? c.headDim,
      };
    });
    const sum = (f: (l: KvLayerStats) => number) => layers.reduce((a, l) => a + f(l), 0);
    const keyBytes = sum((l) => l.keys), valueBytes = sum((l) => l.values), indexBytes = sum((l) => l.index);
    return {
      policy: describeKvOptions(this.options),
      capacity: this.capacity,
      bytes: keyBytes + valueBytes + indexBytes,
      keyBytes,
      valueBytes,
      indexBytes,
      codeBytes: sum((l) => l.codes),
      scaleBytes: sum((l) => l.scales),
      minBytes: sum((l) => l.mins),
      residualBytes: sum((l) => l.residual),
      fullBytes: 2 * c.nLayers * fullKeys,
      layers,
    };
  }

  /** Frees every buffer of the cache. */
  dispose(): void {
    this.release();
    if (this.compressing) return this.#freeLayers();
    for (const { tail } of this.layers) freeSegment(this.#gpu, tail);
    this.layers = [];
  }

  #allocFull(capacity: number): KvLayer[] {
    const c = this.#config;
    return Array.from({ length: c.nLayers }, (_, l) => ({
      thin: null,
      quant: null,
      tail: allocSegment(this.#gpu, `layer ${l}`, {
        kind: "full",
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        capacity,
        keyChannels: c.headDim,
        keyStride: c.headDim,
      }),
    }));
  }

  #freeStage(staged: StagedLayer[], batchStats: GPUBuffer | null): void {
    for (const s of staged) {
      freeSegment(this.#gpu, s.stage);
      for (const b of [s.obs, s.obsStats, s.acc]) if (b) this.#gpu.free(b);
    }
    if (batchStats) this.#gpu.free(batchStats);
  }

  #freeLayers(): void {
    if (!this.compressing) return;
    if (this.#staged) {
      this.#freeStage(this.#staged, this.#batchStats);
      this.#staged = null;
      this.#batchStats = null;
    } else {
      for (const { thin, quant, tail } of this.layers) {
        if (thin) freeSegment(this.#gpu, thin);
        if (quant) freeSegment(this.#gpu, quant);
        freeSegment(this.#gpu, tail);
      }
    }
    this.layers = [];
    this.#phase = "empty";
  }
}
