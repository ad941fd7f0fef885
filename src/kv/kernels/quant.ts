/**
 * KIVI quantization of KV rows into a quantized segment, and the row copy into the residual ring
 * (`wgsl/kv_quant.wgsl`). The layouts are {@linkcode QuantLayout}'s (`src/kv/segment.ts`).
 *
 * @module
 */

import type { Binding, Gpu } from "../../gpu/gpu.ts";
import { params } from "../../gpu/params.ts";
import { expandWgsl } from "../../gpu/wgsl.ts";
import source from "../../../wgsl/kv_quant.wgsl" with { type: "text" };
import type { QuantLayout, ScaleFormat } from "../segment.ts";
import { checkTrips, WG } from "./common.ts";

const FILE = "kv_quant.wgsl";

const QuantParams = params("QuantParams", {
  nKvHeads: "u32",
  headDim: "u32",
  channels: "u32",
  thin: "u32",
  srcCapacity: "u32",
  row0: "u32",
  nRows: "u32",
  capacity: "u32",
  group: "u32",
  groups: "u32",
  wpg: "u32",
  codeBase: "u32",
  scaleBase: "u32",
  levels: "f32",
  invLevels: "f32",
});

/** Rows of f32 keys or values `[nKvHeads, capacity, D]`; cache row i is read from slot `i mod capacity`. */
export interface RowsArg {
  /** The buffer (read). */
  buffer: Binding;
  /** Slots per KV head (a ring when rows wrap; the stage's L otherwise). */
  capacity: number;
}

/** Arguments of {@linkcode QuantKernel.quantKeys} and {@linkcode QuantKernel.quantValues}. */
export interface QuantArgs {
  /** Source rows. */
  src: RowsArg;
  /** The segment's buffer of codes and pairs (written). */
  dst: Binding;
  /** The segment's layout. */
  layout: QuantLayout;
  /** Stored key channels `[nKvHeads, keyChannels]` u32 (thin keys), or null for all D. */
  channels?: Binding | null;
  /** First cache row to quantize (keys: a multiple of G). */
  row0: number;
  /** Rows to quantize (keys: a multiple of G). */
  nRows: number;
}

/** Arguments of {@linkcode QuantKernel.copyRows}. */
export interface CopyRowsArgs {
  /** Source keys. */
  kSrc: RowsArg;
  /** Source values (same capacity as the keys). */
  vSrc: Binding;
  /** Destination keys `[nKvHeads, capacity, D]` (written at slot `row mod capacity`). */
  kDst: Binding;
  /** Destination values. */
  vDst: Binding;
  /** Destination slots per head. */
  capacity: number;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head (multiple of 4). */
  headDim: number;
  /** First cache row. */
  row0: number;
  /** Rows to copy. */
  nRows: number;
}

/**
 * The KIVI quantizer for one code width of keys and one of values, and one scale format.
 *
 * @example
 * ```ts ignore
 * const quant = await QuantKernel.create(gpu, { keyBits: 2, valueBits: 2, scales: "f16" });
 * quant.quantKeys(pass, { src: { buffer: stage.keys, capacity: L }, dst: seg.keys, layout, row0: 0, nRows: 256 });
 * ```
 */
export class QuantKernel {
  /** Scale format of the pairs this kernel writes. */
  readonly scales: ScaleFormat;
  readonly #gpu: Gpu;
  readonly #keys: GPUComputePipeline;
  readonly #values: GPUComputePipeline;
  readonly #copy: GPUComputePipeline;
  readonly #keyBits: number;
  readonly #valueBits: number;

  private constructor(
    gpu: Gpu,
    bits: { keyBits: number; valueBits: number; scales: ScaleFormat },
    pipelines: GPUComputePipeline[],
  ) {
    this.#gpu = gpu;
    this.scales = bits.scales;
    this.#keyBits = bits.keyBits;
    this.#valueBits = bits.valueBits;
    [this.#keys, this.#values, this.#copy] = pipelines;
  }

  /** Compiles (or fetches from the cache) the pipelines. */
  static async create(
    gpu: Gpu,
    bits: { keyBits: number; valueBits: number; scales: ScaleFormat },
  ): Promise<QuantKernel> {
    const code = expandWgsl(FILE, { [FILE]: source }, { QUANT_PARAMS: QuantParams.wgsl() });
    const f16 = bits.scales === "f16";
    const build = (entryPoint: string, b: number) =>
      gpu.pipeline({
        key: `${entryPoint}:b${b}:${bits.scales}:wg${WG}`,
        file: FILE,
        code,
        entryPoint,
        constants: { WG, BITS: b, F16: f16 ? 1 : 0 },
      });
    const pipelines = await Promise.all([
      build("quant_keys", bits.keyBits),
      build("quant_values", bits.valueBits),
      build("copy_rows", 2),
    ]);
    return new QuantKernel(gpu, bits, pipelines);
  }

  /** Encodes the quantization of key rows `[row0, row0 + nRows)` per channel, in whole groups of G. */
  quantKeys(pass: GPUComputePassEncoder, a: QuantArgs): void {
    const l = a.layout;
    this.#check(l, "keys", l.keyBits, this.#keyBits);
    if (a.row0 % l.group !== 0 || a.nRows % l.group !== 0 || a.row0 + a.nRows > l.keyCapacity) {
      throw new RangeError(
        `Cannot quantize keys: rows ${a.row0}…${a.row0 + a.nRows - 1} must be whole groups of ${l.group} ` +
          `within the capacity ${l.keyCapacity}`,
      );
    }
    if (a.nRows === 0) return;
    const cpw = 32 / l.keyBits;
    checkTrips("key quantization", 2 * l.group + l.group / cpw, `group ${l.group}`);
    const u = this.#uniform(l, a, {
      channels: l.keyChannels,
      thin: a.channels ? 1 : 0,
      capacity: l.keyCapacity,
      group: l.group,
      groups: 0,
      wpg: 0,
      codeBase: 0,
      scaleBase: l.keyScaleBase,
      bits: l.keyBits,
    });
    this.#gpu.dispatch(
      pass,
      this.#keys,
      [u, a.src.buffer, a.channels ?? a.src.buffer, a.dst],
      Math.ceil((l.nKvHeads * (a.nRows / l.group) * l.keyChannels) / WG),
    );
  }

  /** Encodes the quantization of value rows `[row0, row0 + nRows)` per token, in groups of Gv channels. */
  quantValues(pass: GPUComputePassEncoder, a: QuantArgs): void {
    const l = a.layout;
    this.#check(l, "values", l.valueBits, this.#valueBits);
    if (a.row0 + a.nRows > l.valueCapacity) {
      throw new RangeError(
        `Cannot quantize values: rows ${a.row0}…${
          a.row0 + a.nRows - 1
        } exceed the capacity ${l.valueCapacity}`,
      );
    }
    if (a.nRows === 0) return;
    const cpw = 32 / l.valueBits;
    checkTrips("value quantization", 2 * l.valueGroup + l.valueWordsPerGroup * cpw, `group ${l.valueGroup}`);
    const u = this.#uniform(l, a, {
      channels: l.headDim,
      thin: 0,
      capacity: l.valueCapacity,
      group: l.valueGroup,
      groups: l.valueGroups,
      wpg: l.valueWordsPerGroup,
      codeBase: l.valueBase,
      scaleBase: l.valueScaleBase,
      bits: l.valueBits,
    });
    this.#gpu.dispatch(
      pass,
      this.#values,
      [u, a.src.buffer, a.src.buffer, a.dst], // channels unused: any read-only binding
      Math.ceil((l.nKvHeads * a.nRows * l.valueGroups) / WG),
    );
  }

  /** Encodes the copy of k and v rows `[row0, row0 + nRows)` into a ring (slot = row mod capacity). */
  copyRows(pass: GPUComputePassEncoder, a: CopyRowsArgs): void {
    if (a.nRows > a.capacity || a.headDim % 4 !== 0) {
      throw new RangeError(
        `Cannot copy KV rows: ${a.nRows} rows exceed the ring capacity ${a.capacity} (or headDim ${a.headDim} is not a multiple of 4)`,
      );
    }
    if (a.nRows === 0) return;
    const u = this.#gpu.uniform(QuantParams, {
      nKvHeads: a.nKvHeads,
      headDim: a.headDim,
      channels: 0,
      thin: 0,
      srcCapacity: a.kSrc.capacity,
      row0: a.row0,
      nRows: a.nRows,
      capacity: a.capacity,
      group: 0,
      groups: 0,
      wpg: 0,
      codeBase: 0,
      scaleBase: 0,
      levels: 0,
      invLevels: 0,
    });
    this.#gpu.dispatch(
      pass,
      this.#copy,
      [u, a.kSrc.buffer, a.vSrc, a.kDst, a.vDst],
      Math.ceil((a.nKvHeads * a.nRows * (a.headDim / 4)) / WG),
    );
  }

  #check(l: QuantLayout, what: string, bits: number, compiled: number): void {
    if (bits !== compiled || l.scales !== this.scales) {
      throw new RangeError(
        `Cannot quantize ${what}: this kernel writes ${compiled}-bit codes with ${this.scales} pairs, ` +
          `the segment wants ${bits}-bit codes with ${l.scales} pairs`,
      );
    }
  }

  #uniform(
    l: QuantLayout,
    a: QuantArgs,
    v: {
      channels: number;
      thin: number;
      capacity: number;
      group: number;
      groups: number;
      wpg: number;
      codeBase: number;
      scaleBase: number;
      bits: number;
    },
  ): GPUBufferBinding {
    const levels = 2 ** v.bits - 1;
    return this.#gpu.uniform(QuantParams, {
      nKvHeads: l.nKvHeads,
      headDim: l.headDim,
      channels: v.channels,
      thin: v.thin,
      srcCapacity: a.src.capacity,
      row0: a.row0,
      nRows: a.nRows,
      capacity: v.capacity,
      group: v.group,
      groups: v.groups,
      wpg: v.wpg,
      codeBase: v.codeBase,
      scaleBase: v.scaleBase,
      levels,
      invLevels: Math.fround(1 / levels),
    });
  }
}
