// argmax.wgsl — greedy sampling on the GPU: the index of each row's largest logit, as a u32.
//
// Entry point `main`, one workgroup per row r < rows:
//   ids[outOffset + r] = argmax_i logits[logitsOffset + r·rowStride + i], i < n; ties → lowest index
//   (NaNs never win unless they come first in an invocation's range).
//
// Bindings (offsets and strides in elements):
//   0  p       ArgmaxParams          uniform
//   1  logits  [rows, rowStride] f32 read
//   2  ids     [*] u32               read_write (decode reads back 4 bytes per token)
//
// Each of the WG invocations scans its own contiguous range of ⌈n/WG⌉ logits (contiguous ranges, not a
// grid stride: llvmpipe streams them faster), then log2(WG) barrier steps merge the (value, index)
// pairs. WG must be a power of two. Loop trips: ⌈n/WG⌉ + log2(WG), kept < 60000 by the host.

{{PARAMS}}

override WG: u32 = 256u;
const NONE: u32 = 0xffffffffu; // "no candidate" (an empty range)

@group(0) @binding(0) var<uniform> p: ArgmaxParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

// True when candidate (v, i) beats the current best (bv, bi).
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  if (i == NONE) {
    return false;
  }
  if (bi == NONE) {
    return true;
  }
  return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return; // the whole workgroup leaves together, so the barriers below stay uniform
  }
  let base = p.logitsOffset + row * p.rowStride;
  let per = (p.n + WG - 1u) / WG;
  let start = min(lid * per, p.n);
  let end = min(start + per, p.n);
  var bv = 0.0;
  var bi = NONE;
  if (start < end) {
    bv = logits[base + start];
    bi = start;
  }
  for (var i = start + 1u; i < end; i++) {
    let v = logits[base + i];
    if (v > bv) {
      bv = v;
      bi = i;
    }
  }
  best_v[lid] = bv;
  best_i[lid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s && better(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
      best_v[lid] = best_v[lid + s];
      best_i[lid] = best_i[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    ids[p.outOffset + row] = best_i[0];
  }
}
