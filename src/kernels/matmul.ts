/**
 * The matrix product of every weight type: `out[t, row] = Σ_c W[row, c] · x[t, c]`, for decode
 * (nTokens = 1) and batched prefill alike. One class, three kernel families chosen per adapter:
 *
 * | kernel | used for | file |
 * |---|---|---|
 * | v1 token blocks | prefill (TB tokens per invocation); decode of shapes/types without a fast path | `wgsl/matmul.wgsl` + `weights_<type>.wgsl` |
 * | rows | decode on CPU adapters (llvmpipe…): each invocation streams whole rows, x shared by subgroup broadcast or a uniform buffer | `wgsl/matmul_rows.wgsl` + `matmul_rows_<type>.wgsl` (+ `matmul_stage.wgsl`) |
 * | wg | decode on GPUs: one workgroup per row, coalesced reads, subgroup or shared-memory reduction | `wgsl/matmul_wg.wgsl` + `weights_<type>.wgsl` |
 *
 * Bindings of every family: 0 uniform `MatmulParams` { rows, cols, nTokens, xOffset, outOffset,
 * outStride, eps }, 1 weight chunk, 2 x (f32), 3 out (f32), 4 the fusion's Aux (RMSNorm gain or
 * SwiGLU up; see `matmul_fusion.ts`). Every family takes every fusion. The measured version ladder is
 * in the WGSL headers and `bench/matmul_report.ts`.
 *
 * @module
 */

import type { Gpu, PipelineSpec } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import { type GpuWeight, weightReader } from "../model/gpu_weight.ts";
import { GgmlType, TYPE_INFO, typeInfo } from "../model/quant.ts";
import matmulWgsl from "../../wgsl/matmul.wgsl" with { type: "text" };
import matmulRowsWgsl from "../../wgsl/matmul_rows.wgsl" with { type: "text" };
import matmulRowsF32 from "../../wgsl/matmul_rows_f32.wgsl" with { type: "text" };
import matmulRowsF16 from "../../wgsl/matmul_rows_f16.wgsl" with { type: "text" };
import matmulRowsQ8_0 from "../../wgsl/matmul_rows_q8_0.wgsl" with { type: "text" };
import matmulRowsQ4_0 from "../../wgsl/matmul_rows_q4_0.wgsl" with { type: "text" };
import matmulRowsQ4_K from "../../wgsl/matmul_rows_q4_k.wgsl" with { type: "text" };
import matmulRowsQ6_K from "../../wgsl/matmul_rows_q6_k.wgsl" with { type: "text" };
import matmulStageWgsl from "../../wgsl/matmul_stage.wgsl" with { type: "text" };
import matmulWgWgsl from "../../wgsl/matmul_wg.wgsl" with { type: "text" };
import ropeAngleWgsl from "../../wgsl/rope_angle.wgsl" with { type: "text" };
import { fusionSuffix, fusionWgsl, type MatmulFusion, PLAIN } from "./matmul_fusion.ts";
import { RopeKernel } from "./rope.ts";
import { ropeThetaScale } from "../ref/ops.ts";

/**
 * Uniforms of the matmul kernels. Element offsets: x is read from `xOffset` (a multiple of 4), out[t, r]
 * (r local to the chunk) is written at `outOffset + t·outStride + r`; `rows` is the chunk's row count.
 */
const MatmulParams = params("MatmulParams", {
  rows: "u32",
  cols: "u32",
  nTokens: "u32",
  xOffset: "u32",
  outOffset: "u32",
  outStride: "u32",
  eps: "f32",
  // fused RoPE (matmul_fusion.ts): the chunk's first row in the weight, and rope.wgsl's parameters
  row0: "u32",
  pos0: "u32",
  headDim: "u32",
  ropeDim: "u32",
  thetaScale: "f32",
  freqScale: "f32",
  hasFactors: "u32",
});

/** Uniforms of `matmul_stage.wgsl`: stage `n4` vec4 from vec4 index `x4` of x (a `cols`-wide row). */
const StageParams = params("StageParams", { n4: "u32", x4: "u32", cols: "u32", eps: "f32" });

/** Largest per-invocation loop trip count we dispatch (llvmpipe kills invocations at 65 535). */
export const LOOP_BUDGET = 60000;

/** The largest token block `matmul.wgsl` supports (its `MAX_TB`). */
export const MAX_TOKEN_BLOCK = 16;

/** Bytes of the uniform staging buffer of the "rows" kernel without subgroups (x of ≤ 16384 columns). */
const STAGE_BYTES = 65536;

/**
 * Loop iterations one invocation of `matmul.wgsl` runs for a row of `cols` and `tokenBlock` tokens.
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

/**
 * Where the "rows" kernel reads x: shared by subgroup broadcast, from a staged uniform copy (decode
 * only), or from the storage buffer by every lane (prefill without subgroups).
 */
type RowsInput = "subgroup" | "uniform" | "storage";

/** The per-type decode bodies of the "rows" kernel: WGSL file, text and column group. */
const ROWS_TYPES: Partial<Record<GgmlType, { file: string; code: string; groupCols: number; x4: number }>> = {
  [GgmlType.F32]: { file: "matmul_rows_f32.wgsl", code: matmulRowsF32, groupCols: 32, x4: 8 },
  [GgmlType.F16]: { file: "matmul_rows_f16.wgsl", code: matmulRowsF16, groupCols: 32, x4: 8 },
  [GgmlType.Q8_0]: { file: "matmul_rows_q8_0.wgsl", code: matmulRowsQ8_0, groupCols: 128, x4: 32 },
  [GgmlType.Q4_0]: { file: "matmul_rows_q4_0.wgsl", code: matmulRowsQ4_0, groupCols: 256, x4: 64 },
  [GgmlType.Q4_K]: { file: "matmul_rows_q4_k.wgsl", code: matmulRowsQ4_K, groupCols: 256, x4: 64 },
  [GgmlType.Q6_K]: { file: "matmul_rows_q6_k.wgsl", code: matmulRowsQ6_K, groupCols: 256, x4: 64 },
};

/**
 * The weight types the "rows" kernel handles (others use `matmul.wgsl` on CPU adapters).
 *
 * @example
 * ```ts
 * import { ROWS_KERNEL_TYPES } from "./matmul.ts";
 * console.log(ROWS_KERNEL_TYPES); // [ 0, 1, 8, 2 ]
 * ```
 */
export const ROWS_KERNEL_TYPES: readonly number[] = Object.keys(ROWS_TYPES).map(Number);

/**
 * Rows per invocation of the "rows" kernel, by x source and type (measured on llvmpipe, see
 * wgsl/matmul_rows.wgsl).
 */
const DEFAULT_ROWS: Record<RowsInput, Partial<Record<GgmlType, number>>> = {
  subgroup: {
    [GgmlType.F32]: 1,
    [GgmlType.F16]: 1,
    [GgmlType.Q8_0]: 2,
    [GgmlType.Q4_0]: 2,
    [GgmlType.Q4_K]: 2,
  },
  uniform: {
    [GgmlType.F32]: 4,
    [GgmlType.F16]: 4,
    [GgmlType.Q8_0]: 4,
    [GgmlType.Q4_0]: 4,
    [GgmlType.Q4_K]: 2,
  },
  storage: {},
};

/** Rows per invocation of the "rows" kernel for prefill (8 tokens per invocation), measured likewise. */
const DEFAULT_PREFILL_ROWS: Partial<Record<GgmlType, number>> = {
  [GgmlType.F32]: 2,
  [GgmlType.F16]: 2,
  [GgmlType.Q8_0]: 4,
  [GgmlType.Q4_0]: 3,
  [GgmlType.Q4_K]: 2,
};

/** Options for {@linkcode MatmulKernel.create}. */
export interface MatmulKernelOptions {
  /** Tokens per invocation for nTokens > 1 (1..16); default 8 (measured best on llvmpipe). Decode always uses 1. */
  tokenBlock?: number;
  /** Workgroup size; default 64. */
  workgroupSize?: number;
  /** Weight types (GGML ids) to compile up front; default all supported. See {@linkcode MatmulKernel.prepare}. */
  types?: readonly number[];
  /** Fusions to compile up front for decode (nTokens = 1); default only the plain product. */
  fusions?: readonly MatmulFusion[];
  /**
   * Fusions to compile for prefill (nTokens > 1); default `fusions`. Prefill never rotates in the
   * store (one rope dispatch per batch costs little), so `rope` is ignored here.
   */
  prefillFusions?: readonly MatmulFusion[];
  /**
   * Decode (nTokens = 1) kernel family: `"rows"` (CPU adapters: each invocation streams whole rows),
   * `"wg"` (GPUs: a workgroup per row) or `"v1"` (`matmul.wgsl`, one token per invocation). Default
   * `"rows"` on CPU adapters (`gpu.isFallbackAdapter`), else `"wg"`.
   */
  matvec?: "rows" | "wg" | "v1";
  /**
   * x source of the "rows" kernel; default `"subgroup"` when the device has subgroups of at least 8
   * lanes, else `"uniform"`.
   */
  rowsInput?: "subgroup" | "uniform";
  /** Rows per invocation of the "rows" kernel (1..8); default per type (measured). */
  rowsPerInvocation?: number;
  /**
   * Tokens per invocation of the "rows" kernel for nTokens > 1 (1..16); 0 sends prefill to
   * `matmul.wgsl` (v1). Default 8 with subgroups; 0 without (x read by every lane is only 1.2–1.5×
   * faster than v1 there, and on GL its unrolled loads take 10–30 s to compile per type).
   */
  rowsTokenBlock?: number;
}

/** Per-call options for {@linkcode MatmulKernel.encode}. All are f32 element offsets/strides. */
export interface MatmulEncodeOptions {
  /** Where x[0, 0] is in `x`; a multiple of 4. Default 0. */
  xOffset?: number;
  /** Where out[0, 0] is in `out`. Default 0. */
  outOffset?: number;
  /** Elements between out[t, 0] and out[t+1, 0]; default `w.rows`. */
  outStride?: number;
  /**
   * Fuse the RMSNorm before the product: x is read raw and the product is `W · rmsnorm(x[t]) ⊙
   * weight` (`weight`: f32 `[cols]`).
   */
  norm?: { weight: GPUBuffer; eps: number };
  /** Fuse SwiGLU before the product: x is the gate and the product is `W · (silu(x[t]) ⊙ up[t])` (`up` laid out like x). */
  swiglu?: GPUBuffer;
  /** Fuse the residual add after the product: `out[t] += W · x[t]`. */
  accumulate?: boolean;
  /**
   * Rotate the product's rows by RoPE (q or k: rows = heads × headDim) at positions pos0 + t, as
   * {@linkcode RopeKernel} does: in the store of the "rows" kernels, else by one rope dispatch after
   * the product. Not with `accumulate`.
   */
  rope?: MatmulRope;
}

/** RoPE parameters of {@linkcode MatmulEncodeOptions.rope} (see `RopeArgs`). */
export interface MatmulRope {
  /** Absolute position of token 0. */
  pos0: number;
  /** Channels per head. */
  headDim: number;
  /** Rotated channels per head; default `headDim`. */
  ropeDim?: number;
  /** `llama.rope.freq_base`. */
  freqBase: number;
  /** Linear scaling factor multiplied into every angle; default 1. */
  freqScale?: number;
  /** `rope_freqs`: `ropeDim/2` f32 divisors, from element 0. */
  freqFactors?: GPUBuffer;
}

/**
 * Encodes matrix products for any {@linkcode GpuWeight}: one dispatch per row chunk (plus one x
 * staging dispatch for the "rows" kernel without subgroups).
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
  /** Decode kernel family. */
  readonly matvec: "rows" | "wg" | "v1";
  /** x source of the "rows" kernel for decode. */
  readonly rowsInput: "subgroup" | "uniform";
  /** Tokens per invocation of the "rows" kernel for nTokens > 1 (0: prefill uses v1). */
  readonly rowsTokenBlock: number;
  #rowsOverride: number | undefined;
  #gpu: Gpu;
  #rope!: RopeKernel; // RoPE after the products that cannot rotate in their store
  #pipelines = new Map<string, GPUComputePipeline>(); // the pipelines this kernel prepared, by key
  #staging: GPUBuffer | undefined;
  // What the staging buffer holds: the inputs of its last stage dispatch, and the Gpu's dispatch count
  // after the product that read it. Equal inputs in the same pass with no dispatch since mean the copy
  // is current (nothing can write x inside a pass without a dispatch): q, k and v stage x once.
  #staged: { key: readonly unknown[]; dispatches: number } | undefined;
  #noFactorsBuffer: GPUBuffer | undefined;

  private constructor(gpu: Gpu, opts: MatmulKernelOptions) {
    const tb = opts.tokenBlock ?? 8;
    if (!Number.isInteger(tb) || tb < 1 || tb > MAX_TOKEN_BLOCK) {
      throw new RangeError(
        `Cannot create MatmulKernel: tokenBlock must be in 1..${MAX_TOKEN_BLOCK}: current value is ${tb}`,
      );
    }
    const r = opts.rowsPerInvocation;
    if (r !== undefined && (!Number.isInteger(r) || r < 1 || r > 8)) {
      throw new RangeError(
        `Cannot create MatmulKernel: rowsPerInvocation must be in 1..8: current value is ${r}`,
      );
    }
    const sgOk = gpu.hasSubgroups && gpu.subgroupMinSize >= 8;
    const rtb = opts.rowsTokenBlock ?? (sgOk ? 8 : 0);
    if (!Number.isInteger(rtb) || rtb < 0 || rtb > MAX_TOKEN_BLOCK) {
      throw new RangeError(
        `Cannot create MatmulKernel: rowsTokenBlock must be in 0..${MAX_TOKEN_BLOCK}: current value is ${rtb}`,
      );
    }
    const input: string | undefined = opts.rowsInput;
    if (input !== undefined && input !== "subgroup" && input !== "uniform") {
      throw new RangeError(
        `Cannot create MatmulKernel: rowsInput must be "subgroup" or "uniform": current value is "${input}"`,
      );
    }
    if (opts.rowsInput === "subgroup" && !sgOk) {
      throw new RangeError(
        `Cannot create MatmulKernel: rowsInput "subgroup" needs subgroups of at least 8 lanes: ` +
          `current device has ${gpu.hasSubgroups ? `subgroups of ${gpu.subgroupMinSize}+ lanes` : "none"}`,
      );
    }
    this.#gpu = gpu;
    this.tokenBlock = tb;
    this.workgroupSize = opts.workgroupSize ?? 64;
    this.matvec = opts.matvec ?? (gpu.isFallbackAdapter ? "rows" : "wg");
    this.rowsInput = opts.rowsInput ?? (sgOk ? "subgroup" : "uniform");
    this.rowsTokenBlock = rtb;
    this.#rowsOverride = r;
  }

  /** Creates the kernel and compiles the pipelines for `opts.types` (default: every supported type). */
  static async create(gpu: Gpu, opts: MatmulKernelOptions = {}): Promise<MatmulKernel> {
    const k = new MatmulKernel(gpu, opts);
    k.#rope = await RopeKernel.create(gpu);
    await k.prepare(
      opts.types ?? Object.values(TYPE_INFO).map((t) => t.id),
      opts.fusions,
      opts.prefillFusions,
    );
    return k;
  }

  /**
   * Compiles (or fetches from the Gpu cache) the pipelines of `types`: decode for each of `fusions`
   * (default: the plain product), prefill for each of `prefillFusions` (default: `fusions`).
   */
  async prepare(
    types: readonly number[],
    fusions: readonly MatmulFusion[] = [PLAIN],
    prefillFusions: readonly MatmulFusion[] = fusions,
  ): Promise<void> {
    const jobs: Promise<void>[] = [];
    const rowsTypes = types.filter((type) => this.matvec === "rows" && ROWS_TYPES[typeInfo(type).id]);
    for (const f of fusions) {
      const noRope = { ...f, rope: false }; // v1 and wg rotate with a rope dispatch
      for (const type of types) {
        jobs.push(this.#buildV1(type, 1, noRope));
        if (this.matvec === "wg") jobs.push(this.#buildWg(type, noRope));
      }
      for (const type of rowsTypes) jobs.push(this.#buildRows(type, this.rowsInput, 1, f));
      if (this.matvec === "rows" && this.rowsInput === "uniform") jobs.push(this.#buildStage(f));
    }
    for (const f of prefillFusions) {
      const noRope = { ...f, rope: false };
      for (const type of types) jobs.push(this.#buildV1(type, this.tokenBlock, noRope));
      if (this.rowsTokenBlock === 0) continue;
      for (const type of rowsTypes) {
        jobs.push(this.#buildRows(type, this.#prefillInput, this.rowsTokenBlock, noRope));
      }
    }
    await Promise.all(jobs);
  }

  /**
   * Compiles exactly the pipelines that {@linkcode MatmulKernel.encode} will use for these products
   * (what {@linkcode MatmulKernel.plan} picks; the model's loader lists its forward pass's products,
   * so a model compiles a few pipelines instead of every variant of its types).
   */
  async prepareProducts(products: readonly MatmulProduct[]): Promise<void> {
    const jobs = products.map(({ w, nTokens, fusion }) => {
      const plan = this.plan(w, nTokens, fusion);
      const f = { ...fusion, rope: plan.ropeInStore };
      if (plan.kernel === "v1") return this.#buildV1(w.type, nTokens === 1 ? 1 : this.tokenBlock, f);
      if (plan.kernel === "wg") return this.#buildWg(w.type, f);
      const tokens = nTokens === 1 ? 1 : this.rowsTokenBlock;
      const rows = this.#buildRows(w.type, this.#rowsShape(w.type, tokens).input, tokens, f);
      return plan.staged ? Promise.all([rows, this.#buildStage(f)]) : rows;
    });
    await Promise.all(jobs);
  }

  /**
   * The pipeline key of `matmul.wgsl` for a type, token block and fusion, e.g.
   * `"matmul:q4_k:tb8:wg64"` or `"matmul:q4_0:tb1:wg64+swiglu+acc"`.
   */
  key(type: number, tokenBlock: number, fusion: MatmulFusion = PLAIN): string {
    return `matmul:${typeInfo(type).name}:tb${tokenBlock}:wg${this.workgroupSize}${fusionSuffix(fusion)}`;
  }

  /** Rows per invocation of the "rows" kernel for decoding `type`. */
  rowsPerInvocation(type: number): number {
    return this.#rowsFor(type, this.rowsInput);
  }

  #rowsFor(type: number, input: RowsInput): number {
    return this.#rowsOverride ?? DEFAULT_ROWS[input][typeInfo(type).id] ?? 1;
  }

  /** x source of the "rows" prefill kernel. */
  get #prefillInput(): RowsInput {
    return this.rowsInput === "subgroup" ? "subgroup" : "storage";
  }

  /** x source and rows per invocation of a "rows" kernel (an even count when it rotates row pairs). */
  #rowsShape(type: number, tokens: number, rope = false): { input: RowsInput; rows: number } {
    const input = tokens === 1 ? this.rowsInput : this.#prefillInput;
    const prefillRows = this.#rowsOverride ?? DEFAULT_PREFILL_ROWS[typeInfo(type).id] ?? 1;
    const rows = tokens === 1 ? this.#rowsFor(type, input) : prefillRows;
    return { input, rows: rope ? rows + (rows % 2) : rows };
  }

  #rowsKey(type: number, tokens: number, fusion: MatmulFusion): string {
    const { input, rows } = this.#rowsShape(type, tokens, fusion.rope);
    const x = { subgroup: "sg", uniform: "ubo", storage: "ssbo" }[input];
    const f = rowsKernelFusion(input, fusion);
    return `matmul_rows:${typeInfo(type).name}:${x}:r${rows}:t${tokens}:wg${this.workgroupSize}${
      fusionSuffix(f)
    }`;
  }

  #wgKey(type: number, fusion: MatmulFusion): string {
    return `matmul_wg:${typeInfo(type).name}:${
      this.#gpu.hasSubgroups ? "sg" : "shared"
    }:wg${this.workgroupSize}${fusionSuffix(fusion)}`;
  }

  /** The staging pipeline applies only the prologue: keyed by the input. */
  #stageKey(fusion: MatmulFusion): string {
    const input = fusion.input === "plain" ? "" : `+${fusion.input}`;
    return `matmul_stage:wg${this.workgroupSize}${input}`;
  }

  /**
   * Which kernel {@linkcode MatmulKernel.encode} uses for `w` and `nTokens` (for tests, benchmarks
   * and profiles): the pipeline key (e.g. `"matmul_rows:q4_0:sg:r2:t1:wg64"`), the kernel family,
   * and whether x is first copied to the uniform staging buffer (one extra dispatch).
   */
  plan(w: GpuWeight, nTokens: number, fusion: MatmulFusion = PLAIN): MatmulPlan {
    const rt = ROWS_TYPES[w.type];
    const rowsFit = this.matvec === "rows" && rt !== undefined && w.cols % rt.groupCols === 0;
    // Only "rows" kernels rotate in their store, for decode, when no row pair straddles two chunks.
    const pairs = nTokens === 1 && w.chunks.every((c) => c.rowStart % 2 === 0);
    const rows = (tokens: number, staged: boolean): MatmulPlan => {
      const f = { ...fusion, rope: !!fusion.rope && pairs };
      return { key: this.#rowsKey(w.type, tokens, f), kernel: "rows", staged, ropeInStore: f.rope };
    };
    const noRope = { ...fusion, rope: false };
    if (nTokens === 1) {
      if (rowsFit && (this.rowsInput === "subgroup" || w.cols * 4 <= STAGE_BYTES)) {
        return rows(1, this.rowsInput === "uniform");
      }
      if (this.matvec === "wg") {
        return { key: this.#wgKey(w.type, noRope), kernel: "wg", staged: false, ropeInStore: false };
      }
    } else if (rowsFit && this.rowsTokenBlock > 0) {
      return rows(this.rowsTokenBlock, false);
    }
    const tb = nTokens === 1 ? 1 : this.tokenBlock;
    return { key: this.key(w.type, tb, noRope), kernel: "v1", staged: false, ropeInStore: false };
  }

  /**
   * Loop iterations one invocation runs for `w` and `nTokens` with the kernel {@linkcode plan} picks
   * (encode throws above {@linkcode LOOP_BUDGET}: llvmpipe silently stops invocations at 65 535).
   */
  tripCount(w: GpuWeight, nTokens: number): number {
    const plan = this.plan(w, nTokens);
    if (plan.kernel === "rows") return w.cols / ROWS_TYPES[w.type]!.groupCols;
    if (plan.kernel === "wg") return Math.ceil(w.cols / 4 / this.workgroupSize) + this.workgroupSize;
    return matmulTripCount(w.cols, nTokens === 1 ? 1 : this.tokenBlock);
  }

  /**
   * Prepares the pipeline `key` for this kernel (the Gpu builds each key once and calls `make`, which
   * generates the WGSL, only then).
   */
  async #once(key: string, make: () => Omit<PipelineSpec, "key">): Promise<void> {
    this.#pipelines.set(key, await this.#gpu.pipeline({ key, make }));
  }

  #buildV1(type: number, tb: number, fusion: MatmulFusion): Promise<void> {
    return this.#once(this.key(type, tb, fusion), () => {
      const reader = weightReader(type);
      const code = expandWgsl("matmul.wgsl", { "matmul.wgsl": matmulWgsl, "weights.wgsl": reader.code }, {
        PARAMS: MatmulParams.wgsl(),
        FUSION: fusionWgsl(fusion),
      });
      return { file: `matmul.wgsl + ${reader.file}`, code, constants: { WG: this.workgroupSize, TB: tb } };
    });
  }

  #buildRows(type: number, input: RowsInput, tokens: number, fusion: MatmulFusion): Promise<void> {
    return this.#once(this.#rowsKey(type, tokens, fusion), () => this.#rowsSpec(type, input, tokens, fusion));
  }

  #rowsSpec(type: number, input: RowsInput, tokens: number, asked: MatmulFusion): Omit<PipelineSpec, "key"> {
    const fusion = rowsKernelFusion(input, asked);
    const rt = ROWS_TYPES[typeInfo(type).id]!;
    const { rows: r } = this.#rowsShape(type, tokens, fusion.rope);
    const rows = [...Array(r).keys()];
    const toks = [...Array(tokens).keys()];
    // x vec4 `c` of token t's group: the prologue (xIn), Σx² of the raw value, then the gain.
    const xLoads = (t: number) => {
      if (input === "subgroup") {
        // Lanes 0..7 load the 8 vec4 of a broadcast; wider subgroups' other lanes load duplicates.
        return [...Array(rt.x4 / 8).keys()].map((k) =>
          `{ let c = c4 + ${8 * k}u + lane; let v = xIn(xb${t} + c); ` +
          `ss${t} += select(0.0, xSquares(v), lane < 8u); let s = v * xGain(c) * MV_XSCALE; ` +
          [...Array(8).keys()].map((i) => `xs[${8 * k + i}] = subgroupBroadcast(s, ${i}u);`).join(" ") + " }"
        ).join("\n    ");
      }
      if (input === "uniform") {
        return [...Array(rt.x4).keys()].map((i) => `xs[${i}] = xIn(c4 + ${i}u) * MV_XSCALE;`).join(" ");
      }
      return [...Array(rt.x4).keys()].map((i) =>
        `{ let v = xIn(xb${t} + c4 + ${i}u); ss${t} += xSquares(v); xs[${i}] = v * xGain(c4 + ${i}u) * MV_XSCALE; }`
      ).join("\n    ");
    };
    const decls = [
      ...rows.map((j) => `let row${j} = min(r0 + ${j}u, lastRow);`),
      ...toks.map((t) => `let xb${t} = xBase + min(t0 + ${t}u, lastToken) * cols4;`),
      ...toks.map((t) => `var ss${t} = 0.0;`),
      ...rows.flatMap((j) => toks.map((t) => `var acc${j}_${t} = vec4<f32>(0.0);`)),
    ];
    // Decode: mvGroup per row; prefill: each row's weights once (mvLoad), then mvDot per token.
    const body = tokens === 1 ? [xLoads(0), ...rows.map((j) => `acc${j}_0 += mvGroup(row${j}, g, &xs);`)] : [
      ...rows.map((j) => `var w${j} = mvLoad(row${j}, g);`),
      ...toks.map((t) =>
        `${xLoads(t)}\n    ${rows.map((j) => `acc${j}_${t} += mvDot(&w${j}, &xs);`).join(" ")}`
      ),
    ];
    const sg = input === "subgroup";
    const norm = fusion.input === "norm";
    const value = (j: number, t: number) => `dot(acc${j}_${t}, vec4<f32>(1.0)) * xScale(ss${t})`;
    const store = (j: number, t: number, v: string) =>
      `if (r0 + ${j}u < P.rows && t0 + ${t}u < P.nTokens) { ` +
      `outStore(P.outOffset + (t0 + ${t}u) * P.outStride + r0 + ${j}u, ${v}); }`;
    // With RoPE, rows j and j + 1 (j even; r0 and the chunk's row0 are even) are one rotated pair.
    const pairStores = (j: number, t: number) =>
      `{ let v = ropePair(P.row0 + r0 + ${j}u, t0 + ${t}u, vec2<f32>(${value(j, t)}, ${value(j + 1, t)})); ` +
      `${store(j, t, "v.x")} ${store(j + 1, t, "v.y")} }`;
    const stores = [
      ...(norm && sg ? toks.map((t) => `ss${t} = subgroupAdd(ss${t});`) : []),
      ...(fusion.rope
        ? rows.filter((j) => j % 2 === 0).flatMap((j) => toks.map((t) => pairStores(j, t)))
        : rows.flatMap((j) => toks.map((t) => store(j, t, value(j, t))))),
    ];
    const code = expandWgsl("matmul_rows.wgsl", {
      "matmul_rows.wgsl": matmulRowsWgsl,
      "rows_type.wgsl": rt.code,
      "rope_angle.wgsl": ropeAngleWgsl,
    }, {
      PARAMS: MatmulParams.wgsl(),
      FUSION: fusionWgsl(fusion),
      X_DECL: input === "uniform"
        ? `@group(0) @binding(2) var<uniform> X: array<vec4<f32>, ${STAGE_BYTES / 16}>;`
        : "@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;",
      ROWS: String(r),
      TOKENS: String(tokens),
      LANE_PARAM: sg ? "@builtin(subgroup_invocation_id) sgLane: u32," : "",
      LANE_INIT: sg ? "lane = sgLane;" : "",
      DECLS: decls.join("\n  "),
      BODY: body.join("\n    "),
      STORES: stores.join("\n  "),
    });
    return { file: `matmul_rows.wgsl + ${rt.file}`, code, constants: { WG: this.workgroupSize } };
  }

  #buildWg(type: number, fusion: MatmulFusion): Promise<void> {
    return this.#once(this.#wgKey(type, fusion), () => this.#wgSpec(type, fusion));
  }

  #wgSpec(type: number, fusion: MatmulFusion): Omit<PipelineSpec, "key"> {
    const reader = weightReader(type);
    const sg = this.#gpu.hasSubgroups;
    const reduce = sg
      ? `let s = subgroupAdd(acc);
  partial[lid] = select(vec2<f32>(0.0), s, sgLane == 0u);
  workgroupBarrier();
  var total = vec2<f32>(0.0);
  if (lid == 0u) {
    for (var i = 0u; i < WG; i++) {
      total += partial[i];
    }
  }`
      : `partial[lid] = acc;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
  }
  let total = partial[0];`;
    const code = expandWgsl(
      "matmul_wg.wgsl",
      { "matmul_wg.wgsl": matmulWgWgsl, "weights.wgsl": reader.code },
      {
        PARAMS: MatmulParams.wgsl(),
        FUSION: fusionWgsl(fusion),
        SG_PARAMS: sg ? "@builtin(subgroup_invocation_id) sgLane: u32," : "",
        REDUCE: reduce,
      },
    );
    return { file: `matmul_wg.wgsl + ${reader.file}`, code, constants: { WG: this.workgroupSize } };
  }

  /** The x staging pipeline with `fusion`'s prologue (entry `norm` for RMSNorm, else `main`). */
  #buildStage(fusion: MatmulFusion): Promise<void> {
    const input = { input: fusion.input, accumulate: false };
    return this.#once(this.#stageKey(input), () => ({
      file: "matmul_stage.wgsl",
      code: expandWgsl("matmul_stage.wgsl", { "matmul_stage.wgsl": matmulStageWgsl }, {
        PARAMS: StageParams.wgsl(),
        FUSION: fusionWgsl(input, { store: false }),
      }),
      entryPoint: input.input === "norm" ? "norm" : "main",
      constants: { WG: this.workgroupSize },
    }));
  }

  #pipeline(key: string, w: GpuWeight): GPUComputePipeline {
    const pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      throw new TypeError(
        `Cannot encode matmul for "${w.name}": pipeline ${key} is not compiled; call prepare() or prepareProducts()`,
      );
    }
    return pipeline;
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
    checkShape(w, nTokens, xOffset);
    const fusion = fusionOf(w, opts);
    const plan = this.plan(w, nTokens, fusion);
    const trips = this.tripCount(w, nTokens);
    if (trips > LOOP_BUDGET) {
      throw new RangeError(
        `Cannot encode matmul for "${w.name}": ${plan.key} loops ${trips} times per invocation for a ${w.cols}-column row, over llvmpipe's budget of ${LOOP_BUDGET}`,
      );
    }
    const xBytes = (xOffset + nTokens * cols) * 4;
    if (xBytes > x.size) {
      throw new RangeError(
        `Cannot encode matmul for "${w.name}": x needs ${xBytes} bytes: current size is ${x.size}`,
      );
    }
    const aux = opts.norm?.weight ?? opts.swiglu;
    const auxBytes = opts.norm ? cols * 4 : xBytes;
    if (aux && auxBytes > aux.size) {
      const what = opts.norm ? "the RMSNorm weight" : "SwiGLU's up";
      throw new RangeError(
        `Cannot encode matmul for "${w.name}": ${what} needs ${auxBytes} bytes: current size is ${aux.size}`,
      );
    }
    const outEnd = outOffset + (nTokens - 1) * outStride + rows;
    if (outEnd * 4 > out.size) {
      throw new RangeError(
        `Cannot encode matmul for "${w.name}": out needs ${outEnd * 4} bytes: current size is ${out.size}`,
      );
    }
    const rope = opts.rope;
    const ropeDim = rope ? rope.ropeDim ?? rope.headDim : 0;
    if (
      rope &&
      (rope.headDim % 2 !== 0 || ropeDim % 2 !== 0 || ropeDim > rope.headDim || rows % rope.headDim !== 0)
    ) {
      throw new RangeError(
        `Cannot encode matmul for "${w.name}" with RoPE: headDim ${rope.headDim} and ropeDim ${ropeDim} must be ` +
          `even, ropeDim ≤ headDim, and the ${rows} rows whole heads`,
      );
    }
    const pipeline = this.#pipeline(plan.key, w);
    const eps = opts.norm?.eps ?? 0;
    let xBinding: GPUBuffer | GPUBufferBinding = x;
    let auxBinding = aux;
    const stagedKey = [pass, x, xOffset, cols, fusion.input, aux, eps] as const;
    if (plan.staged) {
      // x, with the prologue applied, goes to the uniform buffer; the product fuses only the store.
      this.#staging ??= this.#gpu.createBuffer("matmul: staged x", STAGE_BYTES, 0x40 | 0x80 | 0x08);
      const current = this.#staged?.dispatches === this.#gpu.counters.dispatches &&
        this.#staged.key.every((v, i) => v === stagedKey[i]);
      if (!current) {
        const stage = this.#pipeline(this.#stageKey(fusion), w);
        const n4 = cols / 4;
        const uniform = this.#gpu.uniform(StageParams, { n4, x4: xOffset / 4, cols, eps });
        const groups = fusion.input === "norm" ? 1 : Math.ceil(n4 / this.workgroupSize);
        this.#gpu.dispatch(pass, stage, [uniform, x, this.#staging, undefined, aux], groups);
      }
      xBinding = { buffer: this.#staging, offset: 0, size: STAGE_BYTES };
      auxBinding = undefined;
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
        eps,
        row0: c.rowStart,
        pos0: rope?.pos0 ?? 0,
        headDim: rope?.headDim ?? 2,
        ropeDim,
        thetaScale: rope ? ropeThetaScale(rope.freqBase, ropeDim) : 1,
        freqScale: rope?.freqScale ?? 1,
        hasFactors: rope?.freqFactors ? 1 : 0,
      });
      let workgroups: number | [number, number, number];
      if (plan.kernel === "rows") {
        const tokens = nTokens === 1 ? 1 : this.rowsTokenBlock;
        const inv = Math.ceil(c.rowCount / this.#rowsShape(w.type, tokens, plan.ropeInStore).rows);
        workgroups = [Math.ceil(inv / this.workgroupSize), Math.ceil(nTokens / tokens), 1];
      } else if (plan.kernel === "wg") {
        workgroups = c.rowCount;
      } else {
        workgroups = Math.ceil((c.rowCount * blocks) / this.workgroupSize);
      }
      const factors = plan.ropeInStore ? rope!.freqFactors ?? this.#noFactors : undefined;
      this.#gpu.dispatch(pass, pipeline, [uniform, c.buffer, xBinding, out, auxBinding, factors], workgroups);
    }
    this.#staged = plan.staged ? { key: stagedKey, dispatches: this.#gpu.counters.dispatches } : undefined;
    if (rope && !plan.ropeInStore) {
      this.#rope.encode(pass, {
        x: out,
        nTokens,
        nHeads: rows / rope.headDim,
        headDim: rope.headDim,
        ropeDim,
        pos0: rope.pos0,
        freqBase: rope.freqBase,
        freqScale: rope.freqScale,
        freqFactors: rope.freqFactors,
        offset: outOffset,
        rowStride: outStride,
      });
    }
  }

  /** A stand-in `rope_freqs` binding when the model has none (hasFactors = 0). */
  get #noFactors(): GPUBuffer {
    return this.#noFactorsBuffer ??= this.#gpu.upload("matmul: no rope factors", new Float32Array([1]));
  }
}

/** One product to prepare: a weight, a token count class (1 = decode, more = prefill) and a fusion. */
export interface MatmulProduct {
  /** The weight. */
  w: GpuWeight;
  /** Tokens per product (only 1 versus more matters). */
  nTokens: number;
  /** Fused steps. */
  fusion: MatmulFusion;
}

/** What {@linkcode MatmulKernel.plan} returns. */
export interface MatmulPlan {
  /** Pipeline key, e.g. `"matmul_rows:q4_0:sg:r2:t1:wg64+norm+rope"`. */
  key: string;
  /** Kernel family. */
  kernel: "v1" | "rows" | "wg";
  /** Whether x is first copied (and transformed) into the uniform staging buffer: one more dispatch. */
  staged: boolean;
  /** Whether RoPE is applied in the product's store (else a rope dispatch follows when asked for). */
  ropeInStore: boolean;
}

/**
 * What a "rows" kernel itself fuses: everything asked, except that from the uniform staging buffer x
 * arrives with the prologue already applied by the stage dispatch.
 */
function rowsKernelFusion(input: RowsInput, fusion: MatmulFusion): MatmulFusion {
  return input === "uniform" ? { ...fusion, input: "plain" } : fusion;
}

/** The fusion `opts` ask for (RMSNorm and SwiGLU exclude each other: the product has one input). */
function fusionOf(w: GpuWeight, opts: MatmulEncodeOptions): MatmulFusion {
  if (opts.norm && opts.swiglu) {
    throw new RangeError(`Cannot encode matmul for "${w.name}": norm and swiglu cannot both be fused`);
  }
  if (opts.rope && opts.accumulate) {
    throw new RangeError(`Cannot encode matmul for "${w.name}": rope and accumulate cannot both be fused`);
  }
  const input = opts.norm ? "norm" : opts.swiglu ? "swiglu" : "plain";
  return { input, accumulate: !!opts.accumulate, rope: !!opts.rope };
}

function checkShape(w: GpuWeight, nTokens: number, xOffset: number): void {
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
}
