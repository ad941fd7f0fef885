/**
 * Whole-model invariants of the compressed KV caches (issue 3):
 * - ThinK with λ = 0, and any eviction whose budget covers the prompt, give the logits of `full`;
 * - generated tokens are rotated at their absolute position (prompt length + t), not at the cache fill;
 * - a compressed cache cannot be rewound, and its memory is really smaller.
 */
import assert from "node:assert/strict";
import { writeSyntheticModel } from "../bench/kv_synthetic.ts";
import { encodeForward } from "../src/engine/forward.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import type { KvOptions } from "../src/kv/options.ts";
import { loadModel, type Model } from "../src/model/model.ts";
import { gpuTest, maxAbsDiff } from "./_gpu.ts";

const SHARED = new URL("../../shared/", import.meta.url).pathname;

async function golden(name: string): Promise<{ prompt_ids: number[]; generated_ids: number[] }> {
  return JSON.parse(await Deno.readTextFile(`${SHARED}golden/${name}`));
}

/** Logits after the prompt (prefill, compressed at its end), then after each continuation token. */
async function logitRows(model: Model, prompt: number[], cont: number[]): Promise<Float32Array[]> {
  model.prefill(prompt, 0, { logits: "last" });
  return [await model.readLogits(), ...await model.evaluate(cont, prompt.length)];
}

async function withModel<T>(
  gpu: Gpu,
  path: string,
  kv: KvOptions | undefined,
  ctx: number,
  f: (m: Model) => Promise<T>,
) {
  const m = await loadModel(path, { gpu, contextLength: ctx, kv, batchSize: 32 });
  try {
    return await f(m);
  } finally {
    m.dispose();
  }
}

async function maxDiffFromFull(
  gpu: Gpu,
  path: string,
  kv: KvOptions,
  prompt: number[],
  cont: number[],
): Promise<number> {
  const ctx = prompt.length + cont.length;
  const full = await withModel(gpu, path, undefined, ctx, (m) => logitRows(m, prompt, cont));
  const got = await withModel(gpu, path, kv, ctx, (m) => logitRows(m, prompt, cont));
  return Math.max(...full.map((row, i) => maxAbsDiff(row, got[i])));
}

const stories = `${SHARED}models/stories260K.gguf`;
const passkey = `${SHARED}models/passkey-tiny.gguf`;

gpuTest(
  "ThinK with ratio 0 gives the full cache's logits (≤ 1e-5): stories260K and passkey-tiny",
  async (gpu) => {
    const g = await golden("stories260K.once-upon-a-time.json");
    const ids = [...g.prompt_ids, ...g.generated_ids]; // 69 tokens: 48 prompt (16 thin), 21 teacher-forced
    const d1 = await maxDiffFromFull(gpu, stories, { think: { ratio: 0 } }, ids.slice(0, 48), ids.slice(48));
    assert.ok(d1 <= 1e-5, `stories260K: max |Δlogit| = ${d1}`);
    const line = (await Deno.readTextFile(`${SHARED}golden/passkey-tiny.eval.jsonl`)).split("\n")[0];
    const ex = JSON.parse(line);
    const m = await loadModel(passkey, { gpu, contextLength: 16 });
    const prompt = m.tokenizer.encode(ex.context),
      answer = m.tokenizer.encode(` ${ex.answers[0]}.`, { addBos: false });
    m.dispose();
    const d2 = await maxDiffFromFull(gpu, passkey, { think: { ratio: 0, recent: 8 } }, prompt, answer);
    assert.ok(d2 <= 1e-5, `passkey-tiny: max |Δlogit| = ${d2}`);
  },
);

gpuTest("eviction whose budget covers the prompt gives the full cache's logits (≤ 1e-5)", async (gpu) => {
  const g = await golden("stories260K.lily-and-tom.json");
  const ids = [...g.prompt_ids, ...g.generated_ids];
  const prompt = ids.slice(0, 50), cont = ids.slice(50);
  for (
    const kv of [
      { eviction: { policy: "snapkv", budget: 50 } },
      { eviction: { policy: "pyramidkv", budget: 64 } },
      { eviction: { policy: "streamingllm", budget: 50 } },
      { eviction: { policy: "h2o", budget: 128 } },
      { eviction: { policy: "snapkv", budget: 64 }, think: { ratio: 0 } },
    ] as KvOptions[]
  ) {
    const d = await maxDiffFromFull(gpu, stories, kv, prompt, cont);
    assert.ok(d <= 1e-5, `${JSON.stringify(kv)}: max |Δlogit| = ${d}`);
  }
});

gpuTest(
  "generated tokens are rotated at their absolute position, not at the compressed length",
  async (gpu) => {
    // One layer: keys and values depend only on (token, position), and RoPE attention only on position
    // differences. StreamingLLM without sinks keeps the last B prompt tokens, so a decode step at absolute
    // position L + t must equal the full model run on just those B tokens and the continuation, at
    // positions 0 … B + t. Rotating the new token at the cache fill (B + t) instead breaks the equality.
    const path = await writeSyntheticModel(await Deno.makeTempFile({ suffix: ".gguf" }), {
      nLayers: 1,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 16,
      ffnDim: 64,
      vocab: 64,
      contextLength: 256,
      seed: 7,
    });
    try {
      const L = 90, B = 24, prompt = Array.from({ length: L }, (_, i) => 3 + ((i * 37) % 61));
      const cont = [5, 17, 29, 41, 53];
      for (const think of [undefined, { ratio: 0, recent: 8 }]) { // eviction alone, and with a thin segment
        const kv: KvOptions = { eviction: { policy: "streamingllm", budget: B, sinks: 0 }, think };
        const suffix = await withModel(
          gpu,
          path,
          undefined,
          128,
          (m) => m.evaluate([...prompt.slice(L - B), ...cont]),
        );
        const want = suffix.slice(B - 1); // after the last prompt token, then after each continuation token
        const got = await withModel(gpu, path, kv, 128, async (m) => {
          const rows = await logitRows(m, prompt, cont);
          assert.equal(m.position, L + cont.length);
          assert.equal(m.cache.tailLength + (m.cache.layers[0].thin?.length ?? 0), B + cont.length);
          return rows;
        });
        // row 0 comes from prefill over the whole prompt; the decode rows see only the kept B tokens
        const decodeDiff = Math.max(...cont.map((_, i) => maxAbsDiff(got[i + 1], want[i + 1])));
        assert.ok(decodeDiff <= 1e-4, `think ${JSON.stringify(think)}: max |Δlogit| = ${decodeDiff}`);

        // The same steps rotated at the compressed length differ: the test would catch that bug.
        const wrong = await withModel(gpu, path, kv, 128, async (m) => {
          m.prefill(prompt, 0, { logits: "none" });
          const rows: Float32Array[] = [];
          for (const id of cont) {
            m.state.ensureLogitRows(1);
            m.gpu.write(m.state.ids, 0, new Uint32Array([id]));
            const enc = m.gpu.device.createCommandEncoder();
            const pass = enc.beginComputePass();
            const fill = m.cache.tailLength + (m.cache.layers[0].thin?.length ?? 0);
            encodeForward(pass, m, { n: 1, pos0: fill, idsSlot: 0, logits: "last" });
            pass.end();
            m.gpu.submit(enc);
            rows.push(await m.readLogits());
          }
          return rows;
        });
        const wrongDiff = Math.max(...cont.map((_, i) => maxAbsDiff(wrong[i], want[i + 1])));
        assert.ok(
          wrongDiff > 100 * Math.max(decodeDiff, 1e-4),
          `rotation at the fill only moves logits by ${wrongDiff}`,
        );
      }
    } finally {
      await Deno.remove(path);
    }
  },
);

gpuTest(
  "a compressed cache continues only at the model's position and reports smaller buffers",
  async (gpu) => {
    const g = await golden("stories260K.once-upon-a-time.json");
    const ids = [...g.prompt_ids, ...g.generated_ids];
    const kv: KvOptions = {
      eviction: { policy: "snapkv", budget: 32, window: 8 },
      think: { ratio: 0.5, recent: 8 },
    };
    await withModel(gpu, stories, kv, 128, async (m) => {
      await m.evaluate(ids.slice(0, 60));
      assert.equal(m.position, 60);
      assert.ok(m.canContinueAt(60) && m.canContinueAt(0) && !m.canContinueAt(30));
      await assert.rejects(() => m.evaluate(ids.slice(60, 62), 30), /cannot rewind/);
      await m.evaluate(ids.slice(60, 62), 60);
      const s = m.kvStats();
      const c = m.config;
      // per layer: 24 thin tokens × 4 of 8 key channels + 8 full-width prompt tokens + 68 rows for the rest
      const thinKeys = c.nKvHeads * 24 * 4 * 4, tail = c.nKvHeads * (8 + 128 - 60) * c.headDim * 4;
      assert.equal(s.keyBytes, c.nLayers * (thinKeys + tail));
      assert.equal(s.valueBytes, c.nLayers * (c.nKvHeads * 24 * c.headDim * 4 + tail));
      assert.equal(s.fullBytes, 2 * c.nLayers * c.nKvHeads * 128 * c.headDim * 4);
      assert.ok(s.bytes < s.fullBytes);
      assert.equal(s.layers[0].promptTokens, 32);
      assert.equal(s.layers[0].keyChannels, 4);
      assert.match(s.policy, /^snapkv\(B=32,w=8,k=7,max\) \+ think\(0\.5\)$/);
    });
  },
);
