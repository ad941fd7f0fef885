// matmul_wg: the decode product out[row] = Σ_c W[row, c] · x[c] (one token) for discrete and
// integrated GPUs: one workgroup per row; lane i reads column groups i, i + WG, … (adjacent lanes
// read adjacent words: coalesced), then the workgroup sums its lanes — subgroupAdd and one shared
// slot per subgroup when `subgroups` is granted, else a shared-memory tree. Every weight type works
// through its weights_<type>.wgsl `load4`.
//
// v1 (this). On llvmpipe this design is 2–4× slower than matmul_rows.wgsl (every barrier and
// shared-memory access is a loop over lanes there) and is used only when forced; its speed on real
// GPUs is untested here (no GPU on the development machines), so it is kept simple and correct.
//
// Bindings: 0 uniform P, 1 weight chunk (the weights_<type>.wgsl include), 2 x (from xOffset), 3 out
// (out[row] at outOffset + row), 4 the fusion's Aux (src/kernels/matmul_fusion.ts). The lanes reduce
// (dot product, Σx²) pairs; Σx² is 0 unless an RMSNorm is fused.

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: MatmulParams;
#include "weights.wgsl"
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
{{FUSION}}
override WG: u32 = 64; // a power of two
var<workgroup> partial: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  {{SG_PARAMS}}
) {
  let row = min(wid.x + wid.y * nwg.x, P.rows - 1u); // uniform per workgroup; the host dispatches P.rows groups
  let groups = P.cols >> 2u;
  let xBase = P.xOffset >> 2u;
  var acc = vec2<f32>(0.0); // (Σ w·x, Σ x²)
  for (var g = lid; g < groups; g += WG) {
    let x = xIn(xBase + g);
    acc += vec2<f32>(dot(load4(row, g) * xGain(g), x), xSquares(x));
  }
  {{REDUCE}}
  if (lid == 0u) {
    outStore(P.outOffset + row, total.x * xScale(total.y));
  }
}
