/**
 * The one object that owns the WebGPU device: pipeline cache (keyed by readable strings), buffers,
 * the per-submit uniform ring, and the counters tests use to prove how often we dispatch and read back.
 *
 * Conventions every kernel follows:
 * - bindings are `@group(0) @binding(i)` in the order passed to {@linkcode Gpu.dispatch};
 * - large 1-D grids are folded into 2-D (x ≤ 65535) with {@linkcode grid}; shaders recover the
 *   linear workgroup id as `wid.x + wid.y * nwg.x` and guard against the tail;
 * - per-dispatch scalars come from {@linkcode Gpu.uniform}, written to the GPU once per submit.
 *
 * @module
 */

import { DeviceLostError, ShaderCompileError, WebGpuUnavailableError } from "../errors.ts";
import type { ParamFields, ParamStruct } from "./params.ts";
import type { GpuProfiler } from "./profile.ts";

/** Options for {@linkcode Gpu.create}. */
export interface GpuOptions {
  /** Do not request `shader-f16` even when offered (forces the f32 fallback paths). */
  disableF16?: boolean;
  /** Adapter power preference. */
  powerPreference?: GPUPowerPreference;
  /** Do not request `subgroups` even when it works (forces the kernels' barrier/uniform-buffer paths). */
  disableSubgroups?: boolean;
}

/** A compute pipeline to build: which `.wgsl` file it came from, its expanded code and constants. */
export interface PipelineSpec {
  /** Readable cache key, e.g. `"matmul:q4_0:tb4"`. */
  key: string;
  /** The `.wgsl` file the code was expanded from (named in compile errors). */
  file: string;
  /** The expanded WGSL source. */
  code: string;
  /** Entry point; defaults to `"main"`. */
  entryPoint?: string;
  /** Values for `override` constants. */
  constants?: Record<string, number>;
}

/** Counters of GPU traffic, for tests and stats. */
export interface GpuCounters {
  /** Compute dispatches encoded. */
  dispatches: number;
  /** `queue.submit` calls. */
  submits: number;
  /** Buffer readbacks (`mapAsync`), each costing ≥ 10 ms in Deno. */
  readbacks: number;
}

/** A binding resource as kernels pass them: a whole buffer or a slice of one. */
export type Binding = GPUBuffer | GPUBufferBinding;

const STORAGE = 0x80; // GPUBufferUsage.STORAGE (constants inlined so this module loads without WebGPU)
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const UNIFORM = 0x40;
const MAP_READ = 0x01;
const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment on every adapter we target
const RING_CHUNK = 256 * 1024;

/**
 * Folds a 1-D workgroup count into a dispatch grid with x ≤ 65535.
 *
 * @example
 * ```ts
 * import { grid } from "./gpu.ts";
 * console.log(grid(100000)); // [65535, 2, 1]
 * ```
 */
export function grid(workgroups: number): [number, number, number] {
  if (workgroups <= 65535) return [Math.max(1, workgroups), 1, 1];
  return [65535, Math.ceil(workgroups / 65535), 1];
}

/**
 * Owns the device. Create once with {@linkcode Gpu.create} and share it.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "./gpu.ts";
 * const gpu = await Gpu.create();
 * const buf = gpu.upload("x", new Float32Array([1, 2, 3]));
 * console.log(new Float32Array(await gpu.read(buf, 0, 12)));
 * gpu.destroy();
 * ```
 */
export class Gpu {
  /** The WebGPU device. */
  readonly device: GPUDevice;
  /** The adapter's description (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  readonly adapterName: string;
  /** True when the adapter is a CPU fallback (llvmpipe, WARP, SwiftShader). */
  readonly isFallbackAdapter: boolean;
  /** True when `shader-f16` was requested and granted: kernels may `enable f16;`. */
  readonly hasF16: boolean;
  /** True when `timestamp-query` was granted. */
  readonly hasTimestamps: boolean;
  /**
   * True when `subgroups` was granted: kernels may use `subgroupBroadcast`/`subgroupAdd` (without
   * `enable subgroups;`, which Deno's naga rejects).
   */
  readonly hasSubgroups: boolean;
  /** The adapter's smallest subgroup size (0 when unknown); llvmpipe on Vulkan reports 8. */
  readonly subgroupMinSize: number;
  /** Largest storage binding in bytes (tensors larger than this are split). */
  readonly maxStorageBinding: number;
  /** Largest single buffer in bytes. */
  readonly maxBufferSize: number;
  /** Traffic counters. */
  readonly counters: GpuCounters = { dispatches: 0, submits: 0, readbacks: 0 };
  /**
   * When set, {@linkcode Gpu.beginPass} times every kernel family separately and
   * {@linkcode Gpu.submit} resolves the timestamps (the `--profile` flag sets it).
   */
  profiler: GpuProfiler | undefined;

  #pipelines = new Map<string, GPUComputePipeline>();
  #compiling = new Map<string, Promise<GPUComputePipeline>>(); // in flight: a key compiles once
  #buffers = new Set<GPUBuffer>();
  #bytesAllocated = 0;
  #lost: DeviceLostError | undefined;
  #ring: { buffer: GPUBuffer; staging: Uint8Array<ArrayBuffer>; used: number }[] = [];
  #ringIndex = 0;
  #destroyed = false;

  private constructor(device: GPUDevice, adapter: GPUAdapter) {
    this.device = device;
    this.adapterName = adapter.info.description || adapter.info.vendor || "unknown adapter";
    this.isFallbackAdapter = adapter.info.isFallbackAdapter ?? false;
    this.hasF16 = device.features.has("shader-f16");
    this.hasTimestamps = device.features.has("timestamp-query");
    this.hasSubgroups = device.features.has("subgroups" as GPUFeatureName);
    this.subgroupMinSize = (adapter.info as { subgroupMinSize?: number }).subgroupMinSize ?? 0;
    this.maxStorageBinding = device.limits.maxStorageBufferBindingSize;
    this.maxBufferSize = device.limits.maxBufferSize;
    device.lost.then((info) => {
      if (!this.#destroyed) this.#lost = new DeviceLostError(info.reason ?? "unknown", info.message);
    });
  }

  /**
   * Acquires an adapter and a device with the adapter's maxima for buffer and storage-binding sizes,
   * and `shader-f16` / `timestamp-query` when offered.
   */
  static async create(options: GpuOptions = {}): Promise<Gpu> {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) {
      throw new WebGpuUnavailableError(
        "Cannot find WebGPU: navigator.gpu is undefined; use Deno 2.x (npx -y deno@2.9.6)",
      );
    }
    const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference });
    if (!adapter) {
      const backend = readEnv("DENO_WEBGPU_BACKEND");
      throw new WebGpuUnavailableError(
        `Cannot find a WebGPU adapter${backend ? ` for DENO_WEBGPU_BACKEND=${backend}` : ""}: ` +
          "install a GPU driver, or Mesa (apt-get install -y mesa-vulkan-drivers libvulkan1) for a CPU adapter",
      );
    }
    const wanted: GPUFeatureName[] = ["timestamp-query"];
    if (!options.disableF16) wanted.push("shader-f16");
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
    const a = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      minStorageBufferOffsetAlignment: a.minStorageBufferOffsetAlignment,
    };
    // lavapipe does not list `subgroups`, yet grants it (subgroup size 8) and runs subgroupBroadcast and
    // subgroupAdd; GL cannot. So ask for it whenever allowed and fall back to a device without it.
    let device: GPUDevice | undefined;
    if (!options.disableSubgroups) {
      try {
        device = await adapter.requestDevice({
          requiredFeatures: [...requiredFeatures, "subgroups" as GPUFeatureName],
          requiredLimits,
        });
      } catch {
        device = undefined;
      }
    }
    device ??= await adapter.requestDevice({ requiredFeatures, requiredLimits });
    return new Gpu(device, adapter);
  }

  /** Storage-buffer offset alignment (bytes) that slices passed to kernels must respect. */
  get storageOffsetAlignment(): number {
    return this.device.limits.minStorageBufferOffsetAlignment;
  }

  /** Bytes currently allocated in buffers created through this object. */
  get bytesAllocated(): number {
    return this.#bytesAllocated;
  }

  /** Throws the typed error if the device has been lost. */
  checkAlive(): void {
    if (this.#lost) throw this.#lost;
  }

  /**
   * Returns the cached pipeline for `spec.key`, building it on first use inside validation and
   * internal error scopes; a failure becomes a {@linkcode ShaderCompileError} naming `spec.file`.
   * A key compiles once even when asked for again while it compiles. `spec` may be a key and a
   * function that generates the rest, called only when the key is neither built nor building (for
   * kernels whose WGSL is generated: no text is built twice).
   */
  pipeline(
    spec: PipelineSpec | { key: string; make: () => Omit<PipelineSpec, "key"> },
  ): Promise<GPUComputePipeline> {
    const key = spec.key;
    const cached = this.#pipelines.get(key) ?? this.#compiling.get(key);
    if (cached) return Promise.resolve(cached);
    const full = "make" in spec ? { key, ...spec.make() } : spec;
    const job = this.#compile(full).finally(() => this.#compiling.delete(key));
    this.#compiling.set(key, job);
    return job;
  }

  async #compile(spec: PipelineSpec): Promise<GPUComputePipeline> {
    this.checkAlive();
    dumpWgsl(spec);
    const device = this.device;
    device.pushErrorScope("internal");
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ label: spec.file, code: spec.code });
    let pipeline: GPUComputePipeline | undefined;
    let thrown: unknown;
    try {
      pipeline = await device.createComputePipelineAsync({
        label: spec.key,
        layout: "auto",
        compute: { module, entryPoint: spec.entryPoint ?? "main", constants: spec.constants },
      });
    } catch (e) {
      thrown = e;
    }
    const validation = await device.popErrorScope();
    const internal = await device.popErrorScope();
    const err = validation ?? internal;
    if (err || thrown || !pipeline) {
      const msg = err?.message ?? (thrown instanceof Error ? thrown.message : String(thrown));
      throw new ShaderCompileError(spec.file, spec.key, msg.trim());
    }
    this.#pipelines.set(spec.key, pipeline);
    return pipeline;
  }

  /** The keys of every pipeline built so far (a readable inventory of compiled variants). */
  pipelineKeys(): string[] {
    return [...this.#pipelines.keys()];
  }

  /** Creates a tracked storage buffer (zero-filled). Size is rounded up to a multiple of 4. */
  createBuffer(label: string, size: number, usage: number = STORAGE | COPY_SRC | COPY_DST): GPUBuffer {
    this.checkAlive();
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    if (bytes > this.maxBufferSize) {
      throw new RangeError(
        `Cannot allocate GPU buffer "${label}": ${bytes} bytes exceeds maxBufferSize ${this.maxBufferSize}`,
      );
    }
    const buffer = this.device.createBuffer({ label, size: bytes, usage });
    this.#buffers.add(buffer);
    this.#bytesAllocated += bytes;
    return buffer;
  }

  /** Creates a storage buffer holding `data` (padded to a multiple of 4 bytes). */
  upload(label: string, data: ArrayBufferView, usage: number = STORAGE | COPY_SRC | COPY_DST): GPUBuffer {
    const buffer = this.createBuffer(label, data.byteLength, usage);
    this.write(buffer, 0, data);
    return buffer;
  }

  /** Writes `data` into `buffer` at `offset` (queue-ordered with submits). Pads to 4 bytes. */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    let bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    this.device.queue.writeBuffer(buffer, offset, bytes);
  }

  /** Frees one buffer created by this object. */
  free(buffer: GPUBuffer): void {
    if (this.#buffers.delete(buffer)) {
      this.#bytesAllocated -= buffer.size;
      buffer.destroy();
    }
  }

  /**
   * Reserves a uniform slot for one dispatch and fills it with `values`. The bytes reach the GPU
   * in one `writeBuffer` per ring chunk at {@linkcode Gpu.submit}; slots are reused after it.
   */
  uniform<F extends ParamFields>(
    struct: ParamStruct<F>,
    values: { [K in keyof F]: number },
  ): GPUBufferBinding {
    const bytes = new Uint8Array(struct.pack(values));
    let chunk = this.#ring[this.#ringIndex];
    if (!chunk || chunk.used + UNIFORM_SLOT > RING_CHUNK) {
      if (chunk) this.#ringIndex++;
      chunk = this.#ring[this.#ringIndex];
      if (!chunk) {
        chunk = {
          buffer: this.createBuffer(`uniform ring ${this.#ringIndex}`, RING_CHUNK, UNIFORM | COPY_DST),
          staging: new Uint8Array(RING_CHUNK),
          used: 0,
        };
        this.#ring.push(chunk);
      }
    }
    const offset = chunk.used;
    chunk.staging.set(bytes, offset);
    chunk.used += UNIFORM_SLOT;
    return { buffer: chunk.buffer, offset, size: bytes.byteLength };
  }

  /**
   * Encodes one dispatch in `pass`: a fresh bind group on group 0 with `bindings` at 0..n−1.
   * `workgroups` may be a count (folded with {@linkcode grid}) or an explicit grid.
   */
  dispatch(
    pass: GPUComputePassEncoder,
    pipeline: GPUComputePipeline,
    bindings: (Binding | undefined)[],
    workgroups: number | [number, number, number],
  ): void {
    const entries = bindings.flatMap((b, binding) =>
      b === undefined ? [] : [{ binding, resource: b instanceof GPUBuffer ? { buffer: b } : b }]
    );
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const [x, y, z] = typeof workgroups === "number" ? grid(workgroups) : workgroups;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.counters.dispatches++;
  }

  /**
   * Begins the compute pass kernels record into: a plain pass, or with a {@linkcode Gpu.profiler}
   * one timed pass per run of a kernel family ({@linkcode GpuProfiler.familyPasses}).
   */
  beginPass(encoder: GPUCommandEncoder): GPUComputePassEncoder {
    return this.profiler?.enabled ? this.profiler.familyPasses(encoder) : encoder.beginComputePass();
  }

  /** Flushes the uniform ring and submits `encoder`'s commands (resolving profile timestamps first). */
  submit(encoder: GPUCommandEncoder): void {
    this.checkAlive();
    this.profiler?.resolve(encoder);
    for (let i = 0; i <= this.#ringIndex && i < this.#ring.length; i++) {
      const chunk = this.#ring[i];
      if (chunk.used > 0) this.device.queue.writeBuffer(chunk.buffer, 0, chunk.staging, 0, chunk.used);
      chunk.used = 0;
    }
    this.#ringIndex = 0;
    this.device.queue.submit([encoder.finish()]);
    this.counters.submits++;
  }

  /**
   * Copies `size` bytes from `buffer` at `offset` to the CPU (one `mapAsync`: ≥ 10 ms in Deno, so
   * keep these rare). Pending uniform writes are flushed with an empty submit first if needed.
   */
  async read(buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    this.checkAlive();
    const bytes = Math.ceil(size / 4) * 4;
    const staging = this.device.createBuffer({ label: "readback", size: bytes, usage: MAP_READ | COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, bytes);
    this.submit(encoder);
    this.counters.readbacks++;
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */);
    } catch (e) {
      this.checkAlive();
      throw e;
    }
    const out = staging.getMappedRange().slice(0, size);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Destroys every buffer and the device. The object is unusable afterwards. */
  destroy(): void {
    this.#destroyed = true;
    for (const b of this.#buffers) b.destroy();
    this.#buffers.clear();
    this.#bytesAllocated = 0;
    this.#pipelines.clear();
    this.device.destroy();
  }
}

/** `THINKV_WGSL_DUMP=dir` writes every pipeline's expanded WGSL as `dir/<key>.wgsl`. */
function dumpWgsl(spec: PipelineSpec): void {
  const dir = readEnv("THINKV_WGSL_DUMP");
  if (!dir) return;
  Deno.mkdirSync(dir, { recursive: true });
  const name = spec.key.replace(/[^\w.-]+/g, "_");
  Deno.writeTextFileSync(`${dir}/${name}.wgsl`, `// from ${spec.file}\n${spec.code}`);
}

/** An environment variable, or undefined when unset or when --allow-env was not granted. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
