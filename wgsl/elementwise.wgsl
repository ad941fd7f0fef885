// elementwise.wgsl — the pointwise ops of a LLaMA layer, one invocation per element of a
// [rows, cols] block (row r, column c = linear id / cols, id % cols).
//
// Entry points (offsets and row strides in f32 elements; a stride lets callers address a slice of a
// wider row, e.g. the gate and up halves of a fused [nTokens, 2·ffn] matmul output):
//   swiglu  out[outOffset + r·outStride + c] = silu(g)·u, silu(g) = g / (1 + e^−g),
//           g = gate[gateOffset + r·gateStride + c], u = up[upOffset + r·upStride + c]
//           bindings 0 sp: SwigluParams, 1 gate (read), 2 up (read; may be the same buffer as gate),
//                    3 out (rw; must not alias gate/up)
//   add     x[xOffset + r·xStride + c] += y[yOffset + r·yStride + c]       (the residual add)
//           bindings 0 ap: AddParams, 1 x (rw), 2 y (read; must not alias x)
// No loops.

{{SWIGLU_PARAMS}}
{{ADD_PARAMS}}

override WG: u32 = 64u;

// ---- swiglu ---------------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> sp: SwigluParams;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn swiglu(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= sp.rows * sp.cols) {
    return;
  }
  let r = id / sp.cols;
  let c = id % sp.cols;
  let g = gate[sp.gateOffset + r * sp.gateStride + c];
  let u = up[sp.upOffset + r * sp.upStride + c];
  // g / (1 + e^−g): for g ≪ 0, e^−g = inf and the quotient is −0, as silu's limit.
  out[sp.outOffset + r * sp.outStride + c] = g / (1.0 + exp(-g)) * u;
}

// ---- add ------------------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> ap: AddParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(WG)
fn add(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= ap.rows * ap.cols) {
    return;
  }
  let r = id / ap.cols;
  let c = id % ap.cols;
  x[ap.xOffset + r * ap.xStride + c] += y[ap.yOffset + r * ap.yStride + c];
}
