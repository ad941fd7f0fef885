/**
 * A KV-cache segment: a run of cached tokens (rows) with its own storage for keys and values. A layer
 * of the cache is a sequence of segments in token order: `[thin | tail]` after ThinK, just `[tail]`
 * otherwise. Attention walks the segments in order with one softmax.
 *
 * Storage kinds: `"f32"` keys and values. Keys may be *thin*: only `keyChannels` of the head's D
 * channels are stored (ThinK), the kept channel ids in `channels`. A quantized kind (KIVI: packed codes
 * plus scales) adds its own storage here without changing the segment sequence.
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";

/** One segment of one layer. All buffers are real allocations: their sizes are what `kvStats` reports. */
export interface KvSegment {
  /** `"thin"`: keys hold the kept channels only; `"full"`: all D channels. */
  kind: "thin" | "full";
  /** Rows allocated per KV head. */
  capacity: number;
  /** Rows in use. */
  length: number;
  /** Key channels stored per row (nKeep for thin, D for full). */
  keyChannels: number;
  /** f32 per key row (keyChannels, or padded to a multiple of 4). */
  keyStride: number;
  /**
   * Keys `[nKvHeads, capacity, keyStride]` f32; padding channels are zero. Thin key buffers are rounded
   * up to a multiple of 16 bytes (decode attention reads every row as vec4s from its unaligned start).
   */
  keys: GPUBuffer;
  /** Values `[nKvHeads, capacity, headDim]` f32 (never pruned). */
  values: GPUBuffer;
  /** Thin only: kept channel ids `[nKvHeads, keyChannels]` u32, ascending; null for full segments. */
  channels: GPUBuffer | null;
}

/** Shape of a segment to allocate with {@linkcode allocSegment}. */
export interface SegmentShape {
  /** Segment kind. */
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
  if (Math.max(keyBytes, valueBytes) > gpu.maxStorageBinding) {
    throw new RangeError(
      `Cannot allocate the KV cache: segment "${label}" needs ${
        Math.max(keyBytes, valueBytes)
      } bytes, over the ` +
        `storage binding limit ${gpu.maxStorageBinding}: use a smaller context (current value is ${s.capacity} rows)`,
    );
  }
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
  };
}

/**
 * Bytes a segment allocated: keys, values, and the channel index list.
 *
 * @example
 * ```ts ignore
 * const { keys, values, index } = segmentBytes(cache.layers[0].tail);
 * ```
 */
export function segmentBytes(seg: KvSegment): { keys: number; values: number; index: number } {
  return { keys: seg.keys.size, values: seg.values.size, index: seg.channels?.size ?? 0 };
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
  gpu.free(seg.values);
  if (seg.channels) gpu.free(seg.channels);
}
