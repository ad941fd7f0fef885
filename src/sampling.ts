/**
 * Token sampling on the CPU: temperature, top-k, top-p, seeded. Greedy decoding (temperature 0)
 * never comes here: it runs as an argmax on the GPU and only the id is read back.
 *
 * @module
 */

/** Sampling settings. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy. Default 0.8 when sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability mass reaches p (1 = all). */
  topP?: number;
  /** Seed for reproducible sampling. */
  seed?: number;
}

/**
 * A small seeded PRNG (SplitMix32) giving floats in [0, 1). Same seed, same sequence, everywhere.
 *
 * @example
 * ```ts
 * import { Rng } from "./sampling.ts";
 * const r = new Rng(42);
 * console.log(r.next() === new Rng(42).next()); // true
 * ```
 */
export class Rng {
  #state: number;
  /** Seeds the generator (any integer; non-integers are truncated). */
  constructor(seed: number) {
    this.#state = Math.trunc(seed) >>> 0;
  }
  /** The next float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  }
}

/**
 * Validates sampling options, throwing a `RangeError` that names the setting and its allowed range.
 *
 * @example
 * ```ts
 * import { validateSampling } from "./sampling.ts";
 * validateSampling({ temperature: 0.7, topK: 40, topP: 0.95 }); // ok
 * ```
 */
export function validateSampling(o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) {
    throw new RangeError(`Cannot sample: temperature must be >= 0: current value is ${o.temperature}`);
  }
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) {
    throw new RangeError(`Cannot sample: topK must be an integer >= 0: current value is ${o.topK}`);
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) {
    throw new RangeError(`Cannot sample: topP must be in (0, 1]: current value is ${o.topP}`);
  }
}

/**
 * Index of the largest value; ties go to the lowest index (as the GPU argmax does).
 *
 * @example
 * ```ts
 * import { argmax } from "./sampling.ts";
 * console.log(argmax(new Float32Array([1, 3, 3, 2]))); // 1
 * ```
 */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Samples a token id from logits: temperature scaling, then top-k, then top-p (nucleus), then a
 * draw from `rng`. Temperature 0 returns the argmax.
 *
 * @example
 * ```ts
 * import { Rng, sampleToken } from "./sampling.ts";
 * const id = sampleToken(new Float32Array([0, 5, 1]), { temperature: 0.5, topK: 2 }, new Rng(1));
 * console.log(id); // 1 (most likely)
 * ```
 */
export function sampleToken(logits: Float32Array, options: SamplingOptions, rng: Rng): number {
  const temperature = options.temperature ?? 0.8;
  if (temperature === 0) return argmax(logits);
  const n = logits.length;
  const k = options.topK && options.topK > 0 ? Math.min(options.topK, n) : n;
  // Candidate ids sorted by logit (descending, ties by id) — only the top k are needed.
  const ids = Array.from({ length: n }, (_, i) => i);
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  const top = ids.slice(0, k);
  const max = logits[top[0]];
  const probs = top.map((id) => Math.exp((logits[id] - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  let keep = probs.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < probs.length; i++) {
      mass += probs[i] / total;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
    total = probs.slice(0, keep).reduce((a, b) => a + b, 0);
  }
  let r = rng.next() * total;
  for (let i = 0; i < keep; i++) {
    r -= probs[i];
    if (r < 0) return top[i];
  }
  return top[keep - 1];
}
