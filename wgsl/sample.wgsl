// sample.wgsl — seeded temperature / top-k / top-p sampling of one logits row, on the GPU, so decode
// can feed the sampled id straight into the next step's embedding lookup (no readback per token).
//
// Entry point `main`, one workgroup (WG invocations, a power of two):
//   ids[outOffset] = a token drawn from softmax(logits / temperature) restricted to
//     1. top-k: the tokens whose logit is ≥ the k-th largest logit (ties at the k-th value all stay);
//     2. top-p: of those, the tokens whose logit is ≥ the largest threshold u such that the kept
//        tokens' probability mass (after temperature) is still ≥ topP;
//   drawn with r = rand(seed, step) · mass, scanning candidates in index order.
//   Temperature must be > 0 (greedy decoding uses argmax.wgsl).
//
// Bindings: 0 p SampleParams (uniform), 1 logits [n] f32 from logitsOffset (read), 2 ids u32 (read_write).
//
// Thresholds are found exactly by building the order-preserving u32 key of the threshold logit bit by
// bit (32 steps, each a count or a mass over all tokens), so no sort is needed. Each invocation scans
// its own contiguous ⌈n/WG⌉ logits; sums are reduced in a fixed tree order, so results are
// deterministic. Loop trips per invocation ≈ 66·⌈n/WG⌉ + 64·log2(WG), kept < 60000 by the host.

{{PARAMS}}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> pick_thread: u32;
var<workgroup> pick_rest: f32;

// Order-preserving map of an f32 to a u32: a < b ⇔ key(a) < key(b).
fn key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// PCG hash (O'Neill), for the per-step random draw.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// A float in [0, 1) from (seed, step): 24 random bits.
fn rand01(seed: u32, step: u32) -> f32 {
  return f32(pcg(seed ^ pcg(step + 0x9e3779b9u)) >> 8u) * (1.0 / 16777216.0);
}

fn sum_f(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red_f[lid] = red_f[lid] + red_f[lid + s];
    }
    workgroupBarrier();
  }
  let total = red_f[0];
  workgroupBarrier();
  return total;
}

fn sum_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red_u[lid] = red_u[lid] + red_u[lid + s];
    }
    workgroupBarrier();
  }
  let total = red_u[0];
  workgroupBarrier();
  return total;
}

fn max_f(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red_f[lid] = max(red_f[lid], red_f[lid + s]);
    }
    workgroupBarrier();
  }
  let m = red_f[0];
  workgroupBarrier();
  return m;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let per = (p.n + WG - 1u) / WG;
  let start = min(lid * per, p.n);
  let end = min(start + per, p.n);
  let base = p.logitsOffset;

  var local_max = -3.0e38;
  for (var i = start; i < end; i++) {
    local_max = max(local_max, logits[base + i]);
  }
  let m = max_f(lid, local_max);
  let inv_t = 1.0 / p.temperature;

  // top-k: the largest key K with count(key ≥ K) ≥ k.
  var k_key = 0u;
  if (p.topK > 0u && p.topK < p.n) {
    for (var bit = 31i; bit >= 0i; bit--) {
      let cand = k_key | (1u << u32(bit));
      var c = 0u;
      for (var i = start; i < end; i++) {
        c += select(0u, 1u, key(logits[base + i]) >= cand);
      }
      if (sum_u(lid, c) >= p.topK) {
        k_key = cand;
      }
    }
  }

  // top-p: the largest key P (≥ k_key) whose kept mass is still ≥ topP · (mass of the top-k set).
  var thr = k_key;
  if (p.topP < 1.0) {
    var z = 0.0;
    for (var i = start; i < end; i++) {
      let l = logits[base + i];
      z += select(0.0, exp((l - m) * inv_t), key(l) >= k_key);
    }
    let goal = p.topP * sum_f(lid, z);
    var p_key = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let cand = p_key | (1u << u32(bit));
      let t = max(cand, k_key);
      var s = 0.0;
      for (var i = start; i < end; i++) {
        let l = logits[base + i];
        s += select(0.0, exp((l - m) * inv_t), key(l) >= t);
      }
      if (sum_f(lid, s) >= goal) {
        p_key = cand;
      }
    }
    thr = max(p_key, k_key);
  }

  // Draw: find the invocation whose range holds the point r, then the token inside it.
  var mine = 0.0;
  for (var i = start; i < end; i++) {
    let l = logits[base + i];
    mine += select(0.0, exp((l - m) * inv_t), key(l) >= thr);
  }
  red_f[lid] = mine;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var t = 0u; t < WG; t++) {
      total += red_f[t];
    }
    var r = rand01(p.seed, p.step) * total;
    var chosen = WG;
    var last = 0u;
    for (var t = 0u; t < WG; t++) {
      let c = red_f[t];
      if (c > 0.0) {
        last = t;
        if (chosen == WG) {
          if (r < c) {
            chosen = t;
          } else {
            r -= c;
          }
        }
      }
    }
    if (chosen == WG) {
      chosen = last; // r ran past the end by rounding: take the last candidate range
      r = red_f[last];
    }
    pick_thread = chosen;
    pick_rest = r;
  }
  workgroupBarrier();
  if (lid == pick_thread) {
    var r = pick_rest;
    var pick = start; // the last candidate seen, in case rounding runs r past the range
    for (var i = start; i < end; i++) {
      let l = logits[base + i];
      if (key(l) >= thr) {
        pick = i;
        let w = exp((l - m) * inv_t);
        if (r < w) {
          break;
        }
        r -= w;
      }
    }
    ids[p.outOffset] = pick;
  }
}
