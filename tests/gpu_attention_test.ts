import assert from "node:assert/strict";
import type { Gpu } from "../src/gpu/gpu.ts";
import { AttentionKernel } from "../src/kernels/attention.ts";
import * as ref from "../src/ref/ops.ts";
import { gpuTest, maxAbsDiff, randomFloats } from "./_gpu.ts";

/** Encodes `body` in one compute pass and submits it. */
function run(gpu: Gpu, body: (pass: GPUComputePassEncoder) => void): void {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  body(pass);
  pass.end();
  gpu.submit(enc);
}

async function readF32(gpu: Gpu, buf: GPUBuffer): Promise<Float32Array> {
  return new Float32Array(await gpu.read(buf, 0, buf.size));
}

gpuTest("AttentionKernel.storeKv() writes fused k|v rows into the caches at pos0", async (gpu) => {
  const attn = await AttentionKernel.create(gpu);
  const [nTokens, nKvHeads, headDim, capacity, pos0] = [3, 4, 8, 20, 5];
  const width = nKvHeads * headDim, stride = 2 * width + 4, rowsOff = 8, cacheOff = 12;
  const rows = randomFloats(rowsOff + nTokens * stride, 1);
  const cacheLen = cacheOff + nKvHeads * capacity * headDim;
  const kc = randomFloats(cacheLen, 2), vc = randomFloats(cacheLen, 3);
  const rb = gpu.upload("k|v rows", rows), kcb = gpu.upload("kc", kc), vcb = gpu.upload("vc", vc);
  run(gpu, (pass) =>
    attn.storeKv(pass, {
      k: rb,
      v: rb,
      kCache: kcb,
      vCache: vcb,
      nTokens,
      nKvHeads,
      headDim,
      capacity,
      pos0,
      kOffset: rowsOff,
      kStride: stride,
      vOffset: rowsOff + width,
      vStride: stride,
      kCacheOffset: cacheOff,
      vCacheOffset: cacheOff,
    }));
  const shape = { nTokens, nKvHeads, headDim, capacity, pos0 };
  const kRows = new Float32Array(nTokens * width), vRows = new Float32Array(nTokens * width);
  for (let t = 0; t < nTokens; t++) {
    kRows.set(rows.subarray(rowsOff + t * stride, rowsOff + t * stride + width), t * width);
    vRows.set(rows.subarray(rowsOff + t * stride + width, rowsOff + t * stride + 2 * width), t * width);
  }
  ref.kvStore(kc.subarray(cacheOff), kRows, shape);
  ref.kvStore(vc.subarray(cacheOff), vRows, shape);
  assert.deepEqual(await readF32(gpu, kcb), kc);
  assert.deepEqual(await readF32(gpu, vcb), vc);
});

interface Case {
  name: string;
  nTokens: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  pos0: number;
  tol: number;
  chunk?: number;
  /** Put q/out in wider rows at offsets, and this layer's caches after another layer's. */
  offsets?: boolean;
}

const cases: Case[] = [
  {
    name: "prefill, 3 tokens, 8 heads / 4 KV heads × 8",
    nTokens: 3,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 8,
    pos0: 0,
    tol: 1e-5,
  },
  {
    name: "prefill at pos0 5, 8 heads / 1 KV head × 32, offsets and strides",
    nTokens: 3,
    nHeads: 8,
    nKvHeads: 1,
    headDim: 32,
    pos0: 5,
    tol: 1e-5,
    offsets: true,
  },
  {
    name: "prefill across a chunk boundary, 8 / 8 heads × 64",
    nTokens: 5,
    nHeads: 8,
    nKvHeads: 8,
    headDim: 64,
    pos0: 125,
    tol: 1e-5,
  },
  {
    name: "700-position context (6 chunks), 3 tokens, 8 / 4 heads × 128",
    nTokens: 3,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 128,
    pos0: 697,
    tol: 1e-4,
    offsets: true,
  },
  {
    name: "decode at pos0 1500, 8 / 4 heads × 128",
    nTokens: 1,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 128,
    pos0: 1500,
    tol: 1e-4,
  },
  {
    name: "decode at pos0 1500 with 16-position chunks (94 chunks), 8 / 1 heads × 64",
    nTokens: 1,
    nHeads: 8,
    nKvHeads: 1,
    headDim: 64,
    pos0: 1500,
    tol: 1e-4,
    chunk: 16,
  },
  {
    name: "head_dim 256, 2 tokens at pos0 300, 4 / 2 heads",
    nTokens: 2,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 256,
    pos0: 300,
    tol: 1e-4,
  },
];

for (const c of cases) {
  gpuTest(`AttentionKernel.encode() matches attention(): ${c.name}`, async (gpu) => {
    const attn = await AttentionKernel.create(gpu, { chunk: c.chunk });
    const { nTokens, nHeads, nKvHeads, headDim, pos0 } = c;
    const capacity = pos0 + nTokens + 7; // positions past the context hold garbage the mask must skip
    const width = nHeads * headDim;
    const qOffset = c.offsets ? 4 : 0, qStride = c.offsets ? width + 2 * nKvHeads * headDim : width;
    const outOffset = c.offsets ? 8 : 0, outStride = c.offsets ? width + 4 : width;
    const cacheLen = nKvHeads * capacity * headDim;
    const kOffset = c.offsets ? cacheLen + 4 : 0, vOffset = c.offsets ? 2 * cacheLen : 0;

    const q = randomFloats(qOffset + nTokens * qStride, 11, 3); // ×3: peakier softmax than plain [−1, 1)
    const kc = randomFloats(kOffset + cacheLen, 12), vc = randomFloats(vOffset + cacheLen, 13);
    const qb = gpu.upload("q", q), kcb = gpu.upload("kc", kc), vcb = gpu.upload("vc", vc);
    const out = gpu.upload("out", randomFloats(outOffset + nTokens * outStride, 14));
    const before = await readF32(gpu, out);
    const scratch = attn.createScratch({ nTokens, nHeads, headDim, context: pos0 + nTokens });
    run(gpu, (pass) =>
      attn.encode(pass, {
        q: qb,
        kCache: kcb,
        vCache: vcb,
        out,
        scratch,
        nTokens,
        nHeads,
        nKvHeads,
        headDim,
        capacity,
        pos0,
        qOffset,
        qStride,
        kOffset,
        vOffset,
        outOffset,
        outStride,
      }));
    const got = await readF32(gpu, out);

    const qDense = new Float32Array(nTokens * width);
    for (let t = 0; t < nTokens; t++) {
      qDense.set(q.subarray(qOffset + t * qStride, qOffset + t * qStride + width), t * width);
    }
    const want = ref.attention(qDense, kc.subarray(kOffset), vc.subarray(vOffset), { ...c, capacity });
    const expected = new Float32Array(before);
    for (let t = 0; t < nTokens; t++) {
      expected.set(want.subarray(t * width, (t + 1) * width), outOffset + t * outStride);
    }
    const diff = maxAbsDiff(got, expected);
    assert.ok(diff < c.tol, `max abs diff ${diff} ≥ ${c.tol}`);
    for (let t = 0; t < nTokens; t++) { // the padding between out rows is untouched
      const pad = outOffset + t * outStride + width;
      assert.deepEqual(
        got.subarray(pad, outOffset + (t + 1) * outStride),
        before.subarray(pad, outOffset + (t + 1) * outStride),
      );
    }
    gpu.free(scratch.acc);
    gpu.free(scratch.ml);
  });
}

gpuTest("storeKv() then encode() in one pass: prefill 5 tokens, then 3 decode steps", async (gpu) => {
  const attn = await AttentionKernel.create(gpu, { chunk: 4 });
  const [nHeads, nKvHeads, headDim, capacity] = [8, 4, 8, 16];
  const width = nHeads * headDim, kvWidth = nKvHeads * headDim;
  const kc = gpu.createBuffer("kc", nKvHeads * capacity * headDim * 4);
  const vc = gpu.createBuffer("vc", nKvHeads * capacity * headDim * 4);
  const kcRef = new Float32Array(nKvHeads * capacity * headDim), vcRef = new Float32Array(kcRef.length);
  const scratch = attn.createScratch({ nTokens: 5, nHeads, headDim, context: capacity });
  let pos = 0;
  for (const [step, nTokens] of [5, 1, 1, 1].entries()) {
    const q = randomFloats(nTokens * width, 20 + step, 2);
    const k = randomFloats(nTokens * kvWidth, 30 + step), v = randomFloats(nTokens * kvWidth, 40 + step);
    const qb = gpu.upload("q", q), kb = gpu.upload("k", k), vb = gpu.upload("v", v);
    const out = gpu.createBuffer("out", nTokens * width * 4);
    const shape = { nTokens, nHeads, nKvHeads, headDim, capacity, pos0: pos };
    run(gpu, (pass) => {
      attn.storeKv(pass, { k: kb, v: vb, kCache: kc, vCache: vc, ...shape });
      attn.encode(pass, { q: qb, kCache: kc, vCache: vc, out, scratch, ...shape });
    });
    ref.kvStore(kcRef, k, shape);
    ref.kvStore(vcRef, v, shape);
    const want = ref.attention(q, kcRef, vcRef, shape);
    assert.ok(maxAbsDiff(await readF32(gpu, out), want) < 1e-5, `step ${step}`);
    pos += nTokens;
  }
});

gpuTest("AttentionKernel rejects shapes it cannot run correctly", async (gpu) => {
  const big = await AttentionKernel.create(gpu, { chunk: 1024 });
  const attn = await AttentionKernel.create(gpu);
  const buf = gpu.createBuffer("any", 1 << 16);
  const scratch = { acc: buf, ml: buf };
  const base = {
    q: buf,
    kCache: buf,
    vCache: buf,
    out: buf,
    scratch,
    nTokens: 1,
    nHeads: 2,
    nKvHeads: 1,
    headDim: 256,
    capacity: 64,
    pos0: 0,
  };
  run(gpu, (pass) => {
    // 1024 positions × 129 trips per key would pass llvmpipe's 65535-iteration limit.
    assert.throws(
      () => big.encode(pass, base),
      (e: unknown) => e instanceof RangeError && /loop trips/.test(e.message),
    );
    assert.throws(() => attn.encode(pass, { ...base, pos0: 64 }), /capacity/);
    assert.throws(() => attn.encode(pass, { ...base, nKvHeads: 3 }), /nKvHeads/);
    assert.throws(() => attn.encode(pass, { ...base, qOffset: 2 }), /multiple of 4/);
    assert.throws(() => attn.encode(pass, { ...base, capacity: 1 << 20, pos0: 5000 }), /scratch/);
    assert.throws(
      () =>
        attn.storeKv(pass, {
          k: buf,
          v: buf,
          kCache: buf,
          vCache: buf,
          nTokens: 2,
          nKvHeads: 1,
          headDim: 8,
          capacity: 4,
          pos0: 3,
        }),
      /capacity/,
    );
  });
});
