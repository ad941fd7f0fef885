// kv_quant_attend.wgsl — pass 1 of split-K attention over a KIVI layer, [quantized | residual], one
// softmax (THINK.md §4.2–4.3). Codes are read as u32 words and dequantized in registers; no f32 copy of
// the cache exists. Pass 2 is attention.wgsl's reduce_chunks, unchanged (same partials layout).
//
// Key index j (= cache row; query t is row pos0 + t and attends rows 0 … pos0 + t):
//   keys    j < keyLen   : codes (thin with ThinK: q gathered at the stored channels), x̂ = code·s + m
//           j ≥ keyLen   : the residual ring, f32, all D channels, slot j mod ringCap
//   values  j < valueLen : codes;  j ≥ valueLen : the ring (valueLen ≤ keyLen always: values flush first)
// Scale 1/√D (the full D) for both parts.
//
// Layouts (u32 words; QuantLayout in src/kv/segment.ts; cpw = 32/BITS codes per word). One buffer `kv`
// holds all four sections (7 storage bindings in all, within WebGPU's default of 8 per stage).
//   key codes    [nKvHeads, blockCap, keyChannels]        from word 0; word (h, b, i): rows b·KCPW … of
//                                                          channel i, row u of the word at bits u·KBITS
//   key pairs    [nKvHeads, groupCap, keyChannels]        from word keyScaleBase (G = GROUP rows a group)
//   value codes  [nKvHeads, valueCap, valueGroups, valueWpg]  from word valueBase; channel e of group gv:
//                                                          word e / VCPW, bits (e mod VCPW)·VBITS
//   value pairs  [nKvHeads, valueCap, valueGroups]        from word valueScaleBase
//   pair    F16: unpack2x16float(word) = (scale, min); else two f32 words
//   kRing, vRing  [nKvHeads, ringCap, headDim] f32 (vec4)
//   channels      [nKvHeads, keyChannels] u32 (thin keys)
//   partials      as attention.wgsl: P(t, c, h) = (t·nChunks + c)·nHeads + h; pAcc [P, headDim/4] vec4,
//                 pMl [P] vec2 (max logit, Σexp)
//
// Quantized keys are processed a word of KCPW rows at a time (keyLen and chunk starts are multiples of
// G, G of 16): the KCPW logits live in registers (up to 4 vec4), one max and one rescale per block.
// With s, m the pair of (group, channel i) and q̃ the scaled query at channel i:
//   logit_u = Σ_i (q̃_i·s_i)·code_iu + Σ_i q̃_i·m_i      (the products q̃·s and Σ q̃·m once per group)
// The block's values, when all are quantized, accumulate per (group, ≤ 32 channels) in registers:
//   Σ_u e_u·v̂_u = Σ_u (e_u·s_u)·codes_u + Σ_u e_u·m_u    and acc is updated once per block, not per row
// (measured on llvmpipe at 8192 rows, D = 128, 2 bits: 7.2 → 2.7 ms per layer; f32 attention takes 5.8).
//
// Entry point:
//   attend_quant   one invocation per (t, chunk, head), as attend_chunks
//                  bindings 0 QuantAttnParams, 1 q, 2 kRing, 3 vRing (read), 4 pAcc, 5 pMl (rw),
//                           6 kv (codes and pairs), 7 channels (read)
//
// Loop trips per invocation: asserted < 60000 by AttentionKernel.encodeQuant (see its formula).

{{QUANT_ATTN_PARAMS}}

override WG: u32 = 64u;
override CHUNK: u32 = 128u;
override KBITS: u32 = 2u;
override VBITS: u32 = 2u;
override GROUP: u32 = 32u;  // key rows per group
override VGROUP: u32 = 32u; // value channels per group
override F16: bool = false;
// derived sizes (constant once the pipeline is specialised, so the small loops below unroll)
override KCPW: u32 = 32u / KBITS;                  // key rows per code word
override VCPW: u32 = 32u / VBITS;                  // value channels per code word
override VSUB: u32 = 32u;                          // value channels per sub-group (≤ 32, divides VGROUP and is
                                                   // a multiple of VCPW unless VSUB = VGROUP: set by the host)
override VSUBW: u32 = (VSUB * VBITS + 31u) / 32u;  // code words per value sub-group
override VN4: u32 = min(VCPW, VSUB) / 4u;          // vec4s of channels per value code word

const MAX_VEC4: u32 = 64u; // headDim ≤ 256

@group(0) @binding(0) var<uniform> p: QuantAttnParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_ring: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_ring: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> p_acc: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> p_ml: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> kv: array<u32>;
@group(0) @binding(7) var<storage, read> channels: array<u32>;

var<private> q4: array<vec4<f32>, MAX_VEC4>;  // the query, pre-multiplied by p.scale
var<private> qk: array<f32, 256>;             // q4 at the stored key channels
var<private> qs: array<f32, 256>;             // qk · scale of the current key group
var<private> acc: array<vec4<f32>, MAX_VEC4>; // Σ exp(s − m_run)·v
#include "online_softmax.wgsl"

fn key_pair(index: u32) -> vec2<f32> {
  if (F16) {
    return unpack2x16float(kv[p.keyScaleBase + index]);
  }
  let w = p.keyScaleBase + 2u * index;
  return vec2<f32>(bitcast<f32>(kv[w]), bitcast<f32>(kv[w + 1u]));
}

fn value_pair(index: u32) -> vec2<f32> {
  if (F16) {
    return unpack2x16float(kv[p.valueScaleBase + index]);
  }
  let w = p.valueScaleBase + 2u * index;
  return vec2<f32>(bitcast<f32>(kv[w]), bitcast<f32>(kv[w + 1u]));
}

// acc += e · v̂_j for a quantized value row j: per group, (e·s)·codes + e·m.
fn add_quant_value(kvh: u32, j: u32, e: f32) {
  let mask = vec4<u32>((1u << VBITS) - 1u);
  let sh = vec4<u32>(0u, 1u, 2u, 3u) * VBITS;
  let row = (kvh * p.valueCap + j) * p.valueGroups;
  for (var g = 0u; g < p.valueGroups; g++) {
    let sm = value_pair(row + g);
    let es = e * sm.x;
    let em = vec4<f32>(e * sm.y);
    let wb = p.valueBase + (row + g) * p.valueWpg;
    let c40 = g * (VGROUP / 4u);
    for (var k = 0u; k < p.valueWpg; k++) {
      let w = vec4<u32>(kv[wb + k]);
      for (var s = 0u; s < VN4; s++) {
        let codes = vec4<f32>((w >> (sh + vec4<u32>(4u * s * VBITS))) & mask);
        let c4 = c40 + k * (VCPW / 4u) + s;
        acc[c4] += codes * es + em;
      }
    }
  }
}

// acc += Σ_u ev[u] · v̂_(j0+u) for KCPW quantized value rows j0 …: per (group, sub-group of ≤ 32
// channels) the rows accumulate in registers, and acc is touched once per block instead of per row.
fn add_quant_values_block(kvh: u32, j0: u32, ev: ptr<function, array<f32, 16>>) {
  let mask = vec4<u32>((1u << VBITS) - 1u);
  let sh = vec4<u32>(0u, 1u, 2u, 3u) * VBITS;
  for (var g = 0u; g < p.valueGroups; g++) {
    for (var sg = 0u; sg < VGROUP / VSUB; sg++) {
      var ra = array<vec4<f32>, 8>();
      var em = 0.0;
      for (var u = 0u; u < KCPW; u++) {
        let idx = (kvh * p.valueCap + j0 + u) * p.valueGroups + g;
        let sm = value_pair(idx);
        let e = (*ev)[u];
        let es = e * sm.x;
        em += e * sm.y;
        let wb = p.valueBase + idx * p.valueWpg + sg * VSUBW;
        for (var k = 0u; k < VSUBW; k++) {
          let w = vec4<u32>(kv[wb + k]);
          for (var s = 0u; s < VN4; s++) {
            ra[k * VN4 + s] += es * vec4<f32>((w >> (sh + vec4<u32>(4u * s * VBITS))) & mask);
          }
        }
      }
      let c40 = (g * VGROUP + sg * VSUB) / 4u;
      for (var c = 0u; c < VSUB / 4u; c++) {
        acc[c40 + c] += ra[c] + vec4<f32>(em);
      }
    }
  }
}

// acc += e · v for ring slot r.
fn add_ring_value(kvh: u32, r: u32, e: f32) {
  let d4 = p.headDim / 4u;
  let vb = (kvh * p.ringCap + r) * d4;
  for (var i = 0u; i < d4; i++) {
    acc[i] += e * v_ring[vb + i];
  }
}

// Online softmax over quantized key rows [b0·KCPW, b1·KCPW) of KV head kvh.
fn attend_quant_keys(kvh: u32, b0: u32, b1: u32) {
  let kcpw = KCPW;
  let mask = vec4<u32>((1u << KBITS) - 1u);
  let sh = vec4<u32>(0u, 1u, 2u, 3u) * KBITS;
  let d4 = p.headDim / 4u;
  let kc = p.keyChannels;
  for (var i = 0u; i < kc; i++) {
    var c = i;
    if (p.thin != 0u) {
      c = channels[kvh * kc + i];
    }
    qk[i] = q4[c / 4u][c % 4u];
  }
  var g_cur = 0xffffffffu;
  var base = 0.0;
  for (var b = b0; b < b1; b++) {
    let g = (b * kcpw) / GROUP;
    if (g != g_cur) {
      g_cur = g;
      base = 0.0;
      let pb = (kvh * p.groupCap + g) * kc;
      for (var i = 0u; i < kc; i++) {
        let sm = key_pair(pb + i);
        qs[i] = qk[i] * sm.x;
        base += qk[i] * sm.y;
      }
    }
    var lg = array<vec4<f32>, 4>(); // explicit: naga hoists an uninitialised loop-local var without re-zeroing it
    let wb = (kvh * p.blockCap + b) * kc;
    for (var i = 0u; i < kc; i++) {
      let w = vec4<u32>(kv[wb + i]);
      let x = qs[i];
      for (var s = 0u; s < KCPW / 4u; s++) {
        lg[s] += x * vec4<f32>((w >> (sh + vec4<u32>(4u * s * KBITS))) & mask);
      }
    }
    var mb = NEG_BIG;
    for (var s = 0u; s < kcpw / 4u; s++) {
      lg[s] += vec4<f32>(base);
      mb = max(mb, max(max(lg[s].x, lg[s].y), max(lg[s].z, lg[s].w)));
    }
    let alpha = softmax_rescale(mb);
    for (var i = 0u; i < d4; i++) {
      acc[i] *= alpha;
    }
    var ev = array<f32, 16>();
    for (var u = 0u; u < KCPW; u++) {
      ev[u] = exp(lg[u / 4u][u % 4u] - m_run);
      l_run += ev[u];
    }
    let j0 = b * KCPW;
    if (j0 + KCPW <= p.valueLen) {
      add_quant_values_block(kvh, j0, &ev); // the common case: every value of the block is quantized
    } else {
      for (var u = 0u; u < KCPW; u++) {
        let j = j0 + u;
        if (j < p.valueLen) {
          add_quant_value(kvh, j, ev[u]);
        } else {
          add_ring_value(kvh, j % p.ringCap, ev[u]);
        }
      }
    }
  }
}

// Online softmax over residual rows [j0, j1) (all ≥ keyLen ≥ valueLen): f32 keys and values of the ring.
fn attend_ring(kvh: u32, j0: u32, j1: u32) {
  let d4 = p.headDim / 4u;
  for (var j = j0; j < j1; j++) {
    let r = j % p.ringCap;
    let kb = (kvh * p.ringCap + r) * d4;
    var s4 = vec4<f32>(0.0);
    for (var i = 0u; i < d4; i++) {
      s4 += q4[i] * k_ring[kb + i];
    }
    let ae = softmax_push((s4.x + s4.y) + (s4.z + s4.w));
    for (var i = 0u; i < d4; i++) {
      acc[i] = acc[i] * ae.x + ae.y * v_ring[kb + i];
    }
  }
}

@compute @workgroup_size(WG)
fn attend_quant(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= p.nTokens * p.nChunks * p.nHeads) {
    return;
  }
  let h = id % p.nHeads;
  let c = (id / p.nHeads) % p.nChunks;
  let t = id / (p.nHeads * p.nChunks);
  let ctx = p.pos0 + t + 1u;
  let j0 = c * CHUNK;
  if (j0 >= ctx) {
    return;
  }
  let j1 = min(j0 + CHUNK, ctx);
  let kvh = h / (p.nHeads / p.nKvHeads);
  let d4 = p.headDim / 4u;

  let qb = (p.qOffset + t * p.qStride + h * p.headDim) / 4u;
  for (var i = 0u; i < d4; i++) {
    q4[i] = q[qb + i] * p.scale;
    acc[i] = vec4<f32>(0.0);
  }
  softmax_reset();

  let kcpw = 32u / KBITS;
  let kEnd = min(j1, p.keyLen); // a multiple of kcpw (keyLen is a multiple of G; j1 < keyLen only at a chunk end)
  if (j0 < kEnd) {
    attend_quant_keys(kvh, j0 / kcpw, kEnd / kcpw);
  }
  if (j1 > p.keyLen) {
    attend_ring(kvh, max(j0, p.keyLen), j1);
  }

  p_ml[id] = vec2<f32>(m_run, l_run);
  for (var i = 0u; i < d4; i++) {
    p_acc[id * d4 + i] = acc[i];
  }
}
