// Q8_0 group for matmul_rows.wgsl: 4 blocks = 128 columns = 36 words = 9 aligned vec4<u32> loads
// (the GPU layout's 9 words per block: word 0 = f16 d, words 1..8 = 32 int8). A row is
// 9·cols/32 words, a whole number of vec4 when cols % 128 == 0 (the host's requirement).
@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;
const MV_GROUP_COLS: u32 = 128u;
const MV_X4: u32 = 32u;
const MV_XSCALE = vec4<f32>(1.0); // x as is

alias MvWeights = array<vec4<u32>, 9>;

// Word i (0..35) of the group.
fn q8Word(a: ptr<function, MvWeights>, i: u32) -> u32 {
  return (*a)[i / 4u][i % 4u];
}

// The 4 int8 of a word, sign-extended.
fn q8x4(w: u32) -> vec4<f32> {
  return vec4<f32>(unpack4xI8(w));
}

// d·Σ q·x over block k (0..3) of the group.
fn q8Block(a: ptr<function, MvWeights>, k: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  let w = 9u * k;
  var s = q8x4(q8Word(a, w + 1u)) * (*xs)[8u * k];
  s += q8x4(q8Word(a, w + 2u)) * (*xs)[8u * k + 1u];
  s += q8x4(q8Word(a, w + 3u)) * (*xs)[8u * k + 2u];
  s += q8x4(q8Word(a, w + 4u)) * (*xs)[8u * k + 3u];
  s += q8x4(q8Word(a, w + 5u)) * (*xs)[8u * k + 4u];
  s += q8x4(q8Word(a, w + 6u)) * (*xs)[8u * k + 5u];
  s += q8x4(q8Word(a, w + 7u)) * (*xs)[8u * k + 6u];
  s += q8x4(q8Word(a, w + 8u)) * (*xs)[8u * k + 7u];
  return unpack2x16float(q8Word(a, w)).x * s;
}

fn mvLoad(row: u32, g: u32) -> MvWeights {
  let b = row * (P.cols * 9u / 128u) + g * 9u;
  return MvWeights(W[b], W[b + 1u], W[b + 2u], W[b + 3u], W[b + 4u], W[b + 5u], W[b + 6u], W[b + 7u], W[b + 8u]);
}

fn mvDot(a: ptr<function, MvWeights>, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  return q8Block(a, 0u, xs) + q8Block(a, 1u, xs) + q8Block(a, 2u, xs) + q8Block(a, 3u, xs);
}

// Decode: one group of one row.
fn mvGroup(row: u32, g: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  var w = mvLoad(row, g);
  return mvDot(&w, xs);
}
