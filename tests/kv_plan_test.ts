import assert from "node:assert/strict";
import { resolveKvOptions } from "../src/kv/options.ts";
import { keptChannels, planCompression, pyramidBudgets } from "../src/kv/plan.ts";
import { segmentAttention } from "../src/ref/kv_attention.ts";
import { accumulatedAttention, pool1d, topkAscending, windowVotes } from "../src/ref/kv_select.ts";
import { attention } from "../src/ref/ops.ts";
import { randomFloats } from "./_gpu.ts";

const plan = (
  kv: Parameters<typeof resolveKvOptions>[0],
  L: number,
  capacity = L,
  nLayers = 1,
  headDim = 128,
) => planCompression(resolveKvOptions(kv), { nLayers, headDim }, L, capacity);

Deno.test("keptChannels() keeps D − ⌊λD⌋ channels (77 of 128 at λ = 0.4, not 76)", () => {
  assert.deepEqual([0.3, 0.4, 0.5, 0.6].map((r) => keptChannels(128, r)), [90, 77, 64, 52]);
  assert.equal(keptChannels(8, 0.4), 5);
  assert.equal(keptChannels(128, 0), 128);
});

Deno.test("planCompression(): budget counts the window, no eviction up to the budget, r last tokens full width", () => {
  const p = plan({ eviction: { policy: "snapkv", budget: 512 }, think: { ratio: 0.4 } }, 2000, 2048);
  assert.equal(p.scoring, "window");
  assert.deepEqual(p.layers[0], {
    layer: 0,
    evict: true,
    prefixLength: 1968,
    selected: 480,
    kept: 512,
    thinTokens: 480,
    nKeep: 77,
    thinStride: 77,
    tailCapacity: 32 + 48,
    channelTokens: 512,
    quant: null,
  });
  const short = plan({ eviction: { policy: "snapkv", budget: 512 }, think: { ratio: 0.4 } }, 512);
  assert.equal(short.scoring, "none");
  assert.equal(short.layers[0].kept, 512);
  assert.equal(short.layers[0].thinTokens, 480);
  // memory arithmetic of THINK.md §2.4 (T = 512, r = 32, D = 128): keys + values vs full
  const bytes = (p0: typeof short) => {
    const l = p0.layers[0];
    return l.thinTokens * l.thinStride + (l.kept - l.thinTokens) * 128 + l.kept * 128;
  };
  assert.equal((bytes(short) / (2 * 512 * 128) * 100).toFixed(1), "81.3");
  assert.equal((bytes(plan({ think: { ratio: 0.5 } }, 512)) / (2 * 512 * 128) * 100).toFixed(1), "76.6");
  assert.equal(plan({ think: { ratio: 0.4, pad: true } }, 512).layers[0].thinStride, 80);
  // prompts shorter than r, than the ThinK window, than the budget
  const tiny = plan({ eviction: { policy: "h2o", budget: 64 }, think: { ratio: 0.5 } }, 10, 100);
  assert.equal(tiny.layers[0].thinTokens, 0);
  assert.equal(tiny.thinkQueries, 10);
  assert.equal(tiny.layers[0].tailCapacity, 100);
});

Deno.test("planCompression(): StreamingLLM keeps sinks + recent, H2O and SnapKV the window", () => {
  const s = plan({ eviction: { policy: "streamingllm", budget: 64, sinks: 4 } }, 300);
  assert.deepEqual([s.scoring, s.layers[0].prefixLength, s.layers[0].selected, s.layers[0].kept], [
    "position",
    240,
    4,
    64,
  ]);
  const h = plan({ eviction: { policy: "h2o", budget: 64, window: 16 } }, 300);
  assert.deepEqual([h.scoring, h.layers[0].prefixLength, h.layers[0].selected], ["accumulated", 284, 48]);
  assert.equal(h.obsQueries, 0);
});

Deno.test("pyramidBudgets(): bottom layer largest, uniform below 2(B − w), floored step", () => {
  assert.deepEqual(pyramidBudgets({ budget: 64, window: 32, beta: 20, nLayers: 4, promptLength: 300 }), [
    63,
    43,
    23,
    3,
  ]);
  assert.deepEqual(pyramidBudgets({ budget: 64, window: 32, beta: 20, nLayers: 5, promptLength: 300 }), [
    63,
    48,
    33,
    18,
    3,
  ]);
  assert.deepEqual(pyramidBudgets({ budget: 128, window: 32, beta: 20, nLayers: 3, promptLength: 150 }), [
    96,
    96,
    96,
  ]);
  // THINK.md §3.3 example: B = 128, w = 32, N = 32 gives 188 … 33, mean 110.5
  const b = pyramidBudgets({ budget: 128, window: 32, beta: 20, nLayers: 32, promptLength: 5000 });
  assert.deepEqual([b[0], b[31], b.reduce((a, x) => a + x) / 32], [188, 33, 110.5]);
  // clamp: max ≥ L − w
  assert.deepEqual(pyramidBudgets({ budget: 64, window: 32, beta: 20, nLayers: 2, promptLength: 70 }), [
    38,
    26,
  ]);
});

Deno.test("topkAscending() breaks ties by index: the lower index is kept first", () => {
  assert.deepEqual(topkAscending([1, 5, 5, 2, 5], 2), [1, 2]);
  assert.deepEqual(topkAscending([3, 3, 3, 3], 3), [0, 1, 2]);
  assert.deepEqual(topkAscending([0, 1, 2], 0), []);
});

Deno.test("pool1d(): max ignores pads, avg divides by the kernel, none copies", () => {
  const x = new Float64Array([1, 0, 0, 4, 0, 2]);
  assert.deepEqual([...pool1d(x, 1, "max", 3)], [1, 1, 4, 4, 4, 2]);
  assert.deepEqual([...pool1d(x, 1, "avg", 3)], [1 / 3, 1 / 3, 4 / 3, 4 / 3, 2, 2 / 3]);
  assert.deepEqual([...pool1d(x, 2, "max", 3)], [1, 1, 0, 4, 4, 2]); // two rows of 3
  assert.deepEqual([...pool1d(x, 1, "none", 3)], [...x]);
});

Deno.test("window votes and accumulated attention are column sums of the causal softmax", () => {
  const s = { promptLength: 6, nHeads: 2, nKvHeads: 1, headDim: 4 };
  const q = randomFloats(6 * 8, 1), k = randomFloats(6 * 4, 2);
  const acc = accumulatedAttention(q, k, s, 6);
  // every query's probabilities sum to one: the columns add up to L per query head
  assert.ok(Math.abs(acc.reduce((a, x) => a + x) - 12) < 1e-12);
  const votes = windowVotes(q, k, s, 6, 6);
  assert.deepEqual([...votes].map((x) => x.toFixed(12)), [...acc].map((x) => x.toFixed(12)));
});

Deno.test("segmentAttention() with every channel kept equals plain attention", () => {
  const [H, D, L] = [2, 8, 10];
  const kc = randomFloats(H * L * D, 3), vc = randomFloats(H * L * D, 4), q = randomFloats(2 * 4 * D, 5);
  const split = 6; // thin rows 0..5, tail rows 6..9 (the last 2 are the queries' own keys)
  const take = (a: Float32Array, r0: number, r1: number) => {
    const out = new Float32Array(H * (r1 - r0) * D);
    for (let h = 0; h < H; h++) out.set(a.subarray((h * L + r0) * D, (h * L + r1) * D), h * (r1 - r0) * D);
    return out;
  };
  const got = segmentAttention(q, {
    thinKeys: take(kc, 0, split),
    thinValues: take(vc, 0, split),
    thinLength: split,
    thinStride: D,
    channels: [[...Array(D).keys()], [...Array(D).keys()]],
    tailKeys: take(kc, split, L),
    tailValues: take(vc, split, L),
    tailCapacity: L - split,
  }, { nTokens: 2, nHeads: 4, nKvHeads: H, headDim: D, tailRow0: 2 });
  const want = attention(q, kc, vc, { nTokens: 2, nHeads: 4, nKvHeads: H, headDim: D, capacity: L, pos0: 8 });
  assert.ok(got.every((x, i) => Math.abs(x - want[i]) < 1e-6));
});

Deno.test("planCompression() with KIVI: keys T − T mod R, values T − min(T, R), a ring of R + maxBatch", () => {
  const kivi = (kv: Parameters<typeof resolveKvOptions>[0], L: number, capacity: number, maxBatch = 1) =>
    planCompression(resolveKvOptions(kv), { nLayers: 1, headDim: 128 }, L, capacity, maxBatch);
  const p = kivi({ quant: { residual: 128 } }, 300, 1000, 64);
  assert.deepEqual(p.quant, {
    keyBits: 2,
    valueBits: 2,
    group: 32,
    residual: 128,
    valueGroup: 32,
    maxBatch: 64,
  });
  assert.deepEqual(p.layers[0].quant, {
    keyRows: 256,
    valueRows: 172,
    maxRows: 1000,
    keyCapacity: 896,
    valueCapacity: 872,
    keyChannels: 128,
  });
  assert.equal(p.layers[0].tailCapacity, 128 + 64);
  assert.equal(p.layers[0].thinTokens, 0);
  // ThinK + KIVI: the quantized keys are thin and score the channels; no f32 thin segment
  const t = kivi(
    { eviction: { policy: "snapkv", budget: 512 }, think: { ratio: 0.4 }, quant: {} },
    2000,
    2048,
  );
  assert.deepEqual([t.layers[0].kept, t.layers[0].thinTokens, t.layers[0].channelTokens], [512, 0, 512]);
  assert.equal(t.layers[0].quant!.keyChannels, 77);
  assert.equal(t.layers[0].quant!.maxRows, 512 + 48);
  // prompts shorter than R: nothing is quantized yet, the mask comes from every kept key
  const short = kivi({ think: { ratio: 0.5 }, quant: {} }, 40, 64);
  assert.deepEqual([short.layers[0].quant!.keyRows, short.layers[0].quant!.valueRows], [0, 0]);
  assert.equal(short.layers[0].channelTokens, 40);
  assert.equal(short.layers[0].tailCapacity, 64); // the whole context fits in the ring
  assert.equal(short.quant!.valueGroup, 32);
  assert.equal(
    planCompression(resolveKvOptions({ quant: {} }), { nLayers: 1, headDim: 8 }, 4, 8).quant!.valueGroup,
    8,
  );
});
