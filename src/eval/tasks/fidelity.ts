/**
 * The `fidelity` task: how closely a KV setting reproduces the full cache's next-token distributions.
 *
 * For each text: the full cache prefills the prompt and decodes a reference continuation token by
 * token (its own greedy continuation, or the text's next tokens), keeping its logits at every step.
 * The setting under test then prefills the same prompt (compressing its cache) and is teacher-forced
 * along the same continuation with `setNextToken` + `decodeStep` + `readLogits`. Reported: the mean
 * over all steps of KL(full ‖ setting) in nats (float64) and the top-1 agreement (same argmax).
 *
 * @module
 */

import {
  argmaxExcept,
  type ExampleCallback,
  klDivergence,
  KvMeter,
  logSoftmax,
  type ModelProvider,
  type TaskResult,
} from "./common.ts";

/** Options of the fidelity task. */
export interface FidelityOptions {
  /** Distributions compared per text (the first after the prompt, then one per decode step); default 64. */
  steps?: number;
  /** Keep only the first N prompt tokens of each text (BOS included); default all (greedy reference). */
  promptTokens?: number;
  /** `greedy`: the full cache's greedy continuation (default); `text`: the text's own next tokens. */
  reference?: "greedy" | "text";
}

/** One prepared text: prompt ids and, for `reference: text`, the forced continuation. */
export interface FidelityExample {
  /** Prompt ids, BOS included. */
  prompt: number[];
  /** The continuation to force (`reference: text`), or undefined (greedy). */
  continuation?: number[];
}

/** The full cache's run on one example: the tokens it was forced along and its logits at each step. */
export interface FidelityReference {
  /** The prompt ids. */
  prompt: number[];
  /** Tokens fed after the prompt: `steps − 1` of them. */
  forced: number[];
  /** Logits after the prompt and after each forced token: `steps` rows. */
  logits: Float32Array[];
}

/**
 * Tokenizes texts into fidelity examples. With `reference: text` each text must hold at least
 * `promptTokens + steps − 1` tokens; with `greedy` the prompt is the text (cut to `promptTokens`).
 *
 * @example
 * ```ts
 * import { prepareFidelity } from "./fidelity.ts";
 * const encode = (t: string) => [1, ...Array.from(t, (c) => c.charCodeAt(0))];
 * const [ex] = prepareFidelity(["abcdef"], encode, { promptTokens: 3, steps: 3, reference: "text" });
 * console.log(ex.prompt, ex.continuation); // [1, 97, 98] [99, 100]
 * ```
 */
export function prepareFidelity(
  texts: readonly string[],
  encode: (text: string) => number[],
  options: FidelityOptions = {},
): FidelityExample[] {
  const steps = options.steps ?? 64;
  return texts.map((text, i) => {
    const ids = encode(text);
    const n = options.promptTokens ?? ids.length;
    if (options.reference === "text") {
      if (ids.length < n + steps - 1) {
        throw new RangeError(
          `Cannot run fidelity: text ${
            i + 1
          } has ${ids.length} tokens, fewer than promptTokens + steps − 1 = ${
            n + steps - 1
          }: use a longer text or fewer steps`,
        );
      }
      return { prompt: ids.slice(0, n), continuation: ids.slice(n, n + steps - 1) };
    }
    if (ids.length < 2) throw new RangeError(`Cannot run fidelity: text ${i + 1} is empty`);
    return { prompt: ids.slice(0, Math.min(n, ids.length)) };
  });
}

/**
 * Runs the full cache along one example, recording its logits at every step.
 *
 * @example
 * ```ts ignore
 * const ref = await fidelityReference(fullModel, { prompt: ids }, 64);
 * ```
 */
export async function fidelityReference(
  provider: ModelProvider,
  example: FidelityExample,
  steps: number,
): Promise<FidelityReference> {
  const model = await provider.get(example.prompt.length + steps - 1);
  const logits: Float32Array[] = [];
  const forced: number[] = [];
  model.prefill(example.prompt, 0, { logits: "last" });
  logits.push(await model.readLogits());
  for (let s = 1; s < steps; s++) {
    const id = example.continuation ? example.continuation[s - 1] : argmaxExcept(logits[s - 1]);
    forced.push(id);
    model.setNextToken(id);
    model.decodeStep(example.prompt.length + s - 1, false);
    logits.push(await model.readLogits());
  }
  return { prompt: example.prompt, forced, logits };
}

/** Sums over one example's steps. */
export interface FidelitySums {
  /** Σ KL over the steps. */
  kl: number;
  /** Steps whose argmax equals the full cache's. */
  agree: number;
  /** Steps compared. */
  steps: number;
  /** KV bytes after the last step. */
  kv: { bytes: number; fullBytes: number };
}

/**
 * Teacher-forces a model along a reference and compares its distributions step by step.
 *
 * @example
 * ```ts ignore
 * const sums = await fidelityCompare(provider, ref);
 * console.log(sums.kl / sums.steps, sums.agree / sums.steps);
 * ```
 */
export async function fidelityCompare(
  provider: ModelProvider,
  ref: FidelityReference,
): Promise<FidelitySums> {
  const model = await provider.get(ref.prompt.length + ref.forced.length);
  let kl = 0;
  let agree = 0;
  const compare = (logits: Float32Array, s: number) => {
    kl += klDivergence(logSoftmax(ref.logits[s]), logSoftmax(logits));
    if (argmaxExcept(logits) === argmaxExcept(ref.logits[s])) agree++;
  };
  model.prefill(ref.prompt, 0, { logits: "last" });
  compare(await model.readLogits(), 0);
  for (let s = 1; s < ref.logits.length; s++) {
    model.setNextToken(ref.forced[s - 1]);
    model.decodeStep(ref.prompt.length + s - 1, false);
    compare(await model.readLogits(), s);
  }
  return { kl, agree, steps: ref.logits.length, kv: model.kvStats() };
}

/**
 * The task: compares a setting with precomputed full-cache references. Metrics: `kl` (mean nats per
 * step), `top1` (agreement, %), primary `top1`.
 *
 * @example
 * ```ts ignore
 * const refs = [];
 * for (const ex of examples) refs.push(await fidelityReference(fullProvider, ex, 64));
 * const r = await runFidelity(settingProvider, refs);
 * console.log(r.metrics.kl, r.metrics.top1);
 * ```
 */
export async function runFidelity(
  provider: ModelProvider,
  refs: readonly FidelityReference[],
  onExample?: ExampleCallback,
): Promise<TaskResult> {
  let kl = 0, agree = 0, steps = 0, prefill = 0, decode = 0;
  const kv = new KvMeter();
  const perText: { kl: number; top1: number }[] = [];
  for (const ref of refs) {
    const s = await fidelityCompare(provider, ref);
    kl += s.kl;
    agree += s.agree;
    steps += s.steps;
    prefill += ref.prompt.length;
    decode += ref.forced.length;
    kv.add(s.kv);
    perText.push({ kl: s.kl / s.steps, top1: (100 * s.agree) / s.steps });
    onExample?.();
  }
  return {
    metrics: { kl: steps ? kl / steps : 0, top1: steps ? (100 * agree) / steps : 0 },
    primary: "top1",
    higherIsBetter: true,
    kvBytes: kv.bytes,
    kvFullBytes: kv.fullBytes,
    examples: refs.length,
    tokens: { prefill, decode },
    details: { steps, perText },
  };
}
