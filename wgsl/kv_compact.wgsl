// kv_compact.wgsl — compaction of the kept prompt tokens and key channels into the compressed
// segments, at the end of a compressing prefill. Kept token j (0 ≤ j < kept, position order) comes from
// prompt row  tokens[kvh, j]  if j < selected,  else  windowStart + (j − selected)  (the window).
// The first thinTokens kept tokens go to the thin segment, the rest to the start of the tail.
//
// Layouts (f32 unless said; per layer):
//   kStage, vStage  [nKvHeads, capacity, headDim]        uncompressed prompt keys / values
//   tokens          [nKvHeads, selStride] u32            prefix tokens kept by score, ascending
//   channels        [nKvHeads, nKeep] u32                ThinK kept channels, ascending
//   kThin           [nKvHeads, thinTokens, thinStride]   kept channels of the thin keys; channels
//                                                        nKeep … thinStride−1 (padding) are zero
//   vThin           [nKvHeads, thinTokens, headDim]
//   kTail, vTail    [nKvHeads, tailCapacity, headDim]    rows 0 … kept − thinTokens − 1 written here
//
// Entry point:
//   compact   one invocation per (KV head, kept token j)
//             bindings 0 CompactParams, 1 kStage (read), 2 vStage (read), 3 tokens (read), 4 channels (read),
//                      5 kThin (rw), 6 vThin (rw), 7 kTail (rw), 8 vTail (rw)
//
// Loop trips per invocation (the host asserts < 60000): max(thinStride, headDim) + headDim/4.

{{COMPACT_PARAMS}}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: CompactParams;
@group(0) @binding(1) var<storage, read> k_stage: array<f32>;
@group(0) @binding(2) var<storage, read> v_stage: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> tokens: array<u32>;
@group(0) @binding(4) var<storage, read> channels: array<u32>;
@group(0) @binding(5) var<storage, read_write> k_thin: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_thin: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> k_tail: array<f32>;
@group(0) @binding(8) var<storage, read_write> v_tail: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn compact(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= p.nKvHeads * p.kept) {
    return;
  }
  let j = id % p.kept;
  let kvh = id / p.kept;
  var src = p.windowStart + j - p.selected;
  if (j < p.selected) {
    src = tokens[kvh * p.selStride + j];
  }
  let d4 = p.headDim / 4u;
  let kRow = (kvh * p.capacity + src) * p.headDim;
  let vRow = (kvh * p.capacity + src) * d4;
  if (j < p.thinTokens) {
    let dst = (kvh * p.thinTokens + j) * p.thinStride;
    for (var i = 0u; i < p.thinStride; i++) {
      var x = 0.0;
      if (i < p.nKeep) {
        x = k_stage[kRow + channels[kvh * p.nKeep + i]];
      }
      k_thin[dst + i] = x;
    }
    let vDst = (kvh * p.thinTokens + j) * d4;
    for (var g = 0u; g < d4; g++) {
      v_thin[vDst + g] = v_stage[vRow + g];
    }
  } else {
    let r = j - p.thinTokens;
    let dst = (kvh * p.tailCapacity + r) * p.headDim;
    for (var c = 0u; c < p.headDim; c++) {
      k_tail[dst + c] = k_stage[kRow + c];
    }
    let vDst = (kvh * p.tailCapacity + r) * d4;
    for (var g = 0u; g < d4; g++) {
      v_tail[vDst + g] = v_stage[vRow + g];
    }
  }
}
