/**
 * GGML tensor types thinkv supports: their block geometry, exact CPU dequantization (ggml-quants.c
 * semantics, f32 arithmetic rounded step by step like the C code), ggml's reference quantizers for
 * Q8_0 / Q4_0, and f16 / bf16 conversions.
 *
 * Block layouts (little-endian, as stored in GGUF):
 * - F32 / F16 / BF16: one element per block.
 * - Q4_0 (18 B / 32): f16 d, 16 bytes; byte j holds weight j (low nibble) and j+16 (high); w = (q−8)·d.
 * - Q8_0 (34 B / 32): f16 d, 32 int8; w = q·d.
 * - Q4_K (144 B / 256): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles in 4
 *   chunks of 64 weights (32 bytes: low nibbles = first 32, high nibbles = next 32); w = d·sc·q − dmin·m.
 * - Q6_K (210 B / 256): ql[128], qh[64], int8 scales[16], f16 d; w = d·sc·(q−32).
 *
 * @module
 */

/**
 * GGML type ids (the numbers stored in GGUF tensor infos) of the types thinkv supports.
 *
 * @example
 * ```ts
 * import { GgmlType } from "./quant.ts";
 * console.log(GgmlType.Q4_K); // 12
 * ```
 */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 8,
  Q4_K: 12,
  Q6_K: 14,
  BF16: 30,
} as const;

/** One of the supported GGML type ids. */
export type GgmlType = typeof GgmlType[keyof typeof GgmlType];

/** Geometry of one GGML type. */
export interface TypeInfo {
  /** GGML type id. */
  id: GgmlType;
  /** Lower-case name, as used in pipeline keys (`"q4_k"`). */
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block in GGUF. */
  blockBytes: number;
}

/**
 * The supported types by id.
 *
 * @example
 * ```ts
 * import { GgmlType, TYPE_INFO } from "./quant.ts";
 * console.log(TYPE_INFO[GgmlType.Q8_0].blockBytes); // 34
 * ```
 */
export const TYPE_INFO: Readonly<Record<GgmlType, TypeInfo>> = {
  0: { id: 0, name: "f32", blockSize: 1, blockBytes: 4 },
  1: { id: 1, name: "f16", blockSize: 1, blockBytes: 2 },
  2: { id: 2, name: "q4_0", blockSize: 32, blockBytes: 18 },
  8: { id: 8, name: "q8_0", blockSize: 32, blockBytes: 34 },
  12: { id: 12, name: "q4_k", blockSize: 256, blockBytes: 144 },
  14: { id: 14, name: "q6_k", blockSize: 256, blockBytes: 210 },
  30: { id: 30, name: "bf16", blockSize: 1, blockBytes: 2 },
};

/**
 * True when `type` is a GGML type id thinkv supports.
 *
 * @example
 * ```ts
 * import { isSupportedType } from "./quant.ts";
 * console.log(isSupportedType(12), isSupportedType(3)); // true false
 * ```
 */
export function isSupportedType(type: number): type is GgmlType {
  return Object.hasOwn(TYPE_INFO, type);
}

/**
 * The geometry of `type`; throws a `RangeError` naming the supported types for any other id.
 *
 * @example
 * ```ts
 * import { typeInfo } from "./quant.ts";
 * console.log(typeInfo(2).name); // "q4_0"
 * ```
 */
export function typeInfo(type: number): TypeInfo {
  if (!isSupportedType(type)) {
    const known = Object.values(TYPE_INFO).map((t) => `${t.name}=${t.id}`).join(", ");
    throw new RangeError(`Cannot use GGML tensor type ${type}: supported types are ${known}`);
  }
  return TYPE_INFO[type];
}

/**
 * Bytes that `nElements` elements of `type` occupy; `nElements` must be a whole number of blocks.
 *
 * @example
 * ```ts
 * import { GgmlType, tensorBytes } from "./quant.ts";
 * console.log(tensorBytes(GgmlType.Q4_0, 64)); // 36
 * ```
 */
export function tensorBytes(type: number, nElements: number): number {
  const t = typeInfo(type);
  if (!Number.isInteger(nElements) || nElements < 0 || nElements % t.blockSize !== 0) {
    throw new RangeError(
      `Cannot size a ${t.name} tensor: element count must be a multiple of ${t.blockSize}: current value is ${nElements}`,
    );
  }
  return (nElements / t.blockSize) * t.blockBytes;
}

// ---------------------------------------------------------------------------------------------------
// f16 / bf16 conversions

const F16_TABLE = new Float32Array(65536);
for (let h = 0; h < 65536; h++) F16_TABLE[h] = halfBitsToFloat(h);

function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/**
 * Converts IEEE half bits to a number.
 *
 * @example
 * ```ts
 * import { f16ToF32 } from "./quant.ts";
 * console.log(f16ToF32(0x3c00)); // 1
 * ```
 */
export function f16ToF32(bits: number): number {
  return F16_TABLE[bits & 0xffff];
}

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/**
 * Converts a number to IEEE half bits, rounding to nearest even (like ggml's `GGML_FP32_TO_FP16`);
 * overflow gives ±Inf, NaN stays NaN.
 *
 * @example
 * ```ts
 * import { f32ToF16 } from "./quant.ts";
 * console.log(f32ToF16(1).toString(16)); // "3c00"
 * ```
 */
export function f32ToF16(value: number): number {
  F32_SCRATCH[0] = value;
  const x = U32_SCRATCH[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const man = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    const m = man | 0x800000; // implicit bit
    const shift = 14 - e; // 24-bit mantissa → subnormal half units of 2^-24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct
  return sign | h;
}

/**
 * Converts bf16 bits (the upper half of an f32) to a number.
 *
 * @example
 * ```ts
 * import { bf16ToF32 } from "./quant.ts";
 * console.log(bf16ToF32(0x3f80)); // 1
 * ```
 */
export function bf16ToF32(bits: number): number {
  U32_SCRATCH[0] = (bits & 0xffff) << 16;
  return F32_SCRATCH[0];
}

// ---------------------------------------------------------------------------------------------------
// Dequantization (exactly as ggml's dequantize_row_*; Math.fround mirrors each f32 operation)

const fr = Math.fround;

/**
 * Dequantizes `nElements` elements of `type` from GGUF bytes, exactly as ggml does.
 *
 * @example
 * ```ts
 * import { GgmlType, dequantize } from "./quant.ts";
 * const block = new Uint8Array(34);
 * block.set([0x00, 0x3c]); // d = 1.0 (f16)
 * block[2] = 0xfe; // q0 = -2
 * console.log(dequantize(GgmlType.Q8_0, block, 32)[0]); // -2
 * ```
 */
export function dequantize(type: number, bytes: Uint8Array, nElements: number): Float32Array {
  const need = tensorBytes(type, nElements);
  if (bytes.byteLength < need) {
    throw new RangeError(
      `Cannot dequantize ${
        typeInfo(type).name
      }: ${nElements} elements need ${need} bytes: current length is ${bytes.byteLength}`,
    );
  }
  const out = new Float32Array(nElements);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, need);
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < nElements; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case GgmlType.F16:
      for (let i = 0; i < nElements; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      break;
    case GgmlType.BF16:
      for (let i = 0; i < nElements; i++) out[i] = bf16ToF32(dv.getUint16(2 * i, true));
      break;
    case GgmlType.Q4_0:
      for (let b = 0; b < nElements / 32; b++) dequantQ4_0Block(bytes, dv, b * 18, out, b * 32);
      break;
    case GgmlType.Q8_0:
      for (let b = 0; b < nElements / 32; b++) dequantQ8_0Block(bytes, dv, b * 34, out, b * 32);
      break;
    case GgmlType.Q4_K:
      for (let b = 0; b < nElements / 256; b++) dequantQ4_KBlock(bytes, dv, b * 144, out, b * 256);
      break;
    case GgmlType.Q6_K:
      for (let b = 0; b < nElements / 256; b++) dequantQ6_KBlock(bytes, dv, b * 210, out, b * 256);
      break;
  }
  return out;
}

function dequantQ4_0Block(u8: Uint8Array, dv: DataView, p: number, y: Float32Array, o: number): void {
  const d = f16ToF32(dv.getUint16(p, true));
  for (let j = 0; j < 16; j++) {
    const q = u8[p + 2 + j];
    y[o + j] = fr(((q & 0x0f) - 8) * d);
    y[o + j + 16] = fr(((q >> 4) - 8) * d);
  }
}

function dequantQ8_0Block(u8: Uint8Array, dv: DataView, p: number, y: Float32Array, o: number): void {
  const d = f16ToF32(dv.getUint16(p, true));
  for (let j = 0; j < 32; j++) y[o + j] = fr(((u8[p + 2 + j] << 24) >> 24) * d);
}

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block `j` (0..7) from 12 packed bytes. */
function scaleMinK4(u8: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [u8[s + j] & 63, u8[s + j + 4] & 63];
  return [
    (u8[s + j + 4] & 0xf) | ((u8[s + j - 4] >> 6) << 4),
    (u8[s + j + 4] >> 4) | ((u8[s + j] >> 6) << 4),
  ];
}

function dequantQ4_KBlock(u8: Uint8Array, dv: DataView, p: number, y: Float32Array, o: number): void {
  const d = f16ToF32(dv.getUint16(p, true));
  const dmin = f16ToF32(dv.getUint16(p + 2, true));
  const scales = p + 4;
  let q = p + 16;
  for (let j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
    const [sc1, m1] = scaleMinK4(u8, scales, is);
    const [sc2, m2] = scaleMinK4(u8, scales, is + 1);
    const d1 = fr(d * sc1), min1 = fr(dmin * m1);
    const d2 = fr(d * sc2), min2 = fr(dmin * m2);
    for (let l = 0; l < 32; l++) y[o + j + l] = fr(fr(d1 * (u8[q + l] & 0xf)) - min1);
    for (let l = 0; l < 32; l++) y[o + j + 32 + l] = fr(fr(d2 * (u8[q + l] >> 4)) - min2);
  }
}

function dequantQ6_KBlock(u8: Uint8Array, dv: DataView, p: number, y: Float32Array, o: number): void {
  const d = f16ToF32(dv.getUint16(p + 208, true));
  const sc = (i: number) => (u8[p + 192 + i] << 24) >> 24;
  for (let n = 0; n < 2; n++) {
    const ql = p + 64 * n, qh = p + 128 + 32 * n, s = 8 * n, yo = o + 128 * n;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4, h = u8[qh + l];
      const q1 = ((u8[ql + l] & 0xf) | (((h >> 0) & 3) << 4)) - 32;
      const q2 = ((u8[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((u8[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((u8[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[yo + l] = fr(fr(d * sc(s + is)) * q1);
      y[yo + l + 32] = fr(fr(d * sc(s + is + 2)) * q2);
      y[yo + l + 64] = fr(fr(d * sc(s + is + 4)) * q3);
      y[yo + l + 96] = fr(fr(d * sc(s + is + 6)) * q4);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Reference quantizers (ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref)

function checkQuantInput(name: string, x: Float32Array): void {
  if (x.length % 32 !== 0) {
    throw new RangeError(
      `Cannot quantize to ${name}: length must be a multiple of 32: current value is ${x.length}`,
    );
  }
}

/**
 * Quantizes to Q8_0 like ggml's `quantize_row_q8_0_ref`: d = max|x|/127, q = round(x/d) (half away
 * from zero), d stored as f16.
 *
 * @example
 * ```ts
 * import { GgmlType, dequantize, quantizeQ8_0 } from "./quant.ts";
 * const x = new Float32Array(32).map((_, i) => i / 31);
 * const y = dequantize(GgmlType.Q8_0, quantizeQ8_0(x), 32);
 * console.log(Math.abs(y[31] - 1) < 1e-3); // true
 * ```
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  checkQuantInput("q8_0", x);
  const out = new Uint8Array((x.length / 32) * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < 32; j++) {
      const v = fr(x[b * 32 + j] * id);
      out[b * 34 + 2 + j] = Math.sign(v) * Math.round(Math.abs(v)) & 0xff; // C roundf
    }
  }
  return out;
}

/**
 * Quantizes to Q4_0 like ggml's `quantize_row_q4_0_ref`: d = (the value of largest magnitude)/−8,
 * q = min(15, trunc(x/d + 8.5)), d stored as f16.
 *
 * @example
 * ```ts
 * import { GgmlType, dequantize, quantizeQ4_0 } from "./quant.ts";
 * const x = new Float32Array(32).fill(-0.5);
 * console.log(dequantize(GgmlType.Q4_0, quantizeQ4_0(x), 32)[0]); // -0.5
 * ```
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  checkQuantInput("q4_0", x);
  const out = new Uint8Array((x.length / 32) * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    const xs = x.subarray(b * 32, b * 32 + 32);
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      if (amax < Math.abs(xs[j])) {
        amax = Math.abs(xs[j]);
        max = xs[j];
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(b * 18, f32ToF16(d), true);
    for (let j = 0; j < 16; j++) {
      const x0 = fr(fr(xs[j] * id) + 8.5);
      const x1 = fr(fr(xs[j + 16] * id) + 8.5);
      const q0 = Math.min(15, Math.trunc(x0));
      const q1 = Math.min(15, Math.trunc(x1));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}
