/**
 * Plain-TypeScript reference of KIVI (THINK.md §4.1–4.3): the quantizer, the packing of codes and
 * (scale, min) pairs in the GPU layout ({@linkcode QuantLayout} in `src/kv/segment.ts`), the flush
 * schedule of the residual, and decode attention over `[quantized | residual]`. The oracle of the GPU
 * tests: codes and pairs must match bit for bit, so every step rounds exactly like the WGSL:
 *
 *   m = min X,  s = (max X − m) · fround(1/(2^b − 1))          f32 (a product, not a division)
 *   f16 pairs:  s = f16(ftz(min(s, 65504))),  m = f16(ftz(clamp(m, ±65504)))   ftz: |x| < 2⁻¹⁴ → 0
 *   q = roundHalfEven(clamp((x − m) / s, 0, 2^b − 1)),  q = 0 when s = 0 (a constant group: no NaN)
 *   x̂ = q · s + m
 *
 * @module
 */

import type { QuantLayout, ScaleFormat } from "../kv/segment.ts";

const F16_MAX = 65504;
const F16_MIN_NORMAL = 2 ** -14;

/**
 * Round half to even, like WGSL `round` (`x` is an f32 value).
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "./kv_quant.ts";
 * console.log(roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5)); // 0 2 2
 * ```
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The (scale, min) pair of a group with extremes `mn`, `mx`, rounded as stored.
 *
 * @example
 * ```ts
 * import { scaleMin } from "./kv_quant.ts";
 * console.log(scaleMin(-1, 2, 2, "f32"), scaleMin(0.1, 0.1, 4, "f16")); // [1, -1] [0, 0.0999755859375]
 * ```
 */
export function scaleMin(mn: number, mx: number, bits: number, format: ScaleFormat): [number, number] {
  const f = Math.fround;
  let s = f(f(mx - mn) * f(1 / (2 ** bits - 1)));
  let m = f(mn);
  if (format === "f16") {
    s = Math.min(s, F16_MAX);
    m = Math.min(Math.max(m, -F16_MAX), F16_MAX);
    if (s < F16_MIN_NORMAL) s = 0;
    if (Math.abs(m) < F16_MIN_NORMAL) m = 0;
    s = Math.f16round(s);
    m = Math.f16round(m);
  }
  return [s, m];
}

/**
 * The code of `x` under a pair: clamp to [0, 2^bits − 1], then round half to even; 0 when the scale is 0.
 *
 * @example
 * ```ts
 * import { quantCode } from "./kv_quant.ts";
 * console.log(quantCode(0.5, 1, 0, 2), quantCode(9, 1, 0, 2), quantCode(3, 0, 3, 2)); // 0 3 0
 * ```
 */
export function quantCode(x: number, scale: number, min: number, bits: number): number {
  const f = Math.fround;
  const v = scale > 0 ? f(f(x - min) / scale) : 0;
  return roundHalfEven(Math.min(Math.max(v, 0), 2 ** bits - 1));
}

/**
 * Quantizes one group of f32 values.
 *
 * @example
 * ```ts
 * import { quantizeGroup } from "./kv_quant.ts";
 * console.log(quantizeGroup([0, 1, 2, 3], 2, "f32")); // { codes: [0, 1, 2, 3], scale: 1, min: 0 }
 * console.log(quantizeGroup([5, 5], 2, "f16")); // a constant group: { codes: [0, 0], scale: 0, min: 5 }
 * ```
 */
export function quantizeGroup(
  x: ArrayLike<number>,
  bits: number,
  format: ScaleFormat,
): { codes: number[]; scale: number; min: number } {
  let mn = Infinity, mx = -Infinity;
  for (let i = 0; i < x.length; i++) {
    mn = Math.min(mn, x[i]);
    mx = Math.max(mx, x[i]);
  }
  const [scale, min] = scaleMin(mn, mx, bits, format);
  return { codes: Array.from(x, (v) => quantCode(v, scale, min, bits)), scale, min };
}

function f16Bits(v: number): number {
  return new Uint16Array(new Float16Array([v]).buffer)[0];
}

/**
 * The stored words of a (scale, min) pair: f16 → `[scale | min << 16]`, f32 → `[scale, min]` bits.
 *
 * @example
 * ```ts
 * import { pairWords } from "./kv_quant.ts";
 * console.log(pairWords(1, -1, "f16"), pairWords(1, -1, "f32")); // [3154131968] [1065353216, 3212836864]
 * ```
 */
export function pairWords(scale: number, min: number, format: ScaleFormat): number[] {
  if (format === "f16") return [(f16Bits(scale) | (f16Bits(min) << 16)) >>> 0];
  const w = new Uint32Array(new Float32Array([scale, min]).buffer);
  return [w[0], w[1]];
}

function readPair(buf: Uint32Array, base: number, index: number, format: ScaleFormat): [number, number] {
  if (format === "f16") {
    const h = new Float16Array(new Uint32Array([buf[base + index]]).buffer);
    return [h[0], h[1]];
  }
  const f = new Float32Array(buf.buffer, buf.byteOffset + (base + 2 * index) * 4, 2);
  return [f[0], f[1]];
}

/** A source of f32 rows `[nKvHeads, capacity, D]`; row i is read from slot `i mod capacity` (a ring). */
export interface RowSource {
  /** The rows. */
  data: Float32Array;
  /** Slots per head. */
  capacity: number;
}

function srcRow(src: RowSource, D: number, h: number, row: number): number {
  return (h * src.capacity + (row % src.capacity)) * D;
}

/**
 * Quantizes key rows `[row0, row0 + nRows)` (whole groups of G) per channel into `words`, the segment
 * buffer's words; `channels[h]` lists the stored channels (ThinK), null for all D.
 *
 * @example
 * ```ts ignore
 * quantizeKeys({ data, capacity: T }, layout, null, 0, T, words); // words: Uint32Array(layout.words)
 * ```
 */
export function quantizeKeys(
  src: RowSource,
  layout: QuantLayout,
  channels: number[][] | null,
  row0: number,
  nRows: number,
  words: Uint32Array,
): void {
  const { keyBits: bits, group: G, keyChannels: kc, headDim: D } = layout;
  const cpw = 32 / bits;
  for (let h = 0; h < layout.nKvHeads; h++) {
    for (let r = row0; r < row0 + nRows; r += G) {
      for (let i = 0; i < kc; i++) {
        const c = channels ? channels[h][i] : i;
        const x = Array.from({ length: G }, (_, u) => src.data[srcRow(src, D, h, r + u) + c]);
        const q = quantizeGroup(x, bits, layout.scales);
        for (let b = 0; b < G / cpw; b++) {
          let w = 0;
          for (let e = 0; e < cpw; e++) w |= q.codes[b * cpw + e] << (e * bits);
          words[(h * (layout.keyCapacity / cpw) + r / cpw + b) * kc + i] = w >>> 0;
        }
        const pair = pairWords(q.scale, q.min, layout.scales);
        const at = layout.keyScaleBase + ((h * (layout.keyCapacity / G) + r / G) * kc + i) * pair.length;
        words.set(pair, at);
      }
    }
  }
}

/**
 * Quantizes value rows `[row0, row0 + nRows)` per token, in groups of Gv channels, into `words`.
 *
 * @example
 * ```ts ignore
 * quantizeValues({ data, capacity: T }, layout, 0, T - 128, words);
 * ```
 */
export function quantizeValues(
  src: RowSource,
  layout: QuantLayout,
  row0: number,
  nRows: number,
  words: Uint32Array,
): void {
  const { valueBits: bits, valueGroup: Gv, headDim: D, valueGroups: nG, valueWordsPerGroup: wpg } = layout;
  const cpw = 32 / bits;
  for (let h = 0; h < layout.nKvHeads; h++) {
    for (let r = row0; r < row0 + nRows; r++) {
      const row = srcRow(src, D, h, r);
      for (let g = 0; g < nG; g++) {
        const q = quantizeGroup(src.data.subarray(row + g * Gv, row + (g + 1) * Gv), bits, layout.scales);
        const idx = (h * layout.valueCapacity + r) * nG + g;
        for (let k = 0; k < wpg; k++) {
          let w = 0;
          for (let e = 0; e < cpw && k * cpw + e < Gv; e++) w |= q.codes[k * cpw + e] << (e * bits);
          words[layout.valueBase + idx * wpg + k] = w >>> 0;
        }
        const pair = pairWords(q.scale, q.min, layout.scales);
        words.set(pair, layout.valueScaleBase + idx * pair.length);
      }
    }
  }
}

/**
 * Dequantized keys `[nKvHeads, rows, keyChannels]` of the first `rows` rows of a segment's words.
 *
 * @example
 * ```ts ignore
 * const k = dequantizeKeys(words, layout, segment.length);
 * ```
 */
export function dequantizeKeys(words: Uint32Array, layout: QuantLayout, rows: number): Float32Array {
  const { keyBits: bits, group: G, keyChannels: kc } = layout;
  const cpw = 32 / bits, mask = 2 ** bits - 1;
  const out = new Float32Array(layout.nKvHeads * rows * kc);
  for (let h = 0; h < layout.nKvHeads; h++) {
    for (let j = 0; j < rows; j++) {
      for (let i = 0; i < kc; i++) {
        const w = words[(h * (layout.keyCapacity / cpw) + Math.floor(j / cpw)) * kc + i];
        const code = (w >>> ((j % cpw) * bits)) & mask;
        const [s, m] = readPair(
          words,
          layout.keyScaleBase,
          (h * (layout.keyCapacity / G) + Math.floor(j / G)) * kc + i,
          layout.scales,
        );
        out[(h * rows + j) * kc + i] = code * s + m;
      }
    }
  }
  return out;
}

/**
 * Dequantized values `[nKvHeads, rows, D]` of the first `rows` rows of a segment's words.
 *
 * @example
 * ```ts ignore
 * const v = dequantizeValues(words, layout, segment.quant.valueLength);
 * ```
 */
export function dequantizeValues(words: Uint32Array, layout: QuantLayout, rows: number): Float32Array {
  const { valueBits: bits, valueGroup: Gv, headDim: D, valueGroups: nG, valueWordsPerGroup: wpg } = layout;
  const cpw = 32 / bits, mask = 2 ** bits - 1;
  const out = new Float32Array(layout.nKvHeads * rows * D);
  for (let h = 0; h < layout.nKvHeads; h++) {
    for (let j = 0; j < rows; j++) {
      for (let g = 0; g < nG; g++) {
        const idx = (h * layout.valueCapacity + j) * nG + g;
        const [s, m] = readPair(words, layout.valueScaleBase, idx, layout.scales);
        for (let e = 0; e < Gv; e++) {
          const code = (words[layout.valueBase + idx * wpg + Math.floor(e / cpw)] >>> ((e % cpw) * bits)) &
            mask;
          out[(h * rows + j) * D + g * Gv + e] = code * s + m;
        }
      }
    }
  }
  return out;
}

/** Quantized key and value rows of a KIVI layer. */
export interface KiviLengths {
  /** Quantized key rows Kq (a multiple of R). */
  keys: number;
  /** Quantized value rows Vq. */
  values: number;
}

/**
 * The lengths right after the prompt's T kept tokens (THINK.md §4.2): keys `T − T mod R` (0 when
 * T < R), values `T − min(T, R)`.
 *
 * @example
 * ```ts
 * import { kiviPromptLengths } from "./kv_quant.ts";
 * console.log(kiviPromptLengths(300, 128), kiviPromptLengths(100, 128)); // { keys: 256, values: 172 } { keys: 0, values: 0 }
 * ```
 */
export function kiviPromptLengths(T: number, R: number): KiviLengths {
  return { keys: Math.floor(T / R) * R, values: T - Math.min(T, R) };
}

/**
 * The lengths after a forward call that brought the cache to `rows` rows, attended, then flushed:
 * keys in whole blocks of R while R or more wait, values down to the last R (one token per decode step).
 *
 * @example
 * ```ts
 * import { kiviFlush } from "./kv_quant.ts";
 * console.log(kiviFlush({ keys: 0, values: 0 }, 129, 128)); // { keys: 128, values: 1 }
 * ```
 */
export function kiviFlush(before: KiviLengths, rows: number, R: number): KiviLengths {
  let keys = before.keys;
  while (rows - keys >= R) keys += R;
  return { keys, values: Math.max(before.values, rows - R) };
}

/** A KIVI layer as the reference attention reads it. */
export interface KiviLayer {
  /** Quantized key and value rows. */
  lengths: KiviLengths;
  /** Dequantized keys `[nKvHeads, lengths.keys, keyChannels]`. */
  quantKeys: Float32Array;
  /** Their channels per KV head (all D without ThinK). */
  channels: number[][];
  /** Dequantized values `[nKvHeads, lengths.values, D]`. */
  quantValues: Float32Array;
  /** f32 keys of every cache row `[nKvHeads, rowCapacity, D]` (rows ≥ lengths.keys are used). */
  keys: Float32Array;
  /** f32 values of every cache row `[nKvHeads, rowCapacity, D]` (rows ≥ lengths.values are used). */
  values: Float32Array;
  /** Rows per head of `keys` / `values`. */
  rowCapacity: number;
}

/**
 * Attention of `q` rows `[nTokens, nHeads·D]` (query t is cache row `row0 + t` and sees rows
 * 0 … row0 + t) over `[quantized | residual]`: quantized keys with q gathered at their channels, then
 * the f32 keys; values quantized below `lengths.values`; one softmax at scale 1/√D; float64 maths.
 *
 * @example
 * ```ts ignore
 * const out = kiviAttention(q, layer, { nTokens: 1, nHeads: 4, nKvHeads: 2, headDim: 64, row0: 300 });
 * ```
 */
export function kiviAttention(
  q: Float32Array,
  kv: KiviLayer,
  shape: { nTokens: number; nHeads: number; nKvHeads: number; headDim: number; row0: number },
): Float32Array {
  const { nTokens, nHeads, nKvHeads, headDim: D, row0 } = shape;
  const { keys: Kq, values: Vq } = kv.lengths;
  const group = nHeads / nKvHeads, scale = 1 / Math.sqrt(D);
  const out = new Float32Array(nTokens * nHeads * D);
  for (let t = 0; t < nTokens; t++) {
    const n = row0 + t + 1;
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / group), qb = (t * nHeads + h) * D, ch = kv.channels[kvh];
      const logits = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        let s = 0;
        if (j < Kq) {
          const kb = (kvh * Kq + j) * ch.length;
          for (let i = 0; i < ch.length; i++) s += q[qb + ch[i]] * kv.quantKeys[kb + i];
        } else {
          const kb = (kvh * kv.rowCapacity + j) * D;
          for (let c = 0; c < D; c++) s += q[qb + c] * kv.keys[kb + c];
        }
        logits[j] = s * scale;
      }
      let max = -Infinity;
      for (const x of logits) max = Math.max(max, x);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += logits[j] = Math.exp(logits[j] - max);
      const acc = new Float64Array(D);
      for (let j = 0; j < n; j++) {
        const [vals, vb] = j < Vq
          ? [kv.quantValues, (kvh * Vq + j) * D]
          : [kv.values, (kvh * kv.rowCapacity + j) * D];
        for (let c = 0; c < D; c++) acc[c] += logits[j] * vals[vb + c];
      }
      for (let c = 0; c < D; c++) out[qb + c] = acc[c] / sum;
    }
  }
  return out;
}
