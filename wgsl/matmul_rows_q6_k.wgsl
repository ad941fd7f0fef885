// Q6_K group for matmul_rows.wgsl: one 256-weight block = 53 words (the GPU layout's 210 GGUF bytes +
// 2 zero bytes: ql[128] in words 0..31, qh[64] in 32..47, int8 scales[16] in 48..51, f16 d in 52).
// 53 is not a multiple of 4, so rows do not start on a vec4: the words are read one by one. Whole
// words are decoded at once: for l = 4·l4 + k, quadrant qd of half n takes byte k of
// ql word 16n + 8(qd & 1) + l4 (low nibbles for qd < 2, high for qd ≥ 2) and 2 bits of qh word
// 32 + 8n + l4, so four 6-bit q come out of 3 word operations; scale 8n + l4/4 + 2qd covers 16
// weights, and w = d·sc·(q − 32). cols % 256 == 0 always holds.
@group(0) @binding(1) var<storage, read> W: array<u32>;
const MV_GROUP_COLS: u32 = 256u;
const MV_X4: u32 = 64u;
const MV_XSCALE = vec4<f32>(1.0); // x as is

alias MvWeights = array<u32, 53>;

fn mvLoad(row: u32, g: u32) -> MvWeights {
  let b = (row * (P.cols >> 8u) + g) * 53u;
  return MvWeights(
    W[b + 0u], W[b + 1u], W[b + 2u], W[b + 3u], W[b + 4u], W[b + 5u], W[b + 6u], W[b + 7u], W[b + 8u],
    W[b + 9u], W[b + 10u], W[b + 11u], W[b + 12u], W[b + 13u], W[b + 14u], W[b + 15u], W[b + 16u],
    W[b + 17u], W[b + 18u], W[b + 19u], W[b + 20u], W[b + 21u], W[b + 22u], W[b + 23u], W[b + 24u],
    W[b + 25u], W[b + 26u], W[b + 27u], W[b + 28u], W[b + 29u], W[b + 30u], W[b + 31u], W[b + 32u],
    W[b + 33u], W[b + 34u], W[b + 35u], W[b + 36u], W[b + 37u], W[b + 38u], W[b + 39u], W[b + 40u],
    W[b + 41u], W[b + 42u], W[b + 43u], W[b + 44u], W[b + 45u], W[b + 46u], W[b + 47u], W[b + 48u],
    W[b + 49u], W[b + 50u], W[b + 51u], W[b + 52u]
  );
}

// Signed scale i (0..15).
fn q6kScale(a: ptr<function, MvWeights>, i: u32) -> f32 {
  return f32(bitcast<i32>((*a)[48u + i / 4u] << (24u - 8u * (i % 4u))) >> 24u);
}

// The four 6-bit q (0..63) of quadrant qd at l = 4·l4 .. 4·l4 + 3 of half n, as floats minus 32.
fn q6kQuad(a: ptr<function, MvWeights>, n: u32, qd: u32, l4: u32) -> vec4<f32> {
  let ql = ((*a)[16u * n + 8u * (qd & 1u) + l4] >> (4u * (qd >> 1u))) & 0x0f0f0f0fu;
  let qh = (((*a)[32u + 8u * n + l4] >> (2u * qd)) & 0x03030303u) << 4u;
  return vec4<f32>(unpack4xU8(ql | qh)) - 32.0;
}

// Σ over the 16 weights of scale 8n + h + 2qd (l4 = 4h .. 4h + 3) of (q − 32)·x.
fn q6kSub(a: ptr<function, MvWeights>, n: u32, qd: u32, h: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> f32 {
  let x = 32u * n + 8u * qd + 4u * h; // vec4 index of x[128n + 32qd + 16h]
  let s = q6kQuad(a, n, qd, 4u * h) * (*xs)[x] + q6kQuad(a, n, qd, 4u * h + 1u) * (*xs)[x + 1u] +
    q6kQuad(a, n, qd, 4u * h + 2u) * (*xs)[x + 2u] + q6kQuad(a, n, qd, 4u * h + 3u) * (*xs)[x + 3u];
  return q6kScale(a, 8u * n + h + 2u * qd) * dot(s, vec4<f32>(1.0));
}

// Half n (0, 1): its 8 scale groups. Constant arguments only (see matmul_rows_q4_k.wgsl).
fn q6kHalf(a: ptr<function, MvWeights>, n: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> f32 {
  return q6kSub(a, n, 0u, 0u, xs) + q6kSub(a, n, 0u, 1u, xs) + q6kSub(a, n, 1u, 0u, xs) + q6kSub(a, n, 1u, 1u, xs) +
    q6kSub(a, n, 2u, 0u, xs) + q6kSub(a, n, 2u, 1u, xs) + q6kSub(a, n, 3u, 0u, xs) + q6kSub(a, n, 3u, 1u, xs);
}

fn mvDot(a: ptr<function, MvWeights>, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  let d = unpack2x16float((*a)[52]).x;
  return vec4<f32>(d * (q6kHalf(a, 0u, xs) + q6kHalf(a, 1u, xs)), 0.0, 0.0, 0.0);
}

// Decode: one group of one row.
fn mvGroup(row: u32, g: u32, xs: ptr<function, array<vec4<f32>, MV_X4>>) -> vec4<f32> {
  var w = mvLoad(row, g);
  return mvDot(&w, xs);
}
