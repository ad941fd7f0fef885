// matmul_rows: out[t, row] = Σ_c W[row, c] · x[t, c] for CPU adapters (llvmpipe, SwiftShader, WARP),
// decode (TOKENS = 1) and prefill alike. On llvmpipe every storage-buffer load is a loop over the
// SIMD lanes, so loads, not arithmetic, set the speed: each invocation streams ROWS whole rows of
// one weight chunk in column groups of aligned vec4 words, and x is shared between lanes instead of
// being loaded by each. The type's file (matmul_rows_<type>.wgsl) supplies the group: `mvLoad`
// (its weights as one value), `mvDot` (their dot product with one group of x, as 4 partial sums)
// and MV_XSCALE (a per-component scale x gets once per load: Q4_0/Q4_K pre-scale x so that nibbles
// need no shifts). The host generates the unrolled loads and calls (src/kernels/matmul.ts):
// llvmpipe keeps locally indexed arrays in memory unless every index is a constant.
//
// Version ladder (llvmpipe, Vulkan lavapipe, LP_NUM_THREADS=1, 4096 × 4096, per CPU-second; the
// plain streaming read stream_read.wgsl reaches 6.1–6.3 GB/s on the same core; reproduce with
// bench/matmul_report.ts):
// v1 (matmul.wgsl, TB = 1): one row per invocation, load4 per 4 weights, x from a storage buffer
//    read by every lane: f32 1.9–2.7 GB/s (0.47–0.68 G weights/s), q8_0 0.61, q4_0 0.59–0.66,
//    q4_k 0.37, q6_k 0.38 G weights/s.
// v2 x in a uniform buffer (staged by matmul_stage.wgsl, one extra dispatch), 2–4 rows per
//    invocation, vec4 loads: f32 4.0–4.2 GB/s (63–72%), q4_0 with 8 blocks per 10 vec4 loads
//    3.1 G weights/s. The uniform x is still gathered per lane: Mesa 22's llvmpipe scalarizes a load
//    only when its offset is a compile-time constant.
// v3 (with `subgroups`): each lane loads a different vec4 of x and subgroupBroadcast(…, k) with a
//    constant k hands it to the others (an extractelement on a CPU): one x load per 8 vec4 instead
//    of 8, read straight from the activation buffer (no staging). f32 5.4 GB/s (86–92% of the
//    streaming read) with 1 row per invocation; q8_0 2.9–3.2 and q4_0 3.6–3.8 G weights/s with 2–3
//    rows (2.2× and 2.7× the f32 weights/s). Tried and dropped: lanes of a subgroup splitting one
//    row (coalesced, 3.0 GB/s), 2–4 rows for f32 (more row streams, −4% to −25%), the Q4_0
//    "q·x − 8·Σx" trick (±3%), Q4_0 masks with pre-scaled x instead of shifts (+0–7%, kept), Q8_0
//    via unpack4xI8 vs shifts (same).
// v4 prefill: TOKENS tokens per invocation; each group's weights are loaded once (mvLoad) and used
//    for every token (mvDot): 16-token products at 2048 × 2048 go from 1.2 G weight·tokens/s (v1,
//    TB = 8) to 6.5 (f32, 2 rows), 7.3 (q4_0, 3 rows), 8.1 (q8_0, 4 rows) per core.
// v5 K-quants: Q4_K reads a whole 144-byte block as 9 vec4 and decodes its 6-bit scales once per
//    32 weights (d·sc·Σq·x − dmin·m·Σx): 0.37 → 3.7 G weights/s; Q6_K (53 words per block, not
//    vec4-aligned) reads words and builds four 6-bit q per 3 word operations: 0.38 → 2.0. Written
//    as loops over the block's words they ran 3× slower than v1 (dynamically indexed local arrays).
// v6 K-quant prefill rows (2048 × 2048, 16-token products, 8 tokens per invocation, G weight·tokens/s
//    per core; `matmul_report.ts --tokens 16 --sweep`): Q4_K 4.25 (1 row) → 5.99 (2) → 6.41 (3) →
//    7.00 (4 rows); Q6_K 4.43 → 4.82 → 5.22 → 5.35; v1 (tb8) 1.0 for both. Unrolled rows cost
//    compile time, paid at the first prefill (lavapipe compiles lazily; then Mesa's disk cache):
//    1.0, 1.7, 3.0, 3.3 s per pipeline, and a model has a pipeline per type and fusion. Kept: Q4_K
//    2 rows (+41% for +0.7 s), Q6_K 1 row (+9% was not worth +0.9 s).
//
// Without subgroups (GL, or a subgroup size below 8) x is the uniform staging buffer of v2 for
// decode; prefill uses matmul.wgsl unless asked for (x from the storage buffer by every lane: only
// 1.2–1.5× faster than v1, and 10–30 s to compile per type on GL).
//
// Fusions (src/kernels/matmul_fusion.ts): x arrives through xIn and is multiplied by xGain (a fused
// RMSNorm's gain) before the broadcast; Σx² is summed by the lanes that load x (subgroupAdd at the
// end with subgroups) and the store scales by xScale and writes or adds (outStore). With the uniform
// staging buffer the stage dispatch applies the prologue and only the store is fused here.
//
// Bindings: 0 uniform P, 1 weight chunk (the type file), 2 x (storage from xOffset, or the uniform
// staging buffer from 0), 3 out, 4 the fusion's Aux (storage x only). out[t, row] is written at outOffset + t·outStride + row (the host
// folds the chunk's rowStart into outOffset). Workgroup (x, y) covers rows WG·ROWS·x… and tokens
// TOKENS·y…; rows or tokens past the end are computed on clamped indices (so every lane of a
// subgroup stays active and shares x) and not stored. Per-invocation loop trips: cols / group
// columns (≤ 512 for a 16384-column row), far below llvmpipe's 65 535.

{{PARAMS}}

@group(0) @binding(0) var<uniform> P: MatmulParams;
{{X_DECL}}
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
{{FUSION}}
override WG: u32 = 64;
var<private> lane: u32;

#include "rows_type.wgsl"
#include "rope_angle.wgsl"

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  {{LANE_PARAM}}
) {
  {{LANE_INIT}}
  let r0 = (wid.x * WG + lid) * {{ROWS}}u;
  let t0 = wid.y * {{TOKENS}}u;
  let lastRow = P.rows - 1u;
  let lastToken = P.nTokens - 1u;
  let cols4 = P.cols >> 2u;
  let xBase = P.xOffset >> 2u; // vec4 index of x[0, 0] (0 for the staged uniform copy)
  var xs: array<vec4<f32>, MV_X4>; // x of one column group
  {{DECLS}}
  for (var g = 0u; g < P.cols / MV_GROUP_COLS; g++) {
    let c4 = g * MV_X4;
    {{BODY}}
  }
  {{STORES}}
}
