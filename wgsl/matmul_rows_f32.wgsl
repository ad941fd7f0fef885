// F32 group for matmul_rows.wgsl: 32 columns = 8 vec4 weight loads. Rows start on a vec4 (cols % 4
// == 0); the host requires cols % MV_GROUP_COLS == 0.
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;
const MV_GROUP_COLS: u32 = 32u;
const MV_X4: u32 = 8u; // vec4 of x per group
const MV_XSCALE = vec4<f32>(1.0); // x as is

alias MvWeights = array<vec4<f32>, 8>;

// The group-g weights of chunk row `row`.
fn mvLoad(row: u32, g: u32) -> MvWeights {
  let b = row * (P.cols >> 2u) + g * 8u;
  return MvWeights(W[b], W[b + 1u], W[b + 2u], W[b + 3u], W[b + 4u], W[b + 5u], W[b + 6u], W[b + 7u]);
}

// Partial Σ W[row, c]·x[c] over the group, as 4 lanes to be summed at the end.
fn mvDot(w: ptr<function, MvWeights>, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  let s = (*w)[0] * (*xs)[0] + (*w)[2] * (*xs)[2] + (*w)[4] * (*xs)[4] + (*w)[6] * (*xs)[6];
  let t = (*w)[1] * (*xs)[1] + (*w)[3] * (*xs)[3] + (*w)[5] * (*xs)[5] + (*w)[7] * (*xs)[7];
  return s + t;
}

// Decode: the loads feed the products directly (10% faster than mvLoad + mvDot for f32, measured).
fn mvGroup(row: u32, g: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  let b = row * (P.cols >> 2u) + g * 8u;
  let s = W[b] * (*xs)[0] + W[b + 2u] * (*xs)[2] + W[b + 4u] * (*xs)[4] + W[b + 6u] * (*xs)[6];
  let t = W[b + 1u] * (*xs)[1] + W[b + 3u] * (*xs)[3] + W[b + 5u] * (*xs)[5] + W[b + 7u] * (*xs)[7];
  return s + t;
}
