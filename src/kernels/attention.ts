/**
 * KV-cache write and causal grouped-query attention on the GPU (`wgsl/attention.wgsl`).
 *
 * Attention is split-K ("flash-decoding"), one kernel family for prefill and decode: pass 1 gives one
 * invocation to each (token, key chunk of `chunk` positions, head) and writes the chunk's max logit,
 * Σexp and unnormalised Σp·v into a scratch; pass 2 merges the chunks per (token, head, 4 channels).
 * No invocation walks the whole context, because llvmpipe silently stops an invocation after 65535
 * loop iterations; {@linkcode AttentionKernel.encode} checks the per-invocation trip counts.
 *
 * @module
 */

import type { Binding, Gpu } from "../gpu/gpu.ts";
import { params } from "../gpu/params.ts";
import { expandWgsl } from "../gpu/wgsl.ts";
import source from "../../wgsl/attention.wgsl" with { type: "text" };
import quantSource from "../../wgsl/kv_quant_attend.wgsl" with { type: "text" };
import onlineSoftmax from "../../wgsl/online_softmax.wgsl" with { type: "text" };
import type { QuantFormat, QuantLayout } from "../kv/segment.ts";

const FILE = "attention.wgsl";
const QUANT_FILE = "kv_quant_attend.wgsl";
const WG = 64;
const MAX_HEAD_DIM = 256; // MAX_VEC4 · 4 in the shader
/** llvmpipe stops an invocation after 65535 loop iterations; stay well below. */
const MAX_TRIPS = 60000;

// Uniform struct of `kv_store` (binding 0).
const KvStoreParams = params("KvStoreParams", {
  nTokens: "u32",
  nKvHeads: "u32",
  headDim: "u32",
  capacity: "u32",
  pos0: "u32",
  kOffset: "u32",
  kStride: "u32",
  vOffset: "u32",
  vStride: "u32",
  kCacheOffset: "u32",
  vCacheOffset: "u32",
});

// Uniform struct of `attend_chunks` and `reduce_chunks` (binding 0).
const AttnParams = params("AttnParams", {
  nTokens: "u32",
  nHeads: "u32",
  nKvHeads: "u32",
  headDim: "u32",
  pos0: "u32",
  capacity: "u32",
  nChunks: "u32",
  qOffset: "u32",
  qStride: "u32",
  kOffset: "u32",
  vOffset: "u32",
  outOffset: "u32",
  outStride: "u32",
  scale: "f32",
  thinLen: "u32",
  thinCapacity: "u32",
  thinStride: "u32",
  nKeep: "u32",
});

// Uniform struct of `attend_quant` (binding 0, kv_quant_attend.wgsl).
const QuantAttnParams = params("QuantAttnParams", {
  nTokens: "u32",
  nHeads: "u32",
  nKvHeads: "u32",
  headDim: "u32",
  pos0: "u32",
  nChunks: "u32",
  qOffset: "u32",
  qStride: "u32",
  scale: "f32",
  keyLen: "u32",
  valueLen: "u32",
  keyChannels: "u32",
  thin: "u32",
  blockCap: "u32",
  groupCap: "u32",
  keyScaleBase: "u32",
  valueCap: "u32",
  valueGroups: "u32",
  valueWpg: "u32",
  valueBase: "u32",
  valueScaleBase: "u32",
  ringCap: "u32",
});

/** Options for {@linkcode AttentionKernel.create}. */
export interface AttentionOptions {
  /** Key positions per pass-1 invocation (the `CHUNK` override); default 128. */
  chunk?: number;
}

/** Arguments of {@linkcode AttentionKernel.storeKv}; offsets and strides in f32 elements, multiples of 4. */
export interface KvStoreArgs {
  /** New key rows `[nTokens, kStride]`, KV head h at columns h·headDim (read). */
  k: Binding;
  /** New value rows `[nTokens, vStride]` (read). */
  v: Binding;
  /** Key cache `[nKvHeads, capacity, headDim]` from `kCacheOffset` (written). */
  kCache: Binding;
  /** Value cache `[nKvHeads, capacity, headDim]` from `vCacheOffset` (written). */
  vCache: Binding;
  /** Rows to store. */
  nTokens: number;
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head (multiple of 4). */
  headDim: number;
  /** Positions per head in the caches. */
  capacity: number;
  /** Cache position of row 0; rows land at pos0 … pos0 + nTokens − 1 (mod capacity for a ring). */
  pos0: number;
  /** The caches are rings: row i lands in slot `i mod capacity` (the KIVI residual); default false. */
  ring?: boolean;
  /** Element offset of row 0 in `k`. */
  kOffset?: number;
  /** Elements between k rows; default `nKvHeads · headDim`. */
  kStride?: number;
  /** Element offset of row 0 in `v`. */
  vOffset?: number;
  /** Elements between v rows; default `nKvHeads · headDim`. */
  vStride?: number;
  /** Element offset of this layer's key cache in `kCache`. */
  kCacheOffset?: number;
  /** Element offset of this layer's value cache in `vCache`. */
  vCacheOffset?: number;
}

/**
 * The thin segment of a compressed layer (ThinK): the first `length` kept tokens with `nKeep` key
 * channels, in rows of `stride` f32.
 */
export interface ThinSegmentArgs {
  /**
   * Thin keys `[nKvHeads, capacity, stride]` f32: kept channels in ascending order, padding zero, the
   * buffer a multiple of 16 bytes (read).
   */
  keys: Binding;
  /** Thin values `[nKvHeads, capacity, headDim]` f32 (read). */
  values: Binding;
  /** Kept channel ids `[nKvHeads, nKeep]` u32, ascending (read). */
  channels: Binding;
  /** Rows in use (key indices 0 … length − 1). */
  length: number;
  /** Rows allocated per KV head. */
  capacity: number;
  /** Kept channels. */
  nKeep: number;
  /** f32 per key row (≥ nKeep; any value: rows are read as vec4 from their unaligned start). */
  stride: number;
}

/**
 * Arguments of {@linkcode AttentionKernel.encodeSegments}: attention over `[thin | tail]`, the tail
 * being the usual full-width cache given by `kCache`/`vCache`/`capacity`. `pos0` is the *tail row* of
 * query row 0 (not its RoPE position): query t attends all thin rows and tail rows 0 … pos0 + t.
 */
export interface SegmentAttentionArgs extends AttentionArgs {
  /** The thin segment in front of the tail. */
  thin: ThinSegmentArgs;
}

/**
 * A KIVI layer as attention reads it: the quantized segment (codes + pairs, laid out as
 * {@linkcode QuantLayout}) in front of the full-precision residual ring.
 */
export interface QuantSegmentArgs {
  /** The segment's layout. */
  layout: QuantLayout;
  /** The segment's buffer: key codes, key pairs, value codes, value pairs, u32 words (read). */
  buffer: Binding;
  /** Stored key channels `[nKvHeads, keyChannels]` u32 (thin keys), or null for all D (read). */
  channels: Binding | null;
  /** Quantized key rows Kq (a multiple of the group). */
  keyLength: number;
  /** Quantized value rows Vq (≤ Kq). */
  valueLength: number;
}

/** The residual ring of a KIVI layer: cache row i at slot `i mod capacity`, f32, all D channels. */
export interface RingArgs {
  /** Keys `[nKvHeads, capacity, headDim]` (read). */
  keys: Binding;
  /** Values `[nKvHeads, capacity, headDim]` (read). */
  values: Binding;
  /** Slots per KV head. */
  capacity: number;
}

/**
 * Arguments of {@linkcode AttentionKernel.encodeQuant}. `pos0` is the cache row of query row 0: query t
 * attends rows 0 … pos0 + t, rows below Kq from codes and the rest from the ring, which must hold rows
 * `min(Kq, Vq) … pos0 + nTokens − 1`.
 */
export interface QuantAttentionArgs
  extends Omit<AttentionArgs, "kCache" | "vCache" | "capacity" | "kOffset" | "vOffset"> {
  /** The quantized segment. */
  quant: QuantSegmentArgs;
  /** The residual ring. */
  ring: RingArgs;
}

/** Scratch for the chunk partials, from {@linkcode AttentionKernel.createScratch}. */
export interface AttentionScratch {
  /** Unnormalised Σp·v per (token, chunk, head): `[slots, headDim]` f32. */
  acc: GPUBuffer;
  /** (max logit, Σexp) per (token, chunk, head): `[slots, 2]` f32. */
  ml: GPUBuffer;
}

/** The largest call a scratch must serve (see {@linkcode AttentionKernel.scratchSlots}). */
export interface AttentionScratchShape {
  /** Query rows per call. */
  nTokens: number;
  /** Query heads. */
  nHeads: number;
  /** Channels per head. */
  headDim: number;
  /** Largest `pos0 + nTokens` (the context the last query sees). */
  context: number;
}

/** Arguments of {@linkcode AttentionKernel.encode}; offsets and strides in f32 elements, multiples of 4. */
export interface AttentionArgs {
  /** Queries `[nTokens, qStride]`, head h at columns h·headDim (read). */
  q: Binding;
  /** Key cache `[nKvHeads, capacity, headDim]` from `kOffset` (read). */
  kCache: Binding;
  /** Value cache `[nKvHeads, capacity, headDim]` from `vOffset` (read). */
  vCache: Binding;
  /** Output `[nTokens, outStride]` (written; must not alias the others). */
  out: Binding;
  /** Chunk partials, large enough for this call. */
  scratch: AttentionScratch;
  /** Query rows; row t sits at absolute position pos0 + t and attends cache positions 0 … pos0 + t. */
  nTokens: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads (divides nHeads); query head h reads KV head h / (nHeads / nKvHeads). */
  nKvHeads: number;
  /** Channels per head (multiple of 4, ≤ 256). */
  headDim: number;
  /** Positions per head in the caches. */
  capacity: number;
  /** Absolute position of query row 0 (the cache already holds positions 0 … pos0 + nTokens − 1). */
  pos0: number;
  /** Element offset of row 0 in `q`. */
  qOffset?: number;
  /** Elements between q rows; default `nHeads · headDim`. */
  qStride?: number;
  /** Element offset of this layer's key cache. */
  kOffset?: number;
  /** Element offset of this layer's value cache. */
  vOffset?: number;
  /** Element offset of row 0 in `out`. */
  outOffset?: number;
  /** Elements between out rows; default `nHeads · headDim`. */
  outStride?: number;
  /** Logit scale; default `1/√headDim`. */
  scale?: number;
}

/**
 * Value channels `attend_quant` accumulates in registers at a time: the whole value group up to 32, else
 * the largest power of two ≤ 32 dividing it (a whole number of code words, see `KvCache.create`).
 */
function valueSubGroup(valueGroup: number): number {
  if (valueGroup <= 32) return valueGroup;
  let sub = 32;
  while (valueGroup % sub !== 0) sub /= 2;
  return sub;
}

function quantKey(f: QuantFormat, chunk: number): string {
  return `attention:quant:k${f.keyBits}v${f.valueBits}:g${f.group}:vg${f.valueGroup}:${f.scales}:c${chunk}:wg${WG}`;
}

function requireVec4(what: string, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (v % 4 !== 0) {
      throw new RangeError(
        `Cannot encode ${what}: ${name} must be a multiple of 4 (rows are read as vec4): current value is ${v}`,
      );
    }
  }
}

/**
 * KV-cache write ({@linkcode AttentionKernel.storeKv}) and split-K causal GQA attention
 * ({@linkcode AttentionKernel.encode}).
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "../gpu/gpu.ts";
 * import { AttentionKernel } from "./attention.ts";
 * const gpu = await Gpu.create();
 * const attn = await AttentionKernel.create(gpu);
 * const shape = { nTokens: 1, nHeads: 2, nKvHeads: 1, headDim: 4, capacity: 16, pos0: 0 };
 * const q = gpu.upload("q", new Float32Array(8).fill(1)), kv = gpu.upload("kv", new Float32Array(4).fill(1));
 * const kCache = gpu.createBuffer("kc", 16 * 16), vCache = gpu.createBuffer("vc", 16 * 16), out = gpu.createBuffer("o", 32);
 * const scratch = attn.createScratch({ nTokens: 1, nHeads: 2, headDim: 4, context: 16 });
 * const enc = gpu.device.createCommandEncoder();
 * const pass = enc.beginComputePass();
 * attn.storeKv(pass, { k: kv, v: kv, kCache, vCache, ...shape });
 * attn.encode(pass, { q, kCache, vCache, out, scratch, ...shape });
 * pass.end();
 * gpu.submit(enc);
 * console.log(new Float32Array(await gpu.read(out, 0, 32))); // all ones
 * ```
 */
export class AttentionKernel {
  /** Key positions per pass-1 invocation. */
  readonly chunk: number;
  readonly #gpu: Gpu;
  readonly #store: GPUComputePipeline;
  readonly #attend: GPUComputePipeline;
  readonly #reduce: GPUComputePipeline;
  readonly #segments: GPUComputePipeline;
  readonly #quant = new Map<string, GPUComputePipeline>();

  private constructor(
    gpu: Gpu,
    chunk: number,
    store: GPUComputePipeline,
    attend: GPUComputePipeline,
    reduce: GPUComputePipeline,
    segments: GPUComputePipeline,
  ) {
    this.#gpu = gpu;
    this.chunk = chunk;
    this.#store = store;
    this.#attend = attend;
    this.#reduce = reduce;
    this.#segments = segments;
  }

  /** Compiles (or fetches from the cache) the three pipelines. */
  static async create(gpu: Gpu, options: AttentionOptions = {}): Promise<AttentionKernel> {
    const chunk = options.chunk ?? 128;
    if (!Number.isInteger(chunk) || chunk < 1) {
      throw new RangeError(
        `Cannot create attention kernel: chunk must be a positive integer: current value is ${chunk}`,
      );
    }
    const code = expandWgsl(FILE, { [FILE]: source, "online_softmax.wgsl": onlineSoftmax }, {
      KV_PARAMS: KvStoreParams.wgsl(),
      ATTN_PARAMS: AttnParams.wgsl(),
    });
    const build = (entryPoint: string, key: string) =>
      gpu.pipeline({ key, file: FILE, code, entryPoint, constants: { WG, CHUNK: chunk } });
    const [store, attend, reduce, segments] = await Promise.all([
      build("kv_store", `kv_store:wg${WG}`),
      build("attend_chunks", `attention:chunks:c${chunk}:wg${WG}`),
      build("reduce_chunks", `attention:reduce:c${chunk}:wg${WG}`),
      build("attend_segments", `attention:segments:c${chunk}:wg${WG}`),
    ]);
    return new AttentionKernel(gpu, chunk, store, attend, reduce, segments);
  }

  /**
   * Compiles the pass-1 variant of {@linkcode AttentionKernel.encodeQuant} for a KIVI format (code widths,
   * groups and pair format are override constants). Call once before encoding (encoding is synchronous).
   */
  async prepareQuant(f: QuantFormat): Promise<void> {
    const key = quantKey(f, this.chunk);
    if (this.#quant.has(key)) return;
    const code = expandWgsl(QUANT_FILE, { [QUANT_FILE]: quantSource, "online_softmax.wgsl": onlineSoftmax }, {
      QUANT_ATTN_PARAMS: QuantAttnParams.wgsl(),
    });
    const pipeline = await this.#gpu.pipeline({
      key,
      file: QUANT_FILE,
      code,
      entryPoint: "attend_quant",
      constants: {
        WG,
        CHUNK: this.chunk,
        KBITS: f.keyBits,
        VBITS: f.valueBits,
        GROUP: f.group,
        VGROUP: f.valueGroup,
        VSUB: valueSubGroup(f.valueGroup),
        F16: f.scales === "f16" ? 1 : 0,
      },
    });
    this.#quant.set(key, pipeline);
  }

  /**
   * Loop trips per invocation of `attend_quant` (llvmpipe's limit): per chunk, every key is either a
   * quantized row (its share of the block's channel loop, the value dequantization) or a ring row.
   */
  quantTrips(l: QuantLayout): number {
    const d4 = l.headDim / 4, kc = l.keyChannels, kcpw = 32 / l.keyBits, vcpw = 32 / l.valueBits;
    // a block of kcpw quantized rows: the key channel loop, the softmax, then the values either as one
    // block (per group and sub-group of ≤ 32 channels) or row by row (a block that reaches the ring)
    const sub = valueSubGroup(l.valueGroup), subWords = Math.ceil(sub * l.valueBits / 32);
    const n4 = Math.min(vcpw, sub) / 4;
    const keys = kc * (1 + kcpw / 4) + kcpw / 4 + d4 + kcpw;
    const valuesBlock = l.valueGroups *
      (1 + (l.valueGroup / sub) * (1 + kcpw * (1 + subWords * (1 + n4)) + sub / 4));
    const valuesRows = kcpw * (1 + Math.max(l.valueGroups * (1 + l.valueWordsPerGroup * (1 + n4)), d4));
    const perQuantKey = (keys + Math.max(valuesBlock, valuesRows)) / kcpw, perRingKey = 2 * d4 + 1;
    const groups = (Math.ceil(this.chunk / l.group) + 1) * kc;
    return 2 * d4 + kc + groups + this.chunk * Math.max(perQuantKey, perRingKey);
  }

  /**
   * Encodes attention over a KIVI layer, `[quantized | residual ring]` in row order, one softmax at
   * scale `1/√headDim`: codes are dequantized in registers (`code · scale + min`), thin keys use q
   * gathered at their channels. Needs {@linkcode AttentionKernel.prepareQuant} for the layout's format.
   */
  encodeQuant(pass: GPUComputePassEncoder, a: QuantAttentionArgs): void {
    const { nTokens, nHeads, nKvHeads, headDim, pos0 } = a;
    const l = a.quant.layout, qa = a.quant;
    const what = "quantized attention";
    const pipeline = this.#quant.get(quantKey(l, this.chunk));
    if (!pipeline) {
      throw new Error(
        `InternalError: ${what} for ${quantKey(l, this.chunk)} was not prepared (prepareQuant)`,
      );
    }
    const width = nHeads * headDim;
    const v = {
      headDim,
      qOffset: a.qOffset ?? 0,
      qStride: a.qStride ?? width,
      outOffset: a.outOffset ?? 0,
      outStride: a.outStride ?? width,
    };
    requireVec4(what, v);
    if (headDim > MAX_HEAD_DIM || headDim < 4 || l.headDim !== headDim || l.nKvHeads !== nKvHeads) {
      throw new RangeError(
        `Cannot encode ${what}: headDim must be in [4, ${MAX_HEAD_DIM}] and match the segment's ${l.headDim} ` +
          `(KV heads ${l.nKvHeads}): current values are ${headDim}, ${nKvHeads}`,
      );
    }
    if (nKvHeads < 1 || nHeads % nKvHeads !== 0) {
      throw new RangeError(
        `Cannot encode ${what}: nKvHeads must divide nHeads ${nHeads}: current value is ${nKvHeads}`,
      );
    }
    const Kq = qa.keyLength, Vq = qa.valueLength;
    if (
      Kq % l.group !== 0 || Kq > l.keyCapacity || Vq > Kq || Vq > l.valueCapacity || pos0 < Kq ||
      pos0 + nTokens - Math.min(Kq, Vq) > a.ring.capacity
    ) {
      throw new RangeError(
        `Cannot encode ${what}: need whole key groups (${l.group}) within capacity, values ≤ keys ≤ the first ` +
          `query row, and the ring to hold every f32 row: current values are keys ${Kq}/${l.keyCapacity}, ` +
          `values ${Vq}/${l.valueCapacity}, first query row ${pos0}, ${nTokens} queries, ring ${a.ring.capacity}`,
      );
    }
    const context = pos0 + nTokens;
    const nChunks = this.chunks(context);
    const trips = this.quantTrips(l);
    if (trips >= MAX_TRIPS || 2 * nChunks >= MAX_TRIPS) {
      throw new RangeError(
        `Cannot encode ${what}: ${Math.max(trips, 2 * nChunks)} loop trips per invocation would exceed ` +
          `llvmpipe's limit (chunk ${this.chunk}, headDim ${headDim}, context ${context})`,
      );
    }
    const slots = nTokens * nChunks * nHeads;
    if (slots * headDim * 4 > a.scratch.acc.size || slots * 8 > a.scratch.ml.size) {
      throw new RangeError(
        `Cannot encode ${what}: the scratch holds fewer than the ${slots} partial slots this call needs`,
      );
    }
    const scale = a.scale ?? 1 / Math.sqrt(headDim);
    const u = this.#gpu.uniform(QuantAttnParams, {
      nTokens,
      nHeads,
      nKvHeads,
      headDim,
      pos0,
      nChunks,
      qOffset: v.qOffset,
      qStride: v.qStride,
      scale,
      keyLen: Kq,
      valueLen: Vq,
      keyChannels: l.keyChannels,
      thin: qa.channels ? 1 : 0,
      blockCap: l.keyCapacity * l.keyBits / 32,
      groupCap: l.keyCapacity / l.group,
      keyScaleBase: l.keyScaleBase,
      valueCap: l.valueCapacity,
      valueGroups: l.valueGroups,
      valueWpg: l.valueWordsPerGroup,
      valueBase: l.valueBase,
      valueScaleBase: l.valueScaleBase,
      ringCap: a.ring.capacity,
    });
    const gpu = this.#gpu;
    gpu.dispatch(
      pass,
      pipeline,
      [
        u,
        a.q,
        a.ring.keys,
        a.ring.values,
        a.scratch.acc,
        a.scratch.ml,
        qa.buffer,
        qa.channels ?? qa.buffer, // unread without thin keys
      ],
      Math.ceil(slots / WG),
    );
    this.#reduceChunks(pass, { nTokens, nHeads, pos0, nChunks, scale, out: a.out, scratch: a.scratch, ...v });
  }

  #reduceChunks(
    pass: GPUComputePassEncoder,
    r: {
      nTokens: number;
      nHeads: number;
      headDim: number;
      pos0: number;
      nChunks: number;
      scale: number;
      outOffset: number;
      outStride: number;
      out: Binding;
      scratch: AttentionScratch;
    },
  ): void {
    const u = this.#gpu.uniform(AttnParams, {
      nTokens: r.nTokens,
      nHeads: r.nHeads,
      nKvHeads: 1,
      headDim: r.headDim,
      pos0: r.pos0,
      capacity: 0,
      nChunks: r.nChunks,
      qOffset: 0,
      qStride: 0,
      kOffset: 0,
      vOffset: 0,
      outOffset: r.outOffset,
      outStride: r.outStride,
      scale: r.scale,
      thinLen: 0,
      thinCapacity: 0,
      thinStride: 0,
      nKeep: 0,
    });
    const invocations = r.nTokens * r.nHeads * (r.headDim / 4);
    this.#gpu.dispatch(
      pass,
      this.#reduce,
      [u, r.scratch.acc, r.scratch.ml, r.out],
      Math.ceil(invocations / WG),
    );
  }

  /** Key chunks a call with context `pos0 + nTokens` uses (the partials' chunk stride). */
  chunks(context: number): number {
    return Math.ceil(context / this.chunk);
  }

  /** Partial slots (token, chunk, head) a call needs; the scratch holds `slots · headDim` + `slots · 2` f32. */
  scratchSlots(shape: { nTokens: number; nHeads: number; context: number }): number {
    return shape.nTokens * this.chunks(shape.context) * shape.nHeads;
  }

  /**
   * Allocates a scratch for calls up to `shape`. Throws a RangeError when the partials would exceed
   * the largest storage binding (split the prefill into smaller batches of tokens).
   */
  createScratch(shape: AttentionScratchShape): AttentionScratch {
    const slots = this.scratchSlots(shape);
    const accBytes = slots * shape.headDim * 4;
    if (accBytes > this.#gpu.maxStorageBinding) {
      throw new RangeError(
        `Cannot allocate attention scratch: ${accBytes} bytes exceed the storage binding limit ${this.#gpu.maxStorageBinding}: ` +
          `use fewer tokens per call than ${shape.nTokens}`,
      );
    }
    return {
      acc: this.#gpu.createBuffer("attention partials: acc", accBytes),
      ml: this.#gpu.createBuffer("attention partials: max, sum", slots * 8),
    };
  }

  /** Encodes the copy of k and v rows into the caches at positions pos0 … pos0 + nTokens − 1. */
  storeKv(pass: GPUComputePassEncoder, a: KvStoreArgs): void {
    const rowWidth = a.nKvHeads * a.headDim;
    const v = {
      headDim: a.headDim,
      kOffset: a.kOffset ?? 0,
      kStride: a.kStride ?? rowWidth,
      vOffset: a.vOffset ?? 0,
      vStride: a.vStride ?? rowWidth,
      kCacheOffset: a.kCacheOffset ?? 0,
      vCacheOffset: a.vCacheOffset ?? 0,
    };
    requireVec4("kv store", v);
    if (a.ring ? a.nTokens > a.capacity : a.pos0 + a.nTokens > a.capacity) {
      throw new RangeError(
        `Cannot store KV rows: positions ${a.pos0}…${
          a.pos0 + a.nTokens - 1
        } exceed the cache capacity ${a.capacity}`,
      );
    }
    const u = this.#gpu.uniform(KvStoreParams, {
      nTokens: a.nTokens,
      nKvHeads: a.nKvHeads,
      capacity: a.capacity,
      pos0: a.pos0 % a.capacity,
      ...v,
    });
    const invocations = a.nTokens * a.nKvHeads * (a.headDim / 4);
    this.#gpu.dispatch(pass, this.#store, [u, a.k, a.v, a.kCache, a.vCache], Math.ceil(invocations / WG));
  }

  /** Encodes both attention passes: `out = softmax(q·kᵀ·scale, causal) · v` for every (token, head). */
  encode(pass: GPUComputePassEncoder, a: AttentionArgs): void {
    this.#encode(pass, a, null);
  }

  /**
   * Encodes attention over a compressed layer, `[thin | tail]` in key order, with one softmax at scale
   * `1/√headDim` (the full head dimension, also for the thin keys): thin logits use q gathered at the
   * kept channels, tail logits the whole q. Query t attends every thin row and tail rows 0 … pos0 + t.
   * A thin segment of length 0 falls back to {@linkcode AttentionKernel.encode} on the tail.
   */
  encodeSegments(pass: GPUComputePassEncoder, a: SegmentAttentionArgs): void {
    if (a.thin.length === 0) return this.#encode(pass, a, null);
    const t = a.thin;
    if (t.nKeep < 1 || t.nKeep > a.headDim || t.stride < t.nKeep || t.length > t.capacity) {
      throw new RangeError(
        `Cannot encode segment attention: the thin segment needs 1 ≤ nKeep ≤ stride, nKeep ≤ headDim ${a.headDim} ` +
          `and length ≤ capacity: current values are nKeep ${t.nKeep}, stride ${t.stride}, length ${t.length}, ` +
          `capacity ${t.capacity}`,
      );
    }
    const keyBytes = Math.ceil((a.nKvHeads * t.capacity * t.stride * 4) / 16) * 16;
    if (t.keys instanceof GPUBuffer && t.keys.size < keyBytes) {
      throw new RangeError(
        `Cannot encode segment attention: thin keys need ${keyBytes} bytes (rows are read as whole vec4s): ` +
          `current buffer size is ${t.keys.size}`,
      );
    }
    this.#encode(pass, a, t);
  }

  #encode(pass: GPUComputePassEncoder, a: AttentionArgs, thin: ThinSegmentArgs | null): void {
    const { nTokens, nHeads, nKvHeads, headDim, pos0 } = a;
    const what = thin ? "segment attention" : "attention";
    const width = nHeads * headDim;
    const v = {
      headDim,
      qOffset: a.qOffset ?? 0,
      qStride: a.qStride ?? width,
      kOffset: a.kOffset ?? 0,
      vOffset: a.vOffset ?? 0,
      outOffset: a.outOffset ?? 0,
      outStride: a.outStride ?? width,
    };
    requireVec4(what, v);
    if (headDim > MAX_HEAD_DIM || headDim < 4) {
      throw new RangeError(
        `Cannot encode ${what}: headDim must be in [4, ${MAX_HEAD_DIM}]: current value is ${headDim}`,
      );
    }
    if (nKvHeads < 1 || nHeads % nKvHeads !== 0) {
      throw new RangeError(
        `Cannot encode ${what}: nKvHeads must divide nHeads ${nHeads}: current value is ${nKvHeads}`,
      );
    }
    if (pos0 + nTokens > a.capacity) {
      throw new RangeError(
        `Cannot encode ${what}: context ${pos0 + nTokens} exceeds the cache capacity ${a.capacity}`,
      );
    }
    const thinLen = thin?.length ?? 0;
    const context = thinLen + pos0 + nTokens; // key indices over [thin | tail]
    const nChunks = this.chunks(context);
    const d4 = headDim / 4;
    const thin4 = thin ? Math.ceil((thin.stride + 6) / 4) : 0; // vec4s per shifted q copy (attention.wgsl)
    const perKey = thin ? Math.max(thin4, d4) + d4 + 1 : 2 * d4 + 1;
    const tripsAttend = 2 * d4 + 20 * thin4 + this.chunk * perKey;
    const tripsReduce = 2 * nChunks;
    if (tripsAttend >= MAX_TRIPS || tripsReduce >= MAX_TRIPS) {
      throw new RangeError(
        `Cannot encode ${what}: ${
          Math.max(tripsAttend, tripsReduce)
        } loop trips per invocation would exceed ` +
          `llvmpipe's limit (chunk ${this.chunk}, headDim ${headDim}, context ${context})`,
      );
    }
    const slots = nTokens * nChunks * nHeads;
    if (slots * headDim * 4 > a.scratch.acc.size || slots * 8 > a.scratch.ml.size) {
      throw new RangeError(
        `Cannot encode ${what}: the scratch holds fewer than the ${slots} partial slots this call needs`,
      );
    }
    const u = this.#gpu.uniform(AttnParams, {
      nTokens,
      nHeads,
      nKvHeads,
      pos0: thinLen + pos0,
      capacity: a.capacity,
      nChunks,
      scale: a.scale ?? 1 / Math.sqrt(headDim),
      thinLen,
      thinCapacity: thin?.capacity ?? 0,
      thinStride: thin?.stride ?? 0,
      nKeep: thin?.nKeep ?? 0,
      ...v,
    });
    const gpu = this.#gpu;
    const partials = [u, a.q, a.kCache, a.vCache, a.scratch.acc, a.scratch.ml];
    if (thin) {
      gpu.dispatch(
        pass,
        this.#segments,
        [...partials, thin.keys, thin.values, thin.channels],
        Math.ceil(slots / WG),
      );
    } else {
      gpu.dispatch(pass, this.#attend, partials, Math.ceil(slots / WG));
    }
    const outInvocations = nTokens * nHeads * d4;
    gpu.dispatch(pass, this.#reduce, [u, a.scratch.acc, a.scratch.ml, a.out], Math.ceil(outInvocations / WG));
  }
}
