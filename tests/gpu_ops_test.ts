import assert from "node:assert/strict";
import type { Gpu } from "../src/gpu/gpu.ts";
import { ArgmaxKernel } from "../src/kernels/argmax.ts";
import { ElementwiseKernel } from "../src/kernels/elementwise.ts";
import { RmsNormKernel } from "../src/kernels/rmsnorm.ts";
import { RopeKernel } from "../src/kernels/rope.ts";
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

// ---- RMSNorm --------------------------------------------------------------------------------------

for (const [rows, cols] of [[3, 172], [1, 64], [130, 7]]) {
  gpuTest(`RmsNormKernel.encode() matches rmsNorm() for ${rows}×${cols} at non-zero offsets`, async (gpu) => {
    const norm = await RmsNormKernel.create(gpu);
    const [xOff, wOff, outOff] = [5, 3, 7];
    const x = randomFloats(xOff + rows * cols, 1, 2);
    const w = randomFloats(wOff + cols, 2);
    const xb = gpu.upload("x", x), wb = gpu.upload("w", w);
    const out = gpu.upload("out", randomFloats(outOff + rows * cols + 5, 3));
    const before = await readF32(gpu, out);
    run(
      gpu,
      (pass) =>
        norm.encode(pass, {
          x: xb,
          w: wb,
          out,
          rows,
          cols,
          eps: 1e-5,
          xOffset: xOff,
          wOffset: wOff,
          outOffset: outOff,
        }),
    );
    const got = await readF32(gpu, out);
    const want = ref.rmsNorm(x.subarray(xOff), w.subarray(wOff), rows, cols, 1e-5);
    assert.ok(maxAbsDiff(got.subarray(outOff, outOff + rows * cols), want) < 1e-5);
    assert.deepEqual(got.subarray(0, outOff), before.subarray(0, outOff));
    assert.deepEqual(got.subarray(outOff + rows * cols), before.subarray(outOff + rows * cols));
  });
}

// ---- RoPE -----------------------------------------------------------------------------------------

Deno.test("ropeAngle() in ggml f32 mode stays within the f32 product-chain error of the exact angle", () => {
  for (const [base, dim] of [[10000, 64], [500000, 128]]) {
    for (const pos of [1, 37, 1500, 8192]) {
      for (let i = 0; i < dim / 2; i++) {
        const exact = ref.ropeAngle(pos, i, dim, base);
        const ggml = ref.ropeAngle(pos, i, dim, base, { angles: "ggml" });
        // theta_scale carries ≤ ½ ulp, each of the i products another ½ ulp: (i + 1)·2^−24 relative.
        assert.ok(Math.abs(ggml - exact) <= (i + 1) * 2 ** -24 * exact + 1e-30, `pos ${pos} pair ${i}`);
      }
    }
  }
});

/** Per-element bound for GPU (f32 angles) vs the exact float64 rotation: angle error × |pair|. */
function ropeTolerance(x: Float32Array, o: ref.RopeOptions, offset: number, stride: number): Float32Array {
  const tol = new Float32Array(x.length).fill(2e-6);
  const ropeDim = o.ropeDim ?? o.headDim;
  for (let t = 0; t < o.nTokens; t++) {
    for (let i = 0; i < ropeDim / 2; i++) {
      const theta = ref.ropeAngle(o.pos0 + t, i, ropeDim, o.freqBase, o);
      const angleErr = (i + 3) * 2 ** -24 * theta + 1e-6;
      for (let h = 0; h < o.nHeads; h++) {
        const b = offset + t * stride + h * o.headDim + 2 * i;
        tol[b] = tol[b + 1] = angleErr * (Math.abs(x[b]) + Math.abs(x[b + 1])) + 2e-6;
      }
    }
  }
  return tol;
}

const ropeCases: { name: string; o: ref.RopeOptions; offset: number; factors?: boolean }[] = [
  {
    name: "3 tokens, 8 heads × 64, pos0 5",
    o: { nTokens: 3, nHeads: 8, headDim: 64, pos0: 5, freqBase: 10000 },
    offset: 3,
  },
  {
    name: "partial rotation (ropeDim 16 of head_dim 32), 5 heads",
    o: { nTokens: 3, nHeads: 5, headDim: 32, ropeDim: 16, pos0: 11, freqBase: 10000 },
    offset: 1,
  },
  {
    name: "Llama 3.1 frequencies with rope_freqs at positions 8190-8192",
    o: { nTokens: 3, nHeads: 4, headDim: 128, pos0: 8190, freqBase: 500000 },
    offset: 0,
    factors: true,
  },
  {
    name: "fused q|k|v rows (rowStride), linear freqScale 0.25",
    o: {
      nTokens: 3,
      nHeads: 12,
      headDim: 8,
      pos0: 1500,
      freqBase: 10000,
      freqScale: 0.25,
      rowStride: 16 * 8,
    },
    offset: 0,
  },
];

for (const c of ropeCases) {
  gpuTest(`RopeKernel.encode() matches rope(): ${c.name}`, async (gpu) => {
    const rope = await RopeKernel.create(gpu);
    const o = { ...c.o };
    const stride = o.rowStride ?? o.nHeads * o.headDim;
    const ropeDim = o.ropeDim ?? o.headDim;
    if (c.factors) o.freqFactors = randomFloats(ropeDim / 2, 9).map((v) => 1 + 3.5 * (v + 1)); // in [1, 8)
    const x = randomFloats(c.offset + o.nTokens * stride + 4, 4);
    const xb = gpu.upload("x", x);
    const ffOffset = 2;
    const ffb = o.freqFactors ? gpu.upload("ff", new Float32Array([9, 9, ...o.freqFactors])) : undefined;
    run(gpu, (pass) =>
      rope.encode(pass, {
        x: xb,
        nTokens: o.nTokens,
        nHeads: o.nHeads,
        headDim: o.headDim,
        ropeDim: o.ropeDim,
        pos0: o.pos0,
        freqBase: o.freqBase,
        freqScale: o.freqScale,
        freqFactors: ffb,
        factorsOffset: ffOffset,
        offset: c.offset,
        rowStride: o.rowStride,
      }));
    const got = await readF32(gpu, xb);
    // Same f32 angles as llama.cpp's CPU RoPE: only sin/cos and the final products differ.
    const ggml = new Float32Array(x);
    ggml.set(ref.rope(x.subarray(c.offset), { ...o, angles: "ggml" }), c.offset);
    assert.ok(maxAbsDiff(got, ggml) < 1e-6, `vs ggml angles: ${maxAbsDiff(got, ggml)}`);
    // Exact float64 angles: the f32 angle error grows with the position.
    const exact = new Float32Array(x);
    exact.set(ref.rope(x.subarray(c.offset), o), c.offset);
    const tol = ropeTolerance(x, o, c.offset, stride);
    for (let i = 0; i < got.length; i++) {
      assert.ok(
        Math.abs(got[i] - exact[i]) <= tol[i],
        `element ${i}: ${got[i]} vs ${exact[i]} (tol ${tol[i]})`,
      );
    }
    // Channels ≥ ropeDim, heads beyond nHeads and bytes outside the rows are untouched.
    for (let t = 0; t < o.nTokens; t++) {
      for (let h = 0; h < o.nHeads; h++) {
        const b = c.offset + t * stride + h * o.headDim;
        assert.deepEqual(got.subarray(b + ropeDim, b + o.headDim), x.subarray(b + ropeDim, b + o.headDim));
      }
      const tail = c.offset + t * stride + o.nHeads * o.headDim;
      assert.deepEqual(
        got.subarray(tail, c.offset + (t + 1) * stride),
        x.subarray(tail, c.offset + (t + 1) * stride),
      );
    }
    assert.deepEqual(got.subarray(0, c.offset), x.subarray(0, c.offset));
  });
}

gpuTest("RopeKernel.encode() rejects an odd ropeDim", async (gpu) => {
  const rope = await RopeKernel.create(gpu);
  const x = gpu.createBuffer("x", 64);
  run(gpu, (pass) => {
    assert.throws(
      () => rope.encode(pass, { x, nTokens: 1, nHeads: 1, headDim: 8, ropeDim: 7, pos0: 0, freqBase: 1e4 }),
      RangeError,
    );
  });
});

// ---- SwiGLU and residual add ----------------------------------------------------------------------

gpuTest("ElementwiseKernel.swiglu() matches swiglu() on a fused gate|up buffer", async (gpu) => {
  const ew = await ElementwiseKernel.create(gpu);
  const [rows, cols, off, outOff] = [3, 172, 5, 9];
  const fused = randomFloats(off + rows * 2 * cols, 5, 6);
  fused[off] = -100; // e^100 overflows f32: silu must still give −0, not NaN
  fused[off + 1] = 90;
  const fb = gpu.upload("gate|up", fused);
  const out = gpu.upload("out", randomFloats(outOff + rows * cols + 3, 6));
  const before = await readF32(gpu, out);
  run(gpu, (pass) =>
    ew.swiglu(pass, {
      gate: fb,
      up: fb,
      out,
      rows,
      cols,
      gateOffset: off,
      gateStride: 2 * cols,
      upOffset: off + cols,
      upStride: 2 * cols,
      outOffset: outOff,
    }));
  const got = await readF32(gpu, out);
  const gate = new Float32Array(rows * cols), up = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    gate.set(fused.subarray(off + r * 2 * cols, off + r * 2 * cols + cols), r * cols);
    up.set(fused.subarray(off + r * 2 * cols + cols, off + (r + 1) * 2 * cols), r * cols);
  }
  const want = ref.swiglu(gate, up);
  assert.ok(maxAbsDiff(got.subarray(outOff, outOff + rows * cols), want) < 1e-5);
  assert.deepEqual(got.subarray(0, outOff), before.subarray(0, outOff));
  assert.deepEqual(got.subarray(outOff + rows * cols), before.subarray(outOff + rows * cols));
});

gpuTest("ElementwiseKernel.add() adds y into x at offsets and strides", async (gpu) => {
  const ew = await ElementwiseKernel.create(gpu);
  const [rows, cols, xOff, xStride, yOff] = [3, 172, 3, 180, 11];
  const x = randomFloats(xOff + rows * xStride, 7), y = randomFloats(yOff + rows * cols, 8);
  const xb = gpu.upload("x", x), yb = gpu.upload("y", y);
  run(gpu, (pass) => ew.add(pass, { x: xb, y: yb, rows, cols, xOffset: xOff, xStride, yOffset: yOff }));
  const got = await readF32(gpu, xb);
  const want = new Float32Array(x);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) want[xOff + r * xStride + c] += y[yOff + r * cols + c];
  }
  assert.deepEqual(got, want); // one correctly rounded f32 add per element
});

// ---- argmax ---------------------------------------------------------------------------------------

gpuTest("ArgmaxKernel.encode() finds the first maximum of a 128256-logit row", async (gpu) => {
  const argmax = await ArgmaxKernel.create(gpu);
  const n = 128256;
  const logits = randomFloats(n + 3, 10, 10);
  logits[3 + 90001] = 12; // ties in two different invocations' ranges, and a later larger one elsewhere
  logits[3 + 70000] = 12;
  logits[3 + 130] = 11.5;
  const lb = gpu.upload("logits", logits);
  const ids = gpu.upload("ids", new Uint32Array([7, 7, 7, 7]));
  run(gpu, (pass) => argmax.encode(pass, { logits: lb, ids, n, logitsOffset: 3, outOffset: 2 }));
  const got = new Uint32Array(await gpu.read(ids, 0, 16));
  assert.deepEqual([...got], [7, 7, 70000, 7]);
  assert.equal(ref.argmax(logits.subarray(3, 3 + n)), 70000);
});

gpuTest("ArgmaxKernel.encode() handles several rows, small n and ties at index 0", async (gpu) => {
  const argmax = await ArgmaxKernel.create(gpu);
  for (const n of [1, 3, 257, 1000]) {
    const rows = 3, stride = n + 2;
    const logits = randomFloats(rows * stride, n);
    logits[2 * stride] = 5; // row 2: tie between index 0 and the last index
    logits[2 * stride + n - 1] = 5;
    const lb = gpu.upload("logits", logits);
    const ids = gpu.createBuffer("ids", 4 * (rows + 1));
    run(gpu, (pass) => argmax.encode(pass, { logits: lb, ids, n, rows, rowStride: stride, outOffset: 1 }));
    const got = new Uint32Array(await gpu.read(ids, 0, 4 * (rows + 1)));
    const want = [0, ...[0, 1, 2].map((r) => ref.argmax(logits.subarray(r * stride, r * stride + n)))];
    assert.deepEqual([...got], want, `n = ${n}`);
    assert.equal(want[3], 0);
  }
});
