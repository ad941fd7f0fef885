/**
 * KIVI quantized KV caches (issue 4) on the GPU against the plain-TypeScript reference
 * (src/ref/kv_quant.ts):
 * - the quantizer: codes and (scale, min) pairs bit-identical for 2, 4 and 8 bits, keys per channel and
 *   values per token, thin keys, ring sources, constant groups (no NaN, no division by zero); f16 pairs
 *   where the adapter has `shader-f16` (the reference rounds to the same f16), f32 pairs everywhere;
 * - the cache: prompt quantization, the flush schedule inside decode steps (keys R at a time, values one
 *   at a time) and attention over [quantized | residual] within 1e-4, alone, with ThinK, with eviction,
 *   for prompts shorter than R; the segment's codes equal the reference's after every flush.
 */
import assert from "node:assert/strict";
import type { Gpu } from "../src/gpu/gpu.ts";
import { AttentionKernel } from "../src/kernels/attention.ts";
import { KvCache } from "../src/kv/cache.ts";
import { QuantKernel } from "../src/kv/kernels/quant.ts";
import type { KvOptions } from "../src/kv/options.ts";
import { quantLayout, type ScaleFormat } from "../src/kv/segment.ts";
import { loadModel } from "../src/model/model.ts";
import {
  dequantizeKeys,
  dequantizeValues,
  kiviAttention,
  kiviFlush,
  kiviPromptLengths,
  quantizeKeys,
  quantizeValues,
} from "../src/ref/kv_quant.ts";
import { compressLayer } from "../src/ref/kv_select.ts";
import { gpuTest, maxAbsDiff, randomFloats } from "./_gpu.ts";
import { fakeConfig, prefillRows, run } from "./_kv.ts";

function formats(gpu: Gpu): ScaleFormat[] {
  return gpu.hasF16 ? ["f16", "f32"] : ["f32"];
}

async function readWords(gpu: Gpu, buf: GPUBuffer, words: number): Promise<Uint32Array> {
  return new Uint32Array(await gpu.read(buf, 0, words * 4));
}

gpuTest("KIVI quantizer: codes, scales and mins bit-identical to the reference (2/4/8 bits)", async (gpu) => {
  const H = 2, D = 64, cap = 96; // source slots: a ring of 96 rows
  const data = randomFloats(H * cap * D, 11, 3);
  // constant groups: key channel 5 of rows 32…63 (head 0), value group 1 of row 7 (head 1)
  for (let r = 32; r < 64; r++) data[(0 * cap + r) * D + 5] = 0.75;
  data.fill(-1.25, (1 * cap + 7) * D + 16, (1 * cap + 7) * D + 32);
  // a tiny-range group: key channel 9 of rows 0…31 (f16 scale below 2⁻¹⁴: flushed to a constant)
  for (let r = 0; r < 32; r++) data[(0 * cap + r) * D + 9] = 0.5 + r * 1e-7;
  const src = gpu.upload("src", data);
  const channels = [[1, 5, 9, 17, 40, 63], [0, 2, 3, 31, 32, 60]];
  const chBuf = gpu.upload("channels", new Uint32Array(channels.flat()));
  for (const scales of formats(gpu)) {
    for (const bits of [2, 4, 8]) {
      const quant = await QuantKernel.create(gpu, { keyBits: bits, valueBits: bits, scales });
      for (const thin of [false, true]) {
        const layout = quantLayout({
          keyBits: bits,
          valueBits: bits,
          group: thin ? 32 : 16,
          valueGroup: 16,
          scales,
          nKvHeads: H,
          headDim: D,
          keyChannels: thin ? 6 : D,
          keyCapacity: 256,
          valueCapacity: 256,
        });
        const buf = gpu.createBuffer("codes and pairs", layout.words * 4);
        // rows 64…191 wrap around the 96-slot source: row r reads slot r mod 96
        run(gpu, (pass) => {
          quant.quantKeys(pass, {
            src: { buffer: src, capacity: cap },
            dst: buf,
            layout,
            channels: thin ? chBuf : null,
            row0: 0,
            nRows: 64,
          });
          quant.quantKeys(pass, {
            src: { buffer: src, capacity: cap },
            dst: buf,
            layout,
            channels: thin ? chBuf : null,
            row0: 160,
            nRows: 64,
          });
          quant.quantValues(pass, {
            src: { buffer: src, capacity: cap },
            dst: buf,
            layout,
            row0: 0,
            nRows: 20,
          });
          quant.quantValues(pass, {
            src: { buffer: src, capacity: cap },
            dst: buf,
            layout,
            row0: 90,
            nRows: 13,
          });
        });
        const want = new Uint32Array(layout.words);
        const rows = { data, capacity: cap };
        quantizeKeys(rows, layout, thin ? channels : null, 0, 64, want);
        quantizeKeys(rows, layout, thin ? channels : null, 160, 64, want);
        quantizeValues(rows, layout, 0, 20, want);
        quantizeValues(rows, layout, 90, 13, want);
        const what = `${bits}-bit, ${scales} pairs, ${thin ? "thin" : "full-width"} keys`;
        const got = await readWords(gpu, buf, want.length);
        const at = got.findIndex((x, i) => x !== want[i]);
        const section = at < layout.keyScaleBase
          ? "key codes"
          : at < layout.valueBase
          ? "key pairs"
          : at < layout.valueScaleBase
          ? "value codes"
          : "value pairs";
        assert.equal(at, -1, `${what}: ${section} differ at word ${at}`);
        gpu.free(buf);
      }
    }
  }
  gpu.free(src);
  gpu.free(chBuf);
});

interface CacheCase {
  name: string;
  kv: KvOptions;
  promptLength: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  nLayers?: number;
  /** Rows per forward call after the prompt (the last ones cross flushes). */
  steps: number[];
}

const cacheCases: CacheCase[] = [
  {
    name: "KIVI-2, D 128, GQA 2, G 32, R 64, prompt 150: keys flush in a 37-row batch",
    kv: { quant: { keyBits: 2, valueBits: 2, group: 32, residual: 64 } },
    promptLength: 150,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 128,
    steps: [1, 1, 3, 37, 1],
  },
  {
    name: "KIVI K4 V8, D 64, GQA 4, G 16, R 32, prompt 20 shorter than R: the first flush during decode",
    kv: { quant: { keyBits: 4, valueBits: 8, group: 16, residual: 32 } },
    promptLength: 20,
    nHeads: 8,
    nKvHeads: 2,
    headDim: 64,
    steps: [1, 10, 1, 1],
  },
  {
    name: "ThinK 0.4 + KIVI-2, D 128, GQA 2, R 64, prompt 130: thin quantized keys, full-width residual",
    kv: { think: { ratio: 0.4 }, quant: { keyBits: 2, valueBits: 2, residual: 64 } },
    promptLength: 130,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 128,
    steps: [1, 1, 60],
  },
  {
    name: "ThinK 0.5 + KIVI-4, D 64, R 64, prompt 40 < R: the mask from all 40 keys, first flush at 64",
    kv: { think: { ratio: 0.5 }, quant: { keyBits: 4, valueBits: 4, residual: 64 } },
    promptLength: 40,
    nHeads: 2,
    nKvHeads: 2,
    headDim: 64,
    steps: [1, 23, 1],
  },
  {
    name: "KIVI-2, D 96, G 48 (value sub-groups of 16 channels), R 48, prompt 100",
    kv: { quant: { keyBits: 2, valueBits: 2, group: 48, residual: 48 } },
    promptLength: 100,
    nHeads: 2,
    nKvHeads: 1,
    headDim: 96,
    steps: [1, 40],
  },
  {
    name: "PyramidKV 96 + ThinK 0.5 + KIVI-8/2, 2 layers, D 64, GQA 2, G 16, R 32, prompt 200",
    kv: {
      eviction: { policy: "pyramidkv", budget: 96, window: 16 },
      think: { ratio: 0.5 },
      quant: { keyBits: 8, valueBits: 2, group: 16, residual: 32 },
    },
    promptLength: 200,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 64,
    nLayers: 2,
    steps: [1, 1, 30, 1],
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

for (const c of cacheCases) {
  gpuTest(`KIVI cache matches the reference: ${c.name}`, async (gpu) => {
    const config = fakeConfig(c);
    const { nHeads, nKvHeads: H, headDim: D, promptLength: L } = c;
    const total = L + c.steps.reduce((a, b) => a + b, 0);
    const maxBatch = Math.max(...c.steps);
    const attention = await AttentionKernel.create(gpu);
    const cache = await KvCache.create(gpu, config, total, attention, c.kv, { maxBatch });
    const scratch = attention.createScratch({ nTokens: maxBatch, nHeads, headDim: D, context: total });
    const out = gpu.createBuffer("out", maxBatch * nHeads * D * 4);
    const qw = nHeads * D, kw = H * D;
    const layers = Array.from({ length: config.nLayers }, (_, l) => ({
      q: randomFloats(total * qw, 500 + 10 * l, 2),
      k: randomFloats(total * kw, 501 + 10 * l, 2),
      v: randomFloats(total * kw, 502 + 10 * l),
    }));
    prefillRows(gpu, cache, attention, config, layers, L, 64);
    const plan = cache.plan!;
    const R = plan.quant!.residual;

    // the reference layer: kept prompt rows (same selection as the GPU's, from src/ref/kv_select.ts),
    // then every appended row, head-major [H, maxRows, D]
    const refs = layers.map((x, l) => {
      const lp = plan.layers[l];
      const shape = { promptLength: L, nHeads, nKvHeads: H, headDim: D };
      const kHm = toHeadMajor(x.k.subarray(0, L * kw), L, H, D);
      const vHm = toHeadMajor(x.v.subarray(0, L * kw), L, H, D);
      const sel = compressLayer(x.q.subarray(0, L * qw), kHm, vHm, shape, plan, lp);
      const cap = lp.quant!.maxRows;
      const keys = new Float32Array(H * cap * D), values = new Float32Array(H * cap * D);
      for (let h = 0; h < H; h++) {
        sel.tokens[h].forEach((src, j) => {
          keys.set(kHm.subarray((h * L + src) * D, (h * L + src + 1) * D), (h * cap + j) * D);
          values.set(vHm.subarray((h * L + src) * D, (h * L + src + 1) * D), (h * cap + j) * D);
        });
      }
      return {
        keys,
        values,
        cap,
        rows: lp.kept,
        channels: sel.channels,
        lengths: kiviPromptLengths(lp.kept, R),
      };
    });

    /** Checks layer l's lengths, channels and codes against the reference, bit for bit. */
    const checkCodes = async (l: number, when: string) => {
      const ref = refs[l], seg = cache.layers[l].quant!, layout = seg.quant!;
      assert.deepEqual({ keys: seg.length, values: layout.valueLength }, ref.lengths, `${when}: lengths`);
      assert.equal(cache.layers[l].tail.length, ref.rows, `${when}: rows`);
      if (plan.think) {
        const ch = new Uint32Array(await gpu.read(seg.channels!, 0, H * layout.keyChannels * 4));
        assert.deepEqual([...ch], ref.channels.flat(), `${when}: kept channels`);
      }
      const want = new Uint32Array(layout.words);
      const src = (data: Float32Array) => ({ data, capacity: ref.cap });
      quantizeKeys(src(ref.keys), layout, plan.think ? ref.channels : null, 0, ref.lengths.keys, want);
      quantizeValues(src(ref.values), layout, 0, ref.lengths.values, want);
      const got = await readWords(gpu, seg.keys, want.length);
      const at = got.findIndex((w, i) => w !== want[i]);
      assert.equal(
        at,
        -1,
        `${when}: codes and pairs differ at word ${at} (value codes from ${layout.valueBase})`,
      );
      return { want, layout };
    };
    for (let l = 0; l < layers.length; l++) await checkCodes(l, `layer ${l} after the prompt`);

    let t0 = L;
    for (const n of c.steps) {
      const upload = (a: Float32Array, w: number) => gpu.upload("rows", a.subarray(t0 * w, (t0 + n) * w));
      const before = refs.map((r) => ({ ...r.lengths }));
      run(gpu, (pass) => {
        layers.forEach((x, l) => {
          cache.append(pass, l, upload(x.k, kw), upload(x.v, kw), { n });
          cache.attend(pass, l, { q: upload(x.q, qw), out, scratch, n });
        });
        cache.advance(n);
      });
      for (const [li, ref] of refs.entries()) {
        for (let t = 0; t < n; t++) {
          for (let h = 0; h < H; h++) {
            const src = ((t0 + t) * H + h) * D, dst = (h * ref.cap + ref.rows + t) * D;
            ref.keys.set(layers[li].k.subarray(src, src + D), dst);
            ref.values.set(layers[li].v.subarray(src, src + D), dst);
          }
        }
        ref.rows += n;
        ref.lengths = kiviFlush(ref.lengths, ref.rows, R);
      }
      // `out` holds the last layer's attention, computed with the lengths before this call's flush
      const l = layers.length - 1, ref = refs[l];
      const { want: words, layout } = await checkCodes(l, `layer ${l} after ${ref.rows} rows`);
      const want = kiviAttention(layers[l].q.subarray(t0 * qw, (t0 + n) * qw), {
        lengths: before[l],
        quantKeys: dequantizeKeys(words, layout, before[l].keys),
        channels: plan.think ? ref.channels : Array.from({ length: H }, () => [...Array(D).keys()]),
        quantValues: dequantizeValues(words, layout, before[l].values),
        keys: ref.keys,
        values: ref.values,
        rowCapacity: ref.cap,
      }, { nTokens: n, nHeads, nKvHeads: H, headDim: D, row0: ref.rows - n });
      const got = new Float32Array(await gpu.read(out, 0, n * qw * 4));
      const diff = maxAbsDiff(got, want);
      assert.ok(diff <= 1e-4, `rows ${t0}…${t0 + n - 1}: max abs diff ${diff}`);
      t0 += n;
    }
    const s = cache.stats();
    assert.ok(s.codeBytes > 0 && s.scaleBytes === s.minBytes && s.residualBytes > 0);
    assert.equal(s.keyBytes + s.valueBytes, s.codeBytes + s.scaleBytes + s.minBytes + s.residualBytes);
    cache.dispose();
    for (const b of [scratch.acc, scratch.ml, out]) gpu.free(b);
  });
}

const SHARED = new URL("../../shared/", import.meta.url).pathname;
const PASSKEY = `${SHARED}models/passkey-tiny.gguf`;

gpuTest(
  "KIVI through loadModel (passkey-tiny): finds the pass key alone, with ThinK and with eviction; short prompts work",
  async (gpu) => {
    const ex = JSON.parse(
      (await Deno.readTextFile(`${SHARED}golden/passkey-tiny.eval.jsonl`)).split("\n")[0],
    );
    const configs: KvOptions[] = [
      { quant: { keyBits: 8, valueBits: 8 } },
      { quant: { keyBits: 4, valueBits: 4, residual: 64 } },
      { think: { ratio: 0.4 }, quant: { keyBits: 4, valueBits: 4, residual: 64 } },
      {
        eviction: { policy: "snapkv", budget: 160 },
        think: { ratio: 0.25 },
        quant: { keyBits: 8, valueBits: 8, residual: 32 },
      },
    ];
    for (const kv of configs) {
      const m = await loadModel(PASSKEY, { gpu, contextLength: 400, kv });
      try {
        const prompt = m.tokenizer.encode(ex.context);
        const it = m.generate(prompt, { maxTokens: 7, temperature: 0, stopAtEos: false });
        let text = "", r = await it.next();
        for (; !r.done; r = await it.next()) text += r.value;
        assert.equal(
          /^ (\d{5})/.exec(text)?.[1],
          ex.answers[0],
          `${JSON.stringify(kv)}: ${JSON.stringify(text)}`,
        );
        const s = m.kvStats();
        assert.ok(s.bytes < s.fullBytes && s.codeBytes > 0, JSON.stringify(kv));
        // a prompt shorter than R (nothing quantized yet), then decoding past R
        const short = m.generate(prompt.slice(0, 20), { maxTokens: 140, temperature: 0, stopAtEos: false });
        let n = 0;
        for (let r2 = await short.next(); !r2.done; r2 = await short.next()) n++;
        assert.ok(n > 0 && m.position === 159, `position ${m.position}`); // the last pick is not fed
        assert.equal(m.cache.layers[0].quant!.length, 128); // 159 rows: keys flushed up to 128 for R = 32, 64, 128
      } finally {
        m.dispose();
      }
    }
  },
);

gpuTest(
  "KIVI: decode steps encoded back to back in one submit (Model.decodeSteps) equal one submit per step",
  async (gpu) => {
    // R = 32: the 24 steps cross a key flush (at 64 rows) and slide the values every step, all encoded
    // without a readback (the flush schedule is a function of the position)
    const kv: KvOptions = { think: { ratio: 0.25 }, quant: { keyBits: 2, valueBits: 4, residual: 32 } };
    const prompt = [1, ...Array.from({ length: 45 }, (_, i) => 3 + ((i * 37) % 500))];
    const steps = 24;
    const logits: Float32Array[] = [];
    for (const together of [false, true]) {
      const m = await loadModel(PASSKEY, { gpu, contextLength: 128, kv });
      try {
        m.prefill(prompt, 0, { logits: "last", greedy: true });
        const pos = prompt.length;
        if (together) m.decodeSteps(pos, steps, { temperature: 0, topK: 0, topP: 1, seed: 0, step: 0 });
        else for (let i = 0; i < steps; i++) m.decodeStep(pos + i, true);
        assert.deepEqual(
          [m.cache.layers[0].quant!.length, m.cache.layers[0].quant!.quant!.valueLength],
          [64, prompt.length + steps - 32],
        );
        logits.push(await m.readLogits());
      } finally {
        m.dispose();
      }
    }
    assert.deepEqual(logits[1], logits[0]);
  },
);

gpuTest("KIVI rejects value groups that do not fill whole code words, naming the setting", async (gpu) => {
  const attention = await AttentionKernel.create(gpu);
  const config = fakeConfig({ nHeads: 2, nKvHeads: 1, headDim: 24 }); // 24 channels, 2 bits: 1.5 words
  await assert.rejects(
    () => KvCache.create(gpu, config, 64, attention, { quant: { keyBits: 2, valueBits: 2 } }),
    /Cannot configure KIVI quantization: a value group \(min\(group, headDim\) = 24 channels\) must fill whole 2-bit code words/,
  );
  await assert.rejects(
    () =>
      KvCache.create(gpu, fakeConfig({ nHeads: 2, nKvHeads: 1, headDim: 96 }), 64, attention, {
        quant: { group: 64 },
      }),
    /group must divide headDim 96 \(values are grouped by channel\): current value is 64/,
  );
});
