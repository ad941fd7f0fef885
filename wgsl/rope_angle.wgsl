// rope_angle.wgsl — cos and sin of a RoPE angle, shared by rope.wgsl and the matrix products that
// rotate q and k in their store (src/kernels/matmul_fusion.ts).
//
// φ is reduced to [−π, π] before sin/cos with a 3-part 2π (Cody–Waite), so the result does not depend
// on how a GPU's sin/cos handles large arguments (φ reaches ~pos radians).
// 2π = TWO_PI_HI + TWO_PI_MID + TWO_PI_LO; TWO_PI_HI has 8 significant bits, so k·TWO_PI_HI is exact
// for |k| < 2^16 and φ − k·TWO_PI_HI is exact (Sterbenz).
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_MID: f32 = 0.0019353071693331003;
const TWO_PI_LO: f32 = 1.0253131677018246e-11;
const INV_TWO_PI: f32 = 0.15915493667125702;

fn cos_sin(phi: f32) -> vec2<f32> {
  let k = round(phi * INV_TWO_PI);
  let r = ((phi - k * TWO_PI_HI) - k * TWO_PI_MID) - k * TWO_PI_LO;
  return vec2<f32>(cos(r), sin(r));
}
