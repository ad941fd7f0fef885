/**
 * The `passkey` (needle) task: a 5-digit pass key hidden at a given depth of filler text, in the
 * format `passkey-tiny` was trained on (`../shared/models/passkey-tiny.md`). Prompts are generated
 * here (seeded, for given lengths × depths) or read from a JSONL file such as
 * `../shared/golden/passkey-tiny.eval.jsonl` (`context`, `answers`, `length`, `depth`).
 *
 * Each prompt gets BOS, then 7 tokens are decoded greedily; the answer is right when the 5 characters
 * after the leading space equal the pass key. Reported: accuracy and a heat map (length bucket ×
 * depth bucket).
 *
 * @module
 */

import { Rng } from "../../sampling.ts";
import {
  type ExampleCallback,
  greedyDecode,
  KvMeter,
  type ModelProvider,
  parseJsonl,
  type TaskResult,
} from "./common.ts";

/** One passkey prompt. */
export interface PasskeyPrompt {
  /** The prompt text, up to and including "The pass key is" (no BOS). */
  context: string;
  /** The 5 digits. */
  answer: string;
  /** Prompt tokens without BOS. */
  length: number;
  /** Fraction of the filler tokens before the needle. */
  depth: number;
}

/** Options of {@linkcode generatePasskeyPrompts}. */
export interface PasskeyGenerateOptions {
  /** Target prompt lengths in tokens (without BOS). */
  lengths: readonly number[];
  /** Needle depths in [0, 1]. */
  depths: readonly number[];
  /** Prompts per (length, depth) cell; default 1. */
  perCell?: number;
  /** Random seed; default 1. */
  seed?: number;
}

/** The fixed text before the filler. */
export const PASSKEY_PREFIX =
  "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there.";
/** The fixed question after the filler; the answer follows it. */
export const PASSKEY_QUESTION = "What is the pass key? The pass key is";
/** The filler cycle. */
export const PASSKEY_CYCLE: readonly string[] = [
  "The grass is green.",
  "The sky is blue.",
  "The sun is yellow.",
  "Here we go.",
  "There and back again.",
];
/** Sentences that replace a filler sentence with probability 0.2. */
export const PASSKEY_DISTRACTORS: readonly string[] = [
  "The cat sat on the mat.",
  "The dog ran in the park.",
  "The bird sang a song.",
  "The tree is tall.",
  "The water is cold.",
];

/** The needle sentence for a key. */
export function passkeyNeedle(key: string): string {
  return `The pass key is ${key}. Remember it. ${key} is the pass key.`;
}

/**
 * Generates prompts in passkey-tiny's training format: for each length × depth cell, `perCell`
 * prompts with a random 5-digit key (leading zeros allowed), filler that cycles from a random start
 * with 20% distractor sentences, grown until the prompt reaches the target length, and the needle at
 * the sentence boundary nearest to `depth` of the filler tokens. `encode` must not add BOS; the
 * returned `length` and `depth` are measured, not the targets. Same options, same prompts.
 *
 * @example
 * ```ts ignore
 * const prompts = generatePasskeyPrompts({ lengths: [256], depths: [0.5] }, (t) => tok.encode(t, { addBos: false }));
 * ```
 */
export function generatePasskeyPrompts(
  options: PasskeyGenerateOptions,
  encode: (text: string) => number[],
): PasskeyPrompt[] {
  const rng = new Rng(options.seed ?? 1);
  const perCell = options.perCell ?? 1;
  const tokenCache = new Map<string, number>();
  const count = (s: string) => {
    let n = tokenCache.get(s);
    if (n === undefined) tokenCache.set(s, n = encode(s).length);
    return n;
  };
  const fixed = encode(`${PASSKEY_PREFIX} ${PASSKEY_QUESTION}`).length;
  const out: PasskeyPrompt[] = [];
  for (const length of options.lengths) {
    for (const depth of options.depths) {
      for (let k = 0; k < perCell; k++) {
        let key = "";
        for (let d = 0; d < 5; d++) key += String(Math.floor(rng.next() * 10));
        const needle = passkeyNeedle(key);
        // Filler sentences until prefix + filler + needle + question reach the target: estimated per
        // sentence (SentencePiece's space prefix makes "The" start with "▁" as it does mid-text), then
        // measured exactly, adding sentences while still short.
        const filler: string[] = [];
        let at = Math.floor(rng.next() * PASSKEY_CYCLE.length);
        const nextSentence = () => {
          const s = PASSKEY_CYCLE[at++ % PASSKEY_CYCLE.length]; // a replaced sentence still uses its slot
          return rng.next() < 0.2
            ? PASSKEY_DISTRACTORS[Math.floor(rng.next() * PASSKEY_DISTRACTORS.length)]
            : s;
        };
        let total = fixed + count(needle);
        while (total < length) {
          const s = nextSentence();
          filler.push(s);
          total += count(s);
        }
        const build = (best: number) =>
          [PASSKEY_PREFIX, ...filler.slice(0, best), needle, ...filler.slice(best), PASSKEY_QUESTION].join(
            " ",
          );
        // The boundary nearest to depth · filler tokens.
        const place = () => {
          const fillerTokens = filler.reduce((a, s) => a + count(s), 0);
          let best = 0, bestDist = Infinity, acc = 0;
          for (let i = 0; i <= filler.length; i++) {
            const dist = Math.abs(acc - depth * fillerTokens);
            if (dist < bestDist) [best, bestDist] = [i, dist];
            if (i < filler.length) acc += count(filler[i]);
          }
          return { best, fillerTokens, before: filler.slice(0, best).reduce((a, s) => a + count(s), 0) };
        };
        let pl = place();
        let context = build(pl.best);
        let measured = encode(context).length;
        while (measured < length) {
          filler.push(nextSentence());
          pl = place();
          context = build(pl.best);
          measured = encode(context).length;
        }
        out.push({
          context,
          answer: key,
          length: measured,
          depth: pl.fillerTokens ? Math.round((1000 * pl.before) / pl.fillerTokens) / 1000 : 0,
        });
      }
    }
  }
  return out;
}

/**
 * Reads passkey prompts from JSONL records (`context` + `input`, `answers[0]`, optional `length`
 * and `depth`). Errors name the line.
 *
 * @example
 * ```ts
 * import { passkeyPromptsFromJsonl } from "./passkey.ts";
 * const p = passkeyPromptsFromJsonl('{"context": "… The pass key is", "input": "", "answers": ["01234"], "length": 9, "depth": 0.5}', "x");
 * console.log(p[0].answer, p[0].depth); // 01234 0.5
 * ```
 */
export function passkeyPromptsFromJsonl(text: string, source: string): PasskeyPrompt[] {
  return parseJsonl(text, source).map((r, i) => {
    const line = `${source} record ${i + 1}`;
    if (typeof r.context !== "string") {
      throw new SyntaxError(`Cannot read ${line}: "context" must be a string`);
    }
    const answers = r.answers;
    if (!Array.isArray(answers) || typeof answers[0] !== "string") {
      throw new SyntaxError(`Cannot read ${line}: "answers" must be a list of strings`);
    }
    const input = typeof r.input === "string" ? r.input : "";
    return {
      context: r.context + input,
      answer: answers[0],
      length: typeof r.length === "number" ? r.length : NaN,
      depth: typeof r.depth === "number" ? r.depth : NaN,
    };
  });
}

/**
 * The scoring rule: the generated text, less one leading space, must start with the 5-digit key.
 *
 * @example
 * ```ts
 * import { passkeyCorrect } from "./passkey.ts";
 * console.log(passkeyCorrect(" 07341.", "07341"), passkeyCorrect(" 07841.", "07341")); // true false
 * ```
 */
export function passkeyCorrect(generated: string, answer: string): boolean {
  const s = generated.startsWith(" ") ? generated.slice(1) : generated;
  return s.slice(0, answer.length) === answer;
}

/** Default length buckets: powers of two and their halfway points 1.5·2^k. */
export const DEFAULT_LENGTH_BUCKETS: readonly number[] = [
  64,
  96,
  128,
  192,
  256,
  384,
  512,
  768,
  1024,
  1536,
  2048,
  3072,
  4096,
  6144,
  8192,
  12288,
  16384,
  24576,
  32768,
  49152,
  65536,
  98304,
  131072,
];

/** The bucket nearest to `v` (on a log scale when `log`); ties to the smaller. */
export function nearestBucket(v: number, buckets: readonly number[], log = false): number {
  let best = buckets[0];
  const f = (x: number) => (log ? Math.log(x) : x);
  for (const b of buckets) if (Math.abs(f(b) - f(v)) < Math.abs(f(best) - f(v)) - 1e-12) best = b;
  return best;
}

/** Correct / total per (length bucket, depth bucket). */
export interface PasskeyHeatmap {
  /** Length buckets (rows), ascending. */
  lengths: number[];
  /** Depth buckets (columns), ascending. */
  depths: number[];
  /** `cells[row][col] = [correct, total]`. */
  cells: [number, number][][];
}

/**
 * Groups results into a heat map: lengths to the nearest of `lengthBuckets` (log scale; default
 * {@linkcode DEFAULT_LENGTH_BUCKETS}), depths to the nearest of `depthBuckets` (default tenths).
 * Only buckets that occur are kept.
 *
 * @example
 * ```ts
 * import { passkeyHeatmap } from "./passkey.ts";
 * const h = passkeyHeatmap([
 *   { length: 240, depth: 0.12, correct: true },
 *   { length: 250, depth: 0.48, correct: false },
 *   { length: 1010, depth: 0.5, correct: true },
 * ]);
 * console.log(h.lengths, h.depths, h.cells); // [256, 1024] [0.1, 0.5] [[[1,1],[0,1]], [[0,0],[1,1]]]
 * ```
 */
export function passkeyHeatmap(
  results: readonly { length: number; depth: number; correct: boolean }[],
  lengthBuckets: readonly number[] = DEFAULT_LENGTH_BUCKETS,
  depthBuckets?: readonly number[],
): PasskeyHeatmap {
  const lb = (l: number) => nearestBucket(l, lengthBuckets, true);
  const db = (d: number) => depthBuckets ? nearestBucket(d, depthBuckets) : Math.round(d * 10) / 10;
  const lengths = [...new Set(results.map((r) => lb(r.length)))].sort((a, b) => a - b);
  const depths = [...new Set(results.map((r) => db(r.depth)))].sort((a, b) => a - b);
  const cells = lengths.map(() => depths.map(() => [0, 0] as [number, number]));
  for (const r of results) {
    const c = cells[lengths.indexOf(lb(r.length))][depths.indexOf(db(r.depth))];
    c[1]++;
    if (r.correct) c[0]++;
  }
  return { lengths, depths, cells };
}

/** Options of {@linkcode runPasskey}. */
export interface PasskeyRunOptions {
  /** Tokens decoded after the prompt; default 7 (a space, 5 digits, "."). */
  newTokens?: number;
  /** Heat-map length buckets. */
  lengthBuckets?: readonly number[];
  /** Heat-map depth buckets. */
  depthBuckets?: readonly number[];
}

/**
 * The task. Metrics: `accuracy` (%, primary), `correct`, `total`. Details: the heat map and every
 * prompt's prediction.
 *
 * @example
 * ```ts ignore
 * const r = await runPasskey(provider, prompts);
 * console.log(r.metrics.accuracy, r.details?.heatmap);
 * ```
 */
export async function runPasskey(
  provider: ModelProvider,
  prompts: readonly PasskeyPrompt[],
  options: PasskeyRunOptions = {},
  onExample?: ExampleCallback,
): Promise<TaskResult> {
  const newTokens = options.newTokens ?? 7;
  const kv = new KvMeter();
  const rows: { length: number; depth: number; answer: string; prediction: string; correct: boolean }[] = [];
  let prefill = 0, decode = 0;
  for (const p of prompts) {
    const ids = provider.tokenizer.encode(p.context);
    const model = await provider.get(ids.length + newTokens - 1);
    const { tokens, decodeSteps } = await greedyDecode(model, ids, { maxNewTokens: newTokens });
    const prediction = model.tokenizer.decode(tokens, { stripLeadingSpace: false });
    const length = Number.isFinite(p.length) ? p.length : ids.length - 1;
    rows.push({
      length,
      depth: p.depth,
      answer: p.answer,
      prediction,
      correct: passkeyCorrect(prediction, p.answer),
    });
    prefill += ids.length;
    decode += decodeSteps;
    kv.add(model.kvStats());
    onExample?.();
  }
  const correct = rows.filter((r) => r.correct).length;
  return {
    metrics: { accuracy: rows.length ? (100 * correct) / rows.length : 0, correct, total: rows.length },
    primary: "accuracy",
    higherIsBetter: true,
    kvBytes: kv.bytes,
    kvFullBytes: kv.fullBytes,
    examples: rows.length,
    tokens: { prefill, decode },
    details: {
      heatmap: passkeyHeatmap(
        rows.map((r) => ({ ...r, depth: Number.isFinite(r.depth) ? r.depth : 0 })),
        options.lengthBuckets,
        options.depthBuckets,
      ),
      predictions: rows,
    },
  };
}
