/** The RoPE kernel with `rope_freqs` against a plain-TypeScript Llama 3.1 reference (f64 angles). */
import assert from "node:assert/strict";
import { RopeKernel } from "../src/kernels/rope.ts";
import { llama3RopeFactors, llama3ScaledFrequency } from "../src/model/rope_scaling.ts";
import { gpuTest, randomFloats } from "./_gpu.ts";

Deno.test("llama3RopeFactors() keeps high frequencies, divides low ones by 8 and interpolates between", () => {
  const f = llama3RopeFactors(128, 500000);
  assert.equal(f.length, 64);
  assert.equal(f[0], 1);
  assert.equal(f[63], 8);
  const mid = [...f].filter((x) => x > 1 && x < 8);
  assert.ok(mid.length > 0, "no interpolated band");
  for (let i = 1; i < 64; i++) assert.ok(f[i] >= f[i - 1], "factors must grow with wavelength");
});

gpuTest("RoPE with rope_freqs matches the Llama 3.1 formula at positions up to 8191", async (gpu) => {
  const headDim = 128, nHeads = 3, nTokens = 5, base = 500000;
  const rope = await RopeKernel.create(gpu);
  const factors = llama3RopeFactors(headDim, base);
  for (const pos0 of [0, 131, 8186]) {
    const x = randomFloats(nTokens * nHeads * headDim, pos0 + 1);
    const buf = gpu.upload("x", x);
    const ff = gpu.upload("rope_freqs", factors);
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    rope.encode(pass, { x: buf, nTokens, nHeads, headDim, pos0, freqBase: base, freqFactors: ff });
    pass.end();
    gpu.submit(enc);
    const got = new Float32Array(await gpu.read(buf, 0, x.byteLength));
    let worst = 0;
    for (let t = 0; t < nTokens; t++) {
      for (let h = 0; h < nHeads; h++) {
        for (let i = 0; i < headDim / 2; i++) {
          const theta = (pos0 + t) * llama3ScaledFrequency(i, headDim, base);
          const o = (t * nHeads + h) * headDim + 2 * i;
          const [a, b] = [x[o], x[o + 1]];
          const ea = a * Math.cos(theta) - b * Math.sin(theta);
          const eb = a * Math.sin(theta) + b * Math.cos(theta);
          worst = Math.max(worst, Math.abs(got[o] - ea), Math.abs(got[o + 1] - eb));
        }
      }
    }
    // f32 angles at position 8190 carry ~8190·2⁻²⁴ ≈ 5e-4 rad of rounding (as in llama.cpp).
    assert.ok(worst <= 1e-6 + (pos0 + nTokens) * 1.5e-7, `pos0 ${pos0}: max error ${worst}`);
    gpu.free(buf);
    gpu.free(ff);
  }
});
