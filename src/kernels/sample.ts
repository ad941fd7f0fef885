/**
 * Seeded temperature / top-k / top-p sampling on the GPU (`wgsl/sample.wgsl`): the drawn id lands in
 * a u32 slot that the next decode step's embedding lookup reads, so sampling needs no readback.
 * The random number for step s is a hash of (seed, s): the same seed gives the same tokens however
 * many steps are submitted at once.
 *
 * @module
 */

import type { Binding, Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import source from "../../wgsl/sample.wgsl" with { type: "text" };

const FILE = "sample.wgsl";
const WG = 256;
const MAX_TRIPS = 60000;

const SampleParams = params("SampleParams", {
  n: "u32",
  logitsOffset: "u32",
  outOffset: "u32",
  topK: "u32",
  temperature: "f32",
  topP: "f32",
  seed: "u32",
  step: "u32",
});

/** Arguments of {@linkcode SampleKernel.encode}. */
export interface SampleArgs {
  /** Logits row, f32 (read). */
  logits: Binding;
  /** Output ids, u32 (written at `outOffset`). */
  ids: Binding;
  /** Vocabulary size. */
  n: number;
  /** Softmax temperature, > 0. */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK: number;
  /** Nucleus mass in (0, 1]. */
  topP: number;
  /** Seed (u32). */
  seed: number;
  /** Decode step index: the random draw is a hash of (seed, step). */
  step: number;
  /** Element offset of the row in `logits`. */
  logitsOffset?: number;
  /** u32 offset of the output id in `ids`. */
  outOffset?: number;
}

/**
 * Per-invocation loop trips of the sampler for a vocabulary of `n` (must stay below llvmpipe's limit).
 *
 * @example
 * ```ts
 * import { sampleTripCount } from "./sample.ts";
 * console.log(sampleTripCount(128256) < 60000); // true
 * ```
 */
export function sampleTripCount(n: number): number {
  const per = Math.ceil(n / WG);
  const log = Math.log2(WG);
  return 67 * per + 64 * log + 2 * WG;
}

/**
 * The sampling kernel.
 *
 * @example
 * ```ts ignore
 * const sampler = await SampleKernel.create(gpu);
 * sampler.encode(pass, { logits, ids, n: vocab, temperature: 0.8, topK: 40, topP: 0.95, seed: 42, step: 0 });
 * ```
 */
export class SampleKernel {
  /** Invocations per workgroup (the reference mirrors this chunking). */
  static readonly workgroupSize: number = WG;
  readonly #gpu: Gpu;
  readonly #pipeline: GPUComputePipeline;

  private constructor(gpu: Gpu, pipeline: GPUComputePipeline) {
    this.#gpu = gpu;
    this.#pipeline = pipeline;
  }

  /** Compiles (or fetches from the cache) the pipeline. */
  static async create(gpu: Gpu): Promise<SampleKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { PARAMS: SampleParams.wgsl() });
    return new SampleKernel(
      gpu,
      await gpu.pipeline({ key: `sample:wg${WG}`, file: FILE, code, constants: { WG } }),
    );
  }

  /** Encodes one draw. */
  encode(pass: GPUComputePassEncoder, a: SampleArgs): void {
    if (!(a.temperature > 0)) {
      throw new RangeError(
        `Cannot sample on the GPU: temperature must be > 0 (use argmax for 0): current value is ${a.temperature}`,
      );
    }
    const trips = sampleTripCount(a.n);
    if (trips >= MAX_TRIPS) {
      throw new RangeError(
        `Cannot sample on the GPU: a vocabulary of ${a.n} needs ${trips} loop trips, over llvmpipe's limit`,
      );
    }
    const u = this.#gpu.uniform(SampleParams, {
      n: a.n,
      logitsOffset: a.logitsOffset ?? 0,
      outOffset: a.outOffset ?? 0,
      topK: a.topK,
      temperature: a.temperature,
      topP: a.topP,
      seed: a.seed >>> 0,
      step: a.step >>> 0,
    });
    this.#gpu.dispatch(pass, this.#pipeline, [u, a.logits, a.ids], 1);
  }
}
