// embedding: out[t, :] = row ids[t] of a weight table, dequantized, for t in 0..nTokens.
// One dispatch per row chunk of the table; ids outside the chunk's rows are skipped, so a row is
// written by the one chunk that holds it (ids ≥ the table's rows are written by none).
// One invocation per (token, 4 columns): no loops.
//
// Bindings: 0 uniform P, 1 weight chunk (from the weights_<type>.wgsl include), 2 ids (u32), 3 out.
// ids are read at idsOffset + t; out[t, c] is written at element outOffset + t·cols + c.

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: EmbeddingParams;
#include "weights.wgsl"
@group(0) @binding(2) var<storage, read> Ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let groups = P.cols >> 2u;
  if (i >= P.nTokens * groups) {
    return;
  }
  let t = i / groups;
  let g = i % groups;
  let id = Ids[P.idsOffset + t];
  if (id < P.rowStart || id - P.rowStart >= P.rowCount) {
    return;
  }
  let v = load4(id - P.rowStart, g);
  let o = P.outOffset + t * P.cols + 4u * g;
  Out[o] = v.x;
  Out[o + 1u] = v.y;
  Out[o + 2u] = v.z;
  Out[o + 3u] = v.w;
}
