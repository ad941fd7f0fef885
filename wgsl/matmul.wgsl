// matmul: out[t, row] = Σ_c W[row, c] · x[t, c] for one row chunk of a weight, t in 0..nTokens.
// Used for decode (nTokens = 1, TB = 1) and batched prefill (TB tokens per invocation).
//
// Role now: prefill on adapters without subgroups, BF16 weights, and shapes the faster kernels do not
// take (matmul_rows.wgsl on CPU adapters, matmul_wg.wgsl on GPUs; see src/kernels/matmul.ts).
//
// v1 (this): each invocation owns one output row and TB consecutive tokens; it streams its row once
// (4 weights per load4, dequantized in registers) and keeps TB dot products. No barriers, no shared
// memory: on llvmpipe (CPU) those cost 4–10×. Lanes of a workgroup take consecutive rows of the same
// token block, so they read the same activations. llvmpipe kills an invocation after 65 535 loop
// iterations; src/kernels/matmul.ts checks cols/4·(TB+1) + 2·TB against a budget of 60000 before
// dispatching. That is conservative: on Mesa 2x llvmpipe the constant-trip TB loops are unrolled and
// only the cols/4 loop counted (a 262 144-column row came back short, TB = 16 × 16 384 columns did not).
//
// Bindings: 0 uniform P, 1 weight chunk (from the weights_<type>.wgsl include), 2 x, 3 out, 4 the
// fusion's Aux (src/kernels/matmul_fusion.ts: RMSNorm gain or SwiGLU up; absent without one).
// x is [nTokens, cols] f32 at element xOffset (a multiple of 4); out[t, row] is written at element
// outOffset + t·outStride + row (the host folds the chunk's rowStart into outOffset). A fused RMSNorm
// multiplies the weights by the gain once per column group (shared by the TB tokens) and sums x²
// per token over the loads the product does anyway.

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: MatmulParams;
#include "weights.wgsl"
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
{{FUSION}}
override WG: u32 = 64;
override TB: u32 = 8; // tokens per invocation, at most MAX_TB
const MAX_TB: u32 = 16u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let nBlocks = (P.nTokens + TB - 1u) / TB;
  if (i >= P.rows * nBlocks) {
    return;
  }
  let row = i % P.rows;
  let t0 = (i / P.rows) * TB;
  let groups = P.cols >> 2u;
  var xb: array<u32, MAX_TB>; // start of each token's x row, in vec4 (tail tokens clamped)
  var acc: array<f32, MAX_TB>;
  var ss: array<f32, MAX_TB>; // Σx² per token (fused RMSNorm only; folds away otherwise)
  for (var j = 0u; j < TB; j++) {
    xb[j] = (P.xOffset >> 2u) + min(t0 + j, P.nTokens - 1u) * groups;
    acc[j] = 0.0;
    ss[j] = 0.0;
  }
  for (var g = 0u; g < groups; g++) {
    let w = load4(row, g) * xGain(g);
    for (var j = 0u; j < TB; j++) {
      let x = xIn(xb[j] + g);
      acc[j] += dot(w, x);
      ss[j] += xSquares(x);
    }
  }
  for (var j = 0u; j < TB; j++) {
    if (t0 + j < P.nTokens) {
      outStore(P.outOffset + (t0 + j) * P.outStride + row, acc[j] * xScale(ss[j]));
    }
  }
}
