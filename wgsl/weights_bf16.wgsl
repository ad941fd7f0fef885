// BF16 weight reader (layout: src/model/gpu_weight.ts): halves flattened, two per word, low half
// first; a bf16 is the upper half of an f32. The including kernel binds the weight chunk at
// @binding(1) and declares the uniform `P` with a `cols` field (row length, a multiple of 4).
@group(0) @binding(1) var<storage, read> W: array<vec2<u32>>;

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  let w = W[row * (P.cols >> 2u) + g];
  let hi = vec4<u32>(0xffff0000u);
  return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x, w.y << 16u, w.y) & hi);
}
