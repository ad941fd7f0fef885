/**
 * Decode attention alone, one layer: f32 cache vs KIVI codes (issue 4), the kernels of `wgsl/attention.wgsl`
 * and `wgsl/kv_quant_attend.wgsl` without the rest of the model.
 *
 *   XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno run --allow-read --allow-env bench/kv_attention.ts \
 *     [--ctx 8192] [--reps 40] [--kv full,kivi2,kivi4,kivi8,think0.4+kivi2]
 *
 * 4 query heads and 4 KV heads of head dim 128 (the decode bench's model), one query at the last row of
 * `ctx`. KIVI: G = 32, R = 128, f16 pairs where the adapter has shader-f16, the last R rows in the f32
 * ring, random codes (the time does not depend on them). Each round encodes `reps` attention calls (pass 1
 * and the chunk merge) in one submit and reads 4 bytes back; the time per call is the best of 4 rounds,
 * so the ≥ 10 ms readback floor adds < 0.4 ms at 40 reps.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/gpu.ts";
import { AttentionKernel } from "../src/kernels/attention.ts";
import { quantLayout } from "../src/kv/segment.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ctx: { type: "string", default: "8192" },
    reps: { type: "string", default: "40" },
    kv: { type: "string", default: "full,kivi2,kivi4,kivi8,think0.4+kivi2" },
  },
});
const ctx = Number(values.ctx), reps = Number(values.reps);
const H = 4, D = 128, R = 128;
const gpu = await Gpu.create();
const attention = await AttentionKernel.create(gpu);
const scratch = attention.createScratch({ nTokens: 1, nHeads: H, headDim: D, context: ctx });
const out = gpu.createBuffer("out", H * D * 4);
let seed = 1;
const random = (n: number) =>
  new Float32Array(n).map(() => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 31 - 1;
  });
const q = gpu.upload("q", random(H * D));

async function time(encode: (pass: GPUComputePassEncoder) => void): Promise<number> {
  let best = Infinity;
  gpu.device.pushErrorScope("validation");
  for (let round = 0; round < 4; round++) {
    const t0 = performance.now();
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < reps; i++) encode(pass);
    pass.end();
    gpu.submit(enc);
    await gpu.read(out, 0, 4);
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  const error = await gpu.device.popErrorScope();
  if (error) throw new Error(`Cannot bench: ${error.message}`); // a failed dispatch would time as zero work
  return best;
}

console.log(
  `adapter: ${gpu.adapterName}; ${H} heads × ${D}, one query over ${ctx} rows, ${reps} calls per submit\n`,
);
console.log("| KV cache | ms / call | vs full |");
console.log("|---|---:|---:|");
let full: number | undefined;
for (const name of values.kv.split(",")) {
  let ms: number;
  if (name === "full") {
    const kCache = gpu.upload("k", random(H * ctx * D)), vCache = gpu.upload("v", random(H * ctx * D));
    const shape = { nTokens: 1, nHeads: H, nKvHeads: H, headDim: D, capacity: ctx, pos0: ctx - 1 };
    ms = await time((pass) => attention.encode(pass, { q, kCache, vCache, out, scratch, ...shape }));
    full = ms;
    gpu.free(kCache);
    gpu.free(vCache);
  } else {
    const m = /^(think0\.4\+)?kivi(\d)$/.exec(name);
    if (!m) throw new RangeError(`Cannot bench: unknown --kv ${name}`);
    const bits = Number(m[2]), keyChannels = m[1] ? 77 : D;
    const format = {
      keyBits: bits,
      valueBits: bits,
      group: 32,
      valueGroup: 32,
      scales: gpu.hasF16 ? "f16" as const : "f32" as const,
    };
    await attention.prepareQuant(format);
    const keyLength = Math.floor((ctx - 1) / R) * R, valueLength = ctx - 1 - R;
    const layout = quantLayout({
      ...format,
      nKvHeads: H,
      headDim: D,
      keyChannels,
      keyCapacity: keyLength,
      valueCapacity: valueLength,
    });
    const words = new Uint32Array(random(layout.words).buffer);
    // scale 2⁻⁷ and min −2⁻⁷ in every pair (f16 halves, or f32 words)
    const pair = format.scales === "f16" ? [0x2000 | (0xa000 << 16)] : [0x3c000000, 0xbc000000];
    for (
      const [from, to] of [[layout.keyScaleBase, layout.valueBase], [layout.valueScaleBase, layout.words]]
    ) {
      for (let i = from; i < to; i++) words[i] = pair[(i - from) % pair.length];
    }
    const buffer = gpu.upload("codes", words);
    const ring = {
      keys: gpu.upload("ring k", random(H * 192 * D)),
      values: gpu.upload("ring v", random(H * 192 * D)),
    };
    const channels = keyChannels < D
      ? gpu.upload("channels", new Uint32Array(H * keyChannels).map((_, i) => i % keyChannels))
      : null;
    ms = await time((pass) =>
      attention.encodeQuant(pass, {
        q,
        out,
        scratch,
        nTokens: 1,
        nHeads: H,
        nKvHeads: H,
        headDim: D,
        pos0: ctx - 1,
        quant: { layout, buffer, channels, keyLength, valueLength },
        ring: { ...ring, capacity: 192 },
      })
    );
    for (const b of [buffer, ring.keys, ring.values, ...(channels ? [channels] : [])]) gpu.free(b);
  }
  console.log(`| ${name} | ${ms.toFixed(2)} | ${full ? `${(ms / full * 100).toFixed(1)}%` : ""} |`);
}
gpu.destroy();
