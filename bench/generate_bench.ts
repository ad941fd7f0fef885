/**
 * `deno bench` for whole-model speed: prefill and decode tokens/s of stories260K and of synthetic
 * TinyLlama 1.1B Q4_0 and Q8_0 models (written to /tmp by `writeSynthModel` on first use: 0.6 and
 * 1.1 GB, about 20 and 40 s), and of stories260K and TinyLlama Q4_0 on the forward path they do not
 * take by default (`-unfused`, `-fused`: the measurement behind `fuseInputsFor`). Each iteration is
 * one greedy generation; deno bench reports the time, and a summary with the median tokens/s of the
 * engine's own statistics follows the benches.
 *
 * ```sh
 * XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno bench --allow-read --allow-write=/tmp --allow-env bench/generate_bench.ts
 * THINKV_BENCH_MODELS=stories deno bench --allow-read --allow-write=/tmp --allow-env bench/generate_bench.ts
 * ```
 *
 * The side-by-side comparison with llama.cpp is `bench/peer_llamacpp.ts`.
 *
 * @module
 */

import { loadModel, type Model } from "../src/model/model.ts";
import { GgmlType } from "../src/model/quant.ts";
import { writeSynthModel } from "../src/model/synth.ts";
import { median } from "./_matmul.ts";

function env(name: string, fallback: string): string {
  try {
    return Deno.env.get(name) ?? fallback;
  } catch {
    return fallback;
  }
}

const STORIES = new URL("../../shared/models/stories260K.gguf", import.meta.url).pathname;
const TINYLLAMA_Q4_0 = "/tmp/thinkv-synth-tinyllama-1.1b-q4_0.gguf";

/**
 * The models, and the forward path each runs: `fuseInputs` pins RMSNorm/SwiGLU inside the decode
 * products (true) or as their own dispatches (false) against the default `fuseInputsFor` choice
 * (stories260K fuses, TinyLlama does not), to measure that choice.
 */
const MODELS: Record<string, { path: string; synth?: number; decode: number; fuseInputs?: boolean }> = {
  stories: { path: STORIES, decode: 128 },
  "stories-unfused": { path: STORIES, decode: 128, fuseInputs: false },
  "tinyllama-q4_0": { path: TINYLLAMA_Q4_0, synth: GgmlType.Q4_0, decode: 8 },
  "tinyllama-q4_0-fused": { path: TINYLLAMA_Q4_0, synth: GgmlType.Q4_0, decode: 8, fuseInputs: true },
  "tinyllama-q8_0": { path: "/tmp/thinkv-synth-tinyllama-1.1b-q8_0.gguf", synth: GgmlType.Q8_0, decode: 8 },
};
const chosen = env("THINKV_BENCH_MODELS", Object.keys(MODELS).join(",")).split(",");
const PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
const ignore = !(await navigator.gpu?.requestAdapter());

const stats = new Map<string, number[]>();
const loaded = new Map<string, Model>();

async function model(name: string): Promise<Model> {
  let m = loaded.get(name);
  if (m) return m;
  for (const other of loaded.values()) other.dispose(); // one model in memory at a time
  loaded.clear();
  const spec = MODELS[name];
  if (spec.synth !== undefined) {
    try {
      await Deno.stat(spec.path);
    } catch {
      await writeSynthModel(spec.path, "tinyllama-1.1b", spec.synth);
    }
  }
  m = await loadModel(spec.path, { contextLength: 512, fuseInputs: spec.fuseInputs });
  loaded.set(name, m);
  return m;
}

for (const name of chosen) {
  const spec = MODELS[name];
  if (!spec) throw new RangeError(`unknown model "${name}" (known: ${Object.keys(MODELS).join(", ")})`);
  for (const phase of ["prefill", "decode"] as const) {
    Deno.bench({
      name: `${phase} ${name}`,
      group: phase,
      ignore,
      n: 3,
      warmup: 1,
      async fn(b) {
        const m = await model(name);
        const maxTokens = phase === "decode" ? spec.decode : 1;
        b.start();
        const it = m.generate(PROMPT, { maxTokens, temperature: 0, stopAtEos: false });
        let r = await it.next();
        while (!r.done) r = await it.next();
        b.end();
        const key = `${phase} ${name}`;
        const v = phase === "decode" ? r.value.decodeTokensPerSecond : r.value.prefillTokensPerSecond;
        stats.set(key, [...(stats.get(key) ?? []), v]);
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  if (stats.size === 0) return;
  console.log("\ntokens/s (median of the engine's own statistics, warm-up included):");
  for (const [k, v] of stats) {
    console.log(`  ${k.padEnd(28)} ${median(v).toFixed(2).padStart(9)} tok/s  (${v.length} runs)`);
  }
  for (const m of loaded.values()) m.dispose();
});
