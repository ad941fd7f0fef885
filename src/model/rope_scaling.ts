/**
 * Llama 3.1 RoPE scaling: the per-frequency factors GGUF stores in `rope_freqs.weight`.
 *
 * Meta's formula (Llama 3.1 `apply_scaling`, Hugging Face `rope_type: "llama3"`) rescales each inverse
 * frequency by its wavelength λ = 2π / f: short wavelengths (λ < original/highFreqFactor) keep f, long
 * ones (λ > original/lowFreqFactor) become f / factor, and the band between is interpolated linearly
 * in original/λ. llama.cpp stores the *divisors* `f / f_scaled` and divides each angle by them.
 *
 * @module
 */

/** Llama 3.1 scaling parameters (`rope_scaling` in config.json). */
export interface Llama3RopeScaling {
  /** Overall factor; default 8. */
  factor?: number;
  /** Default 1. */
  lowFreqFactor?: number;
  /** Default 4. */
  highFreqFactor?: number;
  /** Context length of the unscaled model; default 8192. */
  originalContextLength?: number;
}

/**
 * The scaled inverse frequency for pair `i` (float64), as Meta's reference computes it.
 *
 * @example
 * ```ts
 * import { llama3ScaledFrequency } from "./rope_scaling.ts";
 * console.log(llama3ScaledFrequency(0, 128, 500000)); // 1: the highest frequency is unchanged
 * ```
 */
export function llama3ScaledFrequency(
  i: number,
  ropeDim: number,
  base: number,
  s: Llama3RopeScaling = {},
): number {
  const factor = s.factor ?? 8;
  const low = s.lowFreqFactor ?? 1;
  const high = s.highFreqFactor ?? 4;
  const original = s.originalContextLength ?? 8192;
  const freq = Math.pow(base, (-2 * i) / ropeDim);
  const wavelength = (2 * Math.PI) / freq;
  if (wavelength < original / high) return freq;
  if (wavelength > original / low) return freq / factor;
  const smooth = (original / wavelength - low) / (high - low);
  return (1 - smooth) * (freq / factor) + smooth * freq;
}

/**
 * The `rope_freqs` divisors for a Llama 3.1-style model: `ropeDim / 2` f32 values, f / f_scaled.
 *
 * @example
 * ```ts
 * import { llama3RopeFactors } from "./rope_scaling.ts";
 * const f = llama3RopeFactors(128, 500000);
 * console.log(f[0], f[63]); // 1 8
 * ```
 */
export function llama3RopeFactors(ropeDim: number, base: number, s: Llama3RopeScaling = {}): Float32Array {
  const out = new Float32Array(ropeDim / 2);
  for (let i = 0; i < ropeDim / 2; i++) {
    out[i] = Math.pow(base, (-2 * i) / ropeDim) / llama3ScaledFrequency(i, ropeDim, base, s);
  }
  return out;
}
