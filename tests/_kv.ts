/**
 * Helpers for the KV-cache GPU tests: a fake model config for a synthetic layer, and a prefill of
 * random rows through a {@linkcode KvCache} exactly as the forward pass drives it.
 */
import type { Gpu } from "../src/gpu/gpu.ts";
import type { AttentionKernel } from "../src/kernels/attention.ts";
import type { KvCache } from "../src/kv/cache.ts";
import type { LlamaConfig } from "../src/model/config.ts";

/** A config with just the attention shape (the KV cache reads nothing else). */
export function fakeConfig(
  s: { nLayers?: number; nHeads: number; nKvHeads: number; headDim: number },
): LlamaConfig {
  return {
    architecture: "llama",
    name: "synthetic layer",
    dim: s.nHeads * s.headDim,
    nLayers: s.nLayers ?? 1,
    nHeads: s.nHeads,
    nKvHeads: s.nKvHeads,
    headDim: s.headDim,
    ffnDim: 4,
    vocabSize: 4,
    contextLength: 65536,
    normEps: 1e-5,
    ropeBase: 10000,
    ropeDim: s.headDim,
    tiedEmbeddings: false,
    hasRopeFreqs: false,
  };
}

/** Encodes `body` in one compute pass and submits it. */
export function run(gpu: Gpu, body: (pass: GPUComputePassEncoder) => void): void {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  body(pass);
  pass.end();
  gpu.submit(enc);
}

/** Per layer, rows `[tokens, width]` of post-RoPE q, k and v. */
export interface LayerRows {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/**
 * Runs a prompt of `L` rows through `cache` in batches (append, attend, observe per layer, then
 * advance), compressing in the last batch as `Model.prefill` does.
 */
export function prefillRows(
  gpu: Gpu,
  cache: KvCache,
  attention: AttentionKernel,
  config: LlamaConfig,
  layers: LayerRows[],
  L: number,
  batch: number,
): void {
  const qw = config.nHeads * config.headDim, kw = config.nKvHeads * config.headDim;
  const scratch = attention.createScratch({
    nTokens: batch,
    nHeads: config.nHeads,
    headDim: config.headDim,
    context: L,
  });
  const out = gpu.createBuffer("attention out", batch * qw * 4);
  const temps: GPUBuffer[] = [scratch.acc, scratch.ml, out];
  const upload = (a: Float32Array, t0: number, n: number, w: number) => {
    const b = gpu.upload("rows", a.subarray(t0 * w, (t0 + n) * w));
    temps.push(b);
    return b;
  };
  cache.begin(L);
  for (let t0 = 0; t0 < L; t0 += batch) {
    const n = Math.min(batch, L - t0);
    run(gpu, (pass) => {
      layers.forEach((x, l) => {
        const q = upload(x.q, t0, n, qw);
        cache.append(pass, l, upload(x.k, t0, n, kw), upload(x.v, t0, n, kw), { n });
        cache.attend(pass, l, { q, out, scratch, n });
        cache.observe(pass, l, { q, scratch, n });
      });
      cache.advance(n);
      if (t0 + n === L) cache.compress(pass);
    });
    cache.release();
  }
  for (const b of temps) gpu.free(b);
}
