/**
 * Pointwise layer ops on the GPU (`wgsl/elementwise.wgsl`): SwiGLU and the residual add.
 *
 * @module
 */

import type { Binding, Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import source from "../../wgsl/elementwise.wgsl" with { type: "text" };

const FILE = "elementwise.wgsl";
const WG = 64;

// Uniform struct of the `swiglu` entry point (binding 0).
const SwigluParams = params("SwigluParams", {
  rows: "u32",
  cols: "u32",
  gateOffset: "u32",
  gateStride: "u32",
  upOffset: "u32",
  upStride: "u32",
  outOffset: "u32",
  outStride: "u32",
});

// Uniform struct of the `add` entry point (binding 0).
const AddParams = params("AddParams", {
  rows: "u32",
  cols: "u32",
  xOffset: "u32",
  xStride: "u32",
  yOffset: "u32",
  yStride: "u32",
});

/** Arguments of {@linkcode ElementwiseKernel.swiglu}; offsets and strides in f32 elements (strides default to `cols`). */
export interface SwigluArgs {
  /** Gate rows (read). */
  gate: Binding;
  /** Up rows (read; may be the same buffer as `gate`). */
  up: Binding;
  /** Output rows (written; must not alias gate/up). */
  out: Binding;
  /** Rows (tokens). */
  rows: number;
  /** Columns (`feed_forward_length`). */
  cols: number;
  /** Element offset of gate row 0. */
  gateOffset?: number;
  /** Elements between gate rows. */
  gateStride?: number;
  /** Element offset of up row 0. */
  upOffset?: number;
  /** Elements between up rows. */
  upStride?: number;
  /** Element offset of out row 0. */
  outOffset?: number;
  /** Elements between out rows. */
  outStride?: number;
}

/** Arguments of {@linkcode ElementwiseKernel.add}; offsets and strides in f32 elements (strides default to `cols`). */
export interface AddArgs {
  /** Rows updated in place: `x += y`. */
  x: Binding;
  /** Rows added (read; must not alias `x`). */
  y: Binding;
  /** Rows (tokens). */
  rows: number;
  /** Columns. */
  cols: number;
  /** Element offset of x row 0. */
  xOffset?: number;
  /** Elements between x rows. */
  xStride?: number;
  /** Element offset of y row 0. */
  yOffset?: number;
  /** Elements between y rows. */
  yStride?: number;
}

/**
 * SwiGLU (`out = silu(gate) · up`) and residual add (`x += y`), one invocation per element.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { ElementwiseKernel } from "./elementwise.ts";
 * const gpu = await Gpu.create();
 * const ew = await ElementwiseKernel.create(gpu);
 * const x = gpu.upload("x", new Float32Array([1, 2])), y = gpu.upload("y", new Float32Array([3, 4]));
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * ew.add(pass, { x, y, rows: 1, cols: 2 });
 * pass.end();
 * gpu.submit(enc);
 * console.log(new Float32Array(await gpu.read(x, 0, 8))); // [4, 6]
 * ```
 */
export class ElementwiseKernel {
  readonly #gpu: Gpu;
  readonly #swiglu: GPUComputePipeline;
  readonly #add: GPUComputePipeline;

  private constructor(gpu: Gpu, swiglu: GPUComputePipeline, add: GPUComputePipeline) {
    this.#gpu = gpu;
    this.#swiglu = swiglu;
    this.#add = add;
  }

  /** Compiles (or fetches from the cache) both pipelines. */
  static async create(gpu: Gpu): Promise<ElementwiseKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, {
      SWIGLU_PARAMS: SwigluParams.wgsl(),
      ADD_PARAMS: AddParams.wgsl(),
    });
    const build = (entryPoint: string) =>
      gpu.pipeline({ key: `${entryPoint}:wg${WG}`, file: FILE, code, entryPoint, constants: { WG } });
    const [swiglu, add] = await Promise.all([build("swiglu"), build("add")]);
    return new ElementwiseKernel(gpu, swiglu, add);
  }

  /** Encodes `out = silu(gate) · up` over `[rows, cols]`. */
  swiglu(pass: GPUComputePassEncoder, a: SwigluArgs): void {
    const u = this.#gpu.uniform(SwigluParams, {
      rows: a.rows,
      cols: a.cols,
      gateOffset: a.gateOffset ?? 0,
      gateStride: a.gateStride ?? a.cols,
      upOffset: a.upOffset ?? 0,
      upStride: a.upStride ?? a.cols,
      outOffset: a.outOffset ?? 0,
      outStride: a.outStride ?? a.cols,
    });
    this.#gpu.dispatch(pass, this.#swiglu, [u, a.gate, a.up, a.out], Math.ceil((a.rows * a.cols) / WG));
  }

  /** Encodes `x += y` over `[rows, cols]`. */
  add(pass: GPUComputePassEncoder, a: AddArgs): void {
    const u = this.#gpu.uniform(AddParams, {
      rows: a.rows,
      cols: a.cols,
      xOffset: a.xOffset ?? 0,
      xStride: a.xStride ?? a.cols,
      yOffset: a.yOffset ?? 0,
      yStride: a.yStride ?? a.cols,
    });
    this.#gpu.dispatch(pass, this.#add, [u, a.x, a.y], Math.ceil((a.rows * a.cols) / WG));
  }
}
