/**
 * Shared pieces of the matmul benchmarks: fast random weights of any type, the kernel variants of the
 * version ladder, and interleaved timing by wall clock and by process CPU time.
 *
 * CPU time matters on llvmpipe: the kernels run on the CPU, and on a shared 2-vCPU machine the wall
 * clock also counts the time other processes hold the cores. With LP_NUM_THREADS=1, CPU-seconds
 * are core-seconds, so "GB/s per CPU-second" is the per-core figure whatever else runs; the wall
 * figure is what a user sees.
 *
 * @module
 */

import process from "node:process";
import type { Gpu } from "../src/gpu/gpu.ts";
import type { MatmulKernelOptions } from "../src/kernels/matmul.ts";
import { type GpuWeight, uploadWeight } from "../src/model/gpu_weight.ts";
import { GgmlType, tensorBytes, typeInfo } from "../src/model/quant.ts";

/** Random GGUF bytes of a `[rows, cols]` tensor, fast enough for 45M-weight matrices: random
 * words with every scale field set to a small finite f16, values in [−1, 1) for F32, finite halves
 * for F16/BF16. Speed does not depend on the values. */
export function benchWeightBytes(type: number, rows: number, cols: number, seed = 1): Uint8Array {
  const n = tensorBytes(type, rows * cols);
  const bytes = new Uint8Array(Math.ceil(n / 4) * 4);
  const u = new Uint32Array(bytes.buffer);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < u.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u[i] = s >>> 0;
  }
  const t = typeInfo(type);
  if (type === GgmlType.F32) {
    const f = new Float32Array(bytes.buffer);
    for (let i = 0; i < f.length; i++) f[i] = u[i] / 2147483648 - 1;
  } else if (type === GgmlType.F16 || type === GgmlType.BF16) {
    for (let i = 0; i < u.length; i++) u[i] &= type === GgmlType.F16 ? 0xbbffbbff : 0xbf7fbf7f;
  } else {
    const dv = new DataView(bytes.buffer);
    for (let b = 0; b < n / t.blockBytes; b++) {
      const p = b * t.blockBytes;
      if (type === GgmlType.Q6_K) dv.setUint16(p + 208, 0x2000, true);
      else {
        dv.setUint16(p, 0x2000, true);
        if (type === GgmlType.Q4_K) dv.setUint16(p + 2, 0x2000, true);
      }
    }
  }
  return bytes.subarray(0, n);
}

/** Uploads a random benchmark weight. */
export function benchWeight(gpu: Gpu, type: number, rows: number, cols: number, seed = 1): GpuWeight {
  return uploadWeight(
    gpu,
    `bench ${typeInfo(type).name} ${rows}x${cols}`,
    type,
    rows,
    cols,
    benchWeightBytes(type, rows, cols, seed),
  );
}

/** A rung of the matvec version ladder: a name and the MatmulKernel options that select it. */
export interface MatvecRung {
  /** Short name, e.g. `"v3 rows/subgroup"`. */
  name: string;
  /** Options for MatmulKernel.create. */
  opts: MatmulKernelOptions;
  /** Needs a device with subgroups of ≥ 8 lanes. */
  subgroups?: boolean;
}

/** The decode kernels, oldest first (see wgsl/matmul_rows.wgsl). */
export const MATVEC_LADDER: MatvecRung[] = [
  { name: "v1 matmul tb1", opts: { matvec: "v1" } },
  { name: "v2 rows/uniform", opts: { matvec: "rows", rowsInput: "uniform" } },
  { name: "v3 rows/subgroup", opts: { matvec: "rows", rowsInput: "subgroup" }, subgroups: true },
  { name: "wg (GPU design)", opts: { matvec: "wg" } },
];

/** One measured sample: seconds per operation by wall clock and by process CPU time. */
export interface Sample {
  /** Wall-clock seconds per operation. */
  wall: number;
  /** Process CPU seconds per operation. */
  cpu: number;
}

/**
 * Times `encodeOne` (which encodes one operation into a pass): each sample encodes `repeat`
 * operations in one pass, submits, and reads 4 bytes of `sink` back (one ≥ 10 ms readback amortized
 * over the repeats).
 */
export async function sample(
  gpu: Gpu,
  encodeOne: (pass: GPUComputePassEncoder) => void,
  repeat: number,
  sink: GPUBuffer,
): Promise<Sample> {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < repeat; i++) encodeOne(pass);
  pass.end();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  gpu.submit(enc);
  await gpu.read(sink, 0, 4);
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall: wall / repeat, cpu: (c.user + c.system) / 1e6 / repeat };
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs `cases` in interleaved rounds (case 1, case 2, …, case 1, …) so that a noisy neighbour hurts
 * all of them alike; each sample lasts about `targetSeconds`. Returns the per-case medians.
 */
export async function interleaved(
  gpu: Gpu,
  cases: ((pass: GPUComputePassEncoder) => void)[],
  opts: { rounds?: number; targetSeconds?: number } = {},
): Promise<Sample[]> {
  const sink = gpu.createBuffer("bench sink", 16);
  const rounds = opts.rounds ?? 5;
  const target = opts.targetSeconds ?? 0.25;
  try {
    const repeats: number[] = [];
    for (const c of cases) {
      const s = await sample(gpu, c, 2, sink); // warm-up: compiles, first touch of the weights
      repeats.push(Math.max(2, Math.min(200, Math.round(target / Math.max(s.wall - 0.005, 1e-4)))));
    }
    const samples: Sample[][] = cases.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < cases.length; i++) samples[i].push(await sample(gpu, cases[i], repeats[i], sink));
    }
    return samples.map((s) => ({ wall: median(s.map((x) => x.wall)), cpu: median(s.map((x) => x.cpu)) }));
  } finally {
    gpu.free(sink);
  }
}

/** `LP_NUM_THREADS` and `DENO_WEBGPU_BACKEND` as set (for report headers). */
export function envLine(gpu: Gpu): string {
  const get = (k: string) => {
    try {
      return Deno.env.get(k);
    } catch {
      return undefined;
    }
  };
  return `${gpu.adapterName} · DENO_WEBGPU_BACKEND=${get("DENO_WEBGPU_BACKEND") ?? "(default)"} · ` +
    `LP_NUM_THREADS=${get("LP_NUM_THREADS") ?? "(unset)"} · subgroups ${
      gpu.hasSubgroups ? `yes (${gpu.subgroupMinSize}+ lanes)` : "no"
    } · timestamp-query ${gpu.hasTimestamps ? "yes" : "no"}`;
}
