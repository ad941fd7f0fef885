// attention.wgsl — KV-cache write and causal grouped-query attention, split-K ("flash-decoding").
//
// One kernel family serves prefill (nTokens > 1) and decode (nTokens = 1). Query t sits at absolute
// position pos0 + t and attends cache positions 0 … pos0 + t; query head h reads KV head
// h / (nHeads / nKvHeads). llvmpipe silently stops an invocation after 65535 loop iterations, so no
// invocation walks the whole context: keys are split into chunks of CHUNK positions.
//
// Layouts (f32; offsets and strides in elements, all multiples of 4 because rows are read as vec4):
//   q        rows [nTokens, qStride], head h at columns h·headDim …        (qStride ≥ nHeads·headDim)
//   kCache   [nKvHeads, capacity, headDim] from kOffset                     (one layer's slice)
//   vCache   [nKvHeads, capacity, headDim] from vOffset
//   out      rows [nTokens, outStride], head h at columns h·headDim …
//   partial index  P(t, c, h) = (t·nChunks + c)·nHeads + h   (heads innermost: neighbouring lanes share
//                                                             the chunk's trip count and, with GQA, its keys)
//   pAcc     [P, headDim/4] vec4   unnormalised Σ_j exp(s_j − m)·v_j over the chunk
//   pMl      [P] vec2              (m = max logit of the chunk, l = Σ_j exp(s_j − m))
//
// Entry points:
//   kv_store         one invocation per (t, kvHead, vec4 of channels): copies k and v rows into the caches
//                    at positions (pos0 + t) mod capacity (the modulus only matters for rings: the host
//                    checks pos0 + nTokens ≤ capacity for linear caches).
//                    bindings 0 p: KvStoreParams, 1 k (read), 2 v (read), 3 kCache (rw), 4 vCache (rw)
//   attend_chunks    pass 1, one invocation per (t, chunk c, head h): online softmax over cache positions
//                    [c·CHUNK, min((c+1)·CHUNK, pos0+t+1)), writes pAcc/pMl (chunks past the context
//                    return at once and are never read).
//                    bindings 0 p: AttnParams, 1 q (read), 2 kCache (read), 3 vCache (read), 4 pAcc (rw), 5 pMl (rw)
//   reduce_chunks    pass 2, one invocation per (t, h, vec4 of channels g): merges the chunks of (t, h)
//                    by their max logits and writes out = Σ_c e^(m_c−M)·acc_c / Σ_c e^(m_c−M)·l_c.
//                    bindings 0 p: AttnParams, 1 pAcc (read), 2 pMl (read), 3 out (rw)
//
// Loop trips per invocation (the host asserts < 60000):
//   attend_chunks  headDim/2 + CHUNK·(headDim/2 + 1);  reduce_chunks 2·nChunks;  kv_store none.
//
// The chunk loop runs over a contiguous range of *key indices*, not of cache rows, and attend_full()
// handles one contiguous full-width segment. A compressed cache (src/kv/) adds a thin segment in front:
//
//   attend_segments  pass 1 over [thin | tail]: key index j < thinLen reads thin row j, j ≥ thinLen reads
//                    tail row j − thinLen; pos0 = thinLen + the tail row of query 0, so query t attends
//                    key indices 0 … pos0 + t and reduce_chunks merges it unchanged. Thin keys hold
//                    nKeep channels (ThinK) in rows of thinStride f32 (vec4 loads at any stride, see
//                    gather_thin; padding channels zero);
//                    attend_thin() gathers q at the kept channels once and updates the same running
//                    state (m_run, l_run, acc) as attend_full(): one softmax, scale 1/√D (the full D).
//                    bindings 0 p: AttnParams, 1 q, 2 kTail, 3 vTail (read), 4 pAcc, 5 pMl (rw),
//                             6 kThin [nKvHeads, thinCapacity, thinStride], 7 vThin [nKvHeads,
//                             thinCapacity, headDim], 8 channels [nKvHeads, nKeep] u32 (read)
//                    loop trips: headDim/2 + 20·(thinStride + 6)/4 + CHUNK·(max((thinStride + 6)/4, headDim/4) + headDim/4 + 1)

{{KV_PARAMS}}
{{ATTN_PARAMS}}

override WG: u32 = 64u;
override CHUNK: u32 = 128u;

const MAX_VEC4: u32 = 64u; // headDim ≤ 256

// ---- kv_store -------------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> kp: KvStoreParams;
@group(0) @binding(1) var<storage, read> k_rows: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v_rows: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> k_store: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v_store: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn kv_store(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let d4 = kp.headDim / 4u;
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= kp.nTokens * kp.nKvHeads * d4) {
    return;
  }
  let g = id % d4;
  let h = (id / d4) % kp.nKvHeads;
  let t = id / (d4 * kp.nKvHeads);
  let dst = ((h * kp.capacity + (kp.pos0 + t) % kp.capacity) * kp.headDim) / 4u + g; // a ring wraps
  k_store[kp.kCacheOffset / 4u + dst] = k_rows[(kp.kOffset + t * kp.kStride + h * kp.headDim) / 4u + g];
  v_store[kp.vCacheOffset / 4u + dst] = v_rows[(kp.vOffset + t * kp.vStride + h * kp.headDim) / 4u + g];
}

// ---- attend_chunks (pass 1) -----------------------------------------------------------------------

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> p_acc: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> p_ml: array<vec2<f32>>;

// This invocation's running state (per invocation: `private`).
var<private> q4: array<vec4<f32>, MAX_VEC4>;  // the query, pre-multiplied by p.scale
var<private> acc: array<vec4<f32>, MAX_VEC4>; // Σ exp(s − m_run)·v (m_run, l_run: online_softmax.wgsl)
#include "online_softmax.wgsl"

// Online softmax over cache rows [j0, j1) of KV head kvh, all headDim channels.
fn attend_full(kvh: u32, j0: u32, j1: u32) {
  let d4 = p.headDim / 4u;
  let head = (kvh * p.capacity) * d4; // in vec4s
  for (var j = j0; j < j1; j++) {
    let kb = p.kOffset / 4u + head + j * d4;
    var s4 = vec4<f32>(0.0);
    for (var i = 0u; i < d4; i++) {
      s4 += q4[i] * k_cache[kb + i];
    }
    let ae = softmax_push((s4.x + s4.y) + (s4.z + s4.w));
    let vb = p.vOffset / 4u + head + j * d4;
    for (var i = 0u; i < d4; i++) {
      acc[i] = acc[i] * ae.x + ae.y * v_cache[vb + i];
    }
  }
}

@compute @workgroup_size(WG)
fn attend_chunks(
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
  let ctx = p.pos0 + t + 1u; // keys 0 … pos0 + t
  let j0 = c * CHUNK;
  if (j0 >= ctx) {
    return; // past this query's context: reduce_chunks never reads it
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

  attend_full(kvh, j0, j1);

  p_ml[id] = vec2<f32>(m_run, l_run);
  for (var i = 0u; i < d4; i++) {
    p_acc[id * d4 + i] = acc[i];
  }
}

// ---- attend_segments (pass 1 over [thin | tail]) -------------------------------------------------

@group(0) @binding(6) var<storage, read> k_thin: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> v_thin: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> channels: array<u32>;

// Thin key rows are read as vec4 whatever their stride: row R (= kvh·thinCapacity + j) starts at float
// f = R·thinStride, i.e. at lane sh = f % 4 of vec4 f / 4, and spans ceil((sh + thinStride) / 4) vec4s.
// q_sh holds 4 copies of the gathered query, copy sh shifted right by sh lanes (zeros around), so the
// dot product of any row is a plain vec4 loop: an unpadded 77-channel row costs 20 vec4 loads, like a
// row padded to 80. The thin key buffer is allocated in whole vec4s (≤ 12 bytes of tail padding).
const MAX_SH: u32 = 65u;                      // vec4s per shifted copy: ceil((256 + 3) / 4)
var<private> q_sh: array<vec4<f32>, 260>;     // 4 · MAX_SH: q (scaled) at the kept channels, shifted

// q_sh[sh·MAX_SH + g][e] = q4 at channel channels[kvh, i] with i = 4g + e − sh, for 0 ≤ i < nKeep; else 0.
fn gather_thin(kvh: u32) {
  let n4 = (p.thinStride + 6u) / 4u;
  for (var sh = 0u; sh < 4u; sh++) {
    for (var g = 0u; g < n4; g++) {
      var v = vec4<f32>(0.0);
      for (var e = 0u; e < 4u; e++) {
        let i = 4u * g + e;
        if (i >= sh && i - sh < p.nKeep) {
          let c = channels[kvh * p.nKeep + i - sh];
          v[e] = q4[c / 4u][c % 4u];
        }
      }
      q_sh[sh * MAX_SH + g] = v;
    }
  }
}

// Online softmax over thin rows [j0, j1) of KV head kvh, the kept channels only.
fn attend_thin(kvh: u32, j0: u32, j1: u32) {
  let d4 = p.headDim / 4u;
  let head = kvh * p.thinCapacity;
  for (var j = j0; j < j1; j++) {
    let f = (head + j) * p.thinStride;
    let g0 = f / 4u;
    let qb = (f % 4u) * MAX_SH;
    let n4 = (f % 4u + p.thinStride + 3u) / 4u;
    var s4 = vec4<f32>(0.0);
    for (var g = 0u; g < n4; g++) {
      s4 += q_sh[qb + g] * k_thin[g0 + g];
    }
    let ae = softmax_push((s4.x + s4.y) + (s4.z + s4.w));
    let vb = (head + j) * d4;
    for (var i = 0u; i < d4; i++) {
      acc[i] = acc[i] * ae.x + ae.y * v_thin[vb + i];
    }
  }
}

@compute @workgroup_size(WG)
fn attend_segments(
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
  let ctx = p.pos0 + t + 1u; // key indices 0 … pos0 + t over [thin | tail]
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

  if (j0 < p.thinLen) {
    gather_thin(kvh);
    attend_thin(kvh, j0, min(j1, p.thinLen));
  }
  if (j1 > p.thinLen) {
    attend_full(kvh, max(j0, p.thinLen) - p.thinLen, j1 - p.thinLen);
  }

  p_ml[id] = vec2<f32>(m_run, l_run);
  for (var i = 0u; i < d4; i++) {
    p_acc[id * d4 + i] = acc[i];
  }
}

// ---- reduce_chunks (pass 2) -----------------------------------------------------------------------

@group(0) @binding(0) var<uniform> rp: AttnParams;
@group(0) @binding(1) var<storage, read> r_acc: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> r_ml: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn reduce_chunks(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let d4 = rp.headDim / 4u;
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= rp.nTokens * rp.nHeads * d4) {
    return;
  }
  let g = id % d4;
  let h = (id / d4) % rp.nHeads;
  let t = id / (d4 * rp.nHeads);
  let used = (rp.pos0 + t + CHUNK) / CHUNK; // chunks holding keys 0 … pos0 + t
  let p0 = t * rp.nChunks * rp.nHeads + h; // P(t, 0, h); P(t, c, h) = p0 + c·nHeads

  var m = NEG_BIG;
  for (var c = 0u; c < used; c++) {
    m = max(m, r_ml[p0 + c * rp.nHeads].x);
  }
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var c = 0u; c < used; c++) {
    let pc = p0 + c * rp.nHeads;
    let ml = r_ml[pc];
    let w = exp(ml.x - m);
    l += w * ml.y;
    o += w * r_acc[pc * d4 + g];
  }
  out[(rp.outOffset + t * rp.outStride + h * rp.headDim) / 4u + g] = o / l;
}
