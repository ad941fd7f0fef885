/**
 * A KV-cache segment: a run of cached tokens (rows) with its own storage for keys and values. A layer
 * of the cache is a sequence of segments in token order: `[thin | tail]` after ThinK, `[quant | tail]`
 * with KIVI, just `[tail]` otherwise. Attention walks the segments in order with one softmax.
 *
 * Storage kinds:
 * - `"full"`: f32 keys and values, all D channels. A full segment may be a *ring* (`ring: true`, the
 *   KIVI residual): cache row i lives in slot `i mod capacity`, and `length` counts every row ever
 *   written (the cache fill), so the segment holds rows `length − capacity … length − 1`.
 * - `"thin"`: f32 keys of only `keyChannels` of the head's D channels (ThinK), the kept channel ids in
 *   `channels`; f32 values.
 * - `"quant"` (KIVI, THINK.md §4.1): packed codes plus (scale, min) pairs of keys and values in one
 *   buffer laid out by {@linkcode quantLayout} (`keys` and `values` are that same buffer, so attention
 *   binds one buffer for all codes). Keys and values have their own lengths (`length`, and
 *   `quant.valueLength`): keys flush R rows at a time, values one at a time. Keys may be thin
 *   (`channels`, ThinK + KIVI: pruned, then quantized).
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";

/** How scales and mins are stored: f16 pairs in one u32 (`pack2x16float`), or two f32 words. */
export type ScaleFormat = "f16" | "f32";

/** The KIVI parameters of a quantized segment. */
export interface QuantFormat {
  /** Bits per key code (2, 4 or 8). */
  keyBits: number;
  /** Bits per value code (2, 4 or 8). */
  valueBits: number;
  /** Tokens per key group G (per channel); a multiple of 16. */
  group: number;
  /** Channels per value group (per token): `min(G, D)`, dividing D. */
  valueGroup: number;
  /** Scale/min storage. */
  scales: ScaleFormat;
}

/**
 * Word counts and offsets of a quantized segment's buffer (u32 words), per {@linkcode quantLayout}; four
 * sections, in this order:
 *
 *   key codes    [nKvHeads, keyCapacity/cpw, keyChannels]     from word 0; cpw = 32/keyBits tokens per
 *                word: word (h, b, i) holds tokens b·cpw … b·cpw+cpw−1 of key channel i, token u of
 *                the word at bits [u·keyBits, (u+1)·keyBits) (low bits first)
 *   key pairs    [nKvHeads, keyCapacity/G, keyChannels]       from word keyScaleBase
 *   value codes  [nKvHeads, valueCapacity, D/Gv, wpg]         from word valueBase; wpg = ⌈Gv·valueBits/32⌉
 *                words per group; channel e of group gv sits in word e / (32/valueBits) at bits
 *                (e mod cpw)·valueBits
 *   value pairs  [nKvHeads, valueCapacity, D/Gv]              from word valueScaleBase
 *
 * A pair is (scale, min): f16 → one word `pack2x16float(scale, min)` (scale in the low half); f32 →
 * two words, scale first. Dequantization is `code · scale + min`.
 */
export interface QuantLayout extends QuantFormat {
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head D. */
  headDim: number;
  /** Key channels stored (nKeep with ThinK, else D). */
  keyChannels: number;
  /** Key rows per head the codes hold (a multiple of G). */
  keyCapacity: number;
  /** Value rows per head the codes hold. */
  valueCapacity: number;
  /** Key code words (the first section). */
  keyCodeWords: number;
  /** Key scale/min words. */
  keyScaleWords: number;
  /** Value code words. */
  valueCodeWords: number;
  /** Value scale/min words. */
  valueScaleWords: number;
  /** First word of the key pairs (= keyCodeWords). */
  keyScaleBase: number;
  /** First word of the value codes. */
  valueBase: number;
  /** First word of the value pairs. */
  valueScaleBase: number;
  /** Words in all: the buffer holds max(words, 4). */
  words: number;
  /** Value groups per row, D / Gv. */
  valueGroups: number;
  /** Words per value group, ⌈Gv·valueBits/32⌉. */
  valueWordsPerGroup: number;
}

/**
 * The layout of a quantized segment (see {@linkcode QuantLayout}); throws a RangeError for shapes KIVI
 * cannot pack (G not a multiple of 16, capacity not a multiple of G, D not a multiple of Gv).
 *
 * @example
 * ```ts
 * import { quantLayout } from "./segment.ts";
 * const l = quantLayout({ keyBits: 2, valueBits: 2, group: 32, valueGroup: 32, scales: "f16",
 *   nKvHeads: 1, headDim: 128, keyChannels: 128, keyCapacity: 4096, valueCapacity: 3968 });
 * console.log(l.keyCodeWords * 4, l.keyScaleWords * 4); // 131072 65536: 2 bits per code, 2 f16 per 32 codes
 * console.log(l.words * 4); // 387072: keys, then values (3968 rows: the last 128 stay f32)
 * ```
 */
export function quantLayout(
  s: QuantFormat & {
    nKvHeads: number;
    headDim: number;
    keyChannels: number;
    keyCapacity: number;
    valueCapacity: number;
  },
): QuantLayout {
  const fail = (m: string): never => {
    throw new RangeError(`Cannot lay out a quantized KV segment: ${m}`);
  };
  for (const [name, b] of [["keyBits", s.keyBits], ["valueBits", s.valueBits]] as const) {
    if (![2, 4, 8].includes(b)) fail(`${name} must be one of 2, 4, 8: current value is ${b}`);
  }
  if (s.group < 16 || s.group % 16 !== 0) fail(`group must be a multiple of 16: current value is ${s.group}`);
  if (s.keyCapacity % s.group !== 0) {
    fail(`keyCapacity must be a multiple of group ${s.group}: current value is ${s.keyCapacity}`);
  }
  if (s.valueGroup < 4 || s.valueGroup % 4 !== 0 || s.headDim % s.valueGroup !== 0) {
    fail(
      `the value group must be a multiple of 4 dividing headDim ${s.headDim}: current value is ${s.valueGroup}`,
    );
  }
  const sw = s.scales === "f16" ? 1 : 2;
  const H = s.nKvHeads;
  const valueGroups = s.headDim / s.valueGroup;
  const valueWordsPerGroup = Math.ceil(s.valueGroup * s.valueBits / 32);
  const keyCodeWords = H * (s.keyCapacity * s.keyBits / 32) * s.keyChannels;
  const keyScaleWords = H * (s.keyCapacity / s.group) * s.keyChannels * sw;
  const valueCodeWords = H * s.valueCapacity * valueGroups * valueWordsPerGroup;
  const valueScaleWords = H * s.valueCapacity * valueGroups * sw;
  return {
    ...s,
    keyCodeWords,
    keyScaleWords,
    valueCodeWords,
    valueScaleWords,
    keyScaleBase: keyCodeWords,
    valueBase: keyCodeWords + keyScaleWords,
    valueScaleBase: keyCodeWords + keyScaleWords + valueCodeWords,
    words: keyCodeWords + keyScaleWords + valueCodeWords + valueScaleWords,
    valueGroups,
    valueWordsPerGroup,
  };
}

/** What a quantized segment adds to {@linkcode KvSegment}. */
export interface QuantStorage extends QuantLayout {
  /** Quantized value rows in use (the segment's `length` counts quantized key rows). */
  valueLength: number;
}

/** One segment of one layer. All buffers are real allocations: their sizes are what `kvStats` reports. */
export interface KvSegment {
  /** `"thin"`: keys hold the kept channels only; `"full"`: all D channels; `"quant"`: KIVI codes. */
  kind: "thin" | "full" | "quant";
  /** Rows allocated per KV head (quant: key rows; values: `quant.valueCapacity`). */
  capacity: number;
  /** Rows in use (ring: every row ever written; quant: quantized key rows). */
  length: number;
  /** Key channels stored per row (nKeep for thin and thin quantized keys, D otherwise). */
  keyChannels: number;
  /** f32 per key row (keyChannels, or padded to a multiple of 4); 0 for quant. */
  keyStride: number;
  /**
   * Keys `[nKvHeads, capacity, keyStride]` f32; padding channels are zero. Thin key buffers are rounded
   * up to a multiple of 16 bytes (decode attention reads every row as vec4s from its unaligned start).
   * Quant: the one buffer of codes and pairs, u32 words ({@linkcode QuantLayout}).
   */
  keys: GPUBuffer;
  /** Values `[nKvHeads, capacity, headDim]` f32 (never pruned); quant: the same buffer as `keys`. */
  values: GPUBuffer;
  /** Thin keys: kept channel ids `[nKvHeads, keyChannels]` u32, ascending; null otherwise. */
  channels: GPUBuffer | null;
  /** Full segments: rows form a ring (see the module doc). */
  ring: boolean;
  /** Quant segments: layout and value length; null otherwise. */
  quant: QuantStorage | null;
}

/** Shape of a segment to allocate with {@linkcode allocSegment}. */
export interface SegmentShape {
  /** Segment kind (`"thin"` or `"full"`; quantized segments use {@linkcode allocQuantSegment}). */
  kind: "thin" | "full";
  /** KV heads. */
  nKvHeads: number;
  /** Channels per head D. */
  headDim: number;
  /** Rows per KV head. */
  capacity: number;
  /** Key channels stored (D for full). */
  keyChannels: number;
  /** f32 per key row. */
  keyStride: number;
  /** Full segments: a ring of `capacity` rows (the KIVI residual); default false. */
  ring?: boolean;
}

function checkBinding(gpu: Gpu, label: string, bytes: number, rows: number): void {
  if (bytes > gpu.maxStorageBinding) {
    throw new RangeError(
      `Cannot allocate the KV cache: segment "${label}" needs ${bytes} bytes, over the ` +
        `storage binding limit ${gpu.maxStorageBinding}: use a smaller context (current value is ${rows} rows)`,
    );
  }
}

/**
 * Allocates a segment's buffers (zero-filled), checking the storage-binding limit.
 *
 * @example
 * ```ts ignore
 * const seg = allocSegment(gpu, "layer 0 thin", { kind: "thin", nKvHeads: 8, headDim: 128, capacity: 480, keyChannels: 77, keyStride: 77 });
 * console.log(seg.keys.size); // 8 · 480 · 77 · 4
 * ```
 */
export function allocSegment(gpu: Gpu, label: string, s: SegmentShape): KvSegment {
  const keyBytes = s.nKvHeads * s.capacity * s.keyStride * 4;
  const valueBytes = s.nKvHeads * s.capacity * s.headDim * 4;
  checkBinding(gpu, label, Math.max(keyBytes, valueBytes), s.capacity);
  return {
    kind: s.kind,
    capacity: s.capacity,
    length: 0,
    keyChannels: s.keyChannels,
    keyStride: s.keyStride,
    // thin rows are read as vec4 from unaligned starts: the buffer ends on a whole vec4 (≤ 12 bytes more)
    keys: gpu.createBuffer(`kv ${label}: keys`, s.kind === "thin" ? Math.ceil(keyBytes / 16) * 16 : keyBytes),
    values: gpu.createBuffer(`kv ${label}: values`, valueBytes),
    channels: s.kind === "thin"
      ? gpu.createBuffer(`kv ${label}: kept channels`, s.nKvHeads * s.keyChannels * 4)
      : null,
    ring: s.kind === "full" && !!s.ring,
    quant: null,
  };
}

/**
 * Allocates a quantized (KIVI) segment: one buffer of key and value codes and pairs (at least 16 bytes,
 * so that an empty segment still binds), and the kept-channel list when the keys are thin.
 *
 * @example
 * ```ts ignore
 * const seg = allocQuantSegment(gpu, "layer 0 quant", layout, false);
 * console.log(seg.keys.size); // layout.words · 4
 * ```
 */
export function allocQuantSegment(gpu: Gpu, label: string, layout: QuantLayout, thin: boolean): KvSegment {
  const bytes = layout.words * 4;
  checkBinding(gpu, label, bytes, Math.max(layout.keyCapacity, layout.valueCapacity));
  const buffer = gpu.createBuffer(`kv ${label}: codes and scales`, Math.max(16, bytes));
  return {
    kind: "quant",
    capacity: layout.keyCapacity,
    length: 0,
    keyChannels: layout.keyChannels,
    keyStride: 0,
    keys: buffer,
    values: buffer,
    channels: thin
      ? gpu.createBuffer(`kv ${label}: kept channels`, layout.nKvHeads * layout.keyChannels * 4)
      : null,
    ring: false,
    quant: { ...layout, valueLength: 0 },
  };
}

/** Bytes of one segment, by what they hold. */
export interface SegmentBytes {
  /** Key buffer bytes (quant: the key codes and pairs, plus any padding of an empty buffer). */
  keys: number;
  /** Value buffer bytes (quant: the value codes and pairs). */
  values: number;
  /** Kept-channel list bytes. */
  index: number;
  /** Quant: key + value code bytes (0 otherwise). */
  codes: number;
  /** Quant: bytes of the scales (half of each pair section). */
  scales: number;
  /** Quant: bytes of the mins (the other half). */
  mins: number;
}

/**
 * Bytes a segment allocated: keys, values, and the channel index list; for a quantized segment also
 * the codes, scales and mins inside them.
 *
 * @example
 * ```ts ignore
 * const { keys, values, index } = segmentBytes(cache.layers[0].tail);
 * ```
 */
export function segmentBytes(seg: KvSegment): SegmentBytes {
  const q = seg.quant;
  const pairs = q ? (q.keyScaleWords + q.valueScaleWords) * 4 : 0;
  const valueBytes = q ? (q.valueCodeWords + q.valueScaleWords) * 4 : seg.values.size;
  return {
    keys: q ? seg.keys.size - valueBytes : seg.keys.size,
    values: valueBytes,
    index: seg.channels?.size ?? 0,
    codes: q ? (q.keyCodeWords + q.valueCodeWords) * 4 : 0,
    scales: pairs / 2,
    mins: pairs / 2,
  };
}

/**
 * Frees a segment's buffers.
 *
 * @example
 * ```ts ignore
 * freeSegment(gpu, seg);
 * ```
 */
export function freeSegment(gpu: Gpu, seg: KvSegment): void {
  gpu.free(seg.keys);
  if (seg.values !== seg.keys) gpu.free(seg.values);
  if (seg.channels) gpu.free(seg.channels);
}
