// kv_score.wgsl — token and channel scores for the selection at the end of a compressing prefill.
// One selection per (layer, KV head); the query heads of the KV head's group are summed (THINK.md Part 0).
//
// Layouts (f32 unless said; all per layer):
//   kStage   [nKvHeads, capacity, headDim]   uncompressed prompt keys, post-RoPE
//   obs      [nHeads, obsRows, headDim]      the last obsRows prompt queries (kv_observe.wgsl)
//   stats    [nHeads, obsRows] vec2          (M, Λ) of each captured query (kv_observe.wgsl)
//   scores   [nKvHeads, scoreStride]         one score per prefix token (or per channel)
//   tokens   [nKvHeads, selStride] u32       prefix tokens kept by score, ascending (kv_select.wgsl)
//
// Entry points:
//   window_votes     SnapKV / PyramidKV, one invocation per (KV head, prefix token s < n):
//                    scores[kvh, s] = Σ_{h ∈ group} Σ_{i < votes} exp(s_ih − M_ih) / Λ_ih over the last
//                    `votes` captured queries (all of them see every prefix key: no mask needed)
//                    bindings 0 ScoreParams, 1 obs (read), 2 kStage (read), 3 stats (read), 4 scores (rw)
//   pool_scores      one invocation per (KV head, s < n): stride-1 pooling with padding ⌊kernel/2⌋;
//                    mode 1 = max (pads ignored), 2 = avg (pads are zeros, divisor kernel), 0 = copy
//                    bindings 0 ScoreParams, 1 src (read), 2 dst (rw)
//   position_scores  StreamingLLM, one invocation per (KV head, s < n): scores = −s (first tokens win)
//                    bindings 0 ScoreParams, 1 dst (rw)
//   channel_scores   ThinK, one invocation per (KV head, channel c):
//                    scores[kvh, c] = (Σ_{h ∈ group} Σ_{last `votes` queries} q[c]²) · (Σ_{kept j} k_j[c]²),
//                    kept token j ↦ prompt row: tokens[kvh, j] if j < selected, else windowStart + j − selected
//                    bindings 0 ScoreParams, 1 obs (read), 2 kStage (read), 3 tokens (read), 4 scores (rw)
//
// Loop trips per invocation (the host asserts < 60000): window_votes group·votes·(headDim/4 + 1);
// pool_scores kernel; channel_scores group·votes + kept.

{{SCORE_PARAMS}}

override WG: u32 = 64u;

fn invocation(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// ---- window_votes -------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> vp: ScoreParams;
@group(0) @binding(1) var<storage, read> v_obs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v_k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> v_scores: array<f32>;

@compute @workgroup_size(WG)
fn window_votes(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = invocation(wid, nwg, lid);
  if (id >= vp.nKvHeads * vp.n) {
    return;
  }
  let s = id % vp.n;
  let kvh = id / vp.n;
  let group = vp.nHeads / vp.nKvHeads;
  let d4 = vp.headDim / 4u;
  let kb = (kvh * vp.capacity + s) * d4;
  var total = 0.0;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i = vp.obsRows - vp.votes; i < vp.obsRows; i++) {
      let qb = (h * vp.obsRows + i) * d4;
      var s4 = vec4<f32>(0.0);
      for (var c = 0u; c < d4; c++) {
        s4 += (v_obs[qb + c] * vp.scale) * v_k[kb + c];
      }
      let logit = (s4.x + s4.y) + (s4.z + s4.w);
      let st = v_stats[h * vp.obsRows + i];
      total += exp(logit - st.x) / st.y;
    }
  }
  v_scores[kvh * vp.scoreStride + s] = total;
}

// ---- pool_scores --------------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> pp: ScoreParams;
@group(0) @binding(1) var<storage, read> p_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> p_dst: array<f32>;

@compute @workgroup_size(WG)
fn pool_scores(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = invocation(wid, nwg, lid);
  if (id >= pp.nKvHeads * pp.n) {
    return;
  }
  let s = id % pp.n;
  let row = (id / pp.n) * pp.scoreStride;
  let pad = pp.kernel / 2u;
  let j0 = select(0u, s - pad, s >= pad);
  let j1 = min(pp.n, s + pad + 1u);
  var out = p_src[row + s];
  if (pp.mode == 1u) {
    for (var j = j0; j < j1; j++) {
      out = max(out, p_src[row + j]);
    }
  } else if (pp.mode == 2u) {
    var sum = 0.0;
    for (var j = j0; j < j1; j++) {
      sum += p_src[row + j];
    }
    out = sum / f32(pp.kernel);
  }
  p_dst[row + s] = out;
}

// ---- position_scores ----------------------------------------------------------------------------

@group(0) @binding(0) var<uniform> op: ScoreParams;
@group(0) @binding(1) var<storage, read_write> o_dst: array<f32>;

@compute @workgroup_size(WG)
fn position_scores(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = invocation(wid, nwg, lid);
  if (id >= op.nKvHeads * op.n) {
    return;
  }
  let s = id % op.n;
  o_dst[(id / op.n) * op.scoreStride + s] = -f32(s);
}

// ---- channel_scores (ThinK) ---------------------------------------------------------------------

@group(0) @binding(0) var<uniform> cp: ScoreParams;
@group(0) @binding(1) var<storage, read> c_obs: array<f32>;
@group(0) @binding(2) var<storage, read> c_k: array<f32>;
@group(0) @binding(3) var<storage, read> c_tokens: array<u32>;
@group(0) @binding(4) var<storage, read_write> c_scores: array<f32>;

@compute @workgroup_size(WG)
fn channel_scores(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = invocation(wid, nwg, lid);
  if (id >= cp.nKvHeads * cp.headDim) {
    return;
  }
  let c = id % cp.headDim;
  let kvh = id / cp.headDim;
  let group = cp.nHeads / cp.nKvHeads;
  var qs = 0.0;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i = cp.obsRows - cp.votes; i < cp.obsRows; i++) {
      let x = c_obs[(h * cp.obsRows + i) * cp.headDim + c];
      qs += x * x;
    }
  }
  var ks = 0.0;
  for (var j = 0u; j < cp.n; j++) {
    var row = cp.windowStart + j - cp.selected;
    if (j < cp.selected) {
      row = c_tokens[kvh * cp.selStride + j];
    }
    let x = c_k[(kvh * cp.capacity + row) * cp.headDim + c];
    ks += x * x;
  }
  c_scores[kvh * cp.scoreStride + c] = qs * ks;
}
