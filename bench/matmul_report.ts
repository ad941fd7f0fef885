/**
 * The matvec report: GB/s and weights/s of every decode kernel of the version ladder, per weight type,
 * beside the streaming-read roofline on the same buffers, as a compact table the README can quote.
 *
 * ```sh
 * XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan LP_NUM_THREADS=1 \
 *   deno run --allow-read --allow-env bench/matmul_report.ts
 * deno run --allow-read --allow-env bench/matmul_report.ts --shapes 4096x4096 --types q4_0 --sweep
 * ```
 *
 * Options: `--shapes RxC,…` (default 4096x4096,11008x4096), `--types f32,…` (default f32, f16, q8_0,
 * q4_0, q4_k, q6_k), `--rungs v1,v2,v3,wg` (default v1,v2,v3), `--rounds N` (default 5), `--sweep`
 * (also 1–4 rows per invocation for the "rows" kernels), `--tokens N` (prefill: N tokens per product,
 * comparing token blocks; default 1), `--json` (one JSON object per line).
 *
 * Columns: GB/s and G weights/s per CPU-second (per core with LP_NUM_THREADS=1, robust to other
 * processes) and by wall clock; "% read" = GB/s over the streaming read of the same buffers; "× f32"
 * = weights/s over the best F32 decode kernel of the same shape. Napkin maths: a 4096 × 4096 f32
 * matrix is 64 MiB; at 6 GB/s one product takes 11 ms, so 8 per submit amortize the ≥ 10 ms readback.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/gpu.ts";
import { MatmulKernel } from "../src/kernels/matmul.ts";
import { StreamReadKernel } from "../src/kernels/stream_read.ts";
import { type GpuWeight, weightBytes } from "../src/model/gpu_weight.ts";
import { GgmlType, TYPE_INFO } from "../src/model/quant.ts";
import { benchWeight, envLine, interleaved, MATVEC_LADDER, type MatvecRung, type Sample } from "./_matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "4096x4096,11008x4096" },
    types: { type: "string", default: "f32,f16,q8_0,q4_0,q4_k,q6_k" },
    rungs: { type: "string", default: "v1,v2,v3" },
    rounds: { type: "string", default: "5" },
    sweep: { type: "boolean", default: false },
    tokens: { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});

const byName = new Map(Object.values(TYPE_INFO).map((t) => [t.name, t.id]));
const types = values.types!.split(",").map((n) => {
  const id = byName.get(n.trim().toLowerCase());
  if (id === undefined) throw new RangeError(`unknown type "${n}" (known: ${[...byName.keys()].join(", ")})`);
  return id;
});
const shapes = values.shapes!.split(",").map((s) => s.split("x").map(Number) as [number, number]);
const rungPrefix = values.rungs!.split(",").map((r) => r.trim());
const rounds = Number(values.rounds);
const nTokens = Number(values.tokens);

const gpu = await Gpu.create();
const sgOk = gpu.hasSubgroups && gpu.subgroupMinSize >= 8;
let rungs: MatvecRung[] = MATVEC_LADDER.filter((r) => rungPrefix.some((p) => r.name.startsWith(p)))
  .filter((r) => !r.subgroups || sgOk);
if (nTokens > 1) {
  // Prefill: matmul.wgsl's token blocks against the "rows" kernel's (x read by subgroup broadcast, or
  // by every lane without subgroups).
  rungs = [
    { name: "v1 matmul tb8", opts: { matvec: "v1" } },
    ...[4, 8, 16].map((t) => ({
      name: `v4 rows t${t}`,
      opts: { matvec: "rows" as const, rowsTokenBlock: t },
    })),
  ];
}
if (values.sweep) {
  rungs = rungs.flatMap((r) =>
    r.opts.matvec === "rows"
      ? [1, 2, 3, 4].map((n) => ({
        ...r,
        name: `${r.name} r${n}`,
        opts: { ...r.opts, rowsPerInvocation: n },
      }))
      : [r]
  );
}
const stream = await StreamReadKernel.create(gpu);

interface Row {
  shape: string;
  type: string;
  kernel: string;
  key: string;
  mib: number;
  cpu: Sample["cpu"];
  wall: Sample["wall"];
  gbsCpu: number;
  gbsWall: number;
  gwsCpu: number;
  gwsWall: number;
  ofRead: number;
  xF32: number;
}

if (!values.json) {
  console.log(
    `# matmul report, ${
      nTokens === 1 ? "decode (1 token)" : `prefill (${nTokens} tokens: Gw/s counts weight·token products)`
    }: ${envLine(gpu)}`,
  );
}
const all: Row[] = [];
for (const [rows, cols] of shapes) {
  const shape = `${rows}x${cols}`;
  let f32Best = 0;
  for (const type of types) {
    const name = TYPE_INFO[type as GgmlType].name;
    const w: GpuWeight = benchWeight(gpu, type, rows, cols);
    const x = gpu.createBuffer("bench x", nTokens * cols * 4);
    const out = gpu.createBuffer("bench out", nTokens * rows * 4);
    const bytes = weightBytes(w);
    const sinks = w.chunks.map((c) => gpu.createBuffer("stream out", stream.outBytes(c.buffer.size)));
    const kernels = await Promise.all(
      rungs.map((r) => MatmulKernel.create(gpu, { ...r.opts, types: [type] })),
    );
    const cases = [
      (pass: GPUComputePassEncoder) =>
        w.chunks.forEach((c, i) => stream.encode(pass, c.buffer, c.buffer.size, sinks[i])),
      ...kernels.map((mm) => (pass: GPUComputePassEncoder) => mm.encode(pass, out, x, w, nTokens)),
    ];
    const res = await interleaved(gpu, cases, { rounds });
    const [read, ...mv] = res;
    const mk = (kernel: string, key: string, s: Sample): Row => ({
      shape,
      type: name,
      kernel,
      key,
      mib: bytes / 2 ** 20,
      cpu: s.cpu,
      wall: s.wall,
      gbsCpu: bytes / s.cpu / 1e9,
      gbsWall: bytes / s.wall / 1e9,
      gwsCpu: (kernel === "stream_read" ? 1 : nTokens) * rows * cols / s.cpu / 1e9,
      gwsWall: (kernel === "stream_read" ? 1 : nTokens) * rows * cols / s.wall / 1e9,
      ofRead: read.cpu / s.cpu,
      xF32: 0,
    });
    const table = [mk("stream_read", `stream_read:per${stream.vec4PerInvocation}`, read)];
    mv.forEach((s, i) => table.push(mk(rungs[i].name, kernels[i].plan(w, nTokens).key, s)));
    if (type === GgmlType.F32) f32Best = Math.max(...table.slice(1).map((r) => r.gwsCpu));
    for (const r of table.slice(1)) r.xF32 = f32Best ? r.gwsCpu / f32Best : NaN;
    for (const r of table) {
      all.push(r);
      if (values.json) console.log(JSON.stringify(r));
    }
    if (!values.json) printTable(table);
    for (const c of w.chunks) gpu.free(c.buffer);
    for (const b of [x, out, ...sinks]) gpu.free(b);
  }
}
if (!values.json) printSummary(all);
gpu.destroy();

function printTable(rows: Row[]): void {
  const first = rows[0];
  console.log(`\n${first.shape} ${first.type} (${first.mib.toFixed(1)} MiB)`);
  console.log(
    `  ${"kernel".padEnd(22)} ${"pipeline".padEnd(30)} ${"ms/cpu".padStart(7)} ${"GB/s".padStart(6)} ${
      "Gw/s".padStart(6)
    } ${"%read".padStart(6)} ${"×f32".padStart(5)}  ${"wall: ms".padStart(8)} ${"GB/s".padStart(6)} ${
      "Gw/s".padStart(6)
    }`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.kernel.padEnd(22)} ${r.key.padEnd(30)} ${(r.cpu * 1e3).toFixed(2).padStart(7)} ${
        r.gbsCpu.toFixed(2).padStart(6)
      } ${r.gwsCpu.toFixed(2).padStart(6)} ${(r.ofRead * 100).toFixed(0).padStart(5)}% ${
        r.kernel === "stream_read" ? "".padStart(5) : r.xF32.toFixed(2).padStart(5)
      }  ${(r.wall * 1e3).toFixed(2).padStart(8)} ${r.gbsWall.toFixed(2).padStart(6)} ${
        r.gwsWall.toFixed(2).padStart(6)
      }`,
    );
  }
}

/** The acceptance lines: best decode kernel per type and shape. */
function printSummary(rows: Row[]): void {
  console.log("\nsummary (best decode kernel per type; per CPU-second, wall in brackets):");
  for (const shape of new Set(rows.map((r) => r.shape))) {
    const read = rows.find((r) => r.shape === shape && r.kernel === "stream_read")!;
    const parts = [`stream_read ${read.gbsCpu.toFixed(2)} GB/s [${read.gbsWall.toFixed(2)}]`];
    for (const type of new Set(rows.filter((r) => r.shape === shape).map((r) => r.type))) {
      const best = rows.filter((r) => r.shape === shape && r.type === type && r.kernel !== "stream_read")
        .sort((a, b) => b.gwsCpu - a.gwsCpu)[0];
      const own = rows.find((r) => r.shape === shape && r.type === type && r.kernel === "stream_read")!;
      parts.push(
        `${type} ${best.gbsCpu.toFixed(2)} GB/s = ${(100 * own.cpu / best.cpu).toFixed(0)}% of read, ` +
          `${best.gwsCpu.toFixed(2)} Gw/s = ${best.xF32.toFixed(2)}× f32 [${best.gwsWall.toFixed(2)} Gw/s]`,
      );
    }
    console.log(`  ${shape}: ${parts.join("\n    ")}`);
  }
}
