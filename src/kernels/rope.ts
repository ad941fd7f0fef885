/**
 * Rotary position embedding on the GPU (`wgsl/rope.wgsl`), GGUF "normal" mode (adjacent pairs), in
 * place, with llama.cpp's f32 angle recurrence.
 *
 * @module
 */

import type { Binding, Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import { ropeThetaScale } from "../ref/ops.ts";
import source from "../../wgsl/rope.wgsl" with { type: "text" };
import ropeAngleWgsl from "../../wgsl/rope_angle.wgsl" with { type: "text" };

const FILE = "rope.wgsl";
const WG = 64;

// The uniform struct (binding 0), declared once: its WGSL text is spliced into the shader.
const RopeParams = params("RopeParams", {
  nTokens: "u32",
  nHeads: "u32",
  headDim: "u32",
  ropeDim: "u32",
  rowStride: "u32",
  offset: "u32",
  pos0: "u32",
  thetaScale: "f32",
  freqScale: "f32",
  hasFactors: "u32",
  factorsOffset: "u32",
});

/** Arguments of {@linkcode RopeKernel.encode}; offsets and strides are in f32 elements. */
export interface RopeArgs {
  /** Rows `[nTokens, rowStride]` rotated in place (q, k, or a fused qkv buffer). */
  x: Binding;
  /** Tokens (rows). */
  nTokens: number;
  /** Heads per row to rotate, starting at `offset` (nHeads + nKvHeads rotates q and k of a fused row at once). */
  nHeads: number;
  /** Channels per head. */
  headDim: number;
  /** Rotated channels per head (`llama.rope.dimension_count`); default `headDim`. */
  ropeDim?: number;
  /** Absolute position of row 0. */
  pos0: number;
  /** `llama.rope.freq_base`. */
  freqBase: number;
  /** Linear scaling factor multiplied into every angle; default 1. */
  freqScale?: number;
  /** `rope_freqs` (Llama 3.1+): `ropeDim/2` f32 divisors; omit when the model has none. */
  freqFactors?: Binding;
  /** Element offset of the factors in `freqFactors`. */
  factorsOffset?: number;
  /** Element offset of row 0, head 0 in `x`. */
  offset?: number;
  /** Elements between rows; default `nHeads · headDim`. */
  rowStride?: number;
}

/**
 * Rotates pairs (2i, 2i+1), i < ropeDim/2, of every head by `θ_i = (pos0+t)·base^(−2i/ropeDim) / ff_i`.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { RopeKernel } from "./rope.ts";
 * const gpu = await Gpu.create();
 * const rope = await RopeKernel.create(gpu);
 * const q = gpu.upload("q", new Float32Array([1, 0, 1, 0]));
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * rope.encode(pass, { x: q, nTokens: 1, nHeads: 1, headDim: 4, pos0: 7, freqBase: 10000 });
 * pass.end();
 * gpu.submit(enc);
 * console.log(new Float32Array(await gpu.read(q, 0, 16)));
 * ```
 */
export class RopeKernel {
  readonly #gpu: Gpu;
  readonly #pipeline: GPUComputePipeline;
  readonly #noFactors: GPUBuffer;

  private constructor(gpu: Gpu, pipeline: GPUComputePipeline, noFactors: GPUBuffer) {
    this.#gpu = gpu;
    this.#pipeline = pipeline;
    this.#noFactors = noFactors;
  }

  /** Compiles (or fetches from the cache) the pipeline. */
  static async create(gpu: Gpu): Promise<RopeKernel> {
    const code = expandWgsl(FILE, { [FILE]: source, "rope_angle.wgsl": ropeAngleWgsl }, {
      PARAMS: RopeParams.wgsl(),
    });
    const pipeline = await gpu.pipeline({ key: `rope:normal:wg${WG}`, file: FILE, code, constants: { WG } });
    return new RopeKernel(gpu, pipeline, gpu.upload("rope: no freq factors", new Float32Array([1])));
  }

  /** Encodes one dispatch rotating `nTokens × nHeads` heads in place. */
  encode(pass: GPUComputePassEncoder, a: RopeArgs): void {
    const ropeDim = a.ropeDim ?? a.headDim;
    if (ropeDim % 2 !== 0 || ropeDim > a.headDim) {
      throw new RangeError(
        `Cannot encode rope: ropeDim must be even and ≤ headDim ${a.headDim}: current value is ${ropeDim}`,
      );
    }
    const u = this.#gpu.uniform(RopeParams, {
      nTokens: a.nTokens,
      nHeads: a.nHeads,
      headDim: a.headDim,
      ropeDim,
      rowStride: a.rowStride ?? a.nHeads * a.headDim,
      offset: a.offset ?? 0,
      pos0: a.pos0,
      thetaScale: ropeThetaScale(a.freqBase, ropeDim),
      freqScale: a.freqScale ?? 1,
      hasFactors: a.freqFactors ? 1 : 0,
      factorsOffset: a.factorsOffset ?? 0,
    });
    const bindings = [u, a.x, a.freqFactors ?? this.#noFactors];
    this.#gpu.dispatch(pass, this.#pipeline, bindings, Math.ceil((a.nTokens * a.nHeads) / WG));
  }
}
