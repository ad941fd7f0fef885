/**
 * Compaction of the kept prompt tokens and key channels into a compressed layer's thin and tail
 * segments (`wgsl/kv_compact.wgsl`).
 *
 * @module
 */

import type { Binding, Gpu } from "../../gpu/gpu.ts";
import { params } from "../../gpu/params.ts";
import { expandWgsl } from "../../gpu/wgsl.ts";
import source from "../../../wgsl/kv_compact.wgsl" with { type: "text" };
import { checkTrips, WG } from "./common.ts";

const FILE = "kv_compact.wgsl";

const CompactParams = params("CompactParams", {
  nKvHeads: "u32",
  headDim: "u32",
  capacity: "u32",
  kept: "u32",
  selected: "u32",
  windowStart: "u32",
  selStride: "u32",
  thinTokens: "u32",
  nKeep: "u32",
  thinStride: "u32",
  tailCapacity: "u32",
});

/** Arguments of {@linkcode CompactKernel.compact}; see `wgsl/kv_compact.wgsl` for the layouts. */
export interface CompactArgs {
  /** Prompt keys `[nKvHeads, capacity, headDim]` (read). */
  kStage: Binding;
  /** Prompt values `[nKvHeads, capacity, headDim]` (read). */
  vStage: Binding;
  /** Prefix tokens kept by score `[nKvHeads, selStride]` u32 (read). */
  tokens: Binding;
  /** Kept channels `[nKvHeads, nKeep]` u32 (read). */
  channels: Binding;
  /** Thin keys `[nKvHeads, thinTokens, thinStride]` (written). */
  kThin: Binding;
  /** Thin values `[nKvHeads, thinTokens, headDim]` (written). */
  vThin: Binding;
  /** Tail keys `[nKvHeads, tailCapacity, headDim]` (rows 0 … kept − thinTokens − 1 written). */
  kTail: Binding;
  /** Tail values `[nKvHeads, tailCapacity, headDim]` (same rows written). */
  vTail: Binding;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head (multiple of 4). */
  headDim: number;
  /** Rows per head of the stage buffers. */
  capacity: number;
  /** Kept tokens T. */
  kept: number;
  /** Kept tokens taken from `tokens`. */
  selected: number;
  /** First window position. */
  windowStart: number;
  /** Elements per row of `tokens`. */
  selStride: number;
  /** Kept tokens stored thin. */
  thinTokens: number;
  /** Kept channels. */
  nKeep: number;
  /** f32 per thin key row. */
  thinStride: number;
  /** Rows per head of the tail. */
  tailCapacity: number;
}

/**
 * The compaction kernel.
 *
 * @example
 * ```ts ignore
 * const compact = await CompactKernel.create(gpu);
 * compact.compact(pass, { kStage, vStage, tokens, channels, kThin, vThin, kTail, vTail, ...shape });
 * ```
 */
export class CompactKernel {
  readonly #gpu: Gpu;
  readonly #pipeline: GPUComputePipeline;

  private constructor(gpu: Gpu, pipeline: GPUComputePipeline) {
    this.#gpu = gpu;
    this.#pipeline = pipeline;
  }

  /** Compiles (or fetches from the cache) the pipeline. */
  static async create(gpu: Gpu): Promise<CompactKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { COMPACT_PARAMS: CompactParams.wgsl() });
    const pipeline = await gpu.pipeline({
      key: `kv_compact:wg${WG}`,
      file: FILE,
      code,
      entryPoint: "compact",
      constants: { WG },
    });
    return new CompactKernel(gpu, pipeline);
  }

  /** Encodes the copy of every kept (token, channel) into the segments. */
  compact(pass: GPUComputePassEncoder, a: CompactArgs): void {
    if (a.kept - a.thinTokens > a.tailCapacity) {
      throw new RangeError(
        `Cannot compact the KV cache: ${
          a.kept - a.thinTokens
        } full-width rows exceed the tail capacity ${a.tailCapacity}`,
      );
    }
    checkTrips("compaction", Math.max(a.thinStride, a.headDim) + a.headDim / 4, `headDim ${a.headDim}`);
    const { kStage, vStage, tokens, channels, kThin, vThin, kTail, vTail, ...shape } = a;
    const u = this.#gpu.uniform(CompactParams, shape);
    this.#gpu.dispatch(
      pass,
      this.#pipeline,
      [u, kStage, vStage, tokens, channels, kThin, vThin, kTail, vTail],
      Math.ceil((a.nKvHeads * a.kept) / WG),
    );
  }
}
