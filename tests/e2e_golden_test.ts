/**
 * End-to-end: teacher-forced logits against llama.cpp's goldens and the exact float64 reference,
 * greedy ids against llama.cpp, and the readback / dispatch budget of generation.
 */
import assert from "node:assert/strict";
import { loadModel } from "../src/model/model.ts";
import { argmax } from "../src/sampling.ts";
import { getGpu, gpuTest } from "./_gpu.ts";

const SHARED = new URL("../../shared/", import.meta.url).pathname;

interface Golden {
  prompt_ids: number[];
  generated_ids?: number[];
  teacher_forced_ids?: number[];
  logits: number[][];
}

async function golden(path: string): Promise<Golden> {
  return JSON.parse(await Deno.readTextFile(`${SHARED}golden/${path}`));
}

/**
 * Max |ours − llama.cpp| allowed per weight type: llama.cpp rounds activations before some products
 * (F16 for F16 weights, BF16 for BF16, 8-bit for Q8_0/Q4_0/K-quants) and we keep them f32, so we
 * differ from it by what ../shared/README.md measured for an exact reference, plus a small margin.
 */
const LLAMA_CPP_TOLERANCE: Record<string, number> = {
  "f32": 1e-4,
  "f16": 0.015,
  "bf16": 0.04,
  "q8_0": 0.4,
  "q4_0": 0.4,
  "q4_k_m": 0.12,
};

/** Against the exact f64 reference an all-f32 implementation agrees to about 1e-3 (issue 2: ≤ 2e-3). */
const EXACT_TOLERANCE = 2e-3;

const CASES: [model: string, prompt: string, type: string][] = [
  ["stories260K", "once-upon-a-time", "f32"],
  ["stories260K", "lily-and-tom", "f32"],
  ["stories260K-f16", "once-upon-a-time", "f16"],
  ["stories260K-f16", "lily-and-tom", "f16"],
  ["stories260K-q8_0", "once-upon-a-time", "q8_0"],
  ["stories260K-q8_0", "lily-and-tom", "q8_0"],
  ["stories260K-q4_0", "once-upon-a-time", "q4_0"],
  ["stories260K-q4_0", "lily-and-tom", "q4_0"],
  ["synth-256-q4_k_m", "once-upon-a-time", "q4_k_m"],
  ["synth-256-bf16", "once-upon-a-time", "bf16"],
  ["synth-256-tied-q8_0", "once-upon-a-time", "q8_0"],
];

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Both forward paths: RMSNorm and SwiGLU fused into the products, and as their own dispatches.
for (const [[model, prompt, type], fuseInputs] of CASES.flatMap((c) => [[c, true], [c, false]] as const)) {
  const path = fuseInputs ? "fused" : "unfused";
  gpuTest(
    `${model} teacher-forced logits match llama.cpp and the exact reference (${prompt}, ${path})`,
    async (gpu) => {
      const ref = await golden(`${model}.${prompt}.json`);
      const exact = await golden(`exact/${model}.${prompt}.json`);
      assert.deepEqual(exact.teacher_forced_ids, ref.generated_ids);
      const m = await loadModel(`${SHARED}models/${model}.gguf`, { gpu, contextLength: 128, fuseInputs });
      assert.equal(m.kernels.fuseInputs, fuseInputs);
      try {
        const ids = [...ref.prompt_ids, ...ref.generated_ids!];
        const all = await m.evaluate(ids);
        const rows = ref.logits.map((_, i) => all[ref.prompt_ids.length - 1 + i]);
        let vsExact = 0, vsLlama = 0, agree = 0, exactAgree = 0;
        rows.forEach((row, i) => {
          vsExact = Math.max(vsExact, maxAbs(row, exact.logits[i]));
          vsLlama = Math.max(vsLlama, maxAbs(row, ref.logits[i]));
          if (argmax(row) === argmax(ref.logits[i])) agree++;
          if (argmax(exact.logits[i]) === argmax(ref.logits[i])) exactAgree++;
        });
        assert.ok(vsExact <= EXACT_TOLERANCE, `max |ours − exact| = ${vsExact}`);
        assert.ok(vsLlama <= LLAMA_CPP_TOLERANCE[type], `max |ours − llama.cpp| = ${vsLlama}`);
        // Top-1 agreement with llama.cpp: at least what the exact reference reaches (its rounding of
        // activations flips near-ties: 62/64 on q4_0 lily-and-tom, 30/32 on the tied q8_0 model).
        assert.ok(
          agree >= exactAgree,
          `top-1 agreement ${agree}/${rows.length} < exact reference's ${exactAgree}`,
        );
        if (model.startsWith("stories260K")) {
          assert.ok(agree / rows.length >= 0.968, `top-1 ${agree}/${rows.length}`);
        }
      } finally {
        m.dispose();
      }
    },
  );
}

for (const prompt of ["once-upon-a-time", "lily-and-tom"]) {
  gpuTest(`stories260K greedy decoding reproduces llama.cpp's first 64 ids (${prompt})`, async (gpu) => {
    const ref = await golden(`stories260K.${prompt}.json`);
    const m = await loadModel(`${SHARED}models/stories260K.gguf`, { gpu, contextLength: 128 });
    try {
      const it = m.generate(ref.prompt_ids, { maxTokens: 64, temperature: 0, stopAtEos: false });
      let r = await it.next();
      while (!r.done) r = await it.next();
      assert.deepEqual(r.value.tokens, ref.generated_ids!.slice(0, 64));
    } finally {
      m.dispose();
    }
  });
}

gpuTest("generation reads back once per token and prefill dispatches per batch, not per token", async () => {
  const gpu = await getGpu();
  const m = await loadModel(`${SHARED}models/stories260K.gguf`, { gpu, contextLength: 256, batchSize: 64 });
  try {
    const run = async (promptIds: number[], maxTokens: number, temperature: number) => {
      const before = { ...gpu.counters };
      const it = m.generate(promptIds, { maxTokens, temperature, seed: 1, stopAtEos: false });
      let r = await it.next();
      while (!r.done) r = await it.next();
      return {
        readbacks: gpu.counters.readbacks - before.readbacks,
        dispatches: gpu.counters.dispatches - before.dispatches,
        generated: r.value.generatedTokens,
      };
    };
    const short = m.tokenizer.encode("Once upon a time");
    const long = m.tokenizer.encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    );
    assert.ok(long.length > short.length + 10);
    for (const temperature of [0, 0.8]) {
      const a = await run(short, 10, temperature);
      assert.equal(a.generated, 10);
      assert.ok(a.readbacks <= a.generated, `${a.readbacks} readbacks for ${a.generated} tokens`);
      // the default syncEvery (8): the first token after prefill, then one readback per 8 tokens
      assert.equal(a.readbacks, 1 + Math.ceil((a.generated - 1) / 8));
      // One generated token: the dispatch count is the prefill's, and must not grow with the prompt.
      const p1 = await run(short, 1, temperature);
      const p2 = await run(long, 1, temperature);
      assert.equal(p2.dispatches, p1.dispatches, "prefill dispatches grew with the prompt length");
    }
  } finally {
    m.dispose();
  }
});

gpuTest("seeded sampling is reproducible and temperature 0 is greedy", async (gpu) => {
  const m = await loadModel(`${SHARED}models/stories260K.gguf`, { gpu, contextLength: 128 });
  try {
    const text = async (o: Parameters<typeof m.generate>[1]) => {
      let s = "";
      for await (const chunk of m.generate("Once upon a time", o)) s += chunk;
      return s;
    };
    const a = await text({ maxTokens: 30, temperature: 0.9, topK: 40, topP: 0.95, seed: 7 });
    const b = await text({ maxTokens: 30, temperature: 0.9, topK: 40, topP: 0.95, seed: 7 });
    assert.equal(a, b);
    const g = await text({ maxTokens: 20, temperature: 0 });
    assert.ok(g.startsWith(", there was a little girl named Lily"), g);
    const stopped = await text({ maxTokens: 40, temperature: 0, stop: ["Lily"] });
    assert.equal(stopped, ", there was a little girl named ");
  } finally {
    m.dispose();
  }
});

gpuTest("a prompt longer than the context is rejected with a clear error", async (gpu) => {
  const m = await loadModel(`${SHARED}models/stories260K.gguf`, { gpu, contextLength: 8 });
  try {
    await assert.rejects(
      () => m.generate("Once upon a time there was a little girl named Lily").next(),
      /prompt has \d+ tokens but the context holds 8/,
    );
  } finally {
    m.dispose();
  }
});
