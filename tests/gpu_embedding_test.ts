import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { EmbeddingKernel } from "../src/kernels/embedding.ts";
import { gpuRowBytes, uploadWeight } from "../src/model/gpu_weight.ts";
import { dequantize, GgmlType, tensorBytes, typeInfo } from "../src/model/quant.ts";
import { GgufFile } from "../src/model/gguf.ts";
import { embeddingRef, randomWeightBytes } from "../src/ref/matmul.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import type { GpuWeight } from "../src/model/gpu_weight.ts";

const MODELS = new URL("../../shared/models/", import.meta.url).pathname;
const SENTINEL = -7;

/** Looks up `ids` (stored after `idsOffset` filler ids) and returns out[t, :] (after `outOffset`). */
async function runEmbedding(
  gpu: Gpu,
  emb: EmbeddingKernel,
  table: GpuWeight,
  ids: number[],
  idsOffset: number,
  outOffset: number,
): Promise<Float32Array> {
  const idsBuf = gpu.upload("ids", Uint32Array.from([...new Array(idsOffset).fill(0), ...ids]));
  const outLen = outOffset + ids.length * table.cols;
  const outBuf = gpu.upload("out", new Float32Array(outLen).fill(SENTINEL));
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  emb.encode(pass, outBuf, idsBuf, idsOffset, ids.length, table, { outOffset });
  pass.end();
  gpu.submit(enc);
  const out = new Float32Array(await gpu.read(outBuf, 0, outLen * 4));
  gpu.free(idsBuf);
  gpu.free(outBuf);
  for (let i = 0; i < outOffset; i++) {
    assert.equal(out[i], SENTINEL, `element ${i} before outOffset was written`);
  }
  return out.subarray(outOffset);
}

/** Asserts equality up to 1e-6 of each row's largest magnitude (the GPU may fuse d·sc·q − m). */
function assertRowsClose(got: Float32Array, want: Float32Array, cols: number, label: string): void {
  for (let t = 0; t < want.length / cols; t++) {
    let mag = 0;
    for (let c = 0; c < cols; c++) mag = Math.max(mag, Math.abs(want[t * cols + c]));
    for (let c = 0; c < cols; c++) {
      const i = t * cols + c;
      assert.ok(
        Math.abs(got[i] - want[i]) <= 1e-6 * mag,
        `${label}: out[${t}, ${c}] = ${got[i]}, expected ${want[i]}`,
      );
    }
  }
}

const CASES: [GgmlType, number][] = [
  [GgmlType.F32, 172],
  [GgmlType.F16, 260],
  [GgmlType.BF16, 172],
  [GgmlType.Q8_0, 96],
  [GgmlType.Q4_0, 160],
  [GgmlType.Q4_K, 256],
  [GgmlType.Q6_K, 512],
];

for (const [type, cols] of CASES) {
  const name = typeInfo(type).name;
  gpuTest(
    `EmbeddingKernel.encode() matches embeddingRef for ${name} tables, whole and chunked`,
    async (gpu) => {
      const emb = await EmbeddingKernel.create(gpu, { types: [type] });
      const rows = 37;
      const raw = randomWeightBytes(type, rows, cols, 11);
      const table = dequantize(type, raw, rows * cols);
      const whole = uploadWeight(gpu, `table ${name}`, type, rows, cols, raw);
      const split = uploadWeight(gpu, `table ${name} split`, type, rows, cols, raw, {
        maxChunkBytes: gpuRowBytes(type, cols) * 8,
      });
      assert.equal(split.chunks.length, 5);
      const ids = [36, 0, 7, 8, 7, 15, 16, 35, 1];
      const want = embeddingRef(table, ids, cols);
      assertRowsClose(await runEmbedding(gpu, emb, whole, ids, 0, 0), want, cols, `${name} whole`);
      assertRowsClose(await runEmbedding(gpu, emb, split, ids, 3, 5), want, cols, `${name} chunked, offsets`);
      // An id past the table leaves its output row untouched.
      const out = await runEmbedding(gpu, emb, split, [2, rows, 3], 0, 0);
      assert.deepEqual([...out.subarray(cols, 2 * cols)], new Array(cols).fill(SENTINEL));
      assertRowsClose(out.subarray(2 * cols), embeddingRef(table, [3], cols), cols, `${name} after a bad id`);
      for (const w of [whole, split]) for (const c of w.chunks) gpu.free(c.buffer);
    },
  );
}

gpuTest(
  "EmbeddingKernel.encode() reads llama.cpp's real Q4_K token_embd of synth-256-q4_k_m",
  async (gpu) => {
    const f = await GgufFile.open(`${MODELS}synth-256-q4_k_m.gguf`);
    try {
      const info = f.tensor("token_embd.weight")!;
      const [cols, rows] = info.dims;
      assert.equal(info.type, GgmlType.Q4_K);
      const raw = await f.readTensor(info.name, tensorBytes(info.type, info.nElements));
      const emb = await EmbeddingKernel.create(gpu, { types: [info.type] });
      const w = uploadWeight(gpu, info.name, info.type, rows, cols, raw, {
        maxChunkBytes: gpuRowBytes(info.type, cols) * 100,
      });
      const ids = [0, 1, 99, 100, 255, 511, 300];
      const want = embeddingRef(dequantize(info.type, raw, info.nElements), ids, cols);
      assertRowsClose(await runEmbedding(gpu, emb, w, ids, 0, 0), want, cols, "token_embd");
      for (const c of w.chunks) gpu.free(c.buffer);
    } finally {
      f.close();
    }
  },
);

gpuTest(
  "EmbeddingKernel.encode() rejects tables whose rows are not a multiple of 4 and small buffers",
  async (gpu) => {
    const emb = await EmbeddingKernel.create(gpu, { types: [GgmlType.F16] });
    const buf = gpu.createBuffer("b", 64);
    const t = (cols: number): GpuWeight => ({
      name: "t",
      type: GgmlType.F16,
      rows: 1,
      cols,
      chunks: [{ buffer: buf, rowStart: 0, rowCount: 1 }],
    });
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    assert.throws(() => emb.encode(pass, buf, buf, 0, 1, t(6)), /multiple of 4/);
    assert.throws(() => emb.encode(pass, buf, buf, 0, 3, t(8)), /out needs/);
    assert.throws(() => emb.encode(pass, buf, buf, 15, 2, t(4)), /ids needs/);
    assert.throws(() => emb.encode(pass, buf, buf, 0, 1, { ...t(4), type: GgmlType.Q4_0 }), TypeError);
    pass.end();
    enc.finish();
    gpu.free(buf);
  },
);
