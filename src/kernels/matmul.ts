/**
 * The matrix product of every weight type: `out[t, row] = Σ_c W[row, c] · x[t, c]`, for decode
 * (nTokens = 1) and batched prefill alike. Kernel: `wgsl/matmul.wgsl` with the weight type's
 * `wgsl/weights_<type>.wgsl` reader included as `weights.wgsl`.
 *
 * Bindings: 0 uniform `MatmulParams` { rows, cols, nTokens, xOffset, outOffset, outStride }, 1 weight chunk, 2 x (f32), 3 out (f32).
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import { type GpuWeight, weightReader } from "../model/gpu_weight.ts";
import { TYPE_INFO, typeInfo } from "../model/quant.ts";
import matmulWgsl from "../../wgsl/matmul.wgsl" with { type: "text" };

/**
 * Uniforms of `matmul.wgsl`. Element offsets: x is read from `xOffset` (a multiple of 4), out[t, r]
 * (r local to the chunk) is written at `outOffset + t·outStride + r`; `rows` is the chunk's row count.
 */
const MatmulParams = params("MatmulParams", {
  rows: "u32",
  cols: "u32",
  nTokens: "u32",
  xOffset: "u32",
  outOffset: "u32",
  outStride: "u32",
});

/** Largest per-invocation loop trip count we dispatch (llvmpipe kills invocations at 65 535). */
export const LOOP_BUDGET = 60000;

/** The largest token block `matmul.wgsl` supports (its `MAX_TB`). */
export const MAX_TOKEN_BLOCK = 16;

/**
 * Loop iterations one invocation runs for a row of `cols` and `tokenBlock` tokens.
 *
 * @example
 * ```ts
 * import { matmulTripCount } from "./matmul.ts";
 * console.log(matmulTripCount(14336, 4)); // 17928
 * ```
 */
export function matmulTripCount(cols: number, tokenBlock: number): number {
  return (cols / 4) * (tokenBlock + 1) + 2 * tokenBlock;
}

/** Options for {@linkcode MatmulKernel.create}. */
export interface MatmulKernelOptions {
  /** Tokens per invocation for nTokens > 1 (1..16); default 8 (measured best on llvmpipe). Decode always uses 1. */
  tokenBlock?: number;
  /** Workgroup size; default 64. */
  workgroupSize?: number;
  /** Weight types (GGML ids) to compile up front; default all supported. See {@linkcode MatmulKernel.prepare}. */
  types?: readonly number[];
}

/** Per-call options for {@linkcode MatmulKernel.encode}. All are f32 element offsets/strides. */
export interface MatmulEncodeOptions {
  /** Where x[0, 0] is in `x`; a multiple of 4. Default 0. */
  xOffset?: number;
  /** Where out[0, 0] is in `out`. Default 0. */
  outOffset?: number;
  /** Elements between out[t, 0] and out[t+1, 0]; default `w.rows`. */
  outStride?: number;
}

/**
 * Encodes matrix products for any {@linkcode GpuWeight}: one dispatch per row chunk.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { MatmulKernel } from "./matmul.ts";
 * const gpu = await Gpu.create();
 * const mm = await MatmulKernel.create(gpu);
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * mm.encode(pass, out, x, weight, 1); // out[0, :] = weight · x[0, :]
 * pass.end();
 * gpu.submit(enc);
 * ```
 */
export class MatmulKernel {
  /** Tokens per invocation when nTokens > 1. */
  readonly tokenBlock: number;
  /** Workgroup size. */
  readonly workgroupSize: number;
  #gpu: Gpu;
  #pipelines = new Map<string, GPUComputePipeline>();

  private constructor(gpu: Gpu, opts: MatmulKernelOptions) {
    const tb = opts.tokenBlock ?? 8;
    if (!Number.isInteger(tb) || tb < 1 || tb > MAX_TOKEN_BLOCK) {
      throw new RangeError(
        `Cannot create MatmulKernel: tokenBlock must be in 1..${MAX_TOKEN_BLOCK}: current value is ${tb}`,
      );
    }
    this.#gpu = gpu;
    this.tokenBlock = tb;
    this.workgroupSize = opts.workgroupSize ?? 64;
  }

  /** Creates the kernel and compiles the pipelines for `opts.types` (default: every supported type). */
  static async create(gpu: Gpu, opts: MatmulKernelOptions = {}): Promise<MatmulKernel> {
    const k = new MatmulKernel(gpu, opts);
    await k.prepare(opts.types ?? Object.values(TYPE_INFO).map((t) => t.id));
    return k;
  }

  /** Compiles (or fetches from the Gpu cache) the decode and prefill pipelines of `types`. */
  async prepare(types: readonly number[]): Promise<void> {
    const jobs = types.flatMap((type) => [1, this.tokenBlock].map((tb) => this.#build(type, tb)));
    await Promise.all(jobs);
  }

  /** The pipeline key of a type and token block, e.g. `"matmul:q4_k:tb8:wg64"`. */
  key(type: number, tokenBlock: number): string {
    return `matmul:${typeInfo(type).name}:tb${tokenBlock}:wg${this.workgroupSize}`;
  }

  async #build(type: number, tb: number): Promise<void> {
    const key = this.key(type, tb);
    if (this.#pipelines.has(key)) return;
    const reader = weightReader(type);
    const code = expandWgsl("matmul.wgsl", { "matmul.wgsl": matmulWgsl, "weights.wgsl": reader.code }, {
      PARAMS: MatmulParams.wgsl(),
    });
    const pipeline = await this.#gpu.pipeline({
      key,
      file: `matmul.wgsl + ${reader.file}`,
      code,
      constants: { WG: this.workgroupSize, TB: tb },
    });
    this.#pipelines.set(key, pipeline);
  }

  /**
   * Encodes `out[t, row] = Σ_c w[row, c] · x[t, c]` for t < nTokens, one dispatch per chunk of `w`.
   * Throws a `RangeError` for shapes the kernel cannot run (cols % 4, llvmpipe's loop limit, buffers
   * too small) and a `TypeError` when `w.type` was not prepared.
   */
  encode(
    pass: GPUComputePassEncoder,
    out: GPUBuffer,
    x: GPUBuffer,
    w: GpuWeight,
    nTokens: number,
    opts: MatmulEncodeOptions = {},
  ): void {
    if (nTokens === 0) return;
    const { rows, cols } = w;
    const xOffset = opts.xOffset ?? 0;
    const outOffset = opts.outOffset ?? 0;
    const outStride = opts.outStride ?? rows;
    const tb = nTokens === 1 ? 1 : this.tokenBlock;
    checkShape(w, nTokens, xOffset, tb);
    if ((xOffset + nTokens * cols) * 4 > x.size) {
      throw new RangeError(
        `Cannot encode matmul for "${w.name}": x needs ${
          (xOffset + nTokens * cols) * 4
        } bytes: current size is ${x.size}`,
      );
    }
    const outEnd = outOffset + (nTokens - 1) * outStride + rows;
    if (outEnd * 4 > out.size) {
      throw new RangeError(
        `Cannot encode matmul for "${w.name}": out needs ${outEnd * 4} bytes: current size is ${out.size}`,
      );
    }
    const key = this.key(w.type, tb);
    const pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      throw new TypeError(
        `Cannot encode matmul for "${w.name}": pipeline ${key} is not compiled; call prepare([${w.type}])`,
      );
    }
    const blocks = Math.ceil(nTokens / tb);
    for (const c of w.chunks) {
      const uniform = this.#gpu.uniform(MatmulParams, {
        rows: c.rowCount,
        cols,
        nTokens,
        xOffset,
        outOffset: outOffset + c.rowStart,
        outStride,
      });
      const workgroups = Math.ceil((c.rowCount * blocks) / this.workgroupSize);
      this.#gpu.dispatch(pass, pipeline, [uniform, c.buffer, x, out], workgroups);
    }
  }
}

function checkShape(w: GpuWeight, nTokens: number, xOffset: number, tb: number): void {
  const where = `Cannot encode matmul for "${w.name}"`;
  if (!Number.isInteger(nTokens) || nTokens < 0) {
    throw new RangeError(`${where}: nTokens must be a non-negative integer: current value is ${nTokens}`);
  }
  if (w.cols % 4 !== 0) {
    throw new RangeError(`${where}: cols must be a multiple of 4: current value is ${w.cols}`);
  }
  if (xOffset % 4 !== 0) {
    throw new RangeError(`${where}: xOffset must be a multiple of 4: current value is ${xOffset}`);
  }
  const trips = matmulTripCount(w.cols, tb);
  if (trips > LOOP_BUDGET) {
    throw new RangeError(
      `${where}: a ${w.cols}-column row with ${tb} tokens per invocation loops ${trips} times, over llvmpipe's budget of ${LOOP_BUDGET}`,
    );
  }
}
