// Q4_K weight reader (layout: src/model/gpu_weight.ts): the 144-byte block as 36 words: word 0 =
// f16 d | f16 dmin << 16, words 1..3 = 12 bytes of packed 6-bit scales/mins (ggml get_scale_min_k4),
// words 4..35 = 128 bytes of nibbles in 4 chunks of 32 bytes (low nibbles: the chunk's first 32
// weights, high: the next 32); w = d·sc·q − dmin·m. The including kernel binds the weight chunk at
// @binding(1) and declares the uniform `P` with a `cols` field (row length, a multiple of 256).
@group(0) @binding(1) var<storage, read> W: array<u32>;

// Byte i (0..11) of the packed scales of the block at word `base`.
fn q4kScaleByte(base: u32, i: u32) -> u32 {
  return (W[base + 1u + (i >> 2u)] >> ((i & 3u) * 8u)) & 0xffu;
}

// Weights 4g..4g+3 of chunk row `row`.
fn load4(row: u32, g: u32) -> vec4<f32> {
  let base = (row * (P.cols >> 8u) + (g >> 6u)) * 36u;
  let dm = unpack2x16float(W[base]);
  let k = g & 63u; // group in block
  let s = k >> 3u; // sub-block of 32 weights (0..7), one scale and min each
  var sc: u32;
  var m: u32;
  if (s < 4u) {
    sc = q4kScaleByte(base, s) & 63u;
    m = q4kScaleByte(base, s + 4u) & 63u;
  } else {
    let hi = q4kScaleByte(base, s + 4u);
    sc = (hi & 0xfu) | ((q4kScaleByte(base, s - 4u) >> 6u) << 4u);
    m = (hi >> 4u) | ((q4kScaleByte(base, s) >> 6u) << 4u);
  }
  let w = vec4<u32>(W[base + 4u + 8u * (s >> 1u) + (k & 7u)]);
  let q = (w >> (vec4<u32>(0u, 8u, 16u, 24u) + (s & 1u) * 4u)) & vec4<u32>(15u);
  return (dm.x * f32(sc)) * vec4<f32>(q) - dm.y * f32(m);
}
