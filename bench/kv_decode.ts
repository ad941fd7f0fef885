/**
 * Decode time per token against context length: full cache vs ThinK (issue 3) and KIVI (issue 4).
 *
 *   XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno run --allow-read --allow-env --allow-write=/tmp \
 *     bench/kv_decode.ts [--ctx 512,2048,8192] [--steps 16] [--layers 2] [--kv full,kivi4,kivi2,think0.4+kivi2]
 *
 * Configurations: full, think0.4, think0.4pad, think0.5, kivi8, kivi4, kivi2, think0.4+kivi2 (KIVI with
 * G = 32, R = 128; scales and mins in f16 where the adapter has shader-f16).
 *
 * Set LP_NUM_THREADS=1 for steadier figures on llvmpipe (2-vCPU machines time-slice their threads).
 *
 * The model is synthetic (random Q8_0 weights written to /tmp): head dim 128, 4 query and 4 KV heads
 * (no GQA, as in LLaMA-2, the ThinK paper's KIVI setting), dim 512, FFN 1024, 2 layers; small enough to
 * prefill 8192 tokens in a minute on 2 CPU cores, big enough that attention over the cache dominates
 * decode at long contexts. For each context length the prompt is prefilled (and compressed), then
 * `steps` greedy decode steps are encoded back to back in one submit (`Model.decodeSteps`), the argmax
 * feeding the next step on the GPU, with one readback at the end. The configurations take turns for 5 rounds; the time per token is the
 * best round (robust to other processes sharing the CPU).
 *
 * Napkin maths: full attention reads 2 · ctx · 4 heads · 128 · 4 B = 33.5 MB per layer per token at
 * 8192; ThinK at ratio λ prunes the keys of all but the last 32 prompt tokens, saving ≈ λ/2 of that.
 * KIVI-b reads b/32 of it in codes plus 2 f16 per 32 codes (scales, mins) and the f32 residual: on
 * llvmpipe the load count per token, not the bytes, sets the pace (one u32 load = 32/b codes, one vec4
 * load = 4 floats), so 2 and 4 bits save loads and 8 bits about breaks even.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadModel } from "../src/model/model.ts";
import { Gpu } from "../src/gpu/gpu.ts";
import type { KvOptions } from "../src/kv/options.ts";
import { writeSyntheticModel } from "./kv_synthetic.ts";

const CONFIGS: Record<string, KvOptions | undefined> = {
  full: undefined,
  "think0.4": { think: { ratio: 0.4 } },
  "think0.5": { think: { ratio: 0.5 } },
  "think0.4pad": { think: { ratio: 0.4, pad: true } },
  kivi8: { quant: { keyBits: 8, valueBits: 8 } },
  kivi4: { quant: { keyBits: 4, valueBits: 4 } },
  kivi2: { quant: { keyBits: 2, valueBits: 2 } },
  "think0.4+kivi2": { think: { ratio: 0.4 }, quant: { keyBits: 2, valueBits: 2 } },
};

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ctx: { type: "string", default: "512,2048,8192" },
    steps: { type: "string", default: "16" },
    layers: { type: "string", default: "2" },
    kv: { type: "string", default: "full,think0.4,think0.4pad,think0.5,kivi4,kivi2,think0.4+kivi2" },
  },
});
const contexts = values.ctx.split(",").map(Number);
const steps = Number(values.steps);
const names = values.kv.split(",");
for (const n of names) {
  if (!(n in CONFIGS)) {
    throw new RangeError(`Cannot bench: unknown --kv ${n} (known: ${Object.keys(CONFIGS)})`);
  }
}

const nLayers = Number(values.layers);
const path = await writeSyntheticModel(`/tmp/thinkv-kv-decode-d128-l${nLayers}.gguf`, {
  nLayers,
  nHeads: 4,
  nKvHeads: 4,
  headDim: 128,
  ffnDim: 1024,
  vocab: 256,
  contextLength: Math.max(...contexts) + 6 * steps + 8,
  type: "q8_0",
  seed: 3,
});

const gpu = await Gpu.create();
console.log(
  `adapter: ${gpu.adapterName}; synthetic model: ${nLayers} layers, 4/4 heads × 128, dim 512, Q8_0`,
);
console.log(`decode: ${steps} greedy steps per run, best of 5 interleaved rounds, one readback per run\n`);
console.log("| context | KV cache | KV MiB | vs full | ms / token | tokens/s | vs full |");
console.log("|---:|---|---:|---:|---:|---:|---:|");

const ROUNDS = 5;
for (const ctx of contexts) {
  // all configurations side by side, then round-robin timing: the minimum over rounds is robust to
  // other processes sharing the CPU (llvmpipe runs the "GPU" on it)
  const prompt = Array.from({ length: ctx }, (_, i) => 3 + ((i * 7919) % 250));
  const runs = [];
  for (const name of names) {
    const model = await loadModel(path, {
      gpu,
      contextLength: ctx + (ROUNDS + 1) * steps + 8,
      kv: CONFIGS[name],
      batchSize: 64,
    });
    model.prefill(prompt, 0, { logits: "last", greedy: true });
    await model.readNextToken();
    runs.push({ name, model, pos: ctx, best: Infinity });
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const run of runs) {
      const t0 = performance.now();
      run.model.decodeSteps(run.pos, steps, { temperature: 0, topK: 0, topP: 1, seed: 0, step: 0 });
      run.pos += steps;
      await run.model.readTokens(steps);
      run.best = Math.min(run.best, (performance.now() - t0) / steps);
    }
  }
  const full = runs.find((r) => r.name === "full");
  const fullBytes = full?.model.kvStats().bytes ?? 0;
  for (const run of runs) {
    const bytes = run.model.kvStats().bytes;
    const rel = (x: number, base: number | undefined) => (base ? `${(x / base * 100).toFixed(1)}%` : "");
    console.log(
      `| ${ctx} | ${run.name} | ${(bytes / 2 ** 20).toFixed(2)} | ${rel(bytes, fullBytes)} | ${
        run.best.toFixed(2)
      } | ` +
        `${(1000 / run.best).toFixed(1)} | ${rel(run.best, full?.best)} |`,
    );
  }
  for (const run of runs) run.model.dispose();
}
gpu.destroy();
