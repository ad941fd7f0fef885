/**
 * Shared GPU test helpers: one {@linkcode Gpu} per test module, and `gpuTest` which skips cleanly
 * when no adapter exists — unless THINKV_REQUIRE_GPU=1 (CI), where a missing adapter fails loudly.
 */
import { Gpu } from "../src/gpu/gpu.ts";

const adapter = await navigator.gpu?.requestAdapter();
if (!adapter && Deno.env.get("THINKV_REQUIRE_GPU") === "1") {
  throw new Error(
    `THINKV_REQUIRE_GPU=1 but no WebGPU adapter (DENO_WEBGPU_BACKEND=${Deno.env.get("DENO_WEBGPU_BACKEND")})`,
  );
}

/** True when GPU tests must be skipped. */
export const ignore: boolean = !adapter;

let shared: Promise<Gpu> | undefined;

let created: Gpu | undefined;

/** The module's shared Gpu (created on first use). */
export function getGpu(): Promise<Gpu> {
  shared ??= Gpu.create().then((gpu) => created = gpu);
  return shared;
}

// Release the device while the runtime is still whole: left to process exit, the GL backend's
// teardown has now and then aborted with "corrupted size vs. prev_size" after every test passed.
globalThis.addEventListener("unload", () => created?.destroy());

/** Registers a GPU test: skipped without an adapter; WebGPU handles are not leak-checked. */
export function gpuTest(name: string, fn: (gpu: Gpu) => Promise<void> | void): void {
  Deno.test({
    name,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => fn(await getGpu()),
  });
}

export { randomFloats } from "../src/ref/random.ts";

/** Largest absolute difference between two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
