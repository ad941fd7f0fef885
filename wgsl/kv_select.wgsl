// kv_select.wgsl — deterministic top-k per row, output as ascending indices. Used for tokens (k prefix
// tokens of the highest scores) and for ThinK channels (the nKeep highest channel scores) alike.
//
// Ranking: rank(s) = #{j : x_j > x_s, or x_j = x_s and j < s}; s is kept when rank(s) < k. So among
// equal scores the lower index ranks higher (is kept first): ties are broken by index, and the GPU
// choice equals the TypeScript reference's (src/ref/kv_select.ts topkAscending) exactly.
//
// Layouts:
//   scores  [rows, scoreStride] f32 (the first n of each row are ranked)
//   flags   [rows, n] u32      1 = kept
//   out     [rows, k] u32      kept indices, ascending
//
// Entry points (one invocation per (row, s < n) each; dispatch topk_flags, then topk_indices):
//   topk_flags    bindings 0 SelectParams, 1 scores (read), 2 flags (rw)
//   topk_indices  bindings 0 SelectParams, 1 flags (read), 2 out (rw): out[row, #kept before s] = s
//
// Loop trips per invocation (the host asserts < 60000): topk_flags n; topk_indices s < n.

{{SELECT_PARAMS}}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> fp: SelectParams;
@group(0) @binding(1) var<storage, read> f_scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_flags: array<u32>;

@compute @workgroup_size(WG)
fn topk_flags(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= fp.rows * fp.n) {
    return;
  }
  let s = id % fp.n;
  let row = (id / fp.n) * fp.scoreStride;
  let x = f_scores[row + s];
  var rank = 0u;
  for (var j = 0u; j < fp.n; j++) {
    let y = f_scores[row + j];
    rank += select(0u, 1u, y > x || (y == x && j < s));
  }
  f_flags[id] = select(0u, 1u, rank < fp.k);
}

@group(0) @binding(0) var<uniform> ip: SelectParams;
@group(0) @binding(1) var<storage, read> i_flags: array<u32>;
@group(0) @binding(2) var<storage, read_write> i_out: array<u32>;

@compute @workgroup_size(WG)
fn topk_indices(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= ip.rows * ip.n) {
    return;
  }
  if (i_flags[id] == 0u) {
    return;
  }
  let s = id % ip.n;
  let r = id / ip.n;
  var before = 0u;
  for (var j = 0u; j < s; j++) {
    before += i_flags[r * ip.n + j];
  }
  i_out[r * ip.k + before] = s;
}
