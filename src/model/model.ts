/**
 * `loadModel()` and the {@linkcode Model}: weights, kernels, run state and KV cache on one GPU, plus
 * the tokenizer. Generation lives in `../generate.ts`; this module holds the GPU-facing steps.
 *
 * @module
 */

import {
  createKernels,
  encodeForward,
  fuseInputsFor,
  type Kernels,
  type LogitRows,
  prepareForward,
  RunState,
} from "../engine/forward.ts";
import { Gpu } from "../gpu/gpu.ts";
import { GpuProfiler, type ProfileReport } from "../gpu/profile.ts";
import { KvCache, type KvStats } from "../kv/cache.ts";
import type { KvOptions } from "../kv/options.ts";
import { type Tokenizer, tokenizerFromGguf } from "../tokenizer/tokenizer.ts";
import { type LlamaConfig, readLlamaConfig } from "./config.ts";
import { GgufFile } from "./gguf.ts";
import { checkTensorTypes, type LlamaWeights, uploadLlamaWeights, type UploadProgress } from "./weights.ts";
import { generate, type GenerateOptions, type GenerationStats } from "../generate.ts";
import { chatPromptIds, commonPrefix } from "../chat/prompt.ts";
import type { ChatMessage } from "../chat/template.ts";

/** Options for {@linkcode loadModel}. */
export interface LoadOptions {
  /** KV-cache capacity in tokens; default min(model context length, 4096). */
  contextLength?: number;
  /** Prompt tokens per prefill batch; default 64. */
  batchSize?: number;
  /** An existing {@linkcode Gpu} to share; by default the model creates (and disposes) its own. */
  gpu?: Gpu;
  /** Do not use `shader-f16` even when available. */
  disableF16?: boolean;
  /** Called while weights upload: bytes done, bytes total. */
  onProgress?: UploadProgress;
  /**
   * KV-cache compression: token eviction, then ThinK key-channel pruning, applied once at the end of
   * each prompt's prefill, then KIVI quantization (kept up during decoding). Default: the full cache.
   * Invalid settings throw a RangeError naming them. E.g. `{ eviction: { policy: "snapkv", budget: 512,
   * window: 32, kernel: 7, pool: "max" }, think: { ratio: 0.4 }, quant: { keyBits: 2, valueBits: 2,
   * group: 32, residual: 128 } }`.
   */
  kv?: KvOptions;
  /**
   * Time every kernel family on the GPU with `timestamp-query` ({@linkcode Model.profile} reports
   * it). Each family run becomes its own compute pass, which costs a little speed; adapters without
   * `timestamp-query` report that they cannot.
   */
  profile?: boolean;
  /**
   * Run the RMSNorms and SwiGLU inside the matrix products (true) or as their own dispatches
   * (false). Default: the measured choice for the adapter and model size (`fuseInputsFor`). For
   * benchmarks; both give the same tokens.
   */
  fuseInputs?: boolean;
}

export type { KvStats };

/**
 * How the GPU picks the next token from logits: temperature 0 = argmax, else the seeded sampler
 * (temperature, then top-k, then top-p; the draw for step s is a hash of (seed, s)).
 */
export interface TokenPick {
  /** Softmax temperature; 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK: number;
  /** Nucleus mass in (0, 1]. */
  topP: number;
  /** Random seed (u32). */
  seed: number;
  /** Index of this draw in the sequence. */
  step: number;
}

const GREEDY: TokenPick = { temperature: 0, topK: 0, topP: 1, seed: 0, step: 0 };

/**
 * Loads a GGUF LLaMA model onto the GPU.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "./model.ts";
 * const model = await loadModel("../shared/models/stories260K.gguf");
 * const it = model.generate("Once upon a time", { maxTokens: 32, temperature: 0 });
 * for (let r = await it.next(); !r.done; r = await it.next()) console.log(r.value);
 * model.dispose();
 * ```
 */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  const file = await GgufFile.open(path);
  try {
    checkTensorTypes(file);
    const config = readLlamaConfig(file);
    const tokenizer = tokenizerFromGguf(file.metadata);
    const capacity = options.contextLength ?? Math.min(config.contextLength, 4096);
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot load model: contextLength must be a positive integer: current value is ${capacity}`,
      );
    }
    const gpu = options.gpu ?? await Gpu.create({ disableF16: options.disableF16 });
    if (options.profile && !gpu.profiler) gpu.profiler = GpuProfiler.create(gpu);
    try {
      const weights = await uploadLlamaWeights(gpu, file, config, options.onProgress);
      const w = weights;
      const matrices = [
        w.tokenEmbd,
        w.output,
        ...w.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]),
      ];
      const kernels = await createKernels(gpu, [...new Set(matrices.map((m) => m.type))], {
        fuseInputs: options.fuseInputs ?? fuseInputsFor(gpu, config),
      });
      const batch = Math.max(1, Math.min(options.batchSize ?? 64, capacity));
      const cache = await KvCache.create(gpu, config, capacity, kernels.attention, options.kv, {
        maxBatch: batch, // KIVI's residual ring takes one batch beyond R
      });
      const state = new RunState(gpu, config, kernels, batch, capacity);
      await prepareForward({ weights, kernels, state });
      const model = new Model({
        gpu,
        ownsGpu: !options.gpu,
        config,
        tokenizer,
        weights,
        kernels,
        cache,
        state,
        profiler: options.profile ? gpu.profiler : undefined,
      });
      const template = file.metadata.get("tokenizer.chat_template");
      if (typeof template === "string") model.chatTemplate = template;
      return model;
    } catch (e) {
      if (!options.gpu) gpu.destroy();
      throw e;
    }
  } finally {
    file.close();
  }
}

/**
 * A loaded model. Create with {@linkcode loadModel}; call {@linkcode Model.dispose} when done.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "./model.ts";
 * const model = await loadModel("../shared/models/stories260K.gguf", { contextLength: 256 });
 * const logits = await model.evaluate(model.tokenizer.encode("Once upon a time"));
 * console.log(logits.length, model.kvStats().bytes);
 * model.dispose();
 * ```
 */
export class Model {
  /** The device owner (shared or private). */
  readonly gpu: Gpu;
  /** Hyperparameters. */
  readonly config: LlamaConfig;
  /** The model's tokenizer. */
  readonly tokenizer: Tokenizer;
  /** Weights on the GPU. */
  readonly weights: LlamaWeights;
  /** Compiled kernels. */
  readonly kernels: Kernels;
  /** The KV cache. */
  readonly cache: KvCache;
  /** Activation buffers. */
  readonly state: RunState;
  /** Statistics of the last finished generation. */
  lastStats: GenerationStats | undefined;
  /** The GGUF's Jinja chat template (`tokenizer.chat_template`), when it has one. */
  chatTemplate: string | undefined;
  readonly #ownsGpu: boolean;
  #disposed = false;
  #position = 0;
  #ring = 0; // decode ring entry holding the next token to feed
  #pendingRing = 0; // ring entry the last decodeSteps started from
  #stale = false; // a compressed cache holds rows past the settled position
  #chatIds: number[] = []; // the tokens the last chat() left in the cache
  #chatStats: GenerationStats | undefined; // its stats: reuse only if no generation ran since
  #profiler: GpuProfiler | undefined; // the profiler this model turned on (off again at dispose)

  /** Use {@linkcode loadModel}. */
  constructor(parts: {
    gpu: Gpu;
    ownsGpu: boolean;
    config: LlamaConfig;
    tokenizer: Tokenizer;
    weights: LlamaWeights;
    kernels: Kernels;
    cache: KvCache;
    state: RunState;
    profiler?: GpuProfiler;
  }) {
    this.gpu = parts.gpu;
    this.#profiler = parts.profiler;
    this.#ownsGpu = parts.ownsGpu;
    this.config = parts.config;
    this.tokenizer = parts.tokenizer;
    this.weights = parts.weights;
    this.kernels = parts.kernels;
    this.cache = parts.cache;
    this.state = parts.state;
  }

  /** KV-cache capacity in tokens. */
  get contextLength(): number {
    return this.cache.capacity;
  }

  /**
   * Generates text after `prompt` (a string, tokenized with BOS, or token ids). Yields text chunks
   * (valid UTF-8 only) and returns the {@linkcode GenerationStats}.
   */
  generate(
    prompt: string | number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<string, GenerationStats> {
    this.#checkAlive();
    return generate(this, prompt, options);
  }

  /**
   * Generates the assistant's reply to a conversation, rendered with the GGUF's chat template (or a
   * built-in Llama 3 / Llama 2 one). Streams like {@linkcode Model.generate}. The KV cache is kept
   * between calls: when the new conversation extends the last one, only the tokens the cache lacks
   * are prefilled (`stats.prefilledTokens`).
   *
   * @example
   * ```ts ignore
   * const messages = [{ role: "user" as const, content: "Hi!" }];
   * for await (const text of model.chat(messages, { maxTokens: 64 })) console.log(text);
   * ```
   */
  async *chat(
    messages: ChatMessage[],
    options: GenerateOptions & { template?: string } = {},
  ): AsyncGenerator<string, GenerationStats> {
    this.#checkAlive();
    const { template, ...generateOptions } = options;
    const ids = chatPromptIds(this.tokenizer, messages, template ?? this.chatTemplate);
    let reuse = this.#chatStats && this.lastStats === this.#chatStats ? commonPrefix(this.#chatIds, ids) : 0;
    reuse = Math.min(reuse, ids.length - 1);
    if (!this.canContinueAt(reuse)) reuse = 0; // a compressed cache cannot rewind
    this.#chatStats = undefined;
    const stats = yield* generate(this, ids, { ...generateOptions, startPos: reuse });
    this.#chatIds = [...ids, ...stats.tokens].slice(0, stats.contextTokens);
    this.#chatStats = stats;
    return stats;
  }

  /** Forgets the tokens the last {@linkcode Model.chat} left in the cache (the next chat prefills all). */
  forgetChat(): void {
    this.#chatIds = [];
    this.#chatStats = undefined;
  }

  /** Absolute position of the next token (its RoPE position), independent of how full the cache is. */
  get position(): number {
    return this.#position;
  }

  /**
   * True when tokens can run at absolute position `pos` without restarting the sequence: always with
   * the full cache (it rewinds), and with a compressed one only at {@linkcode Model.position}
   * (compressed prompts cannot be rewound). Callers that reuse a cached prefix, like a chat session,
   * should prefill from 0 when this is false.
   */
  canContinueAt(pos: number): boolean {
    if (pos === 0 || !this.cache.compressing) return true;
    return !this.#stale && pos === this.#position && this.cache.phase !== "empty";
  }

  /**
   * Encodes and submits the forward pass for `ids` at positions pos0 …, in batches of at most
   * `state.maxBatch` tokens. With `logits: "last"` the last token's logits are left in `state.logits`
   * row 0, and with `pick` (or `greedy`) the next token is chosen on the GPU into the current decode
   * ring slot ({@linkcode Model.readNextToken}). Nothing is read back.
   *
   * `pos0 = 0` starts a new sequence: with a compressing KV cache the prompt is compressed at the end
   * of its last batch (prefill attention itself sees the whole prompt). Later calls continue it.
   */
  prefill(
    ids: number[],
    pos0: number,
    options: { logits: LogitRows; greedy?: boolean; pick?: TokenPick },
  ): void {
    for (const _ of this.#prefillBatches(ids, pos0, options)) { /* each batch is submitted */ }
  }

  /**
   * {@linkcode Model.prefill}, waiting for each batch to finish on the GPU and reporting the prompt
   * tokens done (for a progress display; each wait costs a readback-like ≥ 10 ms in Deno).
   */
  async prefillWithProgress(
    ids: number[],
    pos0: number,
    options: { logits: LogitRows; greedy?: boolean; pick?: TokenPick },
    onProgress: (done: number, total: number) => void,
  ): Promise<void> {
    let done = 0;
    for (const n of this.#prefillBatches(ids, pos0, options)) {
      await this.gpu.device.queue.onSubmittedWorkDone();
      done += n;
      onProgress(done, ids.length);
    }
  }

  /** Encodes and submits the prefill batch by batch, yielding each batch's token count after its submit. */
  *#prefillBatches(
    ids: number[],
    pos0: number,
    options: { logits: LogitRows; greedy?: boolean; pick?: TokenPick },
  ): Generator<number> {
    this.#checkAlive();
    this.#start(pos0, ids.length);
    const s = this.state;
    const pick = options.pick ?? (options.greedy ? GREEDY : undefined);
    for (let start = 0; start < ids.length; start += s.maxBatch) {
      const n = Math.min(s.maxBatch, ids.length - start);
      const last = start + n === ids.length;
      this.gpu.write(s.ids, 0, new Uint32Array(ids.slice(start, start + n)));
      const encoder = this.gpu.device.createCommandEncoder();
      const pass = this.gpu.beginPass(encoder);
      this.#encodeBatch(
        pass,
        { n, pos0: pos0 + start, idsSlot: 0, logits: last ? options.logits : "none" },
        last && pos0 === 0,
      );
      if (last && pick) this.#encodePick(pass, pick, s.ringSlot(this.#ring));
      pass.end();
      this.gpu.submit(encoder);
      this.cache.release();
      yield n;
    }
  }

  /**
   * Encodes and submits one decode step for the token in the current ring slot at absolute position
   * `pos`, leaving logits in row 0 and, with a pick (`true` = greedy), the next token in the next
   * ring slot, which becomes current. For teacher forcing, {@linkcode Model.setNextToken} first.
   */
  decodeStep(pos: number, pick: boolean | TokenPick): void {
    const p = pick === true ? GREEDY : pick === false ? undefined : pick;
    if (p) return this.decodeSteps(pos, 1, p);
    this.#checkAlive();
    this.#start(pos, 1);
    const encoder = this.gpu.device.createCommandEncoder();
    const pass = this.gpu.beginPass(encoder);
    this.#encodeBatch(
      pass,
      { n: 1, pos0: pos, idsSlot: this.state.ringSlot(this.#ring), logits: "last" },
      pos === 0,
    );
    pass.end();
    this.gpu.submit(encoder);
    this.cache.release();
  }

  /**
   * Encodes `count` decode steps in one submit: step i feeds the token in ring slot r+i at absolute
   * position pos+i and picks the next token into slot r+i+1 (the GPU sampler uses `pick.step + i` as
   * its random-draw index). No readback; {@linkcode Model.readTokens} returns the picks.
   */
  decodeSteps(pos: number, count: number, pick: TokenPick): void {
    this.#checkAlive();
    const s = this.state;
    if (!Number.isInteger(count) || count < 1 || count >= s.ringSize) {
      throw new RangeError(
        `Cannot encode decode steps: count must be in [1, ${s.ringSize - 1}]: current value is ${count}`,
      );
    }
    this.#start(pos, count);
    const encoder = this.gpu.device.createCommandEncoder();
    const pass = this.gpu.beginPass(encoder);
    for (let i = 0; i < count; i++) {
      const slot = s.ringSlot(this.#ring + i);
      this.#encodeBatch(pass, { n: 1, pos0: pos + i, idsSlot: slot, logits: "last" }, pos + i === 0);
      this.#encodePick(pass, { ...pick, step: pick.step + i }, s.ringSlot(this.#ring + i + 1));
    }
    pass.end();
    this.gpu.submit(encoder);
    this.cache.release();
    this.#pendingRing = this.#ring;
    this.#ring = (this.#ring + count) % s.ringSize;
  }

  /** Reads the `count` tokens picked by the last {@linkcode Model.decodeSteps} (one readback). */
  async readTokens(count: number): Promise<number[]> {
    const s = this.state;
    const ring = new Uint32Array(await this.gpu.read(s.ids, s.maxBatch * 4, s.ringSize * 4));
    return Array.from({ length: count }, (_, i) => ring[(this.#pendingRing + 1 + i) % s.ringSize]);
  }

  /** Reads the token in the current ring slot: the last pick of a prefill or decode step (one 4-byte readback). */
  async readNextToken(): Promise<number> {
    const b = await this.gpu.read(this.state.ids, this.state.ringSlot(this.#ring) * 4, 4);
    return new Uint32Array(b)[0];
  }

  /** Reads logits row 0 (one readback of vocab·4 bytes). */
  async readLogits(): Promise<Float32Array> {
    return new Float32Array(await this.gpu.read(this.state.logits, 0, this.config.vocabSize * 4));
  }

  /** Writes a token id (e.g. a teacher-forced one) to the current ring slot for the next decode step. */
  setNextToken(id: number): void {
    this.gpu.write(this.state.ids, this.state.ringSlot(this.#ring) * 4, new Uint32Array([id]));
  }

  /**
   * Declares that the sequence's valid length is `position` (≤ the positions run so far): decode
   * steps past it (tokens after a stop, computed in the same submit) are discarded. A full cache
   * rewinds; a compressed cache cannot, so it will only start a new sequence afterwards.
   */
  settle(position: number): void {
    if (position >= this.#position) return;
    if (this.cache.compressing) this.#stale = true;
    else this.cache.seek(position);
    this.#position = position;
  }

  /**
   * Teacher-forced logits: row i holds the next-token logits after `ids[0..i]`, computed from
   * position `pos0` on (one readback per batch). For evaluation and tests.
   */
  async evaluate(ids: number[], pos0 = 0): Promise<Float32Array[]> {
    this.#checkAlive();
    this.#start(pos0, ids.length);
    const s = this.state;
    const vocab = this.config.vocabSize;
    const out: Float32Array[] = [];
    for (let start = 0; start < ids.length; start += s.maxBatch) {
      const n = Math.min(s.maxBatch, ids.length - start);
      s.ensureLogitRows(n);
      this.gpu.write(s.ids, 0, new Uint32Array(ids.slice(start, start + n)));
      const encoder = this.gpu.device.createCommandEncoder();
      const pass = this.gpu.beginPass(encoder);
      this.#encodeBatch(
        pass,
        { n, pos0: pos0 + start, idsSlot: 0, logits: "all" },
        pos0 === 0 && start + n === ids.length,
      );
      pass.end();
      this.gpu.submit(encoder);
      this.cache.release();
      const all = new Float32Array(await this.gpu.read(s.logits, 0, n * vocab * 4));
      for (let t = 0; t < n; t++) out.push(all.slice(t * vocab, (t + 1) * vocab));
    }
    return out;
  }

  /**
   * Bytes allocated for the KV cache now (real GPU buffers: thin keys, evicted tokens gone), per layer
   * and in total, beside what an uncompressed f32 cache of the same context takes.
   */
  kvStats(): KvStats {
    return this.cache.stats();
  }

  /**
   * GPU time per kernel family since loading (or the last `reset`), when loaded with
   * `{ profile: true }`: waits for the submitted work's timestamps (one readback per submit since
   * the last call). `enabled` is false when profiling is off or the adapter lacks `timestamp-query`.
   *
   * @example
   * ```ts ignore
   * const model = await loadModel("../shared/models/stories260K.gguf", { profile: true });
   * for await (const _ of model.generate("Once", { maxTokens: 16 }));
   * console.log(formatProfile(await model.profile())); // matmul_rows  4.1 ms  38.0% …
   * ```
   */
  async profile(options: { reset?: boolean } = {}): Promise<ProfileReport> {
    const profiler = this.gpu.profiler;
    if (!profiler) return { enabled: false, families: [], totalMs: 0, dropped: 0 };
    await profiler.collect();
    const report = profiler.report();
    if (options.reset) profiler.reset();
    return report;
  }

  /** Frees the model's GPU memory (and the device, if the model created it). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#profiler && this.gpu.profiler === this.#profiler) {
      this.gpu.profiler = undefined;
      this.#profiler.destroy();
    }
    if (this.#ownsGpu) {
      this.gpu.destroy();
      return;
    }
    const buffers = new Set<GPUBuffer>();
    const w = this.weights;
    for (
      const weight of [
        w.tokenEmbd,
        w.output,
        ...w.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]),
      ]
    ) {
      for (const ch of weight.chunks) buffers.add(ch.buffer);
    }
    for (const l of w.layers) buffers.add(l.attnNorm).add(l.ffnNorm);
    buffers.add(w.outputNorm).add(w.ropeFreqs);
    const s = this.state;
    for (
      const b of [
        s.ids,
        s.x,
        s.xb,
        s.q,
        s.k,
        s.v,
        s.att,
        s.hb,
        s.hb2,
        s.hb3,
        s.logits,
        s.scratch.acc,
        s.scratch.ml,
      ]
    ) {
      buffers.add(b);
    }
    for (const b of buffers) this.gpu.free(b);
    this.cache.dispose();
  }

  /** Encodes one batch's forward pass (and, at the end of a compressing prompt, the compression). */
  #encodeBatch(
    pass: GPUComputePassEncoder,
    batch: { n: number; pos0: number; idsSlot: number; logits: LogitRows },
    compress: boolean,
  ): void {
    encodeForward(pass, this, batch);
    if (compress) this.cache.compress(pass);
    this.#position = batch.pos0 + batch.n;
  }

  /** Encodes the choice of the next token from logits row 0 into ids slot `slot`. */
  #encodePick(pass: GPUComputePassEncoder, pick: TokenPick, slot: number): void {
    const s = this.state;
    if (pick.temperature === 0) {
      this.kernels.argmax.encode(pass, {
        logits: s.logits,
        ids: s.ids,
        n: this.config.vocabSize,
        outOffset: slot,
      });
    } else {
      this.kernels.sample.encode(pass, {
        logits: s.logits,
        ids: s.ids,
        n: this.config.vocabSize,
        temperature: pick.temperature,
        topK: pick.topK,
        topP: pick.topP,
        seed: pick.seed,
        step: pick.step,
        outOffset: slot,
      });
    }
  }

  /**
   * Prepares the cache for `n` tokens at absolute position `pos0`: position 0 starts a new sequence;
   * otherwise a full cache rewinds to `pos0`, and a compressed one must continue where it stopped.
   */
  #start(pos0: number, n: number): void {
    this.#checkRoom(pos0, n);
    if (pos0 === 0) {
      this.#stale = false;
      return this.cache.begin(n);
    }
    if (!this.cache.compressing) return this.cache.seek(pos0);
    if (!this.canContinueAt(pos0)) {
      throw new RangeError(
        `Cannot run tokens at position ${pos0}: the compressed KV cache continues at position ${this.#position} ` +
          "and cannot rewind; start a new sequence at position 0",
      );
    }
  }

  #checkRoom(pos0: number, n: number): void {
    if (pos0 + n > this.cache.capacity) {
      throw new RangeError(
        `Cannot run ${n} tokens at position ${pos0}: the context holds ${this.cache.capacity} tokens; ` +
          "use a shorter prompt or a larger contextLength (--ctx)",
      );
    }
  }

  #checkAlive(): void {
    if (this.#disposed) throw new Error("Cannot use the model: it has been disposed");
    this.gpu.checkAlive();
  }
}
