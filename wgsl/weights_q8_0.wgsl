// Q8_0 weight reader (layout: src/model/gpu_weight.ts): 9 words per 32 weights, word 0 = f16 d,
// words 1..8 = int8 q in byte order; w = q·d. The including kernel binds the weight chunk at
// @binding(1) and declares the uniform `P` with a `cols` field (row length, a multiple of 32).
@group(0) @binding(1) var<storage, read> W: array<u32>;

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  let base = (row * (P.cols >> 5u) + (g >> 3u)) * 9u;
  let d = unpack2x16float(W[base]).x;
  let w = vec4<u32>(W[base + 1u + (g & 7u)]);
  let q = bitcast<vec4<i32>>(w << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u); // sign-extend bytes
  return vec4<f32>(q) * d;
}
