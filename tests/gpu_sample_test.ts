/** The GPU sampler against its TypeScript reference, and its distribution against softmax. */
import assert from "node:assert/strict";
import { SampleKernel } from "../src/kernels/sample.ts";
import { sampleRef } from "../src/ref/sample.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import { gpuTest, randomFloats } from "./_gpu.ts";

type Settings = { temperature: number; topK: number; topP: number };

/** Draws `steps` tokens (steps 0…steps−1) from one logits row in a single submit. */
async function drawMany(
  gpu: Gpu,
  logits: Float32Array,
  s: Settings,
  seed: number,
  steps: number,
): Promise<Uint32Array> {
  const sampler = await SampleKernel.create(gpu);
  const offset = 37; // a non-zero offset into the logits buffer
  const buf = gpu.upload("logits", new Float32Array([...new Float32Array(offset), ...logits]));
  const ids = gpu.createBuffer("ids", steps * 4);
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let step = 0; step < steps; step++) {
    sampler.encode(pass, {
      logits: buf,
      ids,
      n: logits.length,
      ...s,
      seed,
      step,
      logitsOffset: offset,
      outOffset: step,
    });
  }
  pass.end();
  gpu.submit(enc);
  const out = new Uint32Array(await gpu.read(ids, 0, steps * 4));
  gpu.free(buf);
  gpu.free(ids);
  return out;
}

const SETTINGS: Settings[] = [
  { temperature: 0.8, topK: 40, topP: 0.95 },
  { temperature: 1.5, topK: 0, topP: 1 },
  { temperature: 0.5, topK: 5, topP: 1 },
  { temperature: 1, topK: 0, topP: 0.5 },
  { temperature: 1, topK: 1, topP: 1 },
];

for (const n of [1000, 32001]) {
  gpuTest(`SampleKernel draws the same tokens as sampleRef (vocab ${n})`, async (gpu) => {
    const logits = randomFloats(n, n, 6);
    for (const s of SETTINGS) {
      const steps = n > 10000 ? 8 : 40;
      const got = await drawMany(gpu, logits, s, 1234, steps);
      const want = Array.from({ length: steps }, (_, step) => sampleRef(logits, { ...s, seed: 1234, step }));
      assert.deepEqual([...got], want, JSON.stringify(s));
    }
  });
}

gpuTest("SampleKernel follows softmax(logits / T) and honours top-k", async (gpu) => {
  const logits = new Float32Array([0, Math.log(2), Math.log(3), Math.log(4), -50]);
  const steps = 4000;
  const counts = new Array(5).fill(0);
  for (const id of await drawMany(gpu, logits, { temperature: 1, topK: 0, topP: 1 }, 9, steps)) counts[id]++;
  const expected = [0.1, 0.2, 0.3, 0.4, 0];
  counts.forEach((c, i) => assert.ok(Math.abs(c / steps - expected[i]) < 0.03, `token ${i}: ${c / steps}`));
  const top2 = await drawMany(gpu, logits, { temperature: 1, topK: 2, topP: 1 }, 9, 400);
  assert.ok([...top2].every((id) => id === 2 || id === 3));
  const nucleus = await drawMany(gpu, logits, { temperature: 1, topK: 0, topP: 0.35 }, 9, 400);
  assert.ok([...nucleus].every((id) => id === 3), "top-p 0.35 keeps only the 0.4 token");
});
