/**
 * What a compressing prefill records inside the forward pass (`wgsl/kv_observe.wgsl`): the last prompt
 * queries of each layer, their softmax statistics (merged from the attention's chunk partials), and
 * for H2O the attention every key receives, summed over all prompt queries. No readback.
 *
 * @module
 */

import type { Binding, Gpu } from "../../gpu/gpu.ts";
import { params } from "../../gpu/params.ts";
import { expandWgsl } from "../../gpu/wgsl.ts";
import source from "../../../wgsl/kv_observe.wgsl" with { type: "text" };
import { checkTrips, WG } from "./common.ts";

const FILE = "kv_observe.wgsl";

const CaptureParams = params("CaptureParams", {
  count: "u32",
  nHeads: "u32",
  headDim: "u32",
  t0: "u32",
  dst0: "u32",
  obsRows: "u32",
  qStride: "u32",
  qOffset: "u32",
});

const StatsParams = params("StatsParams", {
  count: "u32",
  nHeads: "u32",
  t0: "u32",
  dst0: "u32",
  statsRows: "u32",
  pos0: "u32",
  nChunks: "u32",
  chunk: "u32",
});

const AccumParams = params("AccumParams", {
  nTokens: "u32",
  nHeads: "u32",
  nKvHeads: "u32",
  headDim: "u32",
  row0: "u32",
  capacity: "u32",
  qStride: "u32",
  statsRows: "u32",
  accStride: "u32",
  scale: "f32",
});

/** Arguments of {@linkcode ObserveKernel.captureQueries}. */
export interface CaptureArgs {
  /** Query rows `[nTokens, qStride]` of the batch from `qOffset` (read). */
  q: Binding;
  /** Captured queries `[nHeads, obsRows, headDim]` (written at rows dst0 …). */
  obs: Binding;
  /** Batch rows to copy. */
  count: number;
  /** First batch row. */
  t0: number;
  /** First destination row. */
  dst0: number;
  /** Rows per head in `obs`. */
  obsRows: number;
  /** Query heads. */
  nHeads: number;
  /** Channels per head (multiple of 4). */
  headDim: number;
  /** Elements between q rows; default `nHeads·headDim`. */
  qStride?: number;
  /** Element offset of row 0 in q. */
  qOffset?: number;
}

/** Arguments of {@linkcode ObserveKernel.queryStats}. */
export interface StatsArgs {
  /** Attention chunk partials `(m, l)` of the call that just ran (AttentionScratch.ml, read). */
  ml: Binding;
  /** Output `(M, Λ)` per query `[nHeads, statsRows]` vec2 (written at rows dst0 …). */
  stats: Binding;
  /** Query rows to merge. */
  count: number;
  /** First query row of the attention call. */
  t0: number;
  /** First destination row. */
  dst0: number;
  /** Rows per head in `stats`. */
  statsRows: number;
  /** Query heads. */
  nHeads: number;
  /** Key index of the attention call's query 0 (its `pos0`). */
  pos0: number;
  /** Chunks of the attention call (`AttentionKernel.chunks(pos0 + nTokens)`). */
  nChunks: number;
  /** The attention kernel's chunk. */
  chunk: number;
}

/** Arguments of {@linkcode ObserveKernel.accumulate}. */
export interface AccumulateArgs {
  /** Query rows `[nTokens, qStride]` of the batch, offset 0 (read). */
  q: Binding;
  /** Prompt keys `[nKvHeads, capacity, headDim]` holding rows 0 … row0 + nTokens − 1 (read). */
  kStage: Binding;
  /** `(M, Λ)` of the batch's queries `[nHeads, statsRows]` vec2, from {@linkcode ObserveKernel.queryStats} (read). */
  stats: Binding;
  /** Accumulated attention `[nKvHeads, accStride]` f32 (added to). */
  acc: Binding;
  /** Query rows. */
  nTokens: number;
  /** Row (= position) of query 0. */
  row0: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head. */
  headDim: number;
  /** Rows per head of `kStage`. */
  capacity: number;
  /** Rows per head of `stats`. */
  statsRows: number;
  /** Elements per row of `acc`. */
  accStride: number;
  /** Elements between q rows; default `nHeads·headDim`. */
  qStride?: number;
}

/**
 * The observation kernels of `wgsl/kv_observe.wgsl`.
 *
 * @example
 * ```ts ignore
 * const observe = await ObserveKernel.create(gpu);
 * observe.captureQueries(pass, { q, obs, count: 4, t0: 60, dst0: 0, obsRows: 32, nHeads: 8, headDim: 64 });
 * ```
 */
export class ObserveKernel {
  readonly #gpu: Gpu;
  readonly #capture: GPUComputePipeline;
  readonly #stats: GPUComputePipeline;
  readonly #accumulate: GPUComputePipeline;

  private constructor(gpu: Gpu, pipelines: GPUComputePipeline[]) {
    this.#gpu = gpu;
    [this.#capture, this.#stats, this.#accumulate] = pipelines;
  }

  /** Compiles (or fetches from the cache) the three pipelines. */
  static async create(gpu: Gpu): Promise<ObserveKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, {
      CAPTURE_PARAMS: CaptureParams.wgsl(),
      STATS_PARAMS: StatsParams.wgsl(),
      ACCUM_PARAMS: AccumParams.wgsl(),
    });
    const build = (entryPoint: string) =>
      gpu.pipeline({
        key: `kv_observe:${entryPoint}:wg${WG}`,
        file: FILE,
        code,
        entryPoint,
        constants: { WG },
      });
    return new ObserveKernel(
      gpu,
      await Promise.all([build("capture_queries"), build("query_stats"), build("accumulate")]),
    );
  }

  /** Copies `count` query rows (all heads) into the observation buffer. */
  captureQueries(pass: GPUComputePassEncoder, a: CaptureArgs): void {
    if (a.count === 0) return;
    const u = this.#gpu.uniform(CaptureParams, {
      count: a.count,
      nHeads: a.nHeads,
      headDim: a.headDim,
      t0: a.t0,
      dst0: a.dst0,
      obsRows: a.obsRows,
      qStride: a.qStride ?? a.nHeads * a.headDim,
      qOffset: a.qOffset ?? 0,
    });
    const n = a.count * a.nHeads * (a.headDim / 4);
    this.#gpu.dispatch(pass, this.#capture, [u, a.q, a.obs], Math.ceil(n / WG));
  }

  /** Merges the chunk partials of `count` queries into their softmax max and normaliser. */
  queryStats(pass: GPUComputePassEncoder, a: StatsArgs): void {
    if (a.count === 0) return;
    checkTrips("query stats", 2 * a.nChunks, `${a.nChunks} chunks`);
    const u = this.#gpu.uniform(StatsParams, {
      count: a.count,
      nHeads: a.nHeads,
      t0: a.t0,
      dst0: a.dst0,
      statsRows: a.statsRows,
      pos0: a.pos0,
      nChunks: a.nChunks,
      chunk: a.chunk,
    });
    this.#gpu.dispatch(pass, this.#stats, [u, a.ml, a.stats], Math.ceil((a.count * a.nHeads) / WG));
  }

  /** H2O: adds the attention each key received from the batch's queries. */
  accumulate(pass: GPUComputePassEncoder, a: AccumulateArgs): void {
    const group = a.nHeads / a.nKvHeads;
    checkTrips(
      "H2O accumulation",
      a.nTokens * group * (a.headDim / 4 + 1),
      `${a.nTokens} tokens per batch, ${group} query heads per KV head, headDim ${a.headDim}`,
    );
    const u = this.#gpu.uniform(AccumParams, {
      nTokens: a.nTokens,
      nHeads: a.nHeads,
      nKvHeads: a.nKvHeads,
      headDim: a.headDim,
      row0: a.row0,
      capacity: a.capacity,
      qStride: a.qStride ?? a.nHeads * a.headDim,
      statsRows: a.statsRows,
      accStride: a.accStride,
      scale: 1 / Math.sqrt(a.headDim),
    });
    const n = a.nKvHeads * (a.row0 + a.nTokens);
    this.#gpu.dispatch(pass, this.#accumulate, [u, a.q, a.kStage, a.stats, a.acc], Math.ceil(n / WG));
  }
}
