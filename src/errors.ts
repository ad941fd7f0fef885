/**
 * Error classes that callers are expected to catch. Bad arguments use the built-in
 * `RangeError` / `TypeError`; these classes are for conditions a program reacts to.
 * Messages follow Deno std grammar: "Cannot X: reason", no trailing period.
 *
 * @module
 */

/**
 * No WebGPU adapter could be found (no `navigator.gpu`, or no adapter for the selected backend).
 *
 * @example
 * ```ts
 * import { WebGpuUnavailableError } from "./errors.ts";
 * const e = new WebGpuUnavailableError("Cannot find a WebGPU adapter: navigator.gpu is undefined");
 * console.log(e.name);
 * ```
 */
export class WebGpuUnavailableError extends Error {
  /** Creates the error with a message that says what to do next. */
  constructor(message: string) {
    super(message);
    this.name = "WebGpuUnavailableError";
  }
}

/**
 * The GPU device was lost (driver reset, out of memory, `destroy()`); the model must be reloaded.
 *
 * @example
 * ```ts
 * import { DeviceLostError } from "./errors.ts";
 * const e = new DeviceLostError("destroyed", "device destroyed");
 * console.log(e.reason);
 * ```
 */
export class DeviceLostError extends Error {
  /** The `GPUDeviceLostInfo.reason` reported by WebGPU. */
  readonly reason: string;
  /** Creates the error from the device-lost reason and message. */
  constructor(reason: string, message: string) {
    super(`Cannot use the GPU device: it was lost (${reason}): ${message}`);
    this.name = "DeviceLostError";
    this.reason = reason;
  }
}

/**
 * A WGSL module or compute pipeline failed to compile; the message names the `.wgsl` file.
 *
 * @example
 * ```ts
 * import { ShaderCompileError } from "./errors.ts";
 * const e = new ShaderCompileError("matmul.wgsl", "matmul:q4_0", "unknown type 'f16'");
 * console.log(e.file);
 * ```
 */
export class ShaderCompileError extends Error {
  /** The `.wgsl` file the failing module was expanded from. */
  readonly file: string;
  /** The pipeline key (variant) that failed. */
  readonly key: string;
  /** Creates the error for a file, a pipeline key and the compiler's message. */
  constructor(file: string, key: string, compilerMessage: string) {
    super(`Cannot compile ${file} (pipeline "${key}"): ${compilerMessage}`);
    this.name = "ShaderCompileError";
    this.file = file;
    this.key = key;
  }
}

/**
 * A model file is missing, is not GGUF, is truncated, or holds something thinkv does not support
 * (architecture, tensor type). The message names the problem and what to do.
 *
 * @example
 * ```ts
 * import { ModelFormatError } from "./errors.ts";
 * const e = new ModelFormatError("Cannot read model.bin: not a GGUF file (magic is 'PK\\x03\\x04')");
 * console.log(e.message);
 * ```
 */
export class ModelFormatError extends Error {
  /** Creates the error with a message naming the file and the problem. */
  constructor(message: string) {
    super(message);
    this.name = "ModelFormatError";
  }
}
