/**
 * Multi-token submission: decode steps chained on the GPU (picked ids feed the next step's embedding
 * lookup) and read back once per `syncEvery` tokens give exactly the tokens of one-at-a-time decoding,
 * and the steps computed past a stop never reach the user nor corrupt the cache.
 */
import assert from "node:assert/strict";
import type { GenerateOptions, GenerationStats } from "../src/generate.ts";
import { loadModel, type Model } from "../src/model/model.ts";
import { gpuTest } from "./_gpu.ts";

const MODELS = new URL("../../shared/models/", import.meta.url).pathname;

async function run(
  m: Model,
  prompt: string | number[],
  o: GenerateOptions,
): Promise<{ text: string; stats: GenerationStats }> {
  const it = m.generate(prompt, o);
  let text = "";
  let r = await it.next();
  for (; !r.done; r = await it.next()) text += r.value;
  return { text, stats: r.value };
}

gpuTest("greedy and seeded sampling give the same tokens for every syncEvery", async (gpu) => {
  const m = await loadModel(`${MODELS}stories260K.gguf`, { gpu, contextLength: 256 });
  try {
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, topK: 40, topP: 0.95, seed: 11 }]) {
      const one = await run(m, "Once upon a time", { ...sampling, maxTokens: 70, syncEvery: 1 });
      assert.equal(one.stats.generatedTokens, 70);
      for (const syncEvery of [3, 8, 64]) {
        const many = await run(m, "Once upon a time", { ...sampling, maxTokens: 70, syncEvery });
        assert.deepEqual(
          many.stats.tokens,
          one.stats.tokens,
          `syncEvery ${syncEvery}, ${JSON.stringify(sampling)}`,
        );
        assert.equal(many.text, one.text);
      }
    }
  } finally {
    m.dispose();
  }
});

gpuTest(
  "tokens picked after an EOS in a submitted batch never reach the user and never corrupt the cache",
  async (gpu) => {
    // A random-weight model emits EOS (id 2) now and then; find a seeded run whose EOS falls inside a
    // batch of 8 steps, so the batch computed steps past it.
    const m = await loadModel(`${MODELS}synth-256-q4_k_m.gguf`, { gpu, contextLength: 512 });
    try {
      const prompt = m.tokenizer.encode("Once upon a time");
      const sampling = { temperature: 1, topK: 0, topP: 1, maxTokens: 150 };
      let found: { seed: number; ref: Awaited<ReturnType<typeof run>> } | undefined;
      for (let seed = 0; seed < 40 && !found; seed++) {
        const ref = await run(m, prompt, { ...sampling, seed, syncEvery: 1 });
        if (ref.stats.stopReason === "eos" && (ref.stats.generatedTokens + 1) % 8 !== 0) {
          found = {
            seed,
            ref,
          };
        }
      }
      assert.ok(found, "no seed produced an EOS inside a batch");
      const { seed, ref } = found;
      const batched = await run(m, prompt, { ...sampling, seed, syncEvery: 8 });
      assert.equal(batched.stats.stopReason, "eos");
      assert.deepEqual(batched.stats.tokens, ref.stats.tokens, "tokens after the EOS reached the user");
      assert.equal(batched.text, ref.text);
      assert.equal(batched.stats.contextTokens, prompt.length + batched.stats.tokens.length);

      // Continue from the cache the batched run left (surplus rows past the EOS included) and compare
      // with the same continuation computed from scratch.
      const next = [
        ...prompt,
        ...batched.stats.tokens,
        ...m.tokenizer.encode(" and then", { addBos: false }),
      ];
      const continued = await run(m, next, {
        temperature: 0,
        maxTokens: 12,
        startPos: batched.stats.contextTokens,
      });
      assert.equal(continued.stats.prefilledTokens, next.length - batched.stats.contextTokens);
      await run(m, "unrelated text to overwrite the cache", { temperature: 0, maxTokens: 20 });
      const fresh = await run(m, next, { temperature: 0, maxTokens: 12 });
      assert.deepEqual(continued.stats.tokens, fresh.stats.tokens);
    } finally {
      m.dispose();
    }
  },
);

gpuTest("onPrefillProgress reports every prefill batch and changes nothing else", async (gpu) => {
  const m = await loadModel(`${MODELS}stories260K.gguf`, { gpu, contextLength: 256, batchSize: 16 });
  try {
    const prompt =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    const n = m.tokenizer.encode(prompt).length;
    const seen: [number, number][] = [];
    const withProgress = await run(m, prompt, {
      temperature: 0,
      maxTokens: 10,
      onPrefillProgress: (done, total) => seen.push([done, total]),
    });
    const plain = await run(m, prompt, { temperature: 0, maxTokens: 10 });
    assert.deepEqual(withProgress.stats.tokens, plain.stats.tokens);
    assert.equal(seen.length, Math.ceil(n / 16));
    assert.deepEqual(seen.at(-1), [n, n]);
  } finally {
    m.dispose();
  }
});

gpuTest("profile: true times each kernel family of prefill and decode and changes no token", async (gpu) => {
  const plain = await loadModel(`${MODELS}stories260K.gguf`, { gpu, contextLength: 256 });
  const expected = (await run(plain, "Once upon a time", { temperature: 0, maxTokens: 20 })).stats.tokens;
  plain.dispose();
  const m = await loadModel(`${MODELS}stories260K.gguf`, { gpu, contextLength: 256, profile: true });
  try {
    const { stats } = await run(m, "Once upon a time", { temperature: 0, maxTokens: 20, syncEvery: 4 });
    assert.deepEqual(stats.tokens, expected);
    const report = await m.profile();
    assert.equal(report.enabled, gpu.hasTimestamps);
    if (!report.enabled) return;
    const passes = Object.fromEntries(report.families.map((f) => [f.family, f.passes]));
    // One forward pass per prefill batch and decode step (the last submit may run surplus steps).
    const forwards = passes["embedding"];
    assert.ok(forwards >= 20 && forwards <= 24, JSON.stringify(passes));
    const layers = m.config.nLayers;
    // Decode rotates q and k in the products' store; the one prefill batch has a rope pass for each.
    assert.equal(passes["rope"], 2 * layers, JSON.stringify(passes));
    assert.ok(passes["attention"] >= forwards * layers, JSON.stringify(passes));
    assert.equal(passes["argmax"], forwards, "one greedy pick per forward pass");
    assert.ok(report.families.some((f) => f.family.startsWith("matmul")));
    assert.ok(report.totalMs > 0 && report.families.every((f) => f.ms >= 0 && f.share <= 1));
    assert.equal(report.dropped, 0);
    // Collected timestamps are consumed: the next report adds only new work.
    assert.equal((await m.profile({ reset: true })).totalMs, report.totalMs);
    assert.equal((await m.profile()).totalMs, 0);
  } finally {
    m.dispose();
  }
  assert.equal(gpu.profiler, undefined, "dispose turns off the profiling it turned on");
});

gpuTest(
  "a decode step runs no RMSNorm, SwiGLU, RoPE or add dispatch of its own when inputs are fused",
  async (gpu) => {
    const labels = async (fuseInputs: boolean) => {
      const m = await loadModel(`${MODELS}stories260K.gguf`, { gpu, contextLength: 64, fuseInputs });
      const seen: string[] = [];
      const dispatch = gpu.dispatch;
      gpu.dispatch = (pass, pipeline, bindings, workgroups) => {
        seen.push(pipeline.label.split(":")[0]);
        dispatch.call(gpu, pass, pipeline, bindings, workgroups);
      };
      try {
        m.decodeStep(0, true);
        await m.readNextToken();
      } finally {
        gpu.dispatch = dispatch;
        m.dispose();
      }
      return seen;
    };
    const fused = await labels(true);
    const unfused = await labels(false);
    const count = (seen: string[], family: string) => seen.filter((f) => f === family).length;
    for (const family of ["rmsnorm", "swiglu", "rope", "add"]) assert.equal(count(fused, family), 0, family);
    // Unfused, each layer has 2 RMSNorms and a SwiGLU (plus the final norm); RoPE and the adds stay fused.
    assert.equal(count(unfused, "rmsnorm"), 2 * 5 + 1);
    assert.equal(count(unfused, "swiglu"), 5);
    assert.equal(count(unfused, "rope") + count(unfused, "add"), 0);
    if (fused.every((f) => f !== "matmul_stage")) {
      // Without x staging: per layer q, k, v, KV store, attention chunks and reduce, o, gate, up, down.
      assert.equal(fused.length, 10 * 5 + 3, fused.join(" "));
    }
  },
);
