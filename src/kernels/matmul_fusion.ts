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
 * | `rope` | RoPE after it (q and k) | `out[t] = rope(W · x[t], pos0 + t)` |
 *
 * The RMSNorm gain is applied to x (or to the weights: `(w ⊙ g) · x = w · (x ⊙ g)`) and the
 * per-token scale after the dot product, so no normalised copy of x is ever written; each kernel
 * sums x² over the same loads it already does. Hooks (all inlined by the shader compilers):
 *
 * - `xIn(i)`: x vec4 `i` as the product consumes it (SwiGLU applied);
 * - `xGain(c4)`: the RMSNorm gain of column vec4 `c4` (1 without `norm`);
 * - `xSquares(v)`: the contribution of a raw x vec4 to Σx² (0 without `norm`);
 * - `xScale(ss)`: the factor a finished dot product gets from Σx² (1 without `norm`);
 * - `outStore(i, v)`: writes or accumulates one output element;
 * - `ropePair(row, t, v)`: rotates the outputs of rows (row, row + 1) of token t (row even, counted
 *   from the weight's first row), with rope_angle.wgsl's angles; the identity without `rope`.
 *
 * Binding 4 (`Aux`, f32 vec4s) is the RMSNorm gain `[cols]` or SwiGLU's `up` (laid out like x);
 * binding 5 (`RopeFactors`) the `rope_freqs` divisors. Only the "rows" kernels pair rows in one
 * invocation, so only they fuse RoPE, and only for decode (a prefill batch shares one rope
 * dispatch, which costs less than compiling rotating variants); the others get a rope dispatch
 * after the product.
 *
 * @module
 */

/** Which prologue (input) and epilogue (store) a product fuses. */
export interface MatmulFusion {
  /** `"plain"`: x as is; `"norm"`: RMSNorm of x (gain in binding 4); `"swiglu"`: silu(x) ⊙ up (binding 4). */
  input: "plain" | "norm" | "swiglu";
  /** Add to `out` (a residual add) instead of overwriting it. */
  accumulate: boolean;
  /** Rotate pairs of output rows by RoPE (q and k); never with `accumulate`. */
  rope?: boolean;
}

/** No fusion. */
export const PLAIN: MatmulFusion = { input: "plain", accumulate: false };

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
  return (f.input === "plain" ? "" : `+${f.input}`) + (f.accumulate ? "+acc" : "") + (f.rope ? "+rope" : "");
}

/**
 * The WGSL of the hooks for `f`, reading x from the array `X` the kernel declares; `store: false`
 * leaves out `outStore` (the stage kernel has no `Out`).
 *
 * @example
 * ```ts
 * import { fusionWgsl } from "./matmul_fusion.ts";
 * console.log(fusionWgsl({ input: "norm", accumulate: false }).includes("var<storage, read> Aux")); // true
 * ```
 */
export function fusionWgsl(f: MatmulFusion, opts: { store?: boolean } = {}): string {
  const input = f.input;
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
  }${f.rope ? ROPE_PAIR : ""}`;
}

/**
 * RoPE of a pair of outputs, as rope.wgsl computes it: θ is the f32 cumulative product of ggml's rope
 * cache (pos·s·s…, i factors), divided by the pair's `rope_freqs` factor; channels ≥ ropeDim keep
 * their value. Loop trips: at most ropeDim/2 per pair.
 */
const ROPE_PAIR = `
@group(0) @binding(5) var<storage, read> RopeFactors: array<f32>;

fn ropePair(row: u32, t: u32, v: vec2<f32>) -> vec2<f32> {
  let c = row % P.headDim;
  if (c >= P.ropeDim) {
    return v;
  }
  let i = c / 2u;
  var theta = f32(P.pos0 + t);
  for (var k = 0u; k < i; k++) {
    theta = theta * P.thetaScale;
  }
  if (P.hasFactors != 0u) {
    theta = theta / RopeFactors[i];
  }
  let cs = cos_sin(P.freqScale * theta);
  return vec2<f32>(v.x * cs.x - v.y * cs.y, v.x * cs.y + v.y * cs.x);
}
`;
