/**
 * Token and channel scores for the selection at the end of a compressing prefill
 * (`wgsl/kv_score.wgsl`): SnapKV window votes, pooling, StreamingLLM positions, ThinK channel scores.
 *
 * @module
 */

import type { Binding, Gpu } from "../../gpu/gpu.ts";
import { params } from "../../gpu/params.ts";
import { expandWgsl } from "../../gpu/wgsl.ts";
import source from "../../../wgsl/kv_score.wgsl" with { type: "text" };
import { checkTrips, WG } from "./common.ts";

const FILE = "kv_score.wgsl";

const ScoreParams = params("ScoreParams", {
  n: "u32",
  nHeads: "u32",
  nKvHeads: "u32",
  headDim: "u32",
  capacity: "u32",
  obsRows: "u32",
  votes: "u32",
  scoreStride: "u32",
  scale: "f32",
  kernel: "u32",
  mode: "u32",
  selected: "u32",
  windowStart: "u32",
  selStride: "u32",
});

/** Head shape shared by the score kernels. */
export interface ScoreShape {
  /** Query heads. */
  nHeads: number;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head (multiple of 4). */
  headDim: number;
}

/** Arguments of {@linkcode ScoreKernel.windowVotes}. */
export interface VotesArgs extends ScoreShape {
  /** Captured queries `[nHeads, obsRows, headDim]` (read). */
  obs: Binding;
  /** Their `(M, Λ)` `[nHeads, obsRows]` vec2 (read). */
  stats: Binding;
  /** Prompt keys `[nKvHeads, capacity, headDim]` (read). */
  kStage: Binding;
  /** Votes `[nKvHeads, scoreStride]` (written: the first n). */
  scores: Binding;
  /** Prefix tokens scored. */
  n: number;
  /** Rows per head of `kStage`. */
  capacity: number;
  /** Rows per head of `obs` and `stats`. */
  obsRows: number;
  /** The last `votes` captured queries vote. */
  votes: number;
  /** Elements per row of `scores`. */
  scoreStride: number;
}

/** Arguments of {@linkcode ScoreKernel.channelScores}. */
export interface ChannelScoreArgs extends ScoreShape {
  /** Captured queries `[nHeads, obsRows, headDim]` (read). */
  obs: Binding;
  /** Prompt keys `[nKvHeads, capacity, headDim]` (read). */
  kStage: Binding;
  /** Prefix tokens kept by score `[nKvHeads, selStride]` u32 (read; any buffer when `selected` is 0). */
  tokens: Binding;
  /** Channel scores `[nKvHeads, headDim]` (written). */
  scores: Binding;
  /** Kept prompt tokens T. */
  kept: number;
  /** Kept tokens that come from `tokens`; the rest are `windowStart …`. */
  selected: number;
  /** First window position. */
  windowStart: number;
  /** Elements per row of `tokens`. */
  selStride: number;
  /** Rows per head of `kStage`. */
  capacity: number;
  /** Rows per head of `obs`. */
  obsRows: number;
  /** The last `queries` captured queries score the channels. */
  queries: number;
}

/**
 * The score kernels of `wgsl/kv_score.wgsl`.
 *
 * @example
 * ```ts ignore
 * const score = await ScoreKernel.create(gpu);
 * score.pool(pass, { src: votes, dst: pooled, rows: 4, n: 300, stride: 300, kind: "max", kernel: 7 });
 * ```
 */
export class ScoreKernel {
  readonly #gpu: Gpu;
  readonly #votes: GPUComputePipeline;
  readonly #pool: GPUComputePipeline;
  readonly #position: GPUComputePipeline;
  readonly #channels: GPUComputePipeline;

  private constructor(gpu: Gpu, pipelines: GPUComputePipeline[]) {
    this.#gpu = gpu;
    [this.#votes, this.#pool, this.#position, this.#channels] = pipelines;
  }

  /** Compiles (or fetches from the cache) the four pipelines. */
  static async create(gpu: Gpu): Promise<ScoreKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { SCORE_PARAMS: ScoreParams.wgsl() });
    const build = (entryPoint: string) =>
      gpu.pipeline({
        key: `kv_score:${entryPoint}:wg${WG}`,
        file: FILE,
        code,
        entryPoint,
        constants: { WG },
      });
    return new ScoreKernel(
      gpu,
      await Promise.all([
        build("window_votes"),
        build("pool_scores"),
        build("position_scores"),
        build("channel_scores"),
      ]),
    );
  }

  #uniform(values: Partial<Record<keyof typeof ScoreParams.fields, number>>): GPUBufferBinding {
    return this.#gpu.uniform(ScoreParams, {
      n: 0,
      nHeads: 0,
      nKvHeads: 0,
      headDim: 0,
      capacity: 0,
      obsRows: 0,
      votes: 0,
      scoreStride: 0,
      scale: 0,
      kernel: 0,
      mode: 0,
      selected: 0,
      windowStart: 0,
      selStride: 0,
      ...values,
    });
  }

  /** SnapKV votes of the last `votes` captured queries for prefix tokens `[0, n)`. */
  windowVotes(pass: GPUComputePassEncoder, a: VotesArgs): void {
    const group = a.nHeads / a.nKvHeads;
    checkTrips(
      "window votes",
      group * a.votes * (a.headDim / 4 + 1),
      `${group}·${a.votes} queries, headDim ${a.headDim}`,
    );
    const u = this.#uniform({
      n: a.n,
      nHeads: a.nHeads,
      nKvHeads: a.nKvHeads,
      headDim: a.headDim,
      capacity: a.capacity,
      obsRows: a.obsRows,
      votes: a.votes,
      scoreStride: a.scoreStride,
      scale: 1 / Math.sqrt(a.headDim),
    });
    this.#gpu.dispatch(
      pass,
      this.#votes,
      [u, a.obs, a.kStage, a.stats, a.scores],
      Math.ceil((a.nKvHeads * a.n) / WG),
    );
  }

  /** Pools each row of `src` into `dst` (stride 1, padding ⌊kernel/2⌋; max ignores pads, avg divides by kernel). */
  pool(
    pass: GPUComputePassEncoder,
    a: {
      src: Binding;
      dst: Binding;
      rows: number;
      n: number;
      stride: number;
      kind: "max" | "avg" | "none";
      kernel: number;
    },
  ): void {
    checkTrips("pooling", a.kernel, `kernel ${a.kernel}`);
    const mode = { none: 0, max: 1, avg: 2 }[a.kind];
    const u = this.#uniform({ n: a.n, nKvHeads: a.rows, scoreStride: a.stride, kernel: a.kernel, mode });
    this.#gpu.dispatch(pass, this.#pool, [u, a.src, a.dst], Math.ceil((a.rows * a.n) / WG));
  }

  /** StreamingLLM scores `−s` for `s < n` (the first tokens rank highest). */
  positionScores(
    pass: GPUComputePassEncoder,
    a: { dst: Binding; rows: number; n: number; stride: number },
  ): void {
    const u = this.#uniform({ n: a.n, nKvHeads: a.rows, scoreStride: a.stride });
    this.#gpu.dispatch(pass, this.#position, [u, a.dst], Math.ceil((a.rows * a.n) / WG));
  }

  /** ThinK channel scores over the kept tokens. */
  channelScores(pass: GPUComputePassEncoder, a: ChannelScoreArgs): void {
    const group = a.nHeads / a.nKvHeads;
    checkTrips(
      "channel scores",
      group * a.queries + a.kept,
      `${group}·${a.queries} queries, ${a.kept} kept tokens`,
    );
    const u = this.#uniform({
      n: a.kept,
      nHeads: a.nHeads,
      nKvHeads: a.nKvHeads,
      headDim: a.headDim,
      capacity: a.capacity,
      obsRows: a.obsRows,
      votes: a.queries,
      scoreStride: a.headDim,
      selected: a.selected,
      windowStart: a.windowStart,
      selStride: a.selStride,
    });
    this.#gpu.dispatch(
      pass,
      this.#channels,
      [u, a.obs, a.kStage, a.tokens, a.scores],
      Math.ceil((a.nKvHeads * a.headDim) / WG),
    );
  }
}
