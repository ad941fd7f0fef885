// F16 weight reader (layout: src/model/gpu_weight.ts): halves flattened, two per word, low half first.
// Read with unpack2x16float, so no shader-f16 is needed. The including kernel binds the weight chunk
// at @binding(1) and declares the uniform `P` with a `cols` field (row length, a multiple of 4).
@group(0) @binding(1) var<storage, read> W: array<vec2<u32>>;

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  let w = W[row * (P.cols >> 2u) + g];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
