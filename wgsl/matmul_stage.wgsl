// matmul_stage: copies x[xOffset .. xOffset + cols) into the uniform staging buffer that
// matmul_rows.wgsl reads when subgroups are unavailable (a buffer with UNIFORM | STORAGE usage,
// written here as storage and read by the next dispatch as uniform: WebGPU puts each dispatch in
// its own usage scope). One invocation per vec4, no loops.
//
// Bindings: 0 uniform P, 1 x (storage), 2 staging buffer (storage, 64 KiB).

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: StageParams;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Staged: array<vec4<f32>>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < P.n4) {
    Staged[gid.x] = X[P.x4 + gid.x];
  }
}
