// rope.wgsl — rotary position embedding in GGUF/llama.cpp "normal" mode (adjacent pairs), in place.
//
// Entry point `main`, one invocation per (token t < nTokens, head h < nHeads):
//   row base  b = offset + t·rowStride + h·headDim, position pos = pos0 + t
//   for pair i < ropeDim/2:
//     θ_i = fl(θ_{i−1} · thetaScale), θ_0 = f32(pos)        (ggml_rope_cache_init's f32 cumulative product)
//     φ   = freqScale · (θ_i / factors[factorsOffset + i])   (the division only when hasFactors ≠ 0)
//     (x[b+2i], x[b+2i+1]) ← (x0·cos φ − x1·sin φ, x0·sin φ + x1·cos φ)
//   channels ≥ ropeDim are untouched.
//
// Bindings (offsets and strides in f32 elements):
//   0  p        RopeParams                       uniform
//   1  x        rows [nTokens, rowStride] f32    read_write (q, k, or a fused qkv row: rowStride ≥ nHeads·headDim)
//   2  factors  [ropeDim/2] f32 (`rope_freqs`)   read (any buffer when hasFactors = 0)
//
// φ is reduced to [−π, π] before sin/cos (rope_angle.wgsl). Loop trips: ropeDim/2. The matrix
// products apply the same rotation in their store when RoPE is fused into them (matmul_fusion.ts).

{{PARAMS}}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> factors: array<f32>;

#include "rope_angle.wgsl"

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= p.nTokens * p.nHeads) {
    return;
  }
  let t = id / p.nHeads;
  let h = id % p.nHeads;
  let b = p.offset + t * p.rowStride + h * p.headDim;
  var theta = f32(p.pos0 + t);
  for (var i = 0u; i < p.ropeDim / 2u; i++) {
    var phi = theta;
    if (p.hasFactors != 0u) {
      phi = phi / factors[p.factorsOffset + i];
    }
    let cs = cos_sin(p.freqScale * phi);
    let x0 = x[b + 2u * i];
    let x1 = x[b + 2u * i + 1u];
    x[b + 2u * i] = x0 * cs.x - x1 * cs.y;
    x[b + 2u * i + 1u] = x0 * cs.y + x1 * cs.x;
    theta = theta * p.thetaScale;
  }
}
