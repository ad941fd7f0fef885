/**
 * RMSNorm on the GPU (`wgsl/rmsnorm.wgsl`): one invocation per row, each streaming its own row.
 *
 * @module
 */

import type { Binding, Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import source from "../../wgsl/rmsnorm.wgsl" with { type: "text" };

const FILE = "rmsnorm.wgsl";
const WG = 64;
/** llvmpipe stops an invocation after 65535 loop iterations; stay well below. */
const MAX_TRIPS = 60000;

// The uniform struct (binding 0), declared once: its WGSL text is spliced into the shader.
const NormParams = params("NormParams", {
  rows: "u32",
  cols: "u32",
  xOffset: "u32",
  wOffset: "u32",
  outOffset: "u32",
  eps: "f32",
});

/** Arguments of {@linkcode RmsNormKernel.encode}; offsets are in f32 elements. */
export interface RmsNormArgs {
  /** Input rows `[rows, cols]` (read). */
  x: Binding;
  /** Weight vector `[cols]` (read). */
  w: Binding;
  /** Output rows `[rows, cols]` (written; must not alias `x`). */
  out: Binding;
  /** Number of rows (tokens). */
  rows: number;
  /** Row width. */
  cols: number;
  /** `llama.attention.layer_norm_rms_epsilon`. */
  eps: number;
  /** Element offset of row 0 in `x`. */
  xOffset?: number;
  /** Element offset of `w`. */
  wOffset?: number;
  /** Element offset of row 0 in `out`. */
  outOffset?: number;
}

/**
 * `out[t,:] = x[t,:] / sqrt(mean(x[t,:]²) + eps) · w`.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { RmsNormKernel } from "./rmsnorm.ts";
 * const gpu = await Gpu.create();
 * const norm = await RmsNormKernel.create(gpu);
 * const x = gpu.upload("x", new Float32Array([3, 4])), w = gpu.upload("w", new Float32Array([1, 1]));
 * const out = gpu.createBuffer("out", 8);
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * norm.encode(pass, { x, w, out, rows: 1, cols: 2, eps: 1e-5 });
 * pass.end();
 * gpu.submit(enc);
 * console.log(new Float32Array(await gpu.read(out, 0, 8)));
 * ```
 */
export class RmsNormKernel {
  readonly #gpu: Gpu;
  readonly #pipeline: GPUComputePipeline;

  private constructor(gpu: Gpu, pipeline: GPUComputePipeline) {
    this.#gpu = gpu;
    this.#pipeline = pipeline;
  }

  /** Compiles (or fetches from the cache) the pipeline. */
  static async create(gpu: Gpu): Promise<RmsNormKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { PARAMS: NormParams.wgsl() });
    const pipeline = await gpu.pipeline({ key: `rmsnorm:wg${WG}`, file: FILE, code, constants: { WG } });
    return new RmsNormKernel(gpu, pipeline);
  }

  /** Encodes one dispatch normalising `rows` rows. */
  encode(pass: GPUComputePassEncoder, a: RmsNormArgs): void {
    const trips = Math.ceil(a.cols / 4) * 2 + 6;
    if (trips >= MAX_TRIPS) {
      throw new RangeError(
        `Cannot encode rmsnorm: ${trips} loop trips per invocation would exceed llvmpipe's limit: cols is ${a.cols}`,
      );
    }
    const u = this.#gpu.uniform(NormParams, {
      rows: a.rows,
      cols: a.cols,
      xOffset: a.xOffset ?? 0,
      wOffset: a.wOffset ?? 0,
      outOffset: a.outOffset ?? 0,
      eps: a.eps,
    });
    this.#gpu.dispatch(pass, this.#pipeline, [u, a.x, a.w, a.out], Math.ceil(a.rows / WG));
  }
}
