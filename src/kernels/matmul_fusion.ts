/**
 * The fused prologues and epilogues of the matrix products: the WGSL hooks every matmul kernel
 * family calls, so one product can take over the step before or after it and save a dispatch (on
 * llvmpipe each dispatch costs ≈ 40–60 µs whatever its size, which is most of a small model's decode).
 *
 * | fusion | replaces | the product computes |
 * |---|---|---|
 * | `norm` | RMSNorm before the product | `out[t] = (W · (x[t] ⊙ g)) / sqrt(mean(x[t]²) + eps)` |
 * | `swiglu` | SwiGLU before the product | `out[t] = W · (silu(x[t]) ⊙ up[t])` |
 * | `accumulate` | the residual add after it | `out[t] += W · x[t]` |
 *
 * The RMSNorm gain is applied to x (or to the weights: `(w ⊙ g) · x = w · (x ⊙ g)`) and the
 * per-token scale after the dot product, so no normalised copy of x is ever written; each kernel
 * sums x² over the same loads it already does. Hooks (all inlined by the shader compilers):
 *
 * - `xIn(i)`: x vec4 `i` as the product consumes it (SwiGLU applied);
 * - `xGain(c4)`: the RMSNorm gain of column vec4 `c4` (1 without `norm`);
 * - `xSquares(v)`: the contribution of a raw x vec4 to Σx² (0 without `norm`);
 * - `xScale(ss)`: the factor a finished dot product gets from Σx² (1 without `norm`);
 * - `outStore(i, v)`: writes or accumulates one output element.
 *
 * Binding 4 (`Aux`, f32 vec4s) is the RMSNorm gain `[cols]` or SwiGLU's `up` (laid out like x).
 *
 * @module
 */

/** Which prologue (input) and epilogue (store) a product fuses. */
export interface MatmulFusion {
  /** `"plain"`: x as is; `"norm"`: RMSNorm of x (gain in binding 4); `"swiglu"`: silu(x) ⊙ up (binding 4). */
  input: "plain" | "norm" | "swiglu";
  /** Add to `out` (a residual add) instead of overwriting it. */
  accumulate: boolean;
}

/** No fusion. */
export const PLAIN: MatmulFusion = { input: "plain", accumulate: false };

/**
 * The fusions the LLaMA forward pass uses: RMSNorm into q/k/v, gate/up and the LM head; the
 * residual add into the output projection; SwiGLU and the residual add into the down projection.
 *
 * @example
 * ```ts
 * import { FORWARD_FUSIONS, fusionSuffix } from "./matmul_fusion.ts";
 * console.log(FORWARD_FUSIONS.map(fusionSuffix)); // [ "+norm", "+acc", "+swiglu+acc" ]
 * ```
 */
export const FORWARD_FUSIONS: readonly MatmulFusion[] = [
  { input: "norm", accumulate: false },
  { input: "plain", accumulate: true },
  { input: "swiglu", accumulate: true },
];

/**
 * The pipeline-key suffix of a fusion: `""` for none, else `+norm`, `+swiglu`, `+acc` joined.
 *
 * @example
 * ```ts
 * import { fusionSuffix } from "./matmul_fusion.ts";
 * console.log(fusionSuffix({ input: "swiglu", accumulate: true })); // "+swiglu+acc"
 * ```
 */
export function fusionSuffix(f: MatmulFusion): string {
  return (f.input === "plain" ? "" : `+${f.input}`) + (f.accumulate ? "+acc" : "");
}

/**
 * The WGSL of the hooks for `f`, reading x from the array `X` the kernel declares. `xStaged`: the
 * kernel reads a copy the stage dispatch already transformed, so only the store is fused; `store:
 * false` leaves out `outStore` (the stage kernel has no `Out`).
 *
 * @example
 * ```ts
 * import { fusionWgsl } from "./matmul_fusion.ts";
 * console.log(fusionWgsl({ input: "norm", accumulate: false }).includes("var<storage, read> Aux")); // true
 * ```
 */
export function fusionWgsl(f: MatmulFusion, opts: { xStaged?: boolean; store?: boolean } = {}): string {
  const input = opts.xStaged ? "plain" : f.input;
  const aux = input === "plain" ? "" : "@group(0) @binding(4) var<storage, read> Aux: array<vec4<f32>>;\n";
  const xIn = input === "swiglu" ? "let g = X[i];\n  return g / (1.0 + exp(-g)) * Aux[i];" : "return X[i];";
  const norm = input === "norm";
  return `${aux}
fn xIn(i: u32) -> vec4<f32> {
  ${xIn}
}

fn xGain(c4: u32) -> vec4<f32> {
  return ${norm ? "Aux[c4]" : "vec4<f32>(1.0)"};
}

fn xSquares(v: vec4<f32>) -> f32 {
  return ${norm ? "dot(v, v)" : "0.0"};
}

fn xScale(ss: f32) -> f32 {
  return ${norm ? "1.0 / sqrt(ss / f32(P.cols) + P.eps)" : "1.0"};
}
${
    opts.store === false ? "" : `
fn outStore(i: u32, v: f32) {
  ${f.accumulate ? "Out[i] += v;" : "Out[i] = v;"}
}
`
  }`;
}
