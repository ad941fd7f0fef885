import assert from "node:assert/strict";
import {
  bf16ToF32,
  dequantize,
  f16ToF32,
  f32ToF16,
  GgmlType,
  isSupportedType,
  quantizeQ4_0,
  quantizeQ8_0,
  tensorBytes,
  typeInfo,
} from "../src/model/quant.ts";
import { gpuRowBytes, repackForGpu } from "../src/model/gpu_weight.ts";
import { GgufFile } from "../src/model/gguf.ts";
import { embeddingRef, matmulRef, randomWeightBytes } from "../src/ref/matmul.ts";
import { randomFloats } from "./_gpu.ts";

const MODELS = new URL("../../shared/models/", import.meta.url).pathname;

Deno.test("f16ToF32() and f32ToF16() agree with DataView's float16 on every half and on edge cases", () => {
  const dv = new DataView(new ArrayBuffer(2));
  for (let h = 0; h < 65536; h++) {
    dv.setUint16(0, h, true);
    const want = dv.getFloat16(0, true);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(f16ToF32(h)));
    else {
      assert.equal(f16ToF32(h), want, `half 0x${h.toString(16)}`);
      assert.equal(f32ToF16(want), h, `round trip 0x${h.toString(16)}`);
    }
  }
  const edge = [
    0,
    -0,
    65504,
    65520,
    65519.99,
    1e6,
    -1e6,
    2 ** -24,
    2 ** -25,
    2 ** -25 * 1.0001,
    3 * 2 ** -26,
    6.1e-5,
    1 + 2 ** -11,
  ];
  for (const v of [...edge, ...randomFloats(20000, 3, 8), ...randomFloats(2000, 4, 1e-5)]) {
    dv.setFloat16(0, v, true);
    assert.equal(f32ToF16(v), dv.getUint16(0, true), `value ${v}`);
  }
  assert.equal(f32ToF16(NaN) & 0x7c00, 0x7c00);
  assert.ok((f32ToF16(NaN) & 0x3ff) !== 0);
  assert.equal(bf16ToF32(0xc040), -3);
});

Deno.test("typeInfo() and tensorBytes() describe the supported types and reject others", () => {
  assert.deepEqual(
    [0, 1, 2, 8, 12, 14, 30].map((t) => [typeInfo(t).blockSize, typeInfo(t).blockBytes]),
    [[1, 4], [1, 2], [32, 18], [32, 34], [256, 144], [256, 210], [1, 2]],
  );
  assert.equal(tensorBytes(GgmlType.Q4_K, 512), 288);
  assert.equal(tensorBytes(GgmlType.F16, 3), 6);
  assert.equal(isSupportedType(3), false);
  assert.throws(() => typeInfo(3), /supported types are/);
  assert.throws(() => tensorBytes(GgmlType.Q8_0, 48), RangeError);
});

Deno.test("dequantize() decodes a hand-built Q4_0 block: low nibbles are weights 0–15, high 16–31", () => {
  const block = new Uint8Array(18);
  block.set([0x00, 0x40]); // d = 2.0
  for (let j = 0; j < 16; j++) block[2 + j] = j | ((15 - j) << 4);
  const y = dequantize(GgmlType.Q4_0, block, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(y[j], (j - 8) * 2);
    assert.equal(y[16 + j], (15 - j - 8) * 2);
  }
});

Deno.test("dequantize() decodes a hand-built Q8_0 block as q·d with signed bytes", () => {
  const block = new Uint8Array(34);
  block.set([0x00, 0x38]); // d = 0.5
  const q = Int8Array.from({ length: 32 }, (_, i) => (i * 37) % 256 - 128);
  block.set(new Uint8Array(q.buffer), 2);
  assert.deepEqual([...dequantize(GgmlType.Q8_0, block, 32)], [...q].map((v) => v * 0.5));
});

/** Packs 8 six-bit scales and mins the way ggml's get_scale_min_k4 unpacks them. */
function packScalesK4(sc: number[], m: number[]): number[] {
  const out = new Array(12).fill(0);
  for (let j = 0; j < 4; j++) {
    out[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    out[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
    out[j + 8] = (sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4);
  }
  return out;
}

Deno.test("dequantize() decodes a hand-built Q4_K block (6-bit scales/mins, nibble chunks of 64)", () => {
  const sc = [1, 2, 3, 4, 17, 33, 50, 63], m = [0, 1, 2, 3, 20, 40, 60, 5];
  const block = new Uint8Array(144);
  block.set([0x00, 0x3c, 0x00, 0x38]); // d = 1, dmin = 0.5
  block.set(packScalesK4(sc, m), 4);
  for (let i = 0; i < 128; i++) block[16 + i] = (i * 7 + 3) & 0xff;
  const y = dequantize(GgmlType.Q4_K, block, 256);
  for (let e = 0; e < 256; e++) {
    const chunk = e >> 6, p = e & 63, s = e >> 5;
    const byte = block[16 + 32 * chunk + (p & 31)];
    const q = p < 32 ? byte & 0xf : byte >> 4;
    assert.equal(y[e], sc[s] * q - 0.5 * m[s], `element ${e}`);
  }
});

Deno.test("dequantize() decodes a hand-built Q6_K block in ggml's interleaved order", () => {
  const block = new Uint8Array(210);
  for (let i = 0; i < 192; i++) block[i] = (i * 29 + 11) & 0xff; // ql, qh
  const scales = [-3, 1, 2, 3, 4, 5, 6, 7, -8, 9, 10, 11, 12, 13, 14, 127];
  block.set(new Uint8Array(Int8Array.from(scales).buffer), 192);
  block.set([0x00, 0x34], 208); // d = 0.25
  const y = dequantize(GgmlType.Q6_K, block, 256);
  for (let e = 0; e < 256; e++) {
    const n = e >> 7, r = e & 127, qd = r >> 5, l = r & 31;
    const lo = block[64 * n + l + 32 * (qd & 1)];
    const nib = qd >= 2 ? lo >> 4 : lo & 0xf;
    const hi = (block[128 + 32 * n + l] >> (2 * qd)) & 3;
    const q = (nib | (hi << 4)) - 32;
    assert.equal(y[e], 0.25 * scales[8 * n + (l >> 4) + 2 * qd] * q, `element ${e}`);
  }
});

Deno.test("quantizeQ4_0() maps integer inputs exactly when the largest magnitude is −8", () => {
  const x = Float32Array.from({ length: 32 }, (_, i) => (i % 16) - 8); // -8..7, d = -8/-8 = 1
  const block = quantizeQ4_0(x);
  assert.deepEqual([...block.subarray(0, 2)], [0x00, 0x3c]);
  assert.deepEqual([...dequantize(GgmlType.Q4_0, block, 32)], [...x]);
  assert.equal(block[2], 0x00); // q = 0 for -8 in both halves
});

// Bounds: half a step (Q4_0: a whole step at the clamp), plus the f16 rounding of d times the
// largest |q| (127 · 2⁻¹¹ ≈ 0.062 steps for Q8_0, 8 · 2⁻¹¹ for Q4_0).
Deno.test("quantizeQ8_0() and quantizeQ4_0() stay within half a step (Q4_0: one step at the clamp)", () => {
  const x = randomFloats(32 * 64, 7, 3);
  const y8 = dequantize(GgmlType.Q8_0, quantizeQ8_0(x), x.length);
  const y4 = dequantize(GgmlType.Q4_0, quantizeQ4_0(x), x.length);
  for (let b = 0; b < 64; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    for (let j = 0; j < 32; j++) {
      const i = 32 * b + j;
      assert.ok(Math.abs(y8[i] - x[i]) <= (amax / 127) * 0.563, `q8_0 element ${i}`);
      assert.ok(Math.abs(y4[i] - x[i]) <= (amax / 8) * 1.004, `q4_0 element ${i}`);
    }
  }
  assert.deepEqual([...quantizeQ8_0(new Float32Array(32))], new Array(34).fill(0));
});

Deno.test("quantizers and f32ToF16() reproduce llama.cpp's stories260K Q8_0, Q4_0 and F16 files byte for byte", async () => {
  const f32 = await GgufFile.open(`${MODELS}stories260K.gguf`);
  try {
    for (
      const [file, type, quantize] of [
        ["stories260K-q8_0.gguf", GgmlType.Q8_0, quantizeQ8_0],
        ["stories260K-q4_0.gguf", GgmlType.Q4_0, quantizeQ4_0],
        [
          "stories260K-f16.gguf",
          GgmlType.F16,
          (x: Float32Array) => new Uint8Array(Uint16Array.from(x, f32ToF16).buffer),
        ],
      ] as const
    ) {
      const q = await GgufFile.open(`${MODELS}${file}`);
      try {
        let checked = 0;
        for (const info of q.tensors.filter((t) => t.type === type)) {
          const ref = await f32.readTensor(info.name, info.nElements * 4);
          const x = new Float32Array(ref.buffer, ref.byteOffset, info.nElements);
          const bytes = await q.readTensor(info.name, tensorBytes(type, info.nElements));
          assert.deepEqual(quantize(x), bytes, `${file}: ${info.name}`);
          // ...and dequantizing stays within the type's step of the F32 weights.
          const y = dequantize(type, bytes, info.nElements);
          let amax = 0, err = 0;
          for (let i = 0; i < x.length; i++) {
            amax = Math.max(amax, Math.abs(x[i]));
            err = Math.max(err, Math.abs(x[i] - y[i]));
          }
          const step = type === GgmlType.Q4_0
            ? (amax / 8) * 1.004
            : type === GgmlType.Q8_0
            ? (amax / 127) * 0.563
            : amax / 2048;
          assert.ok(err <= step, `${file}: ${info.name}: max error ${err} > ${step}`);
          checked++;
        }
        assert.ok(checked >= 20, `${file}: only ${checked} tensors of type ${type}`);
      } finally {
        q.close();
      }
    }
  } finally {
    f32.close();
  }
});

Deno.test("repackForGpu() lays blocks out as documented in gpu_weight.ts", () => {
  // Q8_0: 9 words, d in the low half of word 0.
  const q8 = quantizeQ8_0(randomFloats(64, 1));
  const w8 = repackForGpu(GgmlType.Q8_0, q8, 1, 64);
  assert.equal(w8.length, 18);
  for (const b of [0, 1]) {
    assert.equal(w8[9 * b], q8[34 * b] | (q8[34 * b + 1] << 8));
    assert.deepEqual(new Uint8Array(w8.buffer, (9 * b + 1) * 4, 32), q8.subarray(34 * b + 2, 34 * b + 34));
  }
  // Q4_0: 5 words.
  const q4 = quantizeQ4_0(randomFloats(32, 2));
  const w4 = repackForGpu(GgmlType.Q4_0, q4, 1, 32);
  assert.equal(w4.length, 5);
  assert.equal(w4[0], q4[0] | (q4[1] << 8));
  assert.deepEqual(new Uint8Array(w4.buffer, 4, 16), q4.subarray(2));
  // Q4_K unchanged, Q6_K padded to 53 words.
  const k4 = randomWeightBytes(GgmlType.Q4_K, 2, 256, 3);
  assert.deepEqual(new Uint8Array(repackForGpu(GgmlType.Q4_K, k4, 2, 256).buffer), k4);
  const k6 = randomWeightBytes(GgmlType.Q6_K, 2, 256, 4);
  const w6 = new Uint8Array(repackForGpu(GgmlType.Q6_K, k6, 2, 256).buffer);
  assert.equal(w6.length, 212 * 2);
  assert.deepEqual(w6.subarray(212, 422), k6.subarray(210));
  assert.deepEqual([...w6.subarray(210, 212)], [0, 0]);
  // F16: halves flattened, tail padded.
  const h = new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0xc000]).buffer);
  assert.deepEqual([...repackForGpu(GgmlType.F16, h, 1, 3)], [0x40003c00, 0xc000]);
  assert.equal(gpuRowBytes(GgmlType.Q6_K, 512), 424);
  assert.throws(() => repackForGpu(GgmlType.Q4_K, k4, 2, 128), RangeError);
  assert.throws(() => repackForGpu(GgmlType.Q4_K, k4, 3, 256), /needs 432 bytes/);
});

Deno.test("matmulRef() and embeddingRef() compute the plain definitions", () => {
  const W = new Float32Array([1, 2, 3, 4, 5, 6]); // [[1, 2], [3, 4], [5, 6]]
  assert.deepEqual([...matmulRef(W, new Float32Array([1, 0, 0, 1]), 2, 3, 2)], [1, 3, 5, 2, 4, 6]);
  assert.deepEqual([...embeddingRef(W, [2, 0, 2], 2)], [5, 6, 1, 2, 5, 6]);
  assert.throws(() => embeddingRef(W, [3], 2), RangeError);
});
