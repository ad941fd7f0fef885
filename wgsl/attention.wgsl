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
//                    at positions pos0 + t.
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
// handles one contiguous full-width segment. A ThinK cache adds a second segment (thin keys with their
// own channel count, q gathered at the kept channels): split [j0, j1) at the segment boundary and call
// an attend_thin() that updates the same running state (m_run, l_run, acc).

{{KV_PARAMS}}
{{ATTN_PARAMS}}

override WG: u32 = 64u;
override CHUNK: u32 = 128u;

const MAX_VEC4: u32 = 64u; // headDim ≤ 256
const NEG_BIG: f32 = -3.0e38; // "−∞" for the running max: exp(NEG_BIG − s) = 0 without inf − inf

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
  let dst = ((h * kp.capacity + kp.pos0 + t) * kp.headDim) / 4u + g;
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
var<private> acc: array<vec4<f32>, MAX_VEC4>; // Σ exp(s − m_run)·v
var<private> m_run: f32;                      // max logit so far
var<private> l_run: f32;                      // Σ exp(s − m_run)

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
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    let m_new = max(m_run, s);
    let alpha = exp(m_run - m_new);
    let e = exp(s - m_new);
    l_run = l_run * alpha + e;
    m_run = m_new;
    let vb = p.vOffset / 4u + head + j * d4;
    for (var i = 0u; i < d4; i++) {
      acc[i] = acc[i] * alpha + e * v_cache[vb + i];
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
  m_run = NEG_BIG;
  l_run = 0.0;

  attend_full(kvh, j0, j1);

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
