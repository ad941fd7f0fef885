/**
 * Deterministic top-k per row on the GPU (`wgsl/kv_select.wgsl`): the k largest scores, ties broken
 * by index (the lower index ranks higher), returned as ascending indices. Tokens and ThinK channels
 * use the same kernel.
 *
 * @module
 */

import type { Binding, Gpu } from "../../gpu/gpu.ts";
import { params } from "../../gpu/params.ts";
import { expandWgsl } from "../../gpu/wgsl.ts";
import source from "../../../wgsl/kv_select.wgsl" with { type: "text" };
import { checkTrips, WG } from "./common.ts";

const FILE = "kv_select.wgsl";

const SelectParams = params("SelectParams", { rows: "u32", n: "u32", k: "u32", scoreStride: "u32" });

/** Arguments of {@linkcode SelectKernel.topk}. */
export interface TopkArgs {
  /** Scores `[rows, scoreStride]` f32; the first n of each row are ranked (read). */
  scores: Binding;
  /** Scratch `[rows, n]` u32 (overwritten). */
  flags: Binding;
  /** Output `[rows, k]` u32: the kept indices, ascending (written). */
  out: Binding;
  /** Rows (KV heads). */
  rows: number;
  /** Candidates per row. */
  n: number;
  /** Kept per row (≤ n). */
  k: number;
  /** Elements per row of `scores`. */
  scoreStride: number;
}

/**
 * The top-k kernel of `wgsl/kv_select.wgsl`.
 *
 * @example
 * ```ts ignore
 * const select = await SelectKernel.create(gpu);
 * select.topk(pass, { scores, flags, out, rows: 4, n: 480, k: 96, scoreStride: 480 });
 * ```
 */
export class SelectKernel {
  readonly #gpu: Gpu;
  readonly #flags: GPUComputePipeline;
  readonly #indices: GPUComputePipeline;

  private constructor(gpu: Gpu, flags: GPUComputePipeline, indices: GPUComputePipeline) {
    this.#gpu = gpu;
    this.#flags = flags;
    this.#indices = indices;
  }

  /** Compiles (or fetches from the cache) the two pipelines. */
  static async create(gpu: Gpu): Promise<SelectKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { SELECT_PARAMS: SelectParams.wgsl() });
    const build = (entryPoint: string) =>
      gpu.pipeline({
        key: `kv_select:${entryPoint}:wg${WG}`,
        file: FILE,
        code,
        entryPoint,
        constants: { WG },
      });
    const [flags, indices] = await Promise.all([build("topk_flags"), build("topk_indices")]);
    return new SelectKernel(gpu, flags, indices);
  }

  /** Encodes the selection of the k best of n per row (two dispatches). */
  topk(pass: GPUComputePassEncoder, a: TopkArgs): void {
    if (a.k > a.n) {
      throw new RangeError(`Cannot encode top-k: k must be ≤ n (${a.n}): current value is ${a.k}`);
    }
    if (a.k === 0 || a.rows === 0) return;
    checkTrips("top-k", a.n, `${a.n} candidates per row`);
    const u = this.#gpu.uniform(SelectParams, { rows: a.rows, n: a.n, k: a.k, scoreStride: a.scoreStride });
    const groups = Math.ceil((a.rows * a.n) / WG);
    this.#gpu.dispatch(pass, this.#flags, [u, a.scores, a.flags], groups);
    this.#gpu.dispatch(pass, this.#indices, [u, a.flags, a.out], groups);
  }
}
