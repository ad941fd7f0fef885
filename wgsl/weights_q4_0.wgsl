// Q4_0 weight reader (layout: src/model/gpu_weight.ts): 5 words per 32 weights, word 0 = f16 d,
// words 1..4 = 16 bytes; byte j holds weight j (low nibble) and j+16 (high); w = (q−8)·d.
// The including kernel binds the weight chunk at @binding(1) and declares the uniform `P` with a
// `cols` field (row length, a multiple of 32).
@group(0) @binding(1) var<storage, read> W: array<u32>;

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  let base = (row * (P.cols >> 5u) + (g >> 3u)) * 5u;
  let d = unpack2x16float(W[base]).x;
  let k = g & 7u; // group in block: weights 4k..4k+3 = bytes 4(k&3).. (low nibbles if k < 4)
  let w = vec4<u32>(W[base + 1u + (k & 3u)]);
  let q = (w >> (vec4<u32>(0u, 8u, 16u, 24u) + (k >> 2u) * 4u)) & vec4<u32>(15u);
  return (vec4<f32>(q) - 8.0) * d;
}
