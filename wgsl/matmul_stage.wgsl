// matmul_stage: copies x[xOffset .. xOffset + cols) into the uniform staging buffer that
// matmul_rows.wgsl reads when subgroups are unavailable (a buffer with UNIFORM | STORAGE usage,
// written here as storage and read by the next dispatch as uniform: WebGPU puts each dispatch in
// its own usage scope). The product's prologue (src/kernels/matmul_fusion.ts) is applied here, once,
// instead of by every lane of the product, and consecutive products of the same input in one pass
// (q, k, v; gate, up) share one stage (MatmulKernel skips it when no dispatch ran since).
//
// `main`: one invocation per vec4, no loops (plain x, or SwiGLU through xIn).
// `norm`: a fused RMSNorm, one workgroup: Σx² by a shared-memory tree, then x·gain·scale. Loop trips
// per invocation ≤ cols / (4·WG) (64 for 16384 columns).
//
// Bindings: 0 uniform P, 1 x (storage), 2 staging buffer (storage, 64 KiB), 4 the fusion's Aux.

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: StageParams;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Staged: array<vec4<f32>>;
{{FUSION}}
override WG: u32 = 64; // a power of two
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < P.n4) {
    Staged[gid.x] = xIn(P.x4 + gid.x);
  }
}

@compute @workgroup_size(WG)
fn norm(@builtin(local_invocation_index) lid: u32) {
  var ss = 0.0;
  for (var i = lid; i < P.n4; i += WG) {
    ss += xSquares(xIn(P.x4 + i));
  }
  partial[lid] = ss;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
  }
  workgroupBarrier();
  let scale = xScale(partial[0]);
  for (var i = lid; i < P.n4; i += WG) {
    Staged[i] = xIn(P.x4 + i) * xGain(i) * scale;
  }
}
