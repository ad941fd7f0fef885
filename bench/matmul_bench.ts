/**
 * `deno bench` for the matmul family: per weight type and shape, the streaming-read roofline (the
 * group's baseline: every bench of a group streams the same weights the same number of times, so
 * "× faster" is 1 / the fraction of the roofline) beside every decode kernel of the version ladder;
 * and prefill (16 tokens) with matmul.wgsl's token blocks against the "rows" kernel. Each iteration
 * streams about 128 MiB of weights in one pass and reads 4 bytes back, so the ≥ 10 ms readback is
 * amortized (napkin maths: 4096 × 4096 f32 is 64 MiB, ≈ 11 ms at 6 GB/s). deno bench times by wall
 * clock; on a shared machine prefer the CPU-time figures of `bench/matmul_report.ts`.
 *
 * ```sh
 * XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan LP_NUM_THREADS=1 deno bench --allow-read --allow-env bench/matmul_bench.ts
 * THINKV_BENCH_SHAPES=4096x4096 THINKV_BENCH_TYPES=q4_0 deno bench --allow-read --allow-env bench/matmul_bench.ts
 * ```
 *
 * The GB/s table with CPU-time figures and the acceptance summary is `bench/matmul_report.ts`.
 *
 * @module
 */

import { Gpu } from "../src/gpu/gpu.ts";
import { MatmulKernel, ROWS_KERNEL_TYPES } from "../src/kernels/matmul.ts";
import { StreamReadKernel } from "../src/kernels/stream_read.ts";
import type { GpuWeight } from "../src/model/gpu_weight.ts";
import { TYPE_INFO } from "../src/model/quant.ts";
import { benchWeight, MATVEC_LADDER } from "./_matmul.ts";

function env(name: string, fallback: string): string {
  try {
    return Deno.env.get(name) ?? fallback;
  } catch {
    return fallback;
  }
}

const SHAPES = env("THINKV_BENCH_SHAPES", "4096x4096,11008x4096").split(",").map((s) =>
  s.split("x").map(Number) as [number, number]
);
const TYPES = env("THINKV_BENCH_TYPES", "f32,f16,q8_0,q4_0,q4_k,q6_k").split(",");
const PREFILL = 16;
const ITERATION_BYTES = 128 * 2 ** 20; // weight bytes streamed per iteration (the same for a whole group)

const ignore = !(await navigator.gpu?.requestAdapter());
const gpu = ignore ? undefined : await Gpu.create();
const stream = gpu ? await StreamReadKernel.create(gpu) : undefined;
const sgOk = !!gpu && gpu.hasSubgroups && gpu.subgroupMinSize >= 8;

/** Weights are uploaded on first use and kept (one shape/type at a time). */
let current: { key: string; w: GpuWeight; x: GPUBuffer; out: GPUBuffer; sinks: GPUBuffer[] } | undefined;
function weightFor(type: number, rows: number, cols: number) {
  const key = `${type}:${rows}x${cols}`;
  if (current?.key === key) return current;
  if (current) {
    for (const c of current.w.chunks) gpu!.free(c.buffer);
    for (const b of [current.x, current.out, ...current.sinks]) gpu!.free(b);
  }
  const w = benchWeight(gpu!, type, rows, cols);
  current = {
    key,
    w,
    x: gpu!.createBuffer("bench x", PREFILL * cols * 4),
    out: gpu!.createBuffer("bench out", PREFILL * rows * 4),
    sinks: w.chunks.map((c) => gpu!.createBuffer("bench sink", stream!.outBytes(c.buffer.size))),
  };
  return current;
}

/**
 * Encodes `repeat` operations in one pass per iteration and reads 4 bytes back; every bench of a
 * group repeats the same number of operations, so deno bench's ratios are throughput ratios.
 */
async function timed(b: Deno.BenchContext, repeat: number, encodeOne: (pass: GPUComputePassEncoder) => void) {
  b.start();
  const enc = gpu!.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < repeat; i++) encodeOne(pass);
  pass.end();
  gpu!.submit(enc);
  await gpu!.read(current!.out, 0, 4);
  b.end();
}

/** Products per iteration for a weight of this type and shape. */
function repeatsFor(type: number, rows: number, cols: number, tokens: number): number {
  const bytes = (rows * cols / TYPE_INFO[type as keyof typeof TYPE_INFO].blockSize) *
    TYPE_INFO[type as keyof typeof TYPE_INFO].blockBytes;
  return Math.max(2, Math.round(ITERATION_BYTES / bytes / tokens));
}

const byName = new Map(Object.values(TYPE_INFO).map((t) => [t.name, t.id]));
for (const [rows, cols] of SHAPES) {
  for (const name of TYPES) {
    const type = byName.get(name)!;
    const group = `decode ${name} ${rows}x${cols}`;
    const repeat = repeatsFor(type, rows, cols, 1);
    const prefillRepeat = Math.max(1, Math.round(repeatsFor(type, rows, cols, PREFILL) / 4));
    Deno.bench({
      name: `stream_read ${name} ${rows}x${cols} (roofline)`,
      group,
      baseline: true,
      ignore,
      n: 8,
      warmup: 1,
      fn: async (b) => {
        const c = weightFor(type, rows, cols);
        await timed(b, repeat, (pass) => {
          c.w.chunks.forEach((ch, i) => stream!.encode(pass, ch.buffer, ch.buffer.size, c.sinks[i]));
        });
      },
    });
    for (const rung of MATVEC_LADDER) {
      let mm: MatmulKernel | undefined;
      const noRows = rung.opts.matvec === "rows" && !ROWS_KERNEL_TYPES.includes(type); // would be v1 again
      Deno.bench({
        name: `${rung.name} ${name} ${rows}x${cols}`,
        group,
        ignore: ignore || (rung.subgroups && !sgOk) || noRows,
        n: 8,
        warmup: 1,
        fn: async (b) => {
          mm ??= await MatmulKernel.create(gpu!, { ...rung.opts, types: [type] });
          const c = weightFor(type, rows, cols);
          await timed(b, repeat, (pass) => mm!.encode(pass, c.out, c.x, c.w, 1));
        },
      });
    }
    for (
      const [label, opts] of [["v1 matmul tb8", { matvec: "v1" as const }], ["v4 rows t8", {
        matvec: "rows" as const,
      }]] as const
    ) {
      let mm: MatmulKernel | undefined;
      Deno.bench({
        name: `prefill ${PREFILL} tokens ${label} ${name} ${rows}x${cols}`,
        group: `prefill ${name} ${rows}x${cols}`,
        baseline: label.startsWith("v1"),
        ignore: ignore || (label.startsWith("v4") && !ROWS_KERNEL_TYPES.includes(type)),
        n: 4,
        warmup: 1,
        fn: async (b) => {
          mm ??= await MatmulKernel.create(gpu!, { ...opts, types: [type] });
          const c = weightFor(type, rows, cols);
          await timed(b, prefillRepeat, (pass) => mm!.encode(pass, c.out, c.x, c.w, PREFILL));
        },
      });
    }
  }
}
