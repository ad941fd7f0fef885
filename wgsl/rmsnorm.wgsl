// rmsnorm.wgsl — RMSNorm, one invocation per row (llama.cpp's `rms_norm` followed by `mul`).
//
// Entry point `main`, one invocation per row r < rows:
//   out[outOffset + r·cols + c] = x[xOffset + r·cols + c] · (1 / sqrt(mean_c(x²) + eps)) · w[wOffset + c]
//
// Bindings (offsets are in f32 elements, from the uniform):
//   0  p    NormParams            uniform
//   1  x    [rows, cols] f32      read
//   2  w    [cols] f32            read
//   3  out  [rows, cols] f32      read_write (must not alias x)
//
// Each invocation streams its own row: no workgroup reduction, no barriers (on llvmpipe a tree
// reduction is 4–10× slower). Loop trips per invocation ≈ cols/2 + 6; the host keeps that < 60000
// because llvmpipe silently stops an invocation after 65535 loop iterations.

{{PARAMS}}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  if (row >= p.rows) {
    return;
  }
  let xb = p.xOffset + row * p.cols;
  let ob = p.outOffset + row * p.cols;
  let n4 = p.cols / 4u;

  // Σx² with four running sums (fewer trips, and a shorter summation chain than one f32 sum).
  var ss4 = vec4<f32>(0.0);
  for (var i = 0u; i < n4; i++) {
    let b = xb + 4u * i;
    let v = vec4<f32>(x[b], x[b + 1u], x[b + 2u], x[b + 3u]);
    ss4 += v * v;
  }
  var ss = (ss4.x + ss4.y) + (ss4.z + ss4.w);
  for (var c = 4u * n4; c < p.cols; c++) {
    ss += x[xb + c] * x[xb + c];
  }
  let scale = 1.0 / sqrt(ss / f32(p.cols) + p.eps);

  for (var i = 0u; i < n4; i++) {
    let c = 4u * i;
    out[ob + c] = x[xb + c] * scale * w[p.wOffset + c];
    out[ob + c + 1u] = x[xb + c + 1u] * scale * w[p.wOffset + c + 1u];
    out[ob + c + 2u] = x[xb + c + 2u] * scale * w[p.wOffset + c + 2u];
    out[ob + c + 3u] = x[xb + c + 3u] * scale * w[p.wOffset + c + 3u];
  }
  for (var c = 4u * n4; c < p.cols; c++) {
    out[ob + c] = x[xb + c] * scale * w[p.wOffset + c];
  }
}
