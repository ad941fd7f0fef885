/**
 * Plain-TypeScript reference of `wgsl/sample.wgsl`: the same thresholds (exact k-th largest key, the
 * top-p key built bit by bit), the same hash-based draw and the same chunked f32 summation order, so
 * GPU and reference pick the same token except when a draw falls within rounding of a boundary.
 *
 * @module
 */

const f = Math.fround;

/** Order-preserving u32 key of an f32 (as in the shader). */
function key(v: number): number {
  const b = new Uint32Array(new Float32Array([v]).buffer)[0];
  return (b & 0x80000000) !== 0 ? (~b) >>> 0 : (b | 0x80000000) >>> 0;
}

function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * The shader's random float for (seed, step).
 *
 * @example
 * ```ts
 * import { rand01 } from "./sample.ts";
 * console.log(rand01(42, 0) === rand01(42, 0)); // true
 * ```
 */
export function rand01(seed: number, step: number): number {
  return (pcg((seed ^ pcg((step + 0x9e3779b9) >>> 0)) >>> 0) >>> 8) / 16777216;
}

/**
 * Reference of the GPU sampler over one logits row.
 *
 * @example
 * ```ts
 * import { sampleRef } from "./sample.ts";
 * const id = sampleRef(new Float32Array([0, 9, 1]), { temperature: 1, topK: 1, topP: 1, seed: 3, step: 0 });
 * console.log(id); // 1
 * ```
 */
export function sampleRef(
  logits: Float32Array,
  o: { temperature: number; topK: number; topP: number; seed: number; step: number; workgroupSize?: number },
): number {
  const n = logits.length;
  const wg = o.workgroupSize ?? 256;
  const per = Math.ceil(n / wg);
  const keys = Array.from(logits, key);
  const m = logits.reduce((a, b) => Math.max(a, b), -3e38);
  const invT = f(1 / o.temperature);
  const weight = (i: number) => f(Math.exp(f(f(logits[i] - m) * invT)));
  const count = (k: number) => keys.reduce((c, x) => c + (x >= k ? 1 : 0), 0);
  // Masses are summed per invocation range, then over ranges in the shader's tree order.
  const chunkMass = (thr: number) =>
    Array.from({ length: wg }, (_, t) => {
      let s = 0;
      for (let i = Math.min(t * per, n); i < Math.min(t * per + per, n); i++) {
        if (keys[i] >= thr) s = f(s + weight(i));
      }
      return s;
    });
  const treeSum = (v: number[]) => {
    const a = v.slice();
    for (let s = wg / 2; s > 0; s = Math.floor(s / 2)) for (let l = 0; l < s; l++) a[l] = f(a[l] + a[l + s]);
    return a[0];
  };
  let kKey = 0;
  if (o.topK > 0 && o.topK < n) {
    for (let bit = 31; bit >= 0; bit--) {
      const cand = (kKey | (1 << bit)) >>> 0;
      if (count(cand) >= o.topK) kKey = cand;
    }
  }
  let thr = kKey;
  if (o.topP < 1) {
    const target = f(f(o.topP) * treeSum(chunkMass(kKey)));
    let pKey = 0;
    for (let bit = 31; bit >= 0; bit--) {
      const cand = (pKey | (1 << bit)) >>> 0;
      if (treeSum(chunkMass(Math.max(cand, kKey))) >= target) pKey = cand;
    }
    thr = Math.max(pKey, kKey);
  }
  const chunks = chunkMass(thr);
  let total = 0;
  for (const c of chunks) total = f(total + c);
  let r = f(rand01(o.seed, o.step) * total);
  let chosen = -1;
  let last = 0;
  chunks.forEach((c, t) => {
    if (c > 0) {
      last = t;
      if (chosen < 0) {
        if (r < c) chosen = t;
        else r = f(r - c);
      }
    }
  });
  if (chosen < 0) {
    chosen = last;
    r = chunks[last];
  }
  const start = Math.min(chosen * per, n);
  let pick = start;
  for (let i = start; i < Math.min(start + per, n); i++) {
    if (keys[i] >= thr) {
      pick = i;
      const w = weight(i);
      if (r < w) break;
      r = f(r - w);
    }
  }
  return pick;
}
