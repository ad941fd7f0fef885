// kv_observe.wgsl — what a compressing prefill records per layer, inside the forward pass, so that the
// selection at the end of prefill needs no readback and no second pass over the prompt.
//
// Layouts (f32 unless said; offsets and strides in elements):
//   q        rows [nTokens, qStride] of the batch, post-RoPE, head h at columns h·headDim …
//   obs      [nHeads, obsRows, headDim]        the last obsRows prompt queries of this layer
//   pMl      [P] vec2 (m, l) chunk partials of attention.wgsl, P(t, c, h) = (t·nChunks + c)·nHeads + h
//   stats    [nHeads, statsRows] vec2          (M, Λ) of a query: max logit and Σ exp(s − M) over its keys
//   kStage   [nKvHeads, capacity, headDim]     this layer's uncompressed prompt keys
//   acc      [nKvHeads, accStride]             H2O: attention each key received, summed over queries
//
// Entry points:
//   capture_queries  one invocation per (i < count, head h, vec4 g): obs[h, dst0 + i] = q[t0 + i, h]
//                    bindings 0 CaptureParams, 1 q (read), 2 obs (rw)
//   query_stats      one invocation per (i < count, head h): merges the chunk partials of query t0 + i
//                    (the same merge as attention.wgsl's reduce_chunks) into stats[h, dst0 + i]
//                    bindings 0 StatsParams, 1 pMl (read), 2 stats (rw)
//   accumulate       H2O, one invocation per (KV head, key s ≤ the batch's last row): adds
//                    Σ_{t: row0+t ≥ s} Σ_{h ∈ group} exp(s_th − M_th)/Λ_th to acc[kvh, s], where s_th is
//                    the logit exactly as attend_chunks computes it (q pre-multiplied by the scale)
//                    bindings 0 AccumParams, 1 q (read), 2 kStage (read), 3 stats (read), 4 acc (rw)
//
// Loop trips per invocation (the host asserts < 60000): capture none; query_stats 2·used chunks;
// accumulate nTokens·group·(headDim/4 + 1).

{{CAPTURE_PARAMS}}
{{STATS_PARAMS}}
{{ACCUM_PARAMS}}

override WG: u32 = 64u;
const NEG_BIG: f32 = -3.0e38;

// ---- capture_queries ----------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> cp: CaptureParams;
@group(0) @binding(1) var<storage, read> c_q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c_obs: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn capture_queries(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let d4 = cp.headDim / 4u;
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= cp.count * cp.nHeads * d4) {
    return;
  }
  let g = id % d4;
  let h = (id / d4) % cp.nHeads;
  let i = id / (d4 * cp.nHeads);
  let src = (cp.qOffset + (cp.t0 + i) * cp.qStride + h * cp.headDim) / 4u + g;
  c_obs[(h * cp.obsRows + cp.dst0 + i) * d4 + g] = c_q[src];
}

// ---- query_stats --------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> sp: StatsParams;
@group(0) @binding(1) var<storage, read> s_ml: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> s_stats: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn query_stats(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= sp.count * sp.nHeads) {
    return;
  }
  let h = id % sp.nHeads;
  let i = id / sp.nHeads;
  let t = sp.t0 + i;
  let used = (sp.pos0 + t + sp.chunk) / sp.chunk; // chunks holding keys 0 … pos0 + t
  let p0 = t * sp.nChunks * sp.nHeads + h;
  var m = NEG_BIG;
  for (var c = 0u; c < used; c++) {
    m = max(m, s_ml[p0 + c * sp.nHeads].x);
  }
  var l = 0.0;
  for (var c = 0u; c < used; c++) {
    let ml = s_ml[p0 + c * sp.nHeads];
    l += exp(ml.x - m) * ml.y;
  }
  s_stats[h * sp.statsRows + sp.dst0 + i] = vec2<f32>(m, l);
}

// ---- accumulate (H2O) ---------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> ap: AccumParams;
@group(0) @binding(1) var<storage, read> a_q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a_k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> a_stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> a_acc: array<f32>;

@compute @workgroup_size(WG)
fn accumulate(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let keys = ap.row0 + ap.nTokens; // keys the batch's queries can see
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= ap.nKvHeads * keys) {
    return;
  }
  let s = id % keys;
  let kvh = id / keys;
  let group = ap.nHeads / ap.nKvHeads;
  let d4 = ap.headDim / 4u;
  let kb = (kvh * ap.capacity + s) * d4;
  var total = 0.0;
  var t0 = 0u;
  if (s > ap.row0) {
    t0 = s - ap.row0; // earlier queries of the batch cannot see key s
  }
  for (var t = t0; t < ap.nTokens; t++) {
    for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
      let qb = (t * ap.qStride + h * ap.headDim) / 4u;
      var s4 = vec4<f32>(0.0);
      for (var i = 0u; i < d4; i++) {
        s4 += (a_q[qb + i] * ap.scale) * a_k[kb + i];
      }
      let logit = (s4.x + s4.y) + (s4.z + s4.w);
      let st = a_stats[h * ap.statsRows + t];
      total += exp(logit - st.x) / st.y;
    }
  }
  a_acc[kvh * ap.accStride + s] += total;
}
