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
import { ElementwiseKernel } from "../kernels/elementwise.ts";
import { type MatmulEncodeOptions, MatmulKernel, type MatmulProduct } from "../kernels/matmul.ts";
import type { MatmulFusion } from "../kernels/matmul_fusion.ts";
import type { GpuWeight } from "../model/gpu_weight.ts";
import { RmsNormKernel } from "../kernels/rmsnorm.ts";
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
  /** Matrix products for every weight type, with RoPE and the residual adds fused into them. */
  matmul: MatmulKernel;
  /**
   * Whether the RMSNorms and SwiGLU run inside the next products (`matmul_fusion.ts`: no dispatch of
   * their own, but every product invocation loads the gain or `up` beside x) or as their own
   * dispatches into `xb` / `hb3`. See {@linkcode fuseInputsFor}.
   */
  readonly fuseInputs: boolean;
  /** RMSNorm, when not fused. */
  rmsNorm: RmsNormKernel;
  /** SwiGLU, when not fused. */
  elementwise: ElementwiseKernel;
  /** KV store and causal attention. */
  attention: AttentionKernel;
  /** On-GPU argmax (greedy decoding). */
  argmax: ArgmaxKernel;
  /** On-GPU seeded temperature / top-k / top-p sampling. */
  sample: SampleKernel;
}

/**
 * Whether a model of config `c` should fuse its RMSNorms and SwiGLU into the decode products on
 * `gpu` (prefill batches never do: one dispatch per batch is cheap, and it saves compiling variants).
 * On a CPU adapter (llvmpipe) each dispatch costs ≈ 45 µs, and a fused prologue makes a product
 * load a second vector beside x (+28% loads for Q4_0 with 2 rows per invocation). Measured on
 * Vulkan lavapipe in one `bench/generate_bench.ts` run (medians of 5): stories260K (64 × 172 FFN)
 * decodes 237 tokens/s fused and 216 unfused; synthetic TinyLlama 1.1B Q4_0 (2048 × 5632) 5.49
 * fused and 5.98 unfused. The crossover is where a product's extra loads cost about one dispatch:
 * FFN products of about 2^19 weights. GPUs always fuse (x is cached; a dispatch costs more than
 * re-reading it).
 *
 * @example
 * ```ts
 * import { fuseInputsFor } from "./forward.ts";
 * console.log(fuseInputsFor({ isFallbackAdapter: true }, { dim: 2048, ffnDim: 5632 })); // false
 * ```
 */
export function fuseInputsFor(
  gpu: Pick<Gpu, "isFallbackAdapter">,
  c: Pick<LlamaConfig, "dim" | "ffnDim">,
): boolean {
  return !gpu.isFallbackAdapter || c.dim * c.ffnDim <= 1 << 19;
}

/**
 * Compiles the kernels the forward pass needs; `weightTypes` (GGML ids) limits the embedding
 * variants to the model's types. The matrix products compile per product with
 * {@linkcode prepareForward} once the weights and buffers exist. `fuseInputs` sets
 * {@linkcode Kernels.fuseInputs} (default true).
 */
export async function createKernels(
  gpu: Gpu,
  weightTypes?: readonly number[],
  opts: { fuseInputs?: boolean } = {},
): Promise<Kernels> {
  const types = weightTypes ? { types: weightTypes } : {};
  const fuseInputs = opts.fuseInputs ?? true;
  const [embedding, matmul, attention, argmax, sample, rmsNorm, elementwise] = await Promise.all([
    EmbeddingKernel.create(gpu, types),
    MatmulKernel.create(gpu, { types: [] }),
    AttentionKernel.create(gpu),
    ArgmaxKernel.create(gpu),
    SampleKernel.create(gpu),
    RmsNormKernel.create(gpu),
    ElementwiseKernel.create(gpu),
  ]);
  return { embedding, matmul, fuseInputs, rmsNorm, elementwise, attention, argmax, sample };
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
  /** RMSNorm of x, when not fused into the products `[maxBatch, dim]`. */
  readonly xb: GPUBuffer;
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
  /** SwiGLU output, when not fused into the down projection `[maxBatch, ffnDim]`. */
  readonly hb3: GPUBuffer;
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
    this.xb = f32("xb", c.dim);
    this.q = f32("q", c.nHeads * c.headDim);
    this.k = f32("k", c.nKvHeads * c.headDim);
    this.v = f32("v", c.nKvHeads * c.headDim);
    this.att = f32("att", c.nHeads * c.headDim);
    this.hb = f32("hb", c.ffnDim);
    this.hb2 = f32("hb2", c.ffnDim);
    this.hb3 = f32("hb3", c.ffnDim);
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
  const rope = {
    pos0,
    headDim: c.headDim,
    ropeDim: c.ropeDim,
    freqBase: c.ropeBase,
    freqFactors: w.ropeFreqs,
  };

  // x = token_embd[ids]
  k.embedding.encode(pass, s.x, s.ids, batch.idsSlot, n, w.tokenEmbd);
  for (let l = 0; l < c.nLayers; l++) {
    const lw = w.layers[l];
    // attention: rmsnorm -> q, k, v (q and k rotated by RoPE at absolute positions) -> cache append
    // -> attention over the cache's segments -> observe (compressing prefill only) -> x += output projection
    const attnIn = normedInput(pass, m, lw.attnNorm, n);
    k.matmul.encode(pass, s.q, attnIn.x, lw.wq, n, { ...attnIn.fused, rope });
    k.matmul.encode(pass, s.k, attnIn.x, lw.wk, n, { ...attnIn.fused, rope });
    k.matmul.encode(pass, s.v, attnIn.x, lw.wv, n, attnIn.fused);
    cache.append(pass, l, s.k, s.v, { n });
    cache.attend(pass, l, { q: s.q, out: s.att, scratch: s.scratch, n });
    cache.observe(pass, l, { q: s.q, scratch: s.scratch, n });
    k.matmul.encode(pass, s.x, s.att, lw.wo, n, { accumulate: true });
    // ffn: rmsnorm -> gate, up -> swiglu -> x += down projection
    const ffnIn = normedInput(pass, m, lw.ffnNorm, n);
    k.matmul.encode(pass, s.hb, ffnIn.x, lw.wGate, n, ffnIn.fused);
    k.matmul.encode(pass, s.hb2, ffnIn.x, lw.wUp, n, ffnIn.fused);
    const downIn = swigluInput(pass, m, n);
    k.matmul.encode(pass, s.x, downIn.x, lw.wDown, n, { ...downIn.fused, accumulate: true });
  }
  cache.advance(n);
  if (batch.logits === "none") return;
  // logits: final rmsnorm of the rows we need -> LM head
  const rows = batch.logits === "all" ? n : 1;
  const headIn = normedInput(pass, m, w.outputNorm, rows, batch.logits === "all" ? 0 : (n - 1) * c.dim);
  k.matmul.encode(pass, s.logits, headIn.x, w.output, rows, headIn.fused);
}

/**
 * Compiles the matrix-product pipelines {@linkcode encodeForward} uses for this model: every product
 * for decode (1 token) and for prefill batches (`state.maxBatch` tokens), with the fusions the
 * forward pass asks for. A product it asks for that was not prepared throws when encoded.
 */
export async function prepareForward(
  m: { weights: LlamaWeights; kernels: Kernels; state: RunState },
): Promise<void> {
  const { weights: w, kernels: k } = m;
  const products: MatmulProduct[] = [];
  for (const n of m.state.maxBatch > 1 ? [1, m.state.maxBatch] : [1]) {
    const norm = inputFusion(k, n) ? "norm" : "plain";
    const product = (weight: GpuWeight, fusion: Partial<MatmulFusion>) =>
      products.push({ w: weight, nTokens: n, fusion: { input: "plain", accumulate: false, ...fusion } });
    for (const lw of w.layers) {
      for (const weight of [lw.wq, lw.wk]) product(weight, { input: norm, rope: true });
      product(lw.wv, { input: norm });
      product(lw.wo, { accumulate: true });
      for (const weight of [lw.wGate, lw.wUp]) product(weight, { input: norm });
      product(lw.wDown, { input: inputFusion(k, n) ? "swiglu" : "plain", accumulate: true });
    }
    product(w.output, { input: norm }); // logits of all n rows, or of the last one (n = 1)
  }
  await k.matmul.prepareProducts(products);
}

/** Whether a product of `rows` tokens takes its RMSNorm or SwiGLU inside (decode) or after their own dispatch. */
function inputFusion(k: Kernels, rows: number): boolean {
  return k.fuseInputs && rows === 1;
}

/** What the next products read: a buffer, and the prologue they apply to it (none when it ran). */
interface ProductInput {
  x: GPUBuffer;
  fused: MatmulEncodeOptions;
}

type ForwardParts = { config: LlamaConfig; kernels: Kernels; state: RunState };

/**
 * RMSNorm of `rows` rows of x (from element `xOffset`) for the next products: fused into them
 * ({@linkcode Kernels.fuseInputs}, one row), or one RMSNorm dispatch into `xb`.
 */
function normedInput(
  pass: GPUComputePassEncoder,
  m: ForwardParts,
  weight: GPUBuffer,
  rows: number,
  xOffset = 0,
): ProductInput {
  const { config: c, kernels: k, state: s } = m;
  if (inputFusion(k, rows)) return { x: s.x, fused: { norm: { weight, eps: c.normEps }, xOffset } };
  k.rmsNorm.encode(pass, { x: s.x, w: weight, out: s.xb, rows, cols: c.dim, eps: c.normEps, xOffset });
  return { x: s.xb, fused: {} };
}

/** SwiGLU of the FFN gate and up for the down projection: fused into it (one row), or one dispatch into `hb3`. */
function swigluInput(pass: GPUComputePassEncoder, m: ForwardParts, rows: number): ProductInput {
  const { config: c, kernels: k, state: s } = m;
  if (inputFusion(k, rows)) return { x: s.hb, fused: { swiglu: s.hb2 } };
  k.elementwise.swiglu(pass, { gate: s.hb, up: s.hb2, out: s.hb3, rows, cols: c.ffnDim });
  return { x: s.hb3, fused: {} };
}
