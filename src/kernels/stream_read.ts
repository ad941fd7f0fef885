/**
 * The streaming-read roofline: a kernel that only reads a buffer, as fast as WGSL can on this
 * adapter. Benchmarks print every matmul kernel's GB/s as a fraction of it
 * (`bench/matmul_report.ts`). Kernel: `wgsl/stream_read.wgsl`.
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import streamReadWgsl from "../../wgsl/stream_read.wgsl" with { type: "text" };
import { LOOP_BUDGET } from "./matmul.ts";

const StreamParams = params("StreamParams", { n4: "u32" });

/** Options for {@linkcode StreamReadKernel.create}. */
export interface StreamReadOptions {
  /** Workgroup size; default 64. */
  workgroupSize?: number;
  /** vec4 (16 bytes) each invocation reads, a multiple of 4; default 1024 (measured best on llvmpipe). */
  vec4PerInvocation?: number;
}

/**
 * Reads whole buffers and writes one u32 per invocation.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { StreamReadKernel } from "./stream_read.ts";
 * const gpu = await Gpu.create();
 * const sr = await StreamReadKernel.create(gpu);
 * const src = gpu.createBuffer("src", 64 << 20);
 * const out = gpu.createBuffer("out", sr.outBytes(src.size));
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * sr.encode(pass, src, src.size, out); // reads 64 MiB
 * pass.end();
 * gpu.submit(enc);
 * ```
 */
export class StreamReadKernel {
  /** Workgroup size. */
  readonly workgroupSize: number;
  /** vec4 per invocation. */
  readonly vec4PerInvocation: number;
  #gpu: Gpu;
  #pipeline: GPUComputePipeline;

  private constructor(gpu: Gpu, pipeline: GPUComputePipeline, wg: number, per: number) {
    this.#gpu = gpu;
    this.#pipeline = pipeline;
    this.workgroupSize = wg;
    this.vec4PerInvocation = per;
  }

  /** Compiles the kernel. */
  static async create(gpu: Gpu, opts: StreamReadOptions = {}): Promise<StreamReadKernel> {
    const wg = opts.workgroupSize ?? 64;
    const per = opts.vec4PerInvocation ?? 1024;
    if (!Number.isInteger(per) || per < 4 || per % 4 !== 0 || per / 4 > LOOP_BUDGET) {
      throw new RangeError(
        `Cannot create StreamReadKernel: vec4PerInvocation must be a multiple of 4 in 4..${
          4 * LOOP_BUDGET
        }: current value is ${per}`,
      );
    }
    const code = expandWgsl("stream_read.wgsl", { "stream_read.wgsl": streamReadWgsl }, {
      PARAMS: StreamParams.wgsl(),
    });
    const pipeline = await gpu.pipeline({
      key: `stream_read:per${per}:wg${wg}`,
      file: "stream_read.wgsl",
      code,
      constants: { WG: wg, PER: per },
    });
    return new StreamReadKernel(gpu, pipeline, wg, per);
  }

  /** Bytes `out` needs for a read of `bytes` bytes (one u32 per invocation). */
  outBytes(bytes: number): number {
    return Math.ceil(bytes / 16 / this.vec4PerInvocation) * 4;
  }

  /**
   * Encodes one read of the first `bytes` bytes of `src` (a multiple of 64). Throws a `RangeError`
   * when `bytes` is not a multiple of 64 or exceeds a buffer.
   */
  encode(pass: GPUComputePassEncoder, src: GPUBuffer, bytes: number, out: GPUBuffer): void {
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes % 64 !== 0 || bytes > src.size) {
      throw new RangeError(
        `Cannot encode stream_read: bytes must be a positive multiple of 64 within the source's ${src.size}: current value is ${bytes}`,
      );
    }
    if (this.outBytes(bytes) > out.size) {
      throw new RangeError(
        `Cannot encode stream_read: out needs ${this.outBytes(bytes)} bytes: current size is ${out.size}`,
      );
    }
    const n4 = bytes / 16;
    const uniform = this.#gpu.uniform(StreamParams, { n4 });
    const invocations = Math.ceil(n4 / this.vec4PerInvocation);
    this.#gpu.dispatch(pass, this.#pipeline, [
      uniform,
      { buffer: src, offset: 0, size: bytes },
      out,
    ], Math.ceil(invocations / this.workgroupSize));
  }
}
