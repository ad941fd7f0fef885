/**
 * What every evaluation task shares: the small slice of a {@linkcode Model} the tasks drive
 * ({@linkcode EvalModel}), a {@linkcode ModelProvider} that hands out models sized for each example,
 * the per-task result shape, KV-byte accounting, f64 log-softmax / KL helpers and greedy decoding
 * with LongBench's stop rules.
 *
 * Tasks only see these interfaces, so they run unchanged on a real GPU model or on a tiny CPU fake
 * (the unit tests do that).
 *
 * @module
 */

/** The tokenizer methods the tasks use (thinkv's `Tokenizer` has them all). */
export interface EvalTokenizer {
  /** Beginning-of-sequence id, or −1. */
  readonly bos: number;
  /** End-of-sequence id, or −1. */
  readonly eos: number;
  /** Whether generating this id ends a generation (EOS, end-of-turn tokens). */
  isEndOfGeneration(id: number): boolean;
  /** Text → ids; BOS is added unless `addBos: false`. */
  encode(text: string, options?: { addBos?: boolean }): number[];
  /** Ids → text, control tokens dropped; the first piece's space prefix is removed unless told not to. */
  decode(ids: Iterable<number>, options?: { stripLeadingSpace?: boolean }): string;
}

/** The slice of `Model` the tasks drive: prefill, one decode step, one readback. */
export interface EvalModel {
  /** Hyperparameters: only the vocabulary size is used. */
  readonly config: { readonly vocabSize: number };
  /** The model's tokenizer. */
  readonly tokenizer: EvalTokenizer;
  /** KV-cache capacity in tokens. */
  readonly contextLength: number;
  /** Prefills `ids` at positions pos0…; logits of the last token in row 0, its argmax with `greedy`. */
  prefill(ids: number[], pos0: number, options: { logits: "last"; greedy?: boolean }): void;
  /** Runs the token in the next-token slot at position `pos`. */
  decodeStep(pos: number, greedy: boolean): void;
  /** Reads logits row 0. */
  readLogits(): Promise<Float32Array>;
  /** Reads the next-token slot. */
  readNextToken(): Promise<number>;
  /** Writes the next-token slot. */
  setNextToken(id: number): void;
  /** KV-cache bytes allocated now, beside an uncompressed cache of the same capacity. */
  kvStats(): { bytes: number; fullBytes: number };
}

/**
 * Hands out models for a (model, KV setting) pair. With `contextLength: auto` each call returns a
 * model whose cache holds exactly `tokens` positions (so the reported KV bytes are those of a cache
 * sized for the example); with a fixed context the same model is reused.
 */
export interface ModelProvider {
  /** The model's tokenizer (available without loading weights). */
  readonly tokenizer: EvalTokenizer;
  /** A model whose KV cache holds at least `tokens` positions. */
  get(tokens: number): Promise<EvalModel>;
}

/** Called once per finished example (drives the progress bar). */
export type ExampleCallback = () => void;

/** What a task run reports. Quality numbers only: the harness times runs separately. */
export interface TaskResult {
  /** Named quality numbers, e.g. `{ kl, top1 }` or `{ ppl, nll }`. */
  metrics: Record<string, number>;
  /** The key of `metrics` that charts plot. */
  primary: string;
  /** Whether a larger primary metric is better. */
  higherIsBetter: boolean;
  /** Mean KV-cache bytes allocated per example (after its last step). */
  kvBytes: number;
  /** Mean bytes an uncompressed cache of the same capacity takes. */
  kvFullBytes: number;
  /** Examples (texts, windows, prompts, records) evaluated. */
  examples: number;
  /** Tokens run through prefill and through decode steps. */
  tokens: { prefill: number; decode: number };
  /** Task-specific detail (heat map, per-dataset scores, predictions). */
  details?: Record<string, unknown>;
}

/**
 * Running means of KV bytes, one sample per example.
 *
 * @example
 * ```ts
 * import { KvMeter } from "./common.ts";
 * const m = new KvMeter();
 * m.add({ bytes: 100, fullBytes: 400 });
 * m.add({ bytes: 300, fullBytes: 400 });
 * console.log(m.bytes, m.fullBytes); // 200 400
 * ```
 */
export class KvMeter {
  #bytes = 0;
  #full = 0;
  #n = 0;
  /** Records one example's `kvStats()`. */
  add(stats: { bytes: number; fullBytes: number }): void {
    this.#bytes += stats.bytes;
    this.#full += stats.fullBytes;
    this.#n++;
  }
  /** Mean allocated bytes (0 before any sample). */
  get bytes(): number {
    return this.#n ? this.#bytes / this.#n : 0;
  }
  /** Mean uncompressed bytes. */
  get fullBytes(): number {
    return this.#n ? this.#full / this.#n : 0;
  }
}

/**
 * Log-softmax in float64: `x_i − logsumexp(x)`.
 *
 * @example
 * ```ts
 * import { logSoftmax } from "./common.ts";
 * const l = logSoftmax(new Float32Array([0, 0]));
 * console.log(l[0] === Math.log(0.5)); // true
 * ```
 */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/**
 * KL(p ‖ q) in nats from two log-probability vectors: `Σ p_i (log p_i − log q_i)`, terms with
 * `p_i = 0` skipped. Exactly 0 for identical inputs.
 *
 * @example
 * ```ts
 * import { klDivergence } from "./common.ts";
 * // p = (1/2, 1/2), q = (1/4, 3/4): ½ln(2) + ½ln(2/3)
 * const kl = klDivergence([Math.log(0.5), Math.log(0.5)], [Math.log(0.25), Math.log(0.75)]);
 * console.log(Math.abs(kl - (0.5 * Math.log(2) + 0.5 * Math.log(2 / 3))) < 1e-15); // true
 * ```
 */
export function klDivergence(logP: ArrayLike<number>, logQ: ArrayLike<number>): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  return kl;
}

/**
 * Negative log-likelihood of `target` under `logits` (natural log, float64).
 *
 * @example
 * ```ts
 * import { nll } from "./common.ts";
 * console.log(nll(new Float32Array([0, 0, 0, 0]), 2) === Math.log(4)); // true
 * ```
 */
export function nll(logits: ArrayLike<number>, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum) - logits[target];
}

/**
 * Index of the largest value, the lowest index on ties (as the GPU argmax), skipping `exclude`.
 *
 * @example
 * ```ts
 * import { argmaxExcept } from "./common.ts";
 * console.log(argmaxExcept([1, 5, 5, 2]), argmaxExcept([1, 5, 5, 2], [1, 2])); // 1 3
 * ```
 */
export function argmaxExcept(values: ArrayLike<number>, exclude: readonly number[] = []): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) {
    if (exclude.includes(i)) continue;
    if (best < 0 || values[i] > values[best]) best = i;
  }
  return best;
}

/** Options of {@linkcode greedyDecode}. */
export interface GreedyOptions {
  /** Most tokens to generate. */
  maxNewTokens: number;
  /** Ids that end the generation besides end-of-generation tokens (LongBench samsum: the newline). */
  stopIds?: readonly number[];
  /** Stop at the tokenizer's end-of-generation tokens; default true. */
  stopAtEos?: boolean;
  /**
   * Hugging Face's `min_length = prompt + 1`: the first token may not be a stop token (its logits
   * are masked, the best other token is taken); default false.
   */
  minOneToken?: boolean;
}

/** What {@linkcode greedyDecode} returns. */
export interface GreedyResult {
  /** Generated ids, the stop token included when one ended the generation (as Hugging Face keeps it). */
  tokens: number[];
  /** Decode steps run (the first token comes from the prefill). */
  decodeSteps: number;
}

/**
 * Greedy generation after `ids` (BOS included) from position 0: one prefill, then one decode step
 * per token, argmax on the GPU (4-byte readbacks); logits are read only when the first token must
 * not be a stop token.
 *
 * @example
 * ```ts ignore
 * const { tokens } = await greedyDecode(model, model.tokenizer.encode("Once upon a time"), { maxNewTokens: 8 });
 * ```
 */
export async function greedyDecode(
  model: EvalModel,
  ids: number[],
  options: GreedyOptions,
): Promise<GreedyResult> {
  const stopIds = options.stopIds ?? [];
  const stopAtEos = options.stopAtEos ?? true;
  const isStop = (id: number) => (stopAtEos && model.tokenizer.isEndOfGeneration(id)) || stopIds.includes(id);
  const tokens: number[] = [];
  if (options.maxNewTokens <= 0) return { tokens, decodeSteps: 0 };
  model.prefill(ids, 0, { logits: "last", greedy: true });
  let id = await model.readNextToken();
  if (options.minOneToken && isStop(id)) {
    const logits = await model.readLogits();
    const banned: number[] = [...stopIds];
    for (let i = 0; i < logits.length; i++) {
      if (stopAtEos && model.tokenizer.isEndOfGeneration(i)) banned.push(i);
    }
    id = argmaxExcept(logits, banned);
    model.setNextToken(id);
  }
  let steps = 0;
  let pos = ids.length;
  while (true) {
    tokens.push(id);
    if (isStop(id) || tokens.length >= options.maxNewTokens || pos >= model.contextLength) break;
    model.decodeStep(pos++, true);
    steps++;
    id = await model.readNextToken();
  }
  return { tokens, decodeSteps: steps };
}

/**
 * Splits JSON Lines text into objects; blank lines are skipped. Errors name the line.
 *
 * @example
 * ```ts
 * import { parseJsonl } from "./common.ts";
 * console.log(parseJsonl('{"a": 1}\n\n{"a": 2}\n', "x.jsonl").length); // 2
 * ```
 */
export function parseJsonl(text: string, source: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new SyntaxError(`Cannot read ${source}: line ${i + 1} is not JSON: ${(e as Error).message}`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new SyntaxError(`Cannot read ${source}: line ${i + 1} must be a JSON object`);
    }
    out.push(v as Record<string, unknown>);
  }
  return out;
}
