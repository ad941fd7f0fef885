/**
 * GPU time per kernel family, from `timestamp-query` (the `--profile` building block). Each profiled
 * compute pass gets a begin and an end timestamp and a family name ("matmul", "attention", …); after
 * the commands ran, {@linkcode GpuProfiler.collect} reads all timestamps back in one readback and adds
 * the pass durations to their family. Without `timestamp-query` every method still works and
 * measures nothing (`enabled` is false), so callers need no branches.
 *
 * WebGPU timestamps bracket whole passes, so a profile of several families needs one pass per
 * family run (e.g. one pass per kernel call while profiling): that adds a little CPU cost per pass,
 * which is why profiling is opt-in. On llvmpipe the timestamps are the CPU time at which the pass
 * began and ended on the device thread.
 *
 * ```ts ignore
 * const prof = GpuProfiler.create(gpu);
 * const enc = gpu.device.createCommandEncoder();
 * let pass = prof.beginPass(enc, "matmul");
 * mm.encode(pass, out, x, w, 1);
 * pass.end();
 * pass = prof.beginPass(enc, "rmsnorm");
 * norm.encode(pass, args);
 * pass.end();
 * prof.resolve(enc);
 * gpu.submit(enc);
 * await prof.collect();
 * console.log(formatProfile(prof.report())); // matmul 12.31 ms (97%) …
 * ```
 *
 * @module
 */

import type { Gpu } from "./gpu.ts";

/** Options for {@linkcode GpuProfiler.create}. */
export interface GpuProfilerOptions {
  /** Most profiled passes per command encoder (between two {@linkcode GpuProfiler.resolve} calls); default 16384. */
  capacity?: number;
}

/** GPU time of one kernel family. */
export interface FamilyTime {
  /** Family name, as passed to {@linkcode GpuProfiler.beginPass}. */
  family: string;
  /** Total GPU milliseconds. */
  ms: number;
  /** Passes measured. */
  passes: number;
  /** Share of the total (0..1). */
  share: number;
}

/** What {@linkcode GpuProfiler.report} returns. */
export interface ProfileReport {
  /** False when the device has no `timestamp-query` (then `families` is empty). */
  enabled: boolean;
  /** Per family, slowest first. */
  families: FamilyTime[];
  /** Sum of all families' milliseconds. */
  totalMs: number;
  /** Passes that were not timed because one encoder held more than `capacity` of them. */
  dropped: number;
}

const QUERY_RESOLVE = 0x200; // GPUBufferUsage.QUERY_RESOLVE
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
/** Passes per query set: WebGPU allows at most 4096 queries in one set, two per pass. */
const PASSES_PER_SET = 2048;

/**
 * Times compute passes per family with `timestamp-query`; a no-op without it. Query sets of 2048
 * passes are created as an encoder needs them and reused after each {@linkcode GpuProfiler.resolve}.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "./gpu.ts";
 * import { GpuProfiler } from "./profile.ts";
 * const gpu = await Gpu.create();
 * const prof = GpuProfiler.create(gpu);
 * console.log(prof.enabled); // true on Vulkan lavapipe and most GPUs
 * ```
 */
export class GpuProfiler {
  /** True when passes are actually timed. */
  readonly enabled: boolean;
  /** Most timed passes per encoder. */
  readonly capacity: number;
  #gpu: Gpu;
  #sets: { querySet: GPUQuerySet; resolveBuf: GPUBuffer }[] = [];
  #families: string[] = []; // family of pass i of the encoder being recorded (set i / 2048, queries 2(i % 2048) …)
  #pending: { readback: GPUBuffer; families: string[] }[] = [];
  #totals = new Map<string, { ns: number; passes: number }>();
  #dropped = 0;

  private constructor(gpu: Gpu, capacity: number) {
    this.#gpu = gpu;
    this.capacity = capacity;
    this.enabled = gpu.hasTimestamps;
  }

  /** Creates a profiler for `gpu` (disabled when the device lacks `timestamp-query`). */
  static create(gpu: Gpu, opts: GpuProfilerOptions = {}): GpuProfiler {
    const capacity = opts.capacity ?? 16384;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) {
      throw new RangeError(
        `Cannot create GpuProfiler: capacity must be in 1..1048576: current value is ${capacity}`,
      );
    }
    return new GpuProfiler(gpu, capacity);
  }

  /**
   * Begins a compute pass on `encoder` whose GPU time counts for `family`. Past `capacity` passes
   * in one encoder (or when disabled) the pass is returned untimed.
   */
  beginPass(encoder: GPUCommandEncoder, family: string): GPUComputePassEncoder {
    if (!this.enabled) return encoder.beginComputePass({ label: family });
    const i = this.#families.length;
    if (i >= this.capacity) {
      this.#dropped++;
      return encoder.beginComputePass({ label: family });
    }
    this.#families.push(family);
    const slot = i % PASSES_PER_SET;
    return encoder.beginComputePass({
      label: family,
      timestampWrites: {
        querySet: this.#set(Math.floor(i / PASSES_PER_SET)).querySet,
        beginningOfPassWriteIndex: 2 * slot,
        endOfPassWriteIndex: 2 * slot + 1,
      },
    });
  }

  /**
   * A stand-in for one compute pass that opens a new timed pass on `encoder` whenever the pipeline's
   * family changes: the part of its label before the first `:` (pipeline labels are the
   * {@linkcode Gpu.pipeline} keys, e.g. `"matmul_rows:q4_0:sg:r2:t1:wg64"` → `matmul_rows`). Code
   * that records through {@linkcode Gpu.dispatch} is profiled per kernel family unchanged. It
   * implements the methods `Gpu.dispatch` uses (setPipeline, setBindGroup, dispatchWorkgroups) and end.
   */
  familyPasses(encoder: GPUCommandEncoder): GPUComputePassEncoder {
    return new FamilyPasses(this, encoder) as unknown as GPUComputePassEncoder;
  }

  #set(k: number): { querySet: GPUQuerySet; resolveBuf: GPUBuffer } {
    while (this.#sets.length <= k) {
      this.#sets.push({
        querySet: this.#gpu.device.createQuerySet({ type: "timestamp", count: 2 * PASSES_PER_SET }),
        resolveBuf: this.#gpu.device.createBuffer({
          label: "profile: resolve",
          size: 16 * PASSES_PER_SET,
          usage: QUERY_RESOLVE | COPY_SRC,
        }),
      });
    }
    return this.#sets[k];
  }

  /**
   * Encodes the copy of this encoder's timestamps to a readback buffer; call it once per command
   * encoder, after its last profiled pass and before submitting ({@linkcode Gpu.submit} does when
   * the Gpu has a profiler). The query slots are free for the next encoder afterwards.
   */
  resolve(encoder: GPUCommandEncoder): void {
    const n = this.#families.length;
    if (!this.enabled || n === 0) return;
    const readback = this.#gpu.device.createBuffer({
      label: "profile: readback",
      size: 16 * n,
      usage: MAP_READ | COPY_DST,
    });
    for (let k = 0; k * PASSES_PER_SET < n; k++) {
      const passes = Math.min(PASSES_PER_SET, n - k * PASSES_PER_SET);
      const { querySet, resolveBuf } = this.#sets[k];
      encoder.resolveQuerySet(querySet, 0, 2 * passes, resolveBuf, 0);
      encoder.copyBufferToBuffer(resolveBuf, 0, readback, 16 * k * PASSES_PER_SET, 16 * passes);
    }
    this.#pending.push({ readback, families: this.#families });
    this.#families = [];
  }

  /**
   * Waits for the resolved timestamps (one ≥ 10 ms readback per resolved encoder) and adds the pass
   * durations to their families.
   */
  async collect(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    for (const { readback, families } of pending) {
      await readback.mapAsync(1 /* GPUMapMode.READ */);
      const t = new BigUint64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      readback.destroy();
      families.forEach((family, i) => {
        const ns = Number(t[2 * i + 1] - t[2 * i]);
        const e = this.#totals.get(family) ?? { ns: 0, passes: 0 };
        e.ns += ns > 0 && ns < 1e12 ? ns : 0; // a zero or wrapped pair (pass skipped) counts as 0
        e.passes++;
        this.#totals.set(family, e);
      });
    }
  }

  /** Totals per family since creation or the last {@linkcode GpuProfiler.reset}. */
  report(): ProfileReport {
    const totalNs = [...this.#totals.values()].reduce((s, e) => s + e.ns, 0);
    const families = [...this.#totals].map(([family, e]) => ({
      family,
      ms: e.ns / 1e6,
      passes: e.passes,
      share: totalNs > 0 ? e.ns / totalNs : 0,
    })).sort((a, b) => b.ms - a.ms);
    return { enabled: this.enabled, families, totalMs: totalNs / 1e6, dropped: this.#dropped };
  }

  /** Clears the totals. */
  reset(): void {
    this.#totals.clear();
    this.#dropped = 0;
  }

  /** Frees the GPU objects. */
  destroy(): void {
    for (const { querySet, resolveBuf } of this.#sets) {
      querySet.destroy();
      resolveBuf.destroy();
    }
    this.#sets = [];
    for (const p of this.#pending) p.readback.destroy();
    this.#pending = [];
  }
}

/** See {@linkcode GpuProfiler.familyPasses}. */
class FamilyPasses {
  #profiler: GpuProfiler;
  #encoder: GPUCommandEncoder;
  #pass: GPUComputePassEncoder | undefined;
  #family = "";

  constructor(profiler: GpuProfiler, encoder: GPUCommandEncoder) {
    this.#profiler = profiler;
    this.#encoder = encoder;
  }

  setPipeline(pipeline: GPUComputePipeline): void {
    const family = pipeline.label.split(":")[0] || "unlabelled";
    if (!this.#pass || family !== this.#family) {
      this.#pass?.end();
      this.#pass = this.#profiler.beginPass(this.#encoder, family);
      this.#family = family;
    }
    this.#pass.setPipeline(pipeline);
  }

  setBindGroup(index: number, group: GPUBindGroup): void {
    this.#current("setBindGroup").setBindGroup(index, group);
  }

  dispatchWorkgroups(x: number, y?: number, z?: number): void {
    this.#current("dispatchWorkgroups").dispatchWorkgroups(x, y, z);
  }

  end(): void {
    this.#pass?.end();
    this.#pass = undefined;
  }

  #current(method: string): GPUComputePassEncoder {
    if (!this.#pass) throw new Error(`Cannot ${method} on a profiled pass before setPipeline`);
    return this.#pass;
  }
}

/**
 * Formats a report as one line per family: `matmul  12.31 ms  97.0%  (44 passes)`.
 *
 * @example
 * ```ts
 * import { formatProfile } from "./profile.ts";
 * console.log(formatProfile({ enabled: false, families: [], totalMs: 0, dropped: 0 }));
 * // "profile: this adapter has no timestamp-query; no GPU times"
 * ```
 */
export function formatProfile(r: ProfileReport): string {
  if (!r.enabled) return "profile: this adapter has no timestamp-query; no GPU times";
  const width = Math.max(6, ...r.families.map((f) => f.family.length));
  const lines = r.families.map((f) =>
    `${f.family.padEnd(width)} ${f.ms.toFixed(2).padStart(9)} ms ${
      (100 * f.share).toFixed(1).padStart(5)
    }%  (${f.passes} passes)`
  );
  lines.push(`${"total".padEnd(width)} ${r.totalMs.toFixed(2).padStart(9)} ms`);
  if (r.dropped > 0) lines.push(`(${r.dropped} passes not timed: raise capacity or collect more often)`);
  return lines.join("\n");
}
