/**
 * The uncompressed KV cache: one key and one value buffer per layer, f32, preallocated for the
 * whole context. Decode appends at the next position; prefill writes a batch of positions.
 *
 * Layout (per layer): keys and values `[nKvHeads, capacity, headDim]` f32, so one head's positions
 * are contiguous and attention streams them.
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import type { LlamaConfig } from "../model/config.ts";

/** Bytes of one layer's cache, for reports. */
export interface KvLayerBytes {
  /** Layer index. */
  layer: number;
  /** Bytes allocated for keys. */
  keys: number;
  /** Bytes allocated for values. */
  values: number;
}

/**
 * A full-precision, uncompressed KV cache for `capacity` positions.
 *
 * @example
 * ```ts ignore
 * const cache = new FullKvCache(gpu, config, 2048);
 * console.log(cache.bytes()); // 2 · layers · kvHeads · 2048 · headDim · 4
 * ```
 */
export class FullKvCache {
  /** Positions per head. */
  readonly capacity: number;
  /** Keys per layer, `[nKvHeads, capacity, headDim]` f32. */
  readonly keys: GPUBuffer[];
  /** Values per layer, `[nKvHeads, capacity, headDim]` f32. */
  readonly values: GPUBuffer[];
  readonly #gpu: Gpu;

  /** Allocates the buffers (zero-filled). */
  constructor(gpu: Gpu, config: LlamaConfig, capacity: number) {
    this.#gpu = gpu;
    this.capacity = capacity;
    const layerBytes = config.nKvHeads * capacity * config.headDim * 4;
    if (layerBytes > gpu.maxStorageBinding) {
      throw new RangeError(
        `Cannot allocate the KV cache: one layer needs ${layerBytes} bytes, over the storage binding limit ` +
          `${gpu.maxStorageBinding}: use a smaller context (current value is ${capacity})`,
      );
    }
    this.keys = [];
    this.values = [];
    for (let l = 0; l < config.nLayers; l++) {
      this.keys.push(gpu.createBuffer(`kv cache: keys, layer ${l}`, layerBytes));
      this.values.push(gpu.createBuffer(`kv cache: values, layer ${l}`, layerBytes));
    }
  }

  /** Bytes actually allocated per layer. */
  layerBytes(): KvLayerBytes[] {
    return this.keys.map((k, layer) => ({ layer, keys: k.size, values: this.values[layer].size }));
  }

  /** Total bytes allocated for keys and values. */
  bytes(): number {
    return this.layerBytes().reduce((s, l) => s + l.keys + l.values, 0);
  }

  /** Frees the buffers. */
  dispose(): void {
    for (const b of [...this.keys, ...this.values]) this.#gpu.free(b);
  }
}
