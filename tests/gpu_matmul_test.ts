import assert from "node:assert/strict";
import { gpuTest, maxAbsDiff, randomFloats } from "./_gpu.ts";
import { Gpu } from "../src/gpu/gpu.ts";
import { ElementwiseKernel } from "../src/kernels/elementwise.ts";
import { MatmulKernel, type MatmulKernelOptions, matmulTripCount } from "../src/kernels/matmul.ts";
import { gpuRowBytes, type GpuWeight, uploadWeight } from "../src/model/gpu_weight.ts";
import { dequantize, GgmlType, tensorBytes, typeInfo } from "../src/model/quant.ts";
import { GgufFile } from "../src/model/gguf.ts";
import { fusedMatmulRef, type FusedMatmulSteps, matmulRef, randomWeightBytes } from "../src/ref/matmul.ts";

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
    const mm = await MatmulKernel.create(gpu, { types: [GgmlType.F32], matvec: "v1" });
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
    assert.throws(() => mm.encode(pass, buf, buf, fake(49152), 9), /loops 110608 times per invocation/);
    // The rows kernel loops once per 32-column group: the same row is far within the budget.
    const rows = await MatmulKernel.create(gpu, { types: [GgmlType.F32], matvec: "rows", rowsTokenBlock: 8 });
    assert.equal(rows.tripCount(fake(49152), 9), 1536);
    assert.equal(rows.tripCount(fake(49152), 1), rows.plan(fake(49152), 1).kernel === "rows" ? 1536 : 24578);
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

// ---------------------------------------------------------------------------------------------------
// Decode kernel families (nTokens = 1): every variant on every type, on shapes with odd row counts,
// chunked weights and offsets. Shapes are multiples of each type's "rows" column group so the fast
// paths run (plan() is checked), plus shapes that must fall back to matmul.wgsl.

const DECODE_SHAPES: Record<number, [number, number][]> = {
  [GgmlType.F32]: [[37, 96], [133, 320], [21, 172]],
  [GgmlType.F16]: [[37, 96], [133, 320]],
  [GgmlType.BF16]: [[37, 96], [13, 64]],
  [GgmlType.Q8_0]: [[37, 128], [133, 384], [19, 96]],
  [GgmlType.Q4_0]: [[37, 256], [133, 768], [19, 160]],
  [GgmlType.Q4_K]: [[37, 256], [67, 512]],
  [GgmlType.Q6_K]: [[37, 256], [67, 512]],
};

const ROWS_GROUP: Record<number, number> = {
  [GgmlType.F32]: 32,
  [GgmlType.F16]: 32,
  [GgmlType.Q8_0]: 128,
  [GgmlType.Q4_0]: 256,
  [GgmlType.Q4_K]: 256,
  [GgmlType.Q6_K]: 256,
};

interface DecodeVariant {
  name: string;
  opts: MatmulKernelOptions;
  /** Needs a device with subgroups of ≥ 8 lanes. */
  subgroups?: boolean;
  /** Run on a device created without subgroups. */
  noSubgroups?: boolean;
}

const DECODE_VARIANTS: DecodeVariant[] = [
  { name: "v1", opts: { matvec: "v1" } },
  { name: "rows/subgroup", opts: { matvec: "rows", rowsInput: "subgroup" }, subgroups: true },
  {
    name: "rows/subgroup ×3 rows",
    opts: { matvec: "rows", rowsInput: "subgroup", rowsPerInvocation: 3 },
    subgroups: true,
  },
  { name: "rows/uniform", opts: { matvec: "rows", rowsInput: "uniform" } },
  { name: "rows/uniform ×1 row", opts: { matvec: "rows", rowsInput: "uniform", rowsPerInvocation: 1 } },
  { name: "wg/subgroup", opts: { matvec: "wg" }, subgroups: true },
  { name: "wg/shared", opts: { matvec: "wg" }, noSubgroups: true },
];

let plainGpu: Promise<Gpu> | undefined;

for (const variant of DECODE_VARIANTS) {
  gpuTest(
    `MatmulKernel.encode() decode variant ${variant.name} matches matmulRef for every type`,
    async (shared) => {
      const sgOk = shared.hasSubgroups && shared.subgroupMinSize >= 8;
      if (variant.subgroups && !sgOk) return; // e.g. the GL backend: covered by the uniform variants
      const gpu = variant.noSubgroups && shared.hasSubgroups
        ? await (plainGpu ??= Gpu.create({ disableSubgroups: true }))
        : shared;
      const types = Object.keys(DECODE_SHAPES).map(Number);
      const mm = await MatmulKernel.create(gpu, { ...variant.opts, types });
      let seed = 100;
      for (const type of types) {
        const name = typeInfo(type).name;
        for (const [rows, cols] of DECODE_SHAPES[type]) {
          const raw = randomWeightBytes(type, rows, cols, seed++);
          const W = dequantize(type, raw, rows * cols);
          const whole = uploadWeight(gpu, `w ${name}`, type, rows, cols, raw);
          const split = uploadWeight(gpu, `w ${name} split`, type, rows, cols, raw, {
            maxChunkBytes: gpuRowBytes(type, cols) * Math.ceil(rows / 4),
          });
          const plan = mm.plan(whole, 1);
          const fast = variant.opts.matvec === "rows" && ROWS_GROUP[type] !== undefined &&
            cols % ROWS_GROUP[type] === 0;
          const expected = fast ? "rows" : variant.opts.matvec === "wg" ? "wg" : "v1";
          assert.equal(plan.kernel, expected, `${name} [${rows}, ${cols}]: ${plan.key}`);
          const x = randomFloats(cols, seed++);
          const label = `${variant.name} ${name} [${rows}, ${cols}] (${plan.key})`;
          const plain = await runMatmul(gpu, mm, whole, x, 1, { xOffset: 0, outOffset: 0, outStride: rows });
          assertClose(plain, W, x, rows, cols, label);
          const chunked = await runMatmul(gpu, mm, split, x, 1, {
            xOffset: 12,
            outOffset: 7,
            outStride: rows,
          });
          assertClose(chunked, W, x, rows, cols, `${label}, offsets, ${split.chunks.length} chunks`);
          for (const w of [whole, split]) for (const c of w.chunks) gpu.free(c.buffer);
        }
      }
    },
  );
}

gpuTest(
  "MatmulKernel.plan() falls back to matmul.wgsl where the uniform x copy cannot hold the row",
  async (gpu) => {
    const mm = await MatmulKernel.create(gpu, {
      matvec: "rows",
      rowsInput: "uniform",
      rowsTokenBlock: 8,
      types: [GgmlType.Q4_0],
    });
    const fake = (cols: number): GpuWeight => ({
      name: "fake",
      type: GgmlType.Q4_0,
      rows: 1,
      cols,
      chunks: [],
    });
    assert.deepEqual(mm.plan(fake(16384), 1), {
      key: "matmul_rows:q4_0:ubo:r4:t1:wg64",
      kernel: "rows",
      staged: true,
      ropeInStore: false,
    });
    assert.equal(mm.plan(fake(16640), 1).kernel, "v1");
    // Prefill reads x from the storage buffer: no size limit, no staging.
    assert.deepEqual(mm.plan(fake(16640), 2), {
      key: "matmul_rows:q4_0:ssbo:r3:t8:wg64",
      kernel: "rows",
      staged: false,
      ropeInStore: false,
    });
    const v1 = await MatmulKernel.create(gpu, { matvec: "rows", rowsTokenBlock: 0, types: [GgmlType.Q4_0] });
    assert.equal(v1.plan(fake(256), 2).kernel, "v1");
  },
);

// Prefill (nTokens > 1) with the "rows" kernel: token blocks with tails, several blocks, offsets.
const PREFILL_VARIANTS: DecodeVariant[] = [
  { name: "rows/subgroup t8", opts: { matvec: "rows" }, subgroups: true },
  {
    name: "rows/subgroup t3 ×2 rows",
    opts: { matvec: "rows", rowsTokenBlock: 3, rowsPerInvocation: 2 },
    subgroups: true,
  },
  { name: "rows/storage t4", opts: { matvec: "rows", rowsTokenBlock: 4 }, noSubgroups: true },
];

for (const variant of PREFILL_VARIANTS) {
  gpuTest(
    `MatmulKernel.encode() prefill variant ${variant.name} matches matmulRef for 2, 5 and 19 tokens`,
    async (shared) => {
      if (variant.subgroups && !(shared.hasSubgroups && shared.subgroupMinSize >= 8)) return;
      const gpu = variant.noSubgroups && shared.hasSubgroups
        ? await (plainGpu ??= Gpu.create({ disableSubgroups: true }))
        : shared;
      const types = Object.keys(ROWS_GROUP).map(Number);
      const mm = await MatmulKernel.create(gpu, { ...variant.opts, types });
      let seed = 500;
      for (const type of types) {
        const [rows, cols] = DECODE_SHAPES[type][1];
        const raw = randomWeightBytes(type, rows, cols, seed++);
        const W = dequantize(type, raw, rows * cols);
        const split = uploadWeight(gpu, "w split", type, rows, cols, raw, {
          maxChunkBytes: gpuRowBytes(type, cols) * Math.ceil(rows / 3),
        });
        for (const nTokens of [2, 5, 19]) {
          assert.equal(mm.plan(split, nTokens).kernel, "rows");
          const x = randomFloats(nTokens * cols, seed++);
          const out = await runMatmul(gpu, mm, split, x, nTokens, {
            xOffset: 4,
            outOffset: 3,
            outStride: rows + 5,
          });
          assertClose(
            out,
            W,
            x,
            rows,
            cols,
            `${variant.name} ${typeInfo(type).name} [${rows}, ${cols}] × ${nTokens}`,
          );
        }
        for (const c of split.chunks) gpu.free(c.buffer);
      }
    },
  );
}

gpuTest(
  "MatmulKernel decode variants agree on a 2048 × 5632 Q4_0 and F32 product (TinyLlama FFN)",
  async (shared) => {
    const [rows, cols] = [2048, 5632];
    const x = randomFloats(cols, 3);
    for (const type of [GgmlType.Q4_0, GgmlType.F32]) {
      const raw = randomWeightBytes(type, rows, cols, 7);
      const w = uploadWeight(shared, "ffn", type, rows, cols, raw);
      const ref = matmulRef(dequantize(type, raw, rows * cols), x, 1, rows, cols);
      for (const variant of DECODE_VARIANTS.filter((v) => !v.noSubgroups)) {
        if (variant.subgroups && !(shared.hasSubgroups && shared.subgroupMinSize >= 8)) continue;
        const mm = await MatmulKernel.create(shared, { ...variant.opts, types: [type] });
        const out = await runMatmul(shared, mm, w, x, 1, { xOffset: 0, outOffset: 0, outStride: rows });
        let worst = 0;
        for (let r = 0; r < rows; r++) worst = Math.max(worst, Math.abs(out[r] - ref[r]));
        assert.ok(worst < 2e-3, `${variant.name} ${typeInfo(type).name}: max |diff| ${worst}`);
      }
      for (const c of w.chunks) shared.free(c.buffer);
    }
  },
);

gpuTest("GpuProfiler times matmul passes per kernel family (or reports that it cannot)", async (gpu) => {
  const { GpuProfiler, formatProfile } = await import("../src/gpu/profile.ts");
  const prof = GpuProfiler.create(gpu, { capacity: 8 });
  const mm = await MatmulKernel.create(gpu, { types: [GgmlType.Q8_0] });
  const w = uploadWeight(gpu, "w", GgmlType.Q8_0, 256, 1024, randomWeightBytes(GgmlType.Q8_0, 256, 1024, 5));
  const x = gpu.upload("x", randomFloats(1024 * 4, 6));
  const out = gpu.createBuffer("out", 256 * 4 * 4);
  const enc = gpu.device.createCommandEncoder();
  for (const [family, n] of [["decode", 1], ["prefill", 4], ["decode", 1]] as const) {
    const pass = prof.beginPass(enc, family);
    mm.encode(pass, out, x, w, n);
    pass.end();
  }
  prof.resolve(enc);
  gpu.submit(enc);
  await prof.collect();
  const r = prof.report();
  assert.equal(r.enabled, gpu.hasTimestamps);
  if (r.enabled) {
    assert.deepEqual(r.families.map((f) => [f.family, f.passes]).sort(), [["decode", 2], ["prefill", 1]]);
    assert.ok(r.totalMs > 0 && r.families.every((f) => f.ms >= 0));
    assert.match(formatProfile(r), /decode .* ms/);
  } else {
    assert.match(formatProfile(r), /no timestamp-query/);
  }
  // Past capacity, passes run untimed and are counted as dropped.
  const enc2 = gpu.device.createCommandEncoder();
  for (let i = 0; i < 10; i++) prof.beginPass(enc2, "many").end();
  prof.resolve(enc2);
  gpu.submit(enc2);
  await prof.collect();
  assert.equal(prof.report().dropped, r.enabled ? 2 : 0);
  prof.destroy();
  for (const c of w.chunks) gpu.free(c.buffer);
  gpu.free(x);
  gpu.free(out);
});

// ---------------------------------------------------------------------------------------------------
// Fused products (src/kernels/matmul_fusion.ts): every kernel family with every fusion the forward
// pass uses, against the unfused reference steps, on odd row counts, chunked weights and offsets.

const FUSION_CASES: {
  name: string;
  steps: (x: Float32Array, cols: number, seed: number) => FusedMatmulSteps;
}[] = [
  {
    name: "norm",
    steps: (_x, cols, seed) => ({ norm: { weight: randomFloats(cols, seed), eps: 1e-5 } }),
  },
  { name: "accumulate", steps: () => ({}) },
  { name: "swiglu+accumulate", steps: (x, _cols, seed) => ({ swiglu: randomFloats(x.length, seed) }) },
  // Heads of 24 channels (rows 36 = 1.5 heads would be rejected: the shapes below are whole heads),
  // 16 of them rotated, far positions, and Llama 3.1-style per-pair divisors.
  {
    name: "norm+rope",
    steps: (_x, cols, seed) => ({
      norm: { weight: randomFloats(cols, seed), eps: 1e-5 },
      rope: { pos0: 1234, headDim: 24, ropeDim: 16, freqBase: 10000, angles: "ggml" as const },
    }),
  },
  {
    name: "rope",
    steps: (_x, _cols, seed) => ({
      rope: {
        pos0: 7,
        headDim: 24,
        freqBase: 500000,
        freqFactors: randomFloats(12, seed).map((v) => 1 + 4 * Math.abs(v)),
        angles: "ggml" as const,
      },
    }),
  },
];

/** Runs one fused product; `prior` is out's content before it (accumulated into, or not). */
async function runFused(
  gpu: Gpu,
  mm: MatmulKernel,
  w: GpuWeight,
  x: Float32Array,
  nTokens: number,
  steps: FusedMatmulSteps,
  accumulate: boolean,
  prior: Float32Array,
): Promise<Float32Array> {
  const o = { xOffset: 4, outOffset: 3, outStride: w.rows + 2 };
  const padded = (a: Float32Array) => {
    const p = new Float32Array(o.xOffset + a.length);
    p.set(a, o.xOffset);
    return p;
  };
  const xBuf = gpu.upload("x", padded(x));
  const aux = steps.norm
    ? gpu.upload("norm weight", steps.norm.weight)
    : steps.swiglu
    ? gpu.upload("up", padded(steps.swiglu))
    : undefined;
  const outLen = o.outOffset + (nTokens - 1) * o.outStride + w.rows;
  const init = new Float32Array(outLen).fill(-7);
  for (let t = 0; t < nTokens; t++) {
    init.set(prior.subarray(t * w.rows, (t + 1) * w.rows), o.outOffset + t * o.outStride);
  }
  const outBuf = gpu.upload("out", init);
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  const factors = steps.rope?.freqFactors && gpu.upload("rope factors", steps.rope.freqFactors);
  mm.encode(pass, outBuf, xBuf, w, nTokens, {
    ...o,
    norm: steps.norm && { weight: aux!, eps: steps.norm.eps },
    swiglu: steps.swiglu && aux,
    accumulate,
    rope: steps.rope && { ...steps.rope, freqFactors: factors },
  });
  pass.end();
  gpu.submit(enc);
  const raw = new Float32Array(await gpu.read(outBuf, 0, outLen * 4));
  for (const b of [xBuf, outBuf, aux, factors]) if (b) gpu.free(b);
  const out = new Float32Array(nTokens * w.rows);
  for (let t = 0; t < nTokens; t++) {
    const at = o.outOffset + t * o.outStride;
    out.set(raw.subarray(at, at + w.rows), t * w.rows);
    if (t + 1 < nTokens) assert.equal(raw[at + w.rows], -7, "the stride gap was written");
  }
  return out;
}

// The hooks do not depend on the weight type; the slow-to-compile storage prefill kernel gets two types.
const FUSED_FAMILIES: (DecodeVariant & { types?: GgmlType[] })[] = [
  { name: "v1", opts: { matvec: "v1" } },
  { name: "rows/subgroup", opts: { matvec: "rows", rowsInput: "subgroup" }, subgroups: true },
  {
    name: "rows/uniform (staged) + storage prefill",
    opts: { matvec: "rows", rowsTokenBlock: 4 },
    noSubgroups: true,
    types: [GgmlType.F32, GgmlType.Q4_0],
  },
  { name: "wg/subgroup", opts: { matvec: "wg" }, subgroups: true },
  { name: "wg/shared", opts: { matvec: "wg" }, noSubgroups: true },
];

for (const family of FUSED_FAMILIES) {
  gpuTest(
    `MatmulKernel fuses RMSNorm, SwiGLU, RoPE and the residual add in ${family.name}`,
    async (shared) => {
      if (family.subgroups && !(shared.hasSubgroups && shared.subgroupMinSize >= 8)) return;
      const gpu = family.noSubgroups && shared.hasSubgroups
        ? await (plainGpu ??= Gpu.create({ disableSubgroups: true }))
        : shared;
      const types = family.types ?? [GgmlType.F32, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K];
      const mm = await MatmulKernel.create(gpu, {
        ...family.opts,
        types,
        fusions: [
          { input: "plain", accumulate: false },
          { input: "norm", accumulate: false },
          { input: "plain", accumulate: true },
          { input: "swiglu", accumulate: true },
          { input: "norm", accumulate: false, rope: true },
          { input: "plain", accumulate: false, rope: true },
        ],
      });
      let seed = 900;
      for (const type of types) {
        const cols = DECODE_SHAPES[type][1][1];
        // Odd row counts in three chunks; RoPE needs whole heads (5 × 24 rows): chunks of 40 rows keep
        // row pairs together (rotated in the store), chunks of 41 split a pair (a rope dispatch after).
        const weights = [[DECODE_SHAPES[type][1][0], 0], [120, 40], [120, 41]].map(([rows, chunkRows]) => {
          const raw = randomWeightBytes(type, rows, cols, seed++);
          const w = uploadWeight(gpu, "w split", type, rows, cols, raw, {
            maxChunkBytes: gpuRowBytes(type, cols) * (chunkRows || Math.ceil(rows / 3)),
          });
          return { w, W: dequantize(type, raw, rows * cols), rows };
        });
        for (const nTokens of [1, 6]) {
          for (const fusion of FUSION_CASES) {
            const x = randomFloats(nTokens * cols, seed++);
            const steps = fusion.steps(x, cols, seed++);
            const accumulate = fusion.name.endsWith("accumulate");
            const input = steps.norm ? "norm" : steps.swiglu ? "swiglu" : "plain";
            for (const { w, W, rows } of steps.rope ? weights.slice(1) : weights.slice(0, 1)) {
              const prior = accumulate
                ? randomFloats(nTokens * rows, seed++)
                : new Float32Array(nTokens * rows);
              const out = await runFused(gpu, mm, w, x, nTokens, steps, accumulate, prior);
              const ref = fusedMatmulRef(W, x, nTokens, rows, cols, { ...steps, accumulate: prior });
              // Σ|W[0, c]·x'[0, c]|: the magnitude of the products, for a relative tolerance.
              const mag = fusedMatmulRef(W.map(Math.abs), x, 1, 1, cols, { ...steps, rope: undefined })[0];
              const plan = mm.plan(w, nTokens, { input, accumulate, rope: !!steps.rope });
              const label =
                `${family.name} ${typeInfo(type).name} [${rows}, ${cols}] in ${w.chunks.length} chunks ` +
                `× ${nTokens} ${fusion.name} (${plan.key})`;
              if (steps.rope) {
                const pairsTogether = w.chunks.every((c) => c.rowStart % 2 === 0);
                // Decode rotates in the store of "rows" kernels; prefill always with a rope dispatch.
                assert.equal(
                  plan.ropeInStore,
                  plan.kernel === "rows" && pairsTogether && nTokens === 1,
                  label,
                );
              }
              for (let i = 0; i < out.length; i++) {
                const tol = 2e-5 * (Math.abs(mag) + Math.abs(ref[i]) + 1);
                assert.ok(
                  Math.abs(out[i] - ref[i]) <= tol,
                  `${label}: out[${i}] = ${out[i]}, expected ${ref[i]}`,
                );
              }
            }
          }
        }
        for (const { w } of weights) for (const c of w.chunks) gpu.free(c.buffer);
      }
    },
  );
}

gpuTest(
  "MatmulKernel stages x once for consecutive products of the same input, again after any other dispatch",
  async (shared) => {
    const gpu = shared.hasSubgroups ? await (plainGpu ??= Gpu.create({ disableSubgroups: true })) : shared;
    const type = GgmlType.Q4_0;
    const mm = await MatmulKernel.create(gpu, {
      matvec: "rows",
      rowsInput: "uniform",
      types: [type],
      fusions: [{ input: "norm", accumulate: false }],
    });
    const [rows, cols] = [37, 256];
    const raws = [1, 2, 3].map((seed) => randomWeightBytes(type, rows, cols, seed));
    const ws = raws.map((raw, i) => uploadWeight(gpu, `w${i}`, type, rows, cols, raw));
    assert.ok(mm.plan(ws[0], 1, { input: "norm", accumulate: false }).staged);
    const x = randomFloats(cols, 4);
    const gain = randomFloats(cols, 5);
    const xBuf = gpu.upload("x", x);
    const gainBuf = gpu.upload("gain", gain);
    const outs = ws.map((_, i) => gpu.createBuffer(`out${i}`, rows * 4));
    const norm = { weight: gainBuf, eps: 1e-5 };
    // Products 0, 1, 2 of x in one pass; `between` may change x (in the pass) before product 2.
    const run = async (xLast: Float32Array, between?: (pass: GPUComputePassEncoder) => void) => {
      const enc = gpu.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      const before = gpu.counters.dispatches;
      ws.forEach((w, i) => {
        if (i === 2) between?.(pass);
        mm.encode(pass, outs[i], xBuf, w, 1, { norm });
      });
      const dispatches = gpu.counters.dispatches - before;
      pass.end();
      gpu.submit(enc);
      for (const [i, raw] of raws.entries()) {
        const got = new Float32Array(await gpu.read(outs[i], 0, rows * 4));
        const ref = fusedMatmulRef(dequantize(type, raw, rows * cols), i === 2 ? xLast : x, 1, rows, cols, {
          norm: { weight: gain, eps: 1e-5 },
        });
        assert.ok(maxAbsDiff(got, ref) < 1e-4, `product ${i}: ${maxAbsDiff(got, ref)}`);
      }
      return dispatches;
    };
    assert.equal(await run(x), 1 + 3, "one stage dispatch for three products");
    // Another kernel adds y to x between products 1 and 2: product 2 stages x again and sees x + y.
    const add = await ElementwiseKernel.create(gpu);
    const y = randomFloats(cols, 6);
    const yBuf = gpu.upload("y", y);
    const xPlusY = x.map((v, i) => Math.fround(v + y[i]));
    assert.equal(
      await run(xPlusY, (pass) => add.add(pass, { x: xBuf, y: yBuf, rows: 1, cols })),
      1 + 2 + 1 + 1 + 1,
    );
    for (const b of [xBuf, gainBuf, yBuf, ...outs, ...ws.flatMap((w) => w.chunks.map((c) => c.buffer))]) {
      gpu.free(b);
    }
  },
);
