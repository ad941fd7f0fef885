// F16 group for matmul_rows.wgsl: 32 columns = 4 vec4<u32> loads of 8 halves each (read with
// unpack2x16float, no shader-f16). Rows start on a vec4<u32> when cols % 8 == 0; the host requires
// cols % MV_GROUP_COLS == 0.
@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;
const MV_GROUP_COLS: u32 = 32u;
const MV_X4: u32 = 8u;
const MV_XSCALE = vec4<f32>(1.0); // x as is

fn f16x8(w: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)) * xa +
    vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)) * xb;
}

alias MvWeights = array<vec4<u32>, 4>;

fn mvLoad(row: u32, g: u32) -> MvWeights {
  let b = row * (P.cols >> 3u) + g * 4u;
  return MvWeights(W[b], W[b + 1u], W[b + 2u], W[b + 3u]);
}

fn mvDot(w: ptr<function, MvWeights>, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  return f16x8((*w)[0], (*xs)[0], (*xs)[1]) + f16x8((*w)[1], (*xs)[2], (*xs)[3]) +
    f16x8((*w)[2], (*xs)[4], (*xs)[5]) + f16x8((*w)[3], (*xs)[6], (*xs)[7]);
}

// Decode: one group of one row.
fn mvGroup(row: u32, g: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  var w = mvLoad(row, g);
  return mvDot(&w, xs);
}
