/**
 * GPU KV compression vs the TypeScript references (src/ref/kv_select.ts, src/ref/kv_attention.ts), on
 * fixed random inputs, through the real KvCache: prefill batches (append, attend, observe), compress,
 * then decode batches over [thin | tail]. The compacted buffers must equal the reference's exactly
 * (the same tokens and channels were selected), and decode attention must agree within 1e-4.
 */
import assert from "node:assert/strict";
import type { Gpu } from "../src/gpu/gpu.ts";
import { AttentionKernel } from "../src/kernels/attention.ts";
import { KvCache } from "../src/kv/cache.ts";
import type { KvOptions } from "../src/kv/options.ts";
import { segmentAttention } from "../src/ref/kv_attention.ts";
import { type CompressedLayer, compressLayer } from "../src/ref/kv_select.ts";
import { gpuTest, maxAbsDiff, randomFloats } from "./_gpu.ts";
import { fakeConfig, prefillRows, run } from "./_kv.ts";

interface Case {
  name: string;
  kv: KvOptions;
  promptLength: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  nLayers?: number;
  batch?: number;
}

const cases: Case[] = [
  {
    name: "snapkv max, D 128, GQA 4, prompt 300 > budget 128",
    kv: { eviction: { policy: "snapkv", budget: 128, window: 32, kernel: 7, pool: "max" } },
    promptLength: 300,
    nHeads: 8,
    nKvHeads: 2,
    headDim: 128,
  },
  {
    name: "snapkv avg k5 w16, D 64, GQA 2, prompt 200 > budget 96",
    kv: { eviction: { policy: "snapkv", budget: 96, window: 16, kernel: 5, pool: "avg" } },
    promptLength: 200,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 64,
  },
  {
    name: "snapkv pool none, D 64, GQA 1, prompt 150 > budget 64",
    kv: { eviction: { policy: "snapkv", budget: 64, pool: "none" } },
    promptLength: 150,
    nHeads: 2,
    nKvHeads: 2,
    headDim: 64,
  },
  {
    name: "snapkv + think 0.4, D 128, GQA 2, prompt 100 < budget 128 (no eviction)",
    kv: { eviction: { policy: "snapkv", budget: 128 }, think: { ratio: 0.4 } },
    promptLength: 100,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 128,
  },
  {
    name: "pyramidkv, 3 layers, D 64, GQA 4, prompt 300 > budget 64",
    kv: { eviction: { policy: "pyramidkv", budget: 64 } },
    promptLength: 300,
    nHeads: 8,
    nKvHeads: 2,
    headDim: 64,
    nLayers: 3,
  },
  {
    name: "streamingllm, D 128, GQA 2, prompt 200 > budget 64",
    kv: { eviction: { policy: "streamingllm", budget: 64, sinks: 4 } },
    promptLength: 200,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 128,
  },
  {
    name: "h2o w16, D 64, GQA 4, prompt 260 > budget 96, batches of 48",
    kv: { eviction: { policy: "h2o", budget: 96, window: 16 } },
    promptLength: 260,
    nHeads: 8,
    nKvHeads: 2,
    headDim: 64,
    batch: 48,
  },
  {
    name: "think 0.5, D 128, GQA 1, prompt 40 (8 thin tokens)",
    kv: { think: { ratio: 0.5 } },
    promptLength: 40,
    nHeads: 2,
    nKvHeads: 2,
    headDim: 128,
  },
  {
    name: "think 0.4, D 64, GQA 2, prompt 20 shorter than recent and window (no thin tokens)",
    kv: { think: { ratio: 0.4 } },
    promptLength: 20,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 64,
  },
  {
    name: "snapkv 128 + think 0.4 padded (77 → 80), D 128, GQA 2, prompt 300",
    kv: { eviction: { policy: "snapkv", budget: 128 }, think: { ratio: 0.4, pad: true } },
    promptLength: 300,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 128,
  },
  {
    name: "pyramidkv 96 + think 0.3 (45 channels: unaligned thin rows), 2 layers, D 64, GQA 4, prompt 230",
    kv: { eviction: { policy: "pyramidkv", budget: 96, pool: "avg" }, think: { ratio: 0.3, recent: 5 } },
    promptLength: 230,
    nHeads: 8,
    nKvHeads: 2,
    headDim: 64,
    nLayers: 2,
  },
  {
    name: "h2o 64 + think 0.75, D 64, GQA 2, prompt 120",
    kv: { eviction: { policy: "h2o", budget: 64 }, think: { ratio: 0.75 } },
    promptLength: 120,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 64,
  },
];

/** `[nKvHeads, L, D]` from rows `[L, nKvHeads·D]`. */
function toHeadMajor(rows: Float32Array, L: number, H: number, D: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let t = 0; t < L; t++) {
    for (let h = 0; h < H; h++) {
      out.set(rows.subarray((t * H + h) * D, (t * H + h + 1) * D), (h * L + t) * D);
    }
  }
  return out;
}

async function readF32(gpu: Gpu, buf: GPUBuffer, elements: number): Promise<Float32Array> {
  return new Float32Array(await gpu.read(buf, 0, elements * 4));
}

for (const c of cases) {
  gpuTest(`KvCache compression matches the reference: ${c.name}`, async (gpu) => {
    const config = fakeConfig(c);
    const upload = (a: Float32Array, t0: number, n: number, w: number) =>
      gpu.upload("rows", a.subarray(t0 * w, (t0 + n) * w));
    const { nHeads, nKvHeads: H, headDim: D, promptLength: L } = c;
    const decodeSteps = [1, 1, 2];
    const capacity = L + 4;
    const batch = c.batch ?? 64;
    const attention = await AttentionKernel.create(gpu);
    const cache = await KvCache.create(gpu, config, capacity, attention, c.kv);
    const scratch = attention.createScratch({ nTokens: batch, nHeads, headDim: D, context: capacity });
    const qw = nHeads * D, kw = H * D;
    const seed = 1000 + L + D + nHeads;
    const layers = Array.from({ length: config.nLayers }, (_, l) => ({
      q: randomFloats((L + 4) * qw, seed + 10 * l, 2),
      k: randomFloats((L + 4) * kw, seed + 10 * l + 1, 2),
      v: randomFloats((L + 4) * kw, seed + 10 * l + 2),
    }));
    prefillRows(gpu, cache, attention, config, layers, L, batch);
    const out = gpu.createBuffer("out", batch * qw * 4);
    const plan = cache.plan!;

    const refs: CompressedLayer[] = [];
    for (const [l, x] of layers.entries()) {
      const lp = plan.layers[l];
      const shape = { promptLength: L, nHeads, nKvHeads: H, headDim: D };
      const ref = compressLayer(
        x.q.subarray(0, L * qw),
        toHeadMajor(x.k.subarray(0, L * kw), L, H, D),
        toHeadMajor(x.v.subarray(0, L * kw), L, H, D),
        shape,
        plan,
        lp,
      );
      refs.push(ref);
      const { thin, tail } = cache.layers[l];
      assert.equal(thin?.length ?? 0, lp.thinTokens);
      assert.equal(tail.length, lp.kept - lp.thinTokens);
      // the selected tokens: identify the kept rows of each head by their (unique, random) values
      const vTail = await readF32(gpu, tail.values, H * tail.capacity * D);
      const vThin = thin ? await readF32(gpu, thin.values, H * thin.capacity * D) : new Float32Array(0);
      const vStage = toHeadMajor(x.v.subarray(0, L * kw), L, H, D);
      for (let h = 0; h < H; h++) {
        const byValue = new Map<number, number>();
        for (let t = 0; t < L; t++) byValue.set(vStage[(h * L + t) * D], t);
        const got = [
          ...Array.from({ length: lp.thinTokens }, (_, j) => byValue.get(vThin[(h * lp.thinTokens + j) * D])),
          ...Array.from({ length: tail.length }, (_, j) => byValue.get(vTail[(h * tail.capacity + j) * D])),
        ];
        assert.deepEqual(got, ref.tokens[h], `layer ${l} head ${h}: kept tokens`);
      }
      if (thin) {
        const channels = new Uint32Array(await gpu.read(thin.channels!, 0, H * lp.nKeep * 4));
        for (let h = 0; h < H; h++) {
          assert.deepEqual(
            [...channels.subarray(h * lp.nKeep, (h + 1) * lp.nKeep)],
            ref.channels[h],
            `layer ${l} head ${h}: channels`,
          );
        }
        assert.deepEqual(await readF32(gpu, thin.keys, ref.thinKeys.length), ref.thinKeys);
        assert.deepEqual(vThin.subarray(0, ref.thinValues.length), ref.thinValues);
      }
      const kTail = await readF32(gpu, tail.keys, H * tail.capacity * D);
      for (let h = 0; h < H; h++) {
        const rows = tail.length * D;
        assert.deepEqual(
          kTail.subarray(h * tail.capacity * D, h * tail.capacity * D + rows),
          ref.tailKeys.subarray(h * rows, (h + 1) * rows),
        );
        assert.deepEqual(
          vTail.subarray(h * tail.capacity * D, h * tail.capacity * D + rows),
          ref.tailValues.subarray(h * rows, (h + 1) * rows),
        );
      }
    }

    // decode over [thin | tail]: new rows append to the tail at full width
    const tails = refs.map((ref, l) => {
      const lp = plan.layers[l];
      const cap = lp.tailCapacity, rows = lp.kept - lp.thinTokens;
      const keys = new Float32Array(H * cap * D), values = new Float32Array(H * cap * D);
      for (let h = 0; h < H; h++) {
        keys.set(ref.tailKeys.subarray(h * rows * D, (h + 1) * rows * D), h * cap * D);
        values.set(ref.tailValues.subarray(h * rows * D, (h + 1) * rows * D), h * cap * D);
      }
      return { keys, values, cap, rows };
    });
    let t0 = L;
    for (const n of decodeSteps) {
      run(gpu, (pass) => {
        layers.forEach((x, l) => {
          cache.append(pass, l, upload(x.k, t0, n, kw), upload(x.v, t0, n, kw), { n });
          cache.attend(pass, l, { q: upload(x.q, t0, n, qw), out, scratch, n });
        });
        cache.advance(n);
      });
      for (const [l, x] of layers.entries()) {
        const tl = tails[l]; // layers keep different token counts (PyramidKV): per-layer tail rows
        for (let t = 0; t < n; t++) {
          for (let h = 0; h < H; h++) {
            const src = ((t0 + t) * H + h) * D, dst = (h * tl.cap + tl.rows + t) * D;
            tl.keys.set(x.k.subarray(src, src + D), dst);
            tl.values.set(x.v.subarray(src, src + D), dst);
          }
        }
        tl.rows += n;
        assert.equal(cache.layers[l].tail.length, tl.rows);
      }
      // `out` holds the last layer's attention (every layer writes it in turn)
      const l = layers.length - 1, x = layers[l], lp = plan.layers[l], ref = refs[l];
      const want = segmentAttention(x.q.subarray(t0 * qw, (t0 + n) * qw), {
        thinKeys: ref.thinKeys,
        thinValues: ref.thinValues,
        thinLength: lp.thinTokens,
        thinStride: lp.thinStride,
        channels: ref.channels,
        tailKeys: tails[l].keys,
        tailValues: tails[l].values,
        tailCapacity: tails[l].cap,
      }, { nTokens: n, nHeads, nKvHeads: H, headDim: D, tailRow0: tails[l].rows - n });
      const diff = maxAbsDiff(await readF32(gpu, out, n * qw), want);
      assert.ok(diff <= 1e-4, `decode at ${t0}: max abs diff ${diff}`);
      t0 += n;
    }
    cache.dispose();
    gpu.free(scratch.acc);
    gpu.free(scratch.ml);
  });
}
