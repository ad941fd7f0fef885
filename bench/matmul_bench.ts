/**
 * Matmul throughput per weight type: decode (1 token) and prefill (16 tokens) on a 2048 × 2048
 * weight, 8 products per submit so the ≥ 10 ms readback floor is amortized. Napkin math: weights/s =
 * 8 · 2048² / time; e.g. 8 · 4.2M weights in 100 ms is 0.34 G weights/s.
 *
 * Run: `XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno bench --allow-read --allow-env bench/matmul_bench.ts`
 */
import { Gpu } from "../src/gpu/gpu.ts";
import { MatmulKernel } from "../src/kernels/matmul.ts";
import { uploadWeight } from "../src/model/gpu_weight.ts";
import { GgmlType, typeInfo } from "../src/model/quant.ts";
import { randomWeightBytes } from "../src/ref/matmul.ts";

const ROWS = 2048, COLS = 2048, REPEAT = 8, PREFILL = 16;
const ignore = !(await navigator.gpu?.requestAdapter());
const gpu = ignore ? undefined : await Gpu.create();
const mm = gpu ? await MatmulKernel.create(gpu) : undefined;

for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K]) {
  for (const nTokens of [1, PREFILL]) {
    Deno.bench({
      name: `${typeInfo(type).name} ${ROWS}x${COLS} × ${nTokens} token(s), ${REPEAT} per submit`,
      group: nTokens === 1 ? "decode" : "prefill",
      baseline: type === GgmlType.F32,
      ignore,
      async fn(b) {
        const w = uploadWeight(gpu!, "w", type, ROWS, COLS, randomWeightBytes(type, ROWS, COLS, 1));
        const x = gpu!.createBuffer("x", nTokens * COLS * 4);
        const out = gpu!.createBuffer("out", nTokens * ROWS * 4);
        b.start();
        const enc = gpu!.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (let i = 0; i < REPEAT; i++) mm!.encode(pass, out, x, w, nTokens);
        pass.end();
        gpu!.submit(enc);
        await gpu!.read(out, 0, 4);
        b.end();
        for (const c of w.chunks) gpu!.free(c.buffer);
        gpu!.free(x);
        gpu!.free(out);
      },
    });
  }
}
