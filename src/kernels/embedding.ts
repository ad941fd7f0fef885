/**
 * Embedding lookup for every weight type: `out[t, :] = table[ids[t], :]`, dequantized. Kernel:
 * `wgsl/embedding.wgsl` with the table type's `wgsl/weights_<type>.wgsl` reader as `weights.wgsl`.
 *
 * Bindings: 0 uniform `EmbeddingParams` { cols, nTokens, idsOffset, outOffset, rowStart, rowCount }, 1 table chunk, 2 ids (u32), 3 out (f32).
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import { type GpuWeight, weightReader } from "../model/gpu_weight.ts";
import { TYPE_INFO, typeInfo } from "../model/quant.ts";
import embeddingWgsl from "../../wgsl/embedding.wgsl" with { type: "text" };

/**
 * Uniforms of `embedding.wgsl`: ids are read at `idsOffset + t` (u32 elements); out[t, c] is
 * written at `outOffset + t·cols + c`; the dispatch's chunk holds rows `rowStart..rowStart+rowCount−1`.
 */
const EmbeddingParams = params("EmbeddingParams", {
  cols: "u32",
  nTokens: "u32",
  idsOffset: "u32",
  outOffset: "u32",
  rowStart: "u32",
  rowCount: "u32",
});

/** Options for {@linkcode EmbeddingKernel.create}. */
export interface EmbeddingKernelOptions {
  /** Workgroup size; default 64. */
  workgroupSize?: number;
  /** Table types (GGML ids) to compile up front; default all supported. */
  types?: readonly number[];
}

/** Per-call options for {@linkcode EmbeddingKernel.encode}. */
export interface EmbeddingEncodeOptions {
  /** Where out[0, 0] is in `out` (f32 elements). Default 0. */
  outOffset?: number;
}

/**
 * Encodes embedding lookups: one dispatch per chunk of the table; each invocation skips ids outside
 * its chunk. Ids ≥ `table.rows` leave their output row untouched.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { EmbeddingKernel } from "./embedding.ts";
 * const gpu = await Gpu.create();
 * const emb = await EmbeddingKernel.create(gpu);
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * emb.encode(pass, x, ids, 0, nTokens, tokenEmbd);
 * pass.end();
 * gpu.submit(enc);
 * ```
 */
export class EmbeddingKernel {
  /** Workgroup size. */
  readonly workgroupSize: number;
  #gpu: Gpu;
  #pipelines = new Map<string, GPUComputePipeline>();

  private constructor(gpu: Gpu, opts: EmbeddingKernelOptions) {
    this.#gpu = gpu;
    this.workgroupSize = opts.workgroupSize ?? 64;
  }

  /** Creates the kernel and compiles the pipelines for `opts.types` (default: every supported type). */
  static async create(gpu: Gpu, opts: EmbeddingKernelOptions = {}): Promise<EmbeddingKernel> {
    const k = new EmbeddingKernel(gpu, opts);
    await k.prepare(opts.types ?? Object.values(TYPE_INFO).map((t) => t.id));
    return k;
  }

  /** Compiles (or fetches from the Gpu cache) the pipelines of `types`. */
  async prepare(types: readonly number[]): Promise<void> {
    await Promise.all(types.map((type) => this.#build(type)));
  }

  /** The pipeline key of a table type, e.g. `"embedding:q8_0:wg64"`. */
  key(type: number): string {
    return `embedding:${typeInfo(type).name}:wg${this.workgroupSize}`;
  }

  async #build(type: number): Promise<void> {
    const key = this.key(type);
    if (this.#pipelines.has(key)) return;
    const reader = weightReader(type);
    const code = expandWgsl("embedding.wgsl", {
      "embedding.wgsl": embeddingWgsl,
      "weights.wgsl": reader.code,
    }, {
      PARAMS: EmbeddingParams.wgsl(),
    });
    const pipeline = await this.#gpu.pipeline({
      key,
      file: `embedding.wgsl + ${reader.file}`,
      code,
      constants: { WG: this.workgroupSize },
    });
    this.#pipelines.set(key, pipeline);
  }

  /**
   * Encodes `out[t, :] = table[ids[idsOffset + t], :]` for t < nTokens. Throws a `RangeError` when
   * `table.cols` is not a multiple of 4 or a buffer is too small, a `TypeError` when the type was not
   * prepared.
   */
  encode(
    pass: GPUComputePassEncoder,
    out: GPUBuffer,
    ids: GPUBuffer,
    idsOffset: number,
    nTokens: number,
    table: GpuWeight,
    opts: EmbeddingEncodeOptions = {},
  ): void {
    if (nTokens === 0) return;
    const where = `Cannot encode embedding lookup in "${table.name}"`;
    const cols = table.cols;
    const outOffset = opts.outOffset ?? 0;
    if (!Number.isInteger(nTokens) || nTokens < 0) {
      throw new RangeError(`${where}: nTokens must be a non-negative integer: current value is ${nTokens}`);
    }
    if (cols % 4 !== 0) {
      throw new RangeError(`${where}: cols must be a multiple of 4: current value is ${cols}`);
    }
    if ((idsOffset + nTokens) * 4 > ids.size) {
      throw new RangeError(
        `${where}: ids needs ${(idsOffset + nTokens) * 4} bytes: current size is ${ids.size}`,
      );
    }
    if ((outOffset + nTokens * cols) * 4 > out.size) {
      throw new RangeError(
        `${where}: out needs ${(outOffset + nTokens * cols) * 4} bytes: current size is ${out.size}`,
      );
    }
    const key = this.key(table.type);
    const pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      throw new TypeError(`${where}: pipeline ${key} is not compiled; call prepare([${table.type}])`);
    }
    const workgroups = Math.ceil((nTokens * (cols / 4)) / this.workgroupSize);
    for (const c of table.chunks) {
      const uniform = this.#gpu.uniform(EmbeddingParams, {
        cols,
        nTokens,
        idsOffset,
        outOffset,
        rowStart: c.rowStart,
        rowCount: c.rowCount,
      });
      this.#gpu.dispatch(pass, pipeline, [uniform, c.buffer, ids, out], workgroups);
    }
  }
}
