// kv_quant.wgsl — KIVI quantization of KV rows into a quantized segment (THINK.md §4.1), and the row
// copy that fills the full-precision residual ring. Used at the end of a compressing prefill (source:
// the stage or the compacted kept tokens) and by the flushes inside decode steps (source: the ring).
//
// Quantizer (bit-identical to src/ref/kv_quant.ts), per group X of G values:
//   m = min X,  s = (max X − m) · invLevels              invLevels = f32(1/(2^BITS − 1)), a product
//   F16: s = f16(ftz(min(s, 65504))), m = f16(ftz(clamp(m, ±65504)))     ftz: |x| < 2⁻¹⁴ → 0
//   q = round(clamp((x − m) / s, 0, 2^BITS − 1))           round = half to even; q = 0 when s = 0
//
// Layouts (per layer; u32 words unless said; see QuantLayout in src/kv/segment.ts):
//   src        [nKvHeads, srcCapacity, headDim] f32      cache row i at slot i mod srcCapacity
//   channels   [nKvHeads, channels] u32                  stored key channels (thin keys), else unused
//   dst (one buffer per segment: key codes, key pairs, value codes, value pairs)
//     keys     codes  [nKvHeads, capacity/cpw, channels]   from word 0; word (h, b, i): tokens b·cpw … of
//                                                          channel i, token u at bits u·BITS (low first)
//              pairs  [nKvHeads, capacity/G, channels]     from word scaleBase
//     values   codes  [nKvHeads, capacity, groups, wpg]    from word codeBase; channel e of a group:
//                                                          word e / cpw, bits (e % cpw)·BITS
//              pairs  [nKvHeads, capacity, groups]         from word scaleBase
//   pair: F16 → pack2x16float(scale, min); else two words, bitcast scale then min
//
// Entry points:
//   quant_keys    one invocation per (KV head, group of G rows, stored channel); rows row0 … row0+nRows−1
//                 (row0 and nRows multiples of G). bindings 0 QuantParams, 1 src (read), 2 channels (read),
//                 3 dst (rw)
//   quant_values  one invocation per (KV head, row, channel group). Same bindings (channels unused).
//   copy_rows     one invocation per (KV head, row, vec4): k and v rows row0 … row0+nRows−1 from slot
//                 r mod srcCapacity to slot r mod capacity.
//                 bindings 0 QuantParams, 1 kSrc, 2 vSrc (read), 3 kDst, 4 vDst (rw), vec4 arrays
//
// Loop trips per invocation (the host asserts < 60000): quant_keys 2·G + G/cpw; quant_values
// 2·G + wpg·cpw; copy_rows none.

{{QUANT_PARAMS}}

override WG: u32 = 64u;
override BITS: u32 = 2u;
override F16: bool = false;

const F16_MAX: f32 = 65504.0;
const F16_MIN_NORMAL: f32 = 6.103515625e-5; // 2⁻¹⁴

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> channels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

fn invocation(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// (scale, min) of a group with extremes mn, mx, rounded as stored.
fn scale_min(mn: f32, mx: f32) -> vec2<f32> {
  var s = (mx - mn) * p.invLevels;
  var m = mn;
  if (F16) {
    s = min(s, F16_MAX);
    m = clamp(m, -F16_MAX, F16_MAX);
    if (s < F16_MIN_NORMAL) {
      s = 0.0;
    }
    if (abs(m) < F16_MIN_NORMAL) {
      m = 0.0;
    }
    return unpack2x16float(pack2x16float(vec2<f32>(s, m)));
  }
  return vec2<f32>(s, m);
}

fn code(x: f32, sm: vec2<f32>) -> u32 {
  var v = 0.0;
  if (sm.x > 0.0) {
    v = (x - sm.y) / sm.x;
  }
  return u32(round(clamp(v, 0.0, p.levels)));
}

fn store_pair(index: u32, sm: vec2<f32>) {
  if (F16) {
    dst[p.scaleBase + index] = pack2x16float(sm);
  } else {
    dst[p.scaleBase + 2u * index] = bitcast<u32>(sm.x);
    dst[p.scaleBase + 2u * index + 1u] = bitcast<u32>(sm.y);
  }
}

fn src_at(h: u32, row: u32, c: u32) -> f32 {
  return src[(h * p.srcCapacity + row % p.srcCapacity) * p.headDim + c];
}

@compute @workgroup_size(WG)
fn quant_keys(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = invocation(wid, nwg, lid);
  let nGroups = p.nRows / p.group;
  if (id >= p.nKvHeads * nGroups * p.channels) {
    return;
  }
  let i = id % p.channels;
  let g = (id / p.channels) % nGroups;
  let h = id / (p.channels * nGroups);
  var c = i;
  if (p.thin != 0u) {
    c = channels[h * p.channels + i];
  }
  let r0 = p.row0 + g * p.group;
  var mn = src_at(h, r0, c);
  var mx = mn;
  for (var u = 1u; u < p.group; u++) {
    let x = src_at(h, r0 + u, c);
    mn = min(mn, x);
    mx = max(mx, x);
  }
  let sm = scale_min(mn, mx);
  let cpw = 32u / BITS;
  for (var b = 0u; b < p.group / cpw; b++) {
    var w = 0u;
    for (var e = 0u; e < cpw; e++) {
      w = w | (code(src_at(h, r0 + b * cpw + e, c), sm) << (e * BITS));
    }
    dst[p.codeBase + (h * (p.capacity / cpw) + r0 / cpw + b) * p.channels + i] = w;
  }
  store_pair((h * (p.capacity / p.group) + r0 / p.group) * p.channels + i, sm);
}

@compute @workgroup_size(WG)
fn quant_values(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  _ = &channels; // bound (shared bind group shape with quant_keys), unused
  let id = invocation(wid, nwg, lid);
  if (id >= p.nKvHeads * p.nRows * p.groups) {
    return;
  }
  let g = id % p.groups;
  let r = (id / p.groups) % p.nRows;
  let h = id / (p.groups * p.nRows);
  let row = p.row0 + r;
  let c0 = g * p.group;
  var mn = src_at(h, row, c0);
  var mx = mn;
  for (var e = 1u; e < p.group; e++) {
    let x = src_at(h, row, c0 + e);
    mn = min(mn, x);
    mx = max(mx, x);
  }
  let sm = scale_min(mn, mx);
  let cpw = 32u / BITS;
  let idx = (h * p.capacity + row) * p.groups + g;
  for (var k = 0u; k < p.wpg; k++) {
    var w = 0u;
    for (var e = 0u; e < cpw && k * cpw + e < p.group; e++) {
      w = w | (code(src_at(h, row, c0 + k * cpw + e), sm) << (e * BITS));
    }
    dst[p.codeBase + idx * p.wpg + k] = w;
  }
  store_pair(idx, sm);
}

// ---- copy_rows ------------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> cp: QuantParams;
@group(0) @binding(1) var<storage, read> k_src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v_src: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> k_dst: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v_dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn copy_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let d4 = cp.headDim / 4u;
  let id = invocation(wid, nwg, lid);
  if (id >= cp.nKvHeads * cp.nRows * d4) {
    return;
  }
  let g = id % d4;
  let r = (id / d4) % cp.nRows;
  let h = id / (d4 * cp.nRows);
  let row = cp.row0 + r;
  let s = (h * cp.srcCapacity + row % cp.srcCapacity) * d4 + g;
  let d = (h * cp.capacity + row % cp.capacity) * d4 + g;
  k_dst[d] = k_src[s];
  v_dst[d] = v_src[s];
}
