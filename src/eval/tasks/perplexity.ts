/**
 * The `perplexity` task: sliding-window perplexity of a text under a KV setting.
 *
 * The text is tokenized once (BOS first). Each window holds `window − stride` context tokens and
 * scores the next `stride` tokens (the last window fewer): the context is prefilled, which is where
 * a compressing cache evicts, prunes or quantizes, and the scored tokens are then teacher-forced one
 * decode step at a time, so every scored token is predicted from a compressed cache exactly as in
 * generation. Each token after the first `window − stride` is scored exactly once; windows start at
 * position 0. PPL = exp(mean NLL), NLL in nats, float64.
 *
 * @module
 */

import { type ExampleCallback, KvMeter, type ModelProvider, nll, type TaskResult } from "./common.ts";

/** Options of the perplexity task. */
export interface PerplexityOptions {
  /** Tokens per window: context + scored; default 512. */
  window?: number;
  /** Scored tokens per window, in [1, window); default half the window. */
  stride?: number;
  /** Score at most this many tokens (from the start of the scored part); default all. */
  maxTokens?: number;
}

/** One window: ids `[begin, end)`, context `[begin, scoreFrom)`, scored `[scoreFrom, end)`. */
export interface PerplexityWindow {
  /** First id of the window. */
  begin: number;
  /** First scored id (the context is `[begin, scoreFrom)`). */
  scoreFrom: number;
  /** One past the last id. */
  end: number;
}

/**
 * The windows over `n` ids: context `window − stride` tokens, `stride` scored tokens each (the last
 * window fewer), so ids `window − stride … n − 1` are scored exactly once.
 *
 * @example
 * ```ts
 * import { perplexityWindows } from "./perplexity.ts";
 * // 10 ids, window 6, stride 2: context 4; scored 4-5, 6-7, 8-9
 * console.log(perplexityWindows(10, 6, 2));
 * // [{ begin: 0, scoreFrom: 4, end: 6 }, { begin: 2, scoreFrom: 6, end: 8 }, { begin: 4, scoreFrom: 8, end: 10 }]
 * ```
 */
export function perplexityWindows(
  n: number,
  window: number,
  stride: number,
  maxTokens = Infinity,
): PerplexityWindow[] {
  if (!Number.isInteger(window) || window < 2) {
    throw new RangeError(`Cannot run perplexity: window must be an integer >= 2: current value is ${window}`);
  }
  if (!Number.isInteger(stride) || stride < 1 || stride >= window) {
    throw new RangeError(
      `Cannot run perplexity: stride must be an integer in [1, window − 1 = ${
        window - 1
      }]: current value is ${stride}`,
    );
  }
  const ctx = window - stride;
  if (n <= ctx) {
    throw new RangeError(
      `Cannot run perplexity: the text has ${n} tokens but a window needs more than its ${ctx} context tokens: ` +
        "use a longer text, a smaller window or a larger stride",
    );
  }
  const last = Math.min(n, ctx + maxTokens);
  const out: PerplexityWindow[] = [];
  for (let s = ctx; s < last; s += stride) {
    out.push({ begin: s - ctx, scoreFrom: s, end: Math.min(s + stride, last) });
  }
  return out;
}

/** NLL sum and count of one window, and the KV bytes at its end. */
export interface WindowScore {
  /** Σ NLL (nats) of the scored tokens. */
  nll: number;
  /** Scored tokens. */
  count: number;
  /** KV bytes after the last step. */
  kv: { bytes: number; fullBytes: number };
}

/**
 * Scores one window: prefill `ids[begin, scoreFrom)` at position 0, then feed the scored ids one
 * decode step at a time, reading the logits each step.
 *
 * @example
 * ```ts ignore
 * const s = await scoreWindow(provider, ids, { begin: 0, scoreFrom: 256, end: 320 });
 * ```
 */
export async function scoreWindow(
  provider: ModelProvider,
  ids: readonly number[],
  w: PerplexityWindow,
): Promise<WindowScore> {
  const model = await provider.get(w.end - w.begin - 1);
  model.prefill(ids.slice(w.begin, w.scoreFrom), 0, { logits: "last" });
  let sum = nll(await model.readLogits(), ids[w.scoreFrom]);
  for (let j = w.scoreFrom; j < w.end - 1; j++) {
    model.setNextToken(ids[j]);
    model.decodeStep(j - w.begin, false);
    sum += nll(await model.readLogits(), ids[j + 1]);
  }
  return { nll: sum, count: w.end - w.scoreFrom, kv: model.kvStats() };
}

/**
 * The task on token ids (BOS included). Metrics: `ppl` (primary, lower is better), `nll` (mean
 * nats per token), `tokens` (scored).
 *
 * @example
 * ```ts ignore
 * const r = await runPerplexity(provider, model.tokenizer.encode(text), { window: 320, stride: 64 });
 * console.log(r.metrics.ppl);
 * ```
 */
export async function runPerplexity(
  provider: ModelProvider,
  ids: readonly number[],
  options: PerplexityOptions = {},
  onExample?: ExampleCallback,
): Promise<TaskResult> {
  const window = options.window ?? 512;
  const stride = options.stride ?? Math.max(1, Math.floor(window / 2));
  const windows = perplexityWindows(ids.length, window, stride, options.maxTokens);
  let sum = 0, count = 0, prefill = 0, decode = 0;
  const kv = new KvMeter();
  for (const w of windows) {
    const s = await scoreWindow(provider, ids, w);
    sum += s.nll;
    count += s.count;
    prefill += w.scoreFrom - w.begin;
    decode += w.end - w.scoreFrom - 1;
    kv.add(s.kv);
    onExample?.();
  }
  const mean = sum / count;
  return {
    metrics: { ppl: Math.exp(mean), nll: mean, tokens: count },
    primary: "ppl",
    higherIsBetter: false,
    kvBytes: kv.bytes,
    kvFullBytes: kv.fullBytes,
    examples: windows.length,
    tokens: { prefill, decode },
    details: { window, stride, windows: windows.length, textTokens: ids.length },
  };
}

/** Number of windows {@linkcode runPerplexity} will run (for progress bars). */
export function perplexityWindowCount(n: number, options: PerplexityOptions = {}): number {
  const window = options.window ?? 512;
  const stride = options.stride ?? Math.max(1, Math.floor(window / 2));
  return perplexityWindows(n, window, stride, options.maxTokens).length;
}
