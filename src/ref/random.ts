/**
 * Seeded pseudo-random numbers for tests, benches and synthetic weights: the same values on every run
 * and machine.
 *
 * @module
 */

/**
 * mulberry32: a small 32-bit PRNG; returns a function giving numbers in [0, 1).
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./random.ts";
 * const rand = mulberry32(1);
 * console.log(rand() === mulberry32(1)()); // true
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` floats uniform in [−scale, scale), from {@linkcode mulberry32}.
 *
 * @example
 * ```ts
 * import { randomFloats } from "./random.ts";
 * console.log(randomFloats(3, 7).every((v) => v >= -1 && v < 1)); // true
 * ```
 */
export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}
