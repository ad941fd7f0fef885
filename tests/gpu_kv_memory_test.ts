/**
 * Memory arithmetic of THINK.md §2.4, measured from the buffers a compressed cache really allocates:
 * one synthetic layer, D = 128, budget B = 512, r = 32. Prompt KV bytes (keys + values; the channel
 * lists are reported apart) are 81.3% of full at λ = 0.4 and 76.6% at λ = 0.5; the padded layout
 * (77 → 80 channels, for vec4 loads) takes 82.4% at λ = 0.4.
 */
import assert from "node:assert/strict";
import { AttentionKernel } from "../src/kernels/attention.ts";
import { KvCache } from "../src/kv/cache.ts";
import type { KvOptions } from "../src/kv/options.ts";
import { fakeConfig, prefillRows } from "./_kv.ts";
import { gpuTest, randomFloats } from "./_gpu.ts";

const D = 128, B = 512;

const cases: { kv: KvOptions; L: number; percent: string; thinStride: number }[] = [
  {
    kv: { eviction: { policy: "snapkv", budget: B }, think: { ratio: 0.4 } },
    L: 700,
    percent: "81.3",
    thinStride: 77,
  },
  {
    kv: { eviction: { policy: "snapkv", budget: B }, think: { ratio: 0.5 } },
    L: 700,
    percent: "76.6",
    thinStride: 64,
  },
  { kv: { think: { ratio: 0.4 } }, L: B, percent: "81.3", thinStride: 77 },
  {
    kv: { eviction: { policy: "h2o", budget: B }, think: { ratio: 0.4, pad: true } },
    L: 600,
    percent: "82.4",
    thinStride: 80,
  },
];

for (const c of cases) {
  gpuTest(
    `KvCache allocates ${c.percent}% of the full prompt KV bytes: ${JSON.stringify(c.kv)}`,
    async (gpu) => {
      const config = fakeConfig({ nHeads: 4, nKvHeads: 2, headDim: D });
      const attention = await AttentionKernel.create(gpu);
      // context = prompt: no room for generated tokens, so the tail holds exactly the last r prompt tokens
      const cache = await KvCache.create(gpu, config, c.L, attention, c.kv);
      const H = config.nKvHeads;
      const rows = (w: number, seed: number) => randomFloats(c.L * w, seed);
      const layer = [{ q: rows(4 * D, 1), k: rows(H * D, 2), v: rows(H * D, 3) }];
      prefillRows(gpu, cache, attention, config, layer, c.L, 64);
      const first = gpu.bytesAllocated;
      prefillRows(gpu, cache, attention, config, layer, c.L, 64); // a second prompt frees the first one's cache
      assert.equal(gpu.bytesAllocated, first, "the stage, the scratch or the previous segments leaked");
      const s = cache.stats();
      const T = Math.min(B, c.L);
      const fullPrompt = 2 * H * T * D * 4; // uncompressed keys + values of the T kept prompt tokens
      assert.equal(s.keyBytes, H * ((T - 32) * c.thinStride + 32 * D) * 4);
      assert.equal(s.valueBytes, H * T * D * 4);
      assert.equal(s.indexBytes, H * (D - Math.floor(D * (c.kv.think!.ratio))) * 4);
      assert.equal(((s.keyBytes + s.valueBytes) / fullPrompt * 100).toFixed(1), c.percent);
      // the reported bytes are exactly the buffers the cache holds
      cache.dispose();
      assert.equal(first - gpu.bytesAllocated, s.bytes);
    },
  );
}
