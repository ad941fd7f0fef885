/**
 * Peer comparison: llama.cpp (through `npm:node-llama-cpp`, pinned, prebuilt CPU and Vulkan
 * backends) and thinkv generate greedily from the same GGUF, in alternating runs, and the medians
 * are printed side by side.
 *
 * ```sh
 * XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan GGML_VK_VISIBLE_DEVICES=0 \
 *   deno run -A bench/peer_llamacpp.ts -n 32 --reps 3
 * deno run -A bench/peer_llamacpp.ts --models ../shared/models/stories260K.gguf -n 128 --engines thinkv,vulkan
 * ```
 *
 * Options: `--models A,B` (default: ../shared/models/stories260K.gguf and a synthetic TinyLlama 1.1B
 * Q4_0 that is written to /tmp/thinkv-synth-tinyllama-1.1b-q4_0.gguf on first use), `-n N` generated
 * tokens (default 32; `--n-large N` for models over 100 MB, default 8), `--reps R` (default 3),
 * `--engines thinkv,vulkan,cpu` (default all), `--threads T` llama.cpp CPU threads (default 2: its
 * spin-waiting threads collapse when the 2 vCPUs are shared, so also try 1), `--prompt TEXT`,
 * `--ctx N` (default 256).
 *
 * llvmpipe is a Vulkan device for llama.cpp only with GGML_VK_VISIBLE_DEVICES=0 (it skips CPU
 * devices otherwise); LP_NUM_THREADS applies to both engines' llvmpipe. Prefill tokens/s = prompt
 * tokens / time to the first generated token; decode tokens/s = the other tokens / their time (both
 * engines measured the same way by wall clock, thinkv through its own generation stats).
 *
 * @module
 */

import { parseArgs } from "node:util";
// deno-lint-ignore no-import-prefix -- a bench-only peer, pinned here so it stays out of deno.json
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from "npm:node-llama-cpp@3.21.1";
import { loadModel, type Model } from "../src/model/model.ts";
import { GgmlType } from "../src/model/quant.ts";
import { writeSynthModel } from "../src/model/synth.ts";
import { median } from "./_matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    models: { type: "string" },
    n: { type: "string", short: "n", default: "32" },
    "n-large": { type: "string", default: "8" },
    reps: { type: "string", default: "3" },
    engines: { type: "string", default: "thinkv,vulkan,cpu" },
    threads: { type: "string", default: "2" },
    prompt: { type: "string", default: "Once upon a time, there was a little girl named Lily." },
    ctx: { type: "string", default: "256" },
  },
});

const SYNTH = "/tmp/thinkv-synth-tinyllama-1.1b-q4_0.gguf";
const models = values.models?.split(",") ??
  [new URL("../../shared/models/stories260K.gguf", import.meta.url).pathname, SYNTH];
const engines = values.engines!.split(",");
const reps = Number(values.reps);
const ctx = Number(values.ctx);
const threads = Number(values.threads);

/** One run's result. */
interface Run {
  prefill: number;
  decode: number;
  promptTokens: number;
  tokens: number[];
}

async function ensureSynth(path: string): Promise<void> {
  if (path !== SYNTH) return;
  try {
    await Deno.stat(path);
  } catch {
    console.error(`writing ${path} (thinkv synth --shape tinyllama-1.1b --type Q4_0) …`);
    await writeSynthModel(path, "tinyllama-1.1b", GgmlType.Q4_0);
  }
}

async function runThinkv(model: Model, prompt: string, n: number): Promise<Run> {
  const it = model.generate(prompt, { maxTokens: n, temperature: 0, stopAtEos: false });
  let r = await it.next();
  while (!r.done) r = await it.next();
  const s = r.value;
  return {
    prefill: s.prefillTokensPerSecond,
    decode: s.decodeTokensPerSecond,
    promptTokens: s.promptTokens,
    tokens: s.tokens,
  };
}

async function runLlama(model: LlamaModel, prompt: string, n: number, cpuThreads?: number): Promise<Run> {
  const context = await model.createContext({ contextSize: ctx, batchSize: 64, threads: cpuThreads });
  try {
    const seq = context.getSequence();
    const ids = [model.tokens.bos!, ...model.tokenize(prompt)];
    const tokens: number[] = [];
    const t0 = performance.now();
    let t1 = t0;
    for await (const t of seq.evaluate(ids, { temperature: 0 })) {
      if (tokens.length === 0) t1 = performance.now();
      tokens.push(t);
      if (tokens.length >= n) break;
    }
    const t2 = performance.now();
    return {
      prefill: ids.length / ((t1 - t0) / 1000),
      decode: (tokens.length - 1) / ((t2 - t1) / 1000),
      promptTokens: ids.length,
      tokens,
    };
  } finally {
    await context.dispose();
  }
}

const llamas = new Map<string, Llama>();
async function llamaFor(engine: string): Promise<Llama> {
  let l = llamas.get(engine);
  if (!l) {
    l = await getLlama({
      gpu: engine === "vulkan" ? "vulkan" : false,
      build: "never",
      logLevel: LlamaLogLevel.error,
    });
    llamas.set(engine, l);
  }
  return l;
}

console.log(
  `# peer: thinkv vs llama.cpp (node-llama-cpp 3.21.1) · DENO_WEBGPU_BACKEND=${
    Deno.env.get("DENO_WEBGPU_BACKEND") ?? "(default)"
  } · ` +
    `LP_NUM_THREADS=${Deno.env.get("LP_NUM_THREADS") ?? "(unset)"} · GGML_VK_VISIBLE_DEVICES=${
      Deno.env.get("GGML_VK_VISIBLE_DEVICES") ?? "(unset)"
    } · llama.cpp CPU threads ${threads} · ${reps} alternating reps`,
);
for (const path of models) {
  await ensureSynth(path);
  const size = (await Deno.stat(path)).size;
  const n = size > 100e6 ? Number(values["n-large"]) : Number(values.n);
  const runners: { name: string; run: () => Promise<Run>; dispose: () => Promise<void> | void }[] = [];
  for (const engine of engines) {
    try {
      if (engine === "thinkv") {
        const m = await loadModel(path, { contextLength: ctx });
        await runThinkv(m, values.prompt!, 2); // compile and warm up
        runners.push({
          name: "thinkv (WebGPU)",
          run: () => runThinkv(m, values.prompt!, n),
          dispose: () => m.dispose(),
        });
      } else {
        const llama = await llamaFor(engine);
        const m = await llama.loadModel({ modelPath: path, gpuLayers: engine === "vulkan" ? "max" : 0 });
        const t = engine === "cpu" ? threads : undefined;
        await runLlama(m, values.prompt!, 2, t);
        runners.push({
          name: `llama.cpp ${engine === "vulkan" ? `Vulkan (${llama.gpu})` : `CPU ×${threads}`}`,
          run: () => runLlama(m, values.prompt!, n, t),
          dispose: () => m.dispose(),
        });
      }
    } catch (e) {
      console.log(`  ${engine}: cannot run: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const results: Run[][] = runners.map(() => []);
  for (let rep = 0; rep < reps; rep++) {
    for (const [i, r] of runners.entries()) results[i].push(await r.run());
  }
  console.log(
    `\n${path.split("/").pop()} (${(size / 2 ** 20).toFixed(1)} MiB): ${n} tokens greedy, prompt ${
      results[0]?.[0]?.promptTokens ?? "?"
    } tokens`,
  );
  console.log(
    `  ${"engine".padEnd(28)} ${"prefill tok/s".padStart(14)} ${"decode tok/s".padStart(13)}  runs (decode)`,
  );
  const base = results[runners.findIndex((r) => r.name.startsWith("thinkv"))];
  for (const [i, r] of runners.entries()) {
    const pre = median(results[i].map((x) => x.prefill));
    const dec = median(results[i].map((x) => x.decode));
    console.log(
      `  ${r.name.padEnd(28)} ${pre.toFixed(1).padStart(14)} ${dec.toFixed(2).padStart(13)}  ${
        results[i].map((x) => x.decode.toFixed(1)).join(", ")
      }`,
    );
  }
  if (base) {
    const ours = median(base.map((x) => x.decode));
    for (const [i, r] of runners.entries()) {
      if (results[i] === base) continue;
      const same = results[i][0].tokens.slice(0, 8).join() === base[0].tokens.slice(0, 8).join();
      console.log(
        `  thinkv decode = ${(ours / median(results[i].map((x) => x.decode))).toFixed(2)}× ${r.name}` +
          ` (first 8 greedy ids ${same ? "agree" : "differ"})`,
      );
    }
  }
  for (const r of runners) await r.dispose();
}
for (const l of llamas.values()) await l.dispose();
