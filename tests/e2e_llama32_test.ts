/**
 * A synthetic Llama-3.2-1B-shaped Q4_0 model (128256-token vocabulary, tied embeddings, rope_freqs,
 * rope base 500000) loads and generates 16 tokens within the adapter's limits: its 164 MB embedding
 * table exceeds a 128 MiB storage binding, so it must be split across bindings and dispatches.
 */
import assert from "node:assert/strict";
import { loadModel } from "../src/model/model.ts";
import { GgmlType } from "../src/model/quant.ts";
import { writeSynthModel } from "../src/model/synth.ts";
import { gpuTest } from "./_gpu.ts";

const PATH = "/tmp/thinkv-test-llama-3.2-1b-q4_0.gguf";

gpuTest("a synthetic llama-3.2-1b Q4_0 model generates 16 tokens", async (gpu) => {
  await writeSynthModel(PATH, "llama-3.2-1b", GgmlType.Q4_0, { seed: 1 });
  const m = await loadModel(PATH, { gpu, contextLength: 64 });
  try {
    assert.equal(m.config.vocabSize, 128256);
    assert.equal(m.config.tiedEmbeddings, true);
    assert.equal(m.config.hasRopeFreqs, true);
    const embdBytes = 128256 * (2048 / 32) * 20; // repacked Q4_0: 20 bytes per 32 weights
    if (embdBytes > gpu.maxStorageBinding) {
      assert.ok(m.weights.tokenEmbd.chunks.length > 1, "embedding not split");
    }
    const it = m.generate("Hello world", { maxTokens: 16, temperature: 0, stopAtEos: false });
    let r = await it.next();
    while (!r.done) r = await it.next();
    assert.equal(r.value.generatedTokens, 16);
    assert.ok(r.value.tokens.every((t) => t >= 0 && t < 128256));
    const logits = await m.evaluate(m.tokenizer.encode("Hello"));
    assert.ok(logits.at(-1)!.every(Number.isFinite), "non-finite logits");
  } finally {
    m.dispose();
    await Deno.remove(PATH).catch(() => {});
  }
});
