// F32 weight reader (layout: src/model/gpu_weight.ts). The including kernel binds the weight chunk at
// @binding(1) and declares the uniform `P` with a `cols` field (row length, a multiple of 4).
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  return W[row * (P.cols >> 2u) + g];
}
