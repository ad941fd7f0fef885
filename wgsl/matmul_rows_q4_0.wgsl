// Q4_0 group for matmul_rows.wgsl: 8 blocks = 256 columns = 40 words = 10 aligned vec4<u32> loads
// (the GPU layout's 5 words per block: word 0 = f16 d, words 1..4 = 16 nibble bytes; word j holds
// weights 4j..4j+3 in its low nibbles and 16+4j..16+4j+3 in its high ones). A row is 5·cols/32
// words, a whole number of groups when cols % 256 == 0 (the host's requirement).
@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;
const MV_GROUP_COLS: u32 = 256u;
const MV_X4: u32 = 64u;
// x arrives pre-scaled by 2^-8k in component k, so nibble k of a word can stay in place (masked,
// not shifted): (q·2^8k − 8·2^8k) · x·2^-8k is exact and one shift per word cheaper.
const MV_XSCALE = vec4<f32>(1.0, 0.00390625, 1.52587890625e-5, 5.9604644775390625e-8);

alias MvWeights = array<vec4<u32>, 10>;

fn q4Word(a: ptr<function, MvWeights>, i: u32) -> u32 {
  return (*a)[i / 4u][i % 4u];
}

// 8 weights of one nibble word against pre-scaled x vec4s lo (weights 4j..) and hi (16+4j..),
// w = (q − 8)·d (d is applied per block).
fn q4x8(w: u32, lo: vec4<f32>, hi: vec4<f32>) -> vec4<f32> {
  let m = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
  let o = vec4<f32>(8.0, 2048.0, 524288.0, 134217728.0);
  return (vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) & m)) - o) * lo +
    (vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w >> 4u) & m)) - o) * hi;
}

// Block k (0..7) of the group.
fn q4Block(a: ptr<function, MvWeights>, k: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  let w = 5u * k;
  let x = 8u * k;
  let s = q4x8(q4Word(a, w + 1u), (*xs)[x], (*xs)[x + 4u]) + q4x8(q4Word(a, w + 2u), (*xs)[x + 1u], (*xs)[x + 5u]) +
    q4x8(q4Word(a, w + 3u), (*xs)[x + 2u], (*xs)[x + 6u]) + q4x8(q4Word(a, w + 4u), (*xs)[x + 3u], (*xs)[x + 7u]);
  return unpack2x16float(q4Word(a, w)).x * s;
}

fn mvLoad(row: u32, g: u32) -> MvWeights {
  let b = row * (P.cols * 5u / 128u) + g * 10u;
  return MvWeights(W[b], W[b + 1u], W[b + 2u], W[b + 3u], W[b + 4u], W[b + 5u], W[b + 6u], W[b + 7u], W[b + 8u],
    W[b + 9u]);
}

fn mvDot(a: ptr<function, MvWeights>, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  return q4Block(a, 0u, xs) + q4Block(a, 1u, xs) + q4Block(a, 2u, xs) + q4Block(a, 3u, xs) +
    q4Block(a, 4u, xs) + q4Block(a, 5u, xs) + q4Block(a, 6u, xs) + q4Block(a, 7u, xs);
}

// Decode: one group of one row.
fn mvGroup(row: u32, g: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  var w = mvLoad(row, g);
  return mvDot(&w, xs);
}
