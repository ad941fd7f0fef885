/**
 * Sampling settings and their validation. The sampling itself runs on the GPU (`wgsl/sample.wgsl`,
 * `wgsl/argmax.wgsl`); `argmax` here is the CPU twin used by tests and evaluation.
 *
 * @module
 */

/** Sampling settings. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy. Default 0.8. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). Default 40. */
  topK?: number;
  /** Keep the most likely tokens whose probability mass (after temperature) reaches p. Default 0.95. */
  topP?: number;
  /** Seed for reproducible sampling. */
  seed?: number;
}

/**
 * A small seeded PRNG (SplitMix32) giving floats in [0, 1), for reproducible test data and prompts.
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
