// Q4_K group for matmul_rows.wgsl: one 256-weight block = 36 words = 9 aligned vec4<u32> loads (the
// GPU layout keeps the 144 GGUF bytes: word 0 = f16 d | f16 dmin << 16, words 1..3 = 12 bytes of
// 6-bit scales and mins, words 4..35 = 4 chunks of 32 nibble bytes: chunk c's low nibbles are
// weights 64c..64c+31 (sub-block 2c), its high nibbles weights 64c+32.. (sub-block 2c+1)). The
// scales are decoded once per sub-block of 32 weights, not per 4 weights as load4 does, and
// w = d·sc·q − dmin·m becomes d·sc·Σq·x − dmin·m·Σx per sub-block. cols % 256 == 0 always holds.
@group(0) @binding(1) var<storage, read> W: array<vec4<u32>>;
const MV_GROUP_COLS: u32 = 256u;
const MV_X4: u32 = 64u;
// Nibbles stay in place (masked, not shifted): x comes pre-scaled by 2^-8k in component k.
const MV_XSCALE = vec4<f32>(1.0, 0.00390625, 1.52587890625e-5, 5.9604644775390625e-8);

alias MvWeights = array<vec4<u32>, 9>;

fn q4kWord(a: ptr<function, MvWeights>, i: u32) -> u32 {
  return (*a)[i / 4u][i % 4u];
}

// Byte i (0..11) of the packed scales.
fn q4kByte(a: ptr<function, MvWeights>, i: u32) -> u32 {
  return (q4kWord(a, 1u + i / 4u) >> (8u * (i % 4u))) & 0xffu;
}

// ggml's get_scale_min_k4: (scale, min) of sub-block j (0..7).
fn q4kScaleMin(a: ptr<function, MvWeights>, j: u32) -> vec2<f32> {
  if (j < 4u) {
    return vec2<f32>(f32(q4kByte(a, j) & 63u), f32(q4kByte(a, j + 4u) & 63u));
  }
  let hi = q4kByte(a, j + 4u);
  return vec2<f32>(
    f32((hi & 0xfu) | ((q4kByte(a, j - 4u) >> 6u) << 4u)),
    f32((hi >> 4u) | ((q4kByte(a, j) >> 6u) << 4u)),
  );
}

// Word j (0..7) of chunk c against its x: low nibbles (sub-block 2c) into acc[0], high nibbles
// (sub-block 2c+1) into acc[1], and the x sums into acc[2], acc[3]. Called with constant c and j
// only: llvmpipe keeps dynamically indexed local arrays in memory (3× slower when this was a loop).
fn q4kWordDot(a: ptr<function, MvWeights>, c: u32, j: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>, acc: ptr<function, array<vec4<f32>, 4>>) {
  let m = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
  let w = q4kWord(a, 4u + 8u * c + j);
  let xl = (*xs)[16u * c + j];
  let xh = (*xs)[16u * c + 8u + j];
  (*acc)[0] += vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) & m)) * xl;
  (*acc)[1] += vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w >> 4u) & m)) * xh;
  (*acc)[2] += xl;
  (*acc)[3] += xh;
}

// Chunk c (0..3), sub-blocks 2c and 2c+1: d·(sc·Σq·x) − dmin·(m·Σx) summed over both.
fn q4kChunk(a: ptr<function, MvWeights>, c: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec2<f32> {
  var acc = array<vec4<f32>, 4>();
  q4kWordDot(a, c, 0u, xs, &acc);
  q4kWordDot(a, c, 1u, xs, &acc);
  q4kWordDot(a, c, 2u, xs, &acc);
  q4kWordDot(a, c, 3u, xs, &acc);
  q4kWordDot(a, c, 4u, xs, &acc);
  q4kWordDot(a, c, 5u, xs, &acc);
  q4kWordDot(a, c, 6u, xs, &acc);
  q4kWordDot(a, c, 7u, xs, &acc);
  let unscale = vec4<f32>(1.0, 256.0, 65536.0, 16777216.0);
  let one = vec4<f32>(1.0);
  let lo = q4kScaleMin(a, 2u * c);
  let hi = q4kScaleMin(a, 2u * c + 1u);
  return vec2<f32>(
    lo.x * dot(acc[0], one) + hi.x * dot(acc[1], one),
    lo.y * dot(acc[2], unscale) + hi.y * dot(acc[3], unscale),
  );
}

fn mvLoad(row: u32, g: u32) -> MvWeights {
  let b = (row * (P.cols >> 8u) + g) * 9u;
  return MvWeights(W[b], W[b + 1u], W[b + 2u], W[b + 3u], W[b + 4u], W[b + 5u], W[b + 6u], W[b + 7u], W[b + 8u]);
}

fn mvDot(a: ptr<function, MvWeights>, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  let dm = unpack2x16float(q4kWord(a, 0u));
  let s = q4kChunk(a, 0u, xs) + q4kChunk(a, 1u, xs) + q4kChunk(a, 2u, xs) + q4kChunk(a, 3u, xs);
  return vec4<f32>(dm.x * s.x - dm.y * s.y, 0.0, 0.0, 0.0);
}

// Decode: one group of one row.
fn mvGroup(row: u32, g: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  var w = mvLoad(row, g);
  return mvDot(&w, xs);
}
