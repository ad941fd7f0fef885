import assert from "node:assert/strict";
import { gpuTest, randomFloats } from "./_gpu.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import { MatmulKernel, matmulTripCount } from "../src/kernels/matmul.ts";
import { gpuRowBytes, type GpuWeight, uploadWeight } from "../src/model/gpu_weight.ts";
import { dequantize, GgmlType, tensorBytes, typeInfo } from "../src/model/quant.ts";
import { GgufFile } from "../src/model/gguf.ts";
import { matmulRef, randomWeightBytes } from "../src/ref/matmul.ts";

/** Runs one matmul on the GPU and returns out[t, r] for every token (reading around the offsets). */
async function runMatmul(
  gpu: Gpu,
  mm: MatmulKernel,
  w: GpuWeight,
  x: Float32Array,
  nTokens: number,
  o: { xOffset: number; outOffset: number; outStride: number },
): Promise<Float32Array> {
  const xPadded = new Float32Array(o.xOffset + x.length);
  xPadded.set(x, o.xOffset);
  const xBuf = gpu.upload("x", xPadded);
  const outLen = o.outOffset + (nTokens - 1) * o.outStride + w.rows;
  const outBuf = gpu.upload("out", new Float32Array(outLen).fill(-7)); // sentinel
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  mm.encode(pass, outBuf, xBuf, w, nTokens, o);
  pass.end();
  gpu.submit(enc);
  const raw = new Float32Array(await gpu.read(outBuf, 0, outLen * 4));
  gpu.free(xBuf);
  gpu.free(outBuf);
  // Untouched elements (offset head, stride gaps) must keep the sentinel.
  for (let i = 0; i < outLen; i++) {
    const r = (i - o.outOffset) % o.outStride;
    if (i < o.outOffset || r >= w.rows) {
      assert.equal(raw[i], -7, `element ${i} outside the output was written`);
    }
  }
  const out = new Float32Array(nTokens * w.rows);
  for (let t = 0; t < nTokens; t++) {
    out.set(raw.subarray(o.outOffset + t * o.outStride, o.outOffset + t * o.outStride + w.rows), t * w.rows);
  }
  return out;
}

/** Asserts |gpu − ref| ≤ 1e-5 · Σ_c |W[r,c]·x[t,c]| (+1e-30) for every output. */
function assertClose(
  gpuOut: Float32Array,
  W: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  label: string,
) {
  const nTokens = x.length / cols;
  const ref = matmulRef(W, x, nTokens, rows, cols);
  for (let t = 0; t < nTokens; t++) {
    for (let r = 0; r < rows; r++) {
      let mag = 0;
      for (let c = 0; c < cols; c++) mag += Math.abs(W[r * cols + c] * x[t * cols + c]);
      const i = t * rows + r;
      const diff = Math.abs(gpuOut[i] - ref[i]);
      assert.ok(
        diff <= 1e-5 * mag + 1e-30,
        `${label}: out[${t}, ${r}] = ${gpuOut[i]}, expected ${ref[i]} (|Σ| ${mag})`,
      );
    }
  }
}

const CASES: { type: GgmlType; shapes: [number, number][] }[] = [
  { type: GgmlType.F32, shapes: [[37, 172], [133, 260]] },
  { type: GgmlType.F16, shapes: [[37, 172], [133, 260]] },
  { type: GgmlType.BF16, shapes: [[37, 172], [133, 260]] },
  { type: GgmlType.Q8_0, shapes: [[37, 96], [133, 512]] },
  { type: GgmlType.Q4_0, shapes: [[37, 96], [133, 512]] },
  { type: GgmlType.Q4_K, shapes: [[37, 256], [133, 512]] },
  { type: GgmlType.Q6_K, shapes: [[37, 256], [133, 512]] },
];

for (const { type, shapes } of CASES) {
  const name = typeInfo(type).name;
  gpuTest(
    `MatmulKernel.encode() matches matmulRef for ${name} weights (odd shapes, offsets, chunks)`,
    async (gpu) => {
      const mm = await MatmulKernel.create(gpu, { types: [type] });
      let seed = 1;
      for (const [rows, cols] of shapes) {
        const raw = randomWeightBytes(type, rows, cols, seed++);
        const W = dequantize(type, raw, rows * cols);
        const whole = uploadWeight(gpu, `w ${name}`, type, rows, cols, raw);
        // ~5 chunks, the last one short.
        const split = uploadWeight(gpu, `w ${name} split`, type, rows, cols, raw, {
          maxChunkBytes: gpuRowBytes(type, cols) * Math.ceil(rows / 5),
        });
        assert.equal(whole.chunks.length, 1);
        assert.ok(split.chunks.length >= 4, `expected a split, got ${split.chunks.length} chunk(s)`);
        for (const nTokens of [1, 3, 7]) {
          const x = randomFloats(nTokens * cols, seed++);
          const plain = await runMatmul(gpu, mm, whole, x, nTokens, {
            xOffset: 0,
            outOffset: 0,
            outStride: rows,
          });
          assertClose(plain, W, x, rows, cols, `${name} [${rows}, ${cols}] × ${nTokens}`);
          const offs = { xOffset: 8, outOffset: 5, outStride: rows + 3 };
          const chunked = await runMatmul(gpu, mm, split, x, nTokens, offs);
          assertClose(chunked, W, x, rows, cols, `${name} [${rows}, ${cols}] × ${nTokens}, offsets, chunked`);
        }
        for (const w of [whole, split]) for (const c of w.chunks) gpu.free(c.buffer);
      }
    },
  );
}

gpuTest(
  "MatmulKernel.encode() handles token blocks of 1, 8 and 16 and more tokens than one block",
  async (gpu) => {
    const [rows, cols, nTokens] = [45, 128, 19];
    const raw = randomWeightBytes(GgmlType.Q8_0, rows, cols, 99);
    const W = dequantize(GgmlType.Q8_0, raw, rows * cols);
    const w = uploadWeight(gpu, "w", GgmlType.Q8_0, rows, cols, raw);
    const x = randomFloats(nTokens * cols, 5);
    for (const tokenBlock of [1, 8, 16]) {
      const mm = await MatmulKernel.create(gpu, { types: [GgmlType.Q8_0], tokenBlock, workgroupSize: 32 });
      const out = await runMatmul(gpu, mm, w, x, nTokens, { xOffset: 4, outOffset: 1, outStride: rows });
      assertClose(out, W, x, rows, cols, `tb${tokenBlock}`);
    }
  },
);

gpuTest(
  "MatmulKernel.encode() rejects shapes beyond llvmpipe's loop budget and misaligned offsets",
  async (gpu) => {
    const mm = await MatmulKernel.create(gpu, { types: [GgmlType.F32] });
    assert.ok(
      matmulTripCount(14336, mm.tokenBlock) < 60000,
      "a 14336-column FFN row must fit with the default token block",
    );
    const buf = gpu.createBuffer("big", 4096);
    const fake = (cols: number): GpuWeight => ({
      name: "fake",
      type: GgmlType.F32,
      rows: 1,
      cols,
      chunks: [{ buffer: buf, rowStart: 0, rowCount: 1 }],
    });
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    assert.throws(() => mm.encode(pass, buf, buf, fake(49152), 9), RangeError);
    assert.throws(() => mm.encode(pass, buf, buf, fake(64), 1, { xOffset: 2 }), RangeError);
    assert.throws(() => mm.encode(pass, buf, buf, fake(1028), 1), /x needs/);
    assert.throws(() => mm.encode(pass, buf, buf, { ...fake(64), type: GgmlType.Q4_K }, 1), TypeError);
    pass.end();
    enc.finish();
    gpu.free(buf);
  },
);

gpuTest("MatmulKernel.encode() matches matmulRef on llama.cpp's real Q4_K and Q6_K tensors", async (gpu) => {
  const f = await GgufFile.open(
    new URL("../../shared/models/synth-256-q4_k_m.gguf", import.meta.url).pathname,
  );
  try {
    const mm = await MatmulKernel.create(gpu, { types: [GgmlType.Q4_K, GgmlType.Q6_K] });
    for (const name of ["blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output.weight"]) {
      const info = f.tensor(name)!;
      const [cols, rows] = info.dims;
      const raw = await f.readTensor(name, tensorBytes(info.type, info.nElements));
      const w = uploadWeight(gpu, name, info.type, rows, cols, raw);
      const x = randomFloats(5 * cols, 17);
      const out = await runMatmul(gpu, mm, w, x, 5, { xOffset: 0, outOffset: 0, outStride: rows });
      assertClose(
        out,
        dequantize(info.type, raw, info.nElements),
        x,
        rows,
        cols,
        `${name} (${typeInfo(info.type).name})`,
      );
      for (const c of w.chunks) gpu.free(c.buffer);
    }
  } finally {
    f.close();
  }
});

gpuTest(
  "MatmulKernel.encode() runs a 14336-column row (Llama 3 FFN) within llvmpipe's loop limit",
  async (gpu) => {
    const [rows, cols, nTokens] = [3, 14336, 6];
    const mm = await MatmulKernel.create(gpu, { types: [GgmlType.Q4_K] });
    const raw = randomWeightBytes(GgmlType.Q4_K, rows, cols, 23);
    const w = uploadWeight(gpu, "ffn_down-like", GgmlType.Q4_K, rows, cols, raw);
    const x = randomFloats(nTokens * cols, 29);
    const out = await runMatmul(gpu, mm, w, x, nTokens, { xOffset: 0, outOffset: 0, outStride: rows });
    assertClose(out, dequantize(GgmlType.Q4_K, raw, rows * cols), x, rows, cols, "14336 columns");
    for (const c of w.chunks) gpu.free(c.buffer);
  },
);
