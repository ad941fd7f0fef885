/**
 * The LLaMA forward pass on the GPU, read top to bottom like llama2.c's `forward()`: one named GPU
 * verb per step, all layers of one batch encoded into one compute pass, no awaits and no readbacks.
 *
 * A batch is `n` consecutive tokens at positions pos0 … pos0+n−1 (a prefill chunk, or n = 1 for
 * decode). Activations are f32 rows `[n, width]` in the {@linkcode RunState} buffers.
 *
 * @module
 */

import type { Gpu } from "../gpu/gpu.ts";
import { ArgmaxKernel } from "../kernels/argmax.ts";
import { AttentionKernel, type AttentionScratch } from "../kernels/attention.ts";
import { EmbeddingKernel } from "../kernels/embedding.ts";
import { MatmulKernel } from "../kernels/matmul.ts";
import { FORWARD_FUSIONS } from "../kernels/matmul_fusion.ts";
import { RopeKernel } from "../kernels/rope.ts";
import { SampleKernel } from "../kernels/sample.ts";
import type { KvCache } from "../kv/cache.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { LlamaWeights } from "../model/weights.ts";

/** Which logits a forward pass computes. */
export type LogitRows = "none" | "last" | "all";

/** The compiled kernels the forward pass uses. */
export interface Kernels {
  /** Token embedding lookup. */
  embedding: EmbeddingKernel;
  /**
   * Matrix products for every weight type, with the RMSNorms, SwiGLU and residual adds fused into
   * them (`matmul_fusion.ts`).
   */
  matmul: MatmulKernel;
  /** Rotary position embedding. */
  rope: RopeKernel;
  /** KV store and causal attention. */
  attention: AttentionKernel;
  /** On-GPU argmax (greedy decoding). */
  argmax: ArgmaxKernel;
  /** On-GPU seeded temperature / top-k / top-p sampling. */
  sample: SampleKernel;
}

/**
 * Compiles every kernel the forward pass needs; `weightTypes` (GGML ids) limits the matmul and
 * embedding variants to the model's types (compiling all of them adds seconds to a model load).
 */
export async function createKernels(gpu: Gpu, weightTypes?: readonly number[]): Promise<Kernels> {
  const types = weightTypes ? { types: weightTypes } : {};
  const [embedding, matmul, rope, attention, argmax, sample] = await Promise.all([
    EmbeddingKernel.create(gpu, types),
    MatmulKernel.create(gpu, { ...types, fusions: FORWARD_FUSIONS }),
    RopeKernel.create(gpu),
    AttentionKernel.create(gpu),
    ArgmaxKernel.create(gpu),
    SampleKernel.create(gpu),
  ]);
  return { embedding, matmul, rope, attention, argmax, sample };
}

/**
 * Activation buffers for batches of up to `maxBatch` tokens. `ids` holds the prefill batch's ids in
 * slots 0…maxBatch−1, then a ring of {@linkcode RunState.ringSize} slots for decode: step i of a
 * submission reads its input token from ring slot b+i and its pick (argmax or the GPU sampler) writes
 * slot b+i+1 (mod ringSize), so several decode steps chain on the GPU and one readback returns them.
 */
export class RunState {
  /** Largest batch the buffers hold. */
  readonly maxBatch: number;
  /** Token ids, u32 `[maxBatch + ringSize]`: the prefill batch, then the decode ring. */
  readonly ids: GPUBuffer;
  /** Slots in the decode ring: one more than the most decode steps per submit. */
  readonly ringSize: number;
  /** Residual stream `[maxBatch, dim]`. */
  readonly x: GPUBuffer;
  /** Queries `[maxBatch, nHeads·headDim]`. */
  readonly q: GPUBuffer;
  /** New keys `[maxBatch, nKvHeads·headDim]`. */
  readonly k: GPUBuffer;
  /** New values `[maxBatch, nKvHeads·headDim]`. */
  readonly v: GPUBuffer;
  /** Attention output `[maxBatch, nHeads·headDim]`. */
  readonly att: GPUBuffer;
  /** FFN gate `[maxBatch, ffnDim]`. */
  readonly hb: GPUBuffer;
  /** FFN up `[maxBatch, ffnDim]`. */
  readonly hb2: GPUBuffer;
  /** Attention split-K partials for `maxBatch` queries over the whole context. */
  readonly scratch: AttentionScratch;
  /** Logits `[logitRows, vocab]`; grows on demand for teacher-forced evaluation. */
  logits: GPUBuffer;
  /** Rows `logits` holds. */
  logitRows = 1;
  readonly #gpu: Gpu;
  readonly #vocab: number;

  /** Allocates the buffers. */
  constructor(gpu: Gpu, c: LlamaConfig, kernels: Kernels, maxBatch: number, capacity: number, maxSteps = 64) {
    this.#gpu = gpu;
    this.#vocab = c.vocabSize;
    this.maxBatch = maxBatch;
    const f32 = (label: string, width: number) => gpu.createBuffer(`state: ${label}`, maxBatch * width * 4);
    this.ringSize = maxSteps + 1;
    this.ids = gpu.createBuffer("state: ids", (maxBatch + this.ringSize) * 4);
    this.x = f32("x", c.dim);
    this.q = f32("q", c.nHeads * c.headDim);
    this.k = f32("k", c.nKvHeads * c.headDim);
    this.v = f32("v", c.nKvHeads * c.headDim);
    this.att = f32("att", c.nHeads * c.headDim);
    this.hb = f32("hb", c.ffnDim);
    this.hb2 = f32("hb2", c.ffnDim);
    this.scratch = kernels.attention.createScratch({
      nTokens: maxBatch,
      nHeads: c.nHeads,
      headDim: c.headDim,
      context: capacity,
    });
    this.logits = gpu.createBuffer("state: logits", c.vocabSize * 4);
  }

  /** The u32 slot of `ids` that holds ring entry `i` (taken modulo the ring size). */
  ringSlot(i: number): number {
    return this.maxBatch + (i % this.ringSize);
  }

  /** Makes `logits` hold at least `rows` rows. */
  ensureLogitRows(rows: number): void {
    if (rows <= this.logitRows) return;
    this.#gpu.free(this.logits);
    this.logits = this.#gpu.createBuffer("state: logits", rows * this.#vocab * 4);
    this.logitRows = rows;
  }
}

/** Where a batch's token ids come from: slots of `RunState.ids`. */
export interface BatchInput {
  /** Tokens in the batch. */
  n: number;
  /**
   * Absolute position of the first token: its RoPE angle. The cache places the rows at its own fill,
   * which after compression is smaller than the position.
   */
  pos0: number;
  /** First u32 slot of `state.ids` holding the batch's ids (0 for prefill, a ring slot for decode). */
  idsSlot: number;
  /** Which logits to compute (row 0 = last token for "last"; row t = token t for "all"). */
  logits: LogitRows;
}

/**
 * Encodes the forward pass of one batch through every layer.
 *
 * @example
 * ```ts ignore
 * const pass = encoder.beginComputePass();
 * encodeForward(pass, model, { n: 5, pos0: 0, idsSlot: 0, logits: "last" });
 * pass.end();
 * ```
 */
export function encodeForward(
  pass: GPUComputePassEncoder,
  m: { config: LlamaConfig; weights: LlamaWeights; kernels: Kernels; state: RunState; cache: KvCache },
  batch: BatchInput,
): void {
  const { config: c, weights: w, kernels: k, state: s, cache } = m;
  const { n, pos0 } = batch;
  const rope = { nTokens: n, headDim: c.headDim, ropeDim: c.ropeDim, pos0, freqBase: c.ropeBase };

  // x = token_embd[ids]
  k.embedding.encode(pass, s.x, s.ids, batch.idsSlot, n, w.tokenEmbd);
  for (let l = 0; l < c.nLayers; l++) {
    const lw = w.layers[l];
    // attention: q, k, v of rmsnorm(x) (the norm fused into each product) -> rope (absolute
    // positions) -> cache append -> attention over the cache's segments -> observe (compressing
    // prefill only) -> x += output projection (the residual add fused into it)
    const attnNorm = { norm: { weight: lw.attnNorm, eps: c.normEps } };
    k.matmul.encode(pass, s.q, s.x, lw.wq, n, attnNorm);
    k.matmul.encode(pass, s.k, s.x, lw.wk, n, attnNorm);
    k.matmul.encode(pass, s.v, s.x, lw.wv, n, attnNorm);
    k.rope.encode(pass, { x: s.q, nHeads: c.nHeads, freqFactors: w.ropeFreqs, ...rope });
    k.rope.encode(pass, { x: s.k, nHeads: c.nKvHeads, freqFactors: w.ropeFreqs, ...rope });
    cache.append(pass, l, s.k, s.v, { n });
    cache.attend(pass, l, { q: s.q, out: s.att, scratch: s.scratch, n });
    cache.observe(pass, l, { q: s.q, scratch: s.scratch, n });
    k.matmul.encode(pass, s.x, s.att, lw.wo, n, { accumulate: true });
    // ffn: gate, up of rmsnorm(x) -> x += down(swiglu(gate, up)) (SwiGLU and the add fused into it)
    const ffnNorm = { norm: { weight: lw.ffnNorm, eps: c.normEps } };
    k.matmul.encode(pass, s.hb, s.x, lw.wGate, n, ffnNorm);
    k.matmul.encode(pass, s.hb2, s.x, lw.wUp, n, ffnNorm);
    k.matmul.encode(pass, s.x, s.hb, lw.wDown, n, { swiglu: s.hb2, accumulate: true });
  }
  cache.advance(n);
  if (batch.logits === "none") return;
  // logits: LM head of the final norm of the rows we need
  const rows = batch.logits === "all" ? n : 1;
  const xOffset = batch.logits === "all" ? 0 : (n - 1) * c.dim;
  k.matmul.encode(pass, s.logits, s.x, w.output, rows, {
    xOffset,
    norm: { weight: w.outputNorm, eps: c.normEps },
  });
}
