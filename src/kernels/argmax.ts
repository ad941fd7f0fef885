/**
 * Greedy sampling on the GPU (`wgsl/argmax.wgsl`): argmax of a logits row into a u32, so decode reads
 * back 4 bytes per token (or none, when the id feeds the next step's embedding lookup directly).
 *
 * @module
 */

import type { Binding, Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import source from "../../wgsl/argmax.wgsl" with { type: "text" };

const FILE = "argmax.wgsl";
const WG = 256; // a power of two
/** llvmpipe stops an invocation after 65535 loop iterations; stay well below. */
const MAX_TRIPS = 60000;

// The uniform struct (binding 0), declared once: its WGSL text is spliced into the shader.
const ArgmaxParams = params("ArgmaxParams", {
  n: "u32",
  rows: "u32",
  logitsOffset: "u32",
  rowStride: "u32",
  outOffset: "u32",
});

/** Arguments of {@linkcode ArgmaxKernel.encode}; offsets are in elements. */
export interface ArgmaxArgs {
  /** Logits `[rows, rowStride]` f32 (read). */
  logits: Binding;
  /** Output ids, u32 (written at `outOffset … outOffset + rows − 1`). */
  ids: Binding;
  /** Values per row (vocabulary size). */
  n: number;
  /** Rows; default 1. */
  rows?: number;
  /** Element offset of row 0 in `logits`. */
  logitsOffset?: number;
  /** Elements between rows; default `n`. */
  rowStride?: number;
  /** Element (u32) offset of the first id in `ids`. */
  outOffset?: number;
}

/**
 * `ids[outOffset + r] = argmax(logits row r)`, ties → lowest index; one workgroup per row.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { ArgmaxKernel } from "./argmax.ts";
 * const gpu = await Gpu.create();
 * const argmax = await ArgmaxKernel.create(gpu);
 * const logits = gpu.upload("logits", new Float32Array([0.1, 3, 3, -1]));
 * const ids = gpu.createBuffer("ids", 4);
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * argmax.encode(pass, { logits, ids, n: 4 });
 * pass.end();
 * gpu.submit(enc);
 * console.log(new Uint32Array(await gpu.read(ids, 0, 4))[0]); // 1
 * ```
 */
export class ArgmaxKernel {
  readonly #gpu: Gpu;
  readonly #pipeline: GPUComputePipeline;

  private constructor(gpu: Gpu, pipeline: GPUComputePipeline) {
    this.#gpu = gpu;
    this.#pipeline = pipeline;
  }

  /** Compiles (or fetches from the cache) the pipeline. */
  static async create(gpu: Gpu): Promise<ArgmaxKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { PARAMS: ArgmaxParams.wgsl() });
    const pipeline = await gpu.pipeline({ key: `argmax:wg${WG}`, file: FILE, code, constants: { WG } });
    return new ArgmaxKernel(gpu, pipeline);
  }

  /** Encodes one workgroup per row. */
  encode(pass: GPUComputePassEncoder, a: ArgmaxArgs): void {
    const trips = Math.ceil(a.n / WG) + Math.log2(WG);
    if (trips >= MAX_TRIPS) {
      throw new RangeError(
        `Cannot encode argmax: ${trips} loop trips per invocation exceed llvmpipe's limit: n is ${a.n}`,
      );
    }
    const rows = a.rows ?? 1;
    const u = this.#gpu.uniform(ArgmaxParams, {
      n: a.n,
      rows,
      logitsOffset: a.logitsOffset ?? 0,
      rowStride: a.rowStride ?? a.n,
      outOffset: a.outOffset ?? 0,
    });
    this.#gpu.dispatch(pass, this.#pipeline, [u, a.logits, a.ids], rows);
  }
}
