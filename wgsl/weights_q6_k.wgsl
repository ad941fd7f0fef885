// Q6_K weight reader (layout: src/model/gpu_weight.ts): the 210-byte block + 2 zero bytes as 53
// words: ql[128] (words 0..31), qh[64] (32..47), int8 scales[16] (48..51), f16 d (word 52, low half).
// ggml's order: in each half n of 128 weights, quadrant qd (32 weights each) at l = 0..31 takes the
// low (qd 0, 1) or high (qd 2, 3) nibble of ql[64n + l + 32(qd & 1)], bits 2qd..2qd+1 of
// qh[32n + l], and scale 8n + l/16 + 2qd; w = d·sc·(q − 32). The including kernel binds the weight
// chunk at @binding(1) and declares the uniform `P` with a `cols` field (a multiple of 256).
@group(0) @binding(1) var<storage, read> W: array<u32>;

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  let base = (row * (P.cols >> 8u) + (g >> 6u)) * 53u;
  let k = g & 63u; // group in block
  let n = k >> 5u; // half of 128 weights
  let qd = (k >> 3u) & 3u; // quadrant of 32 weights
  let l4 = k & 7u; // l / 4
  let shifts = vec4<u32>(0u, 8u, 16u, 24u);
  let ql = (vec4<u32>(W[base + 16u * n + 8u * (qd & 1u) + l4]) >> (shifts + 4u * (qd >> 1u))) & vec4<u32>(15u);
  let qh = (vec4<u32>(W[base + 32u + 8u * n + l4]) >> (shifts + 2u * qd)) & vec4<u32>(3u);
  let q = vec4<f32>(bitcast<vec4<i32>>(ql | (qh << vec4<u32>(4u)))) - 32.0;
  let si = 8u * n + (l4 >> 2u) + 2u * qd;
  let sc = bitcast<i32>(W[base + 48u + (si >> 2u)] << (24u - 8u * (si & 3u))) >> 24u;
  let d = unpack2x16float(W[base + 52u]).x;
  return (d * f32(sc)) * q;
}
