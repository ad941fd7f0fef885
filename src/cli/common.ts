/**
 * Shared CLI plumbing: argument parsing with `node:util` parseArgs, and error reporting that turns
 * users' mistakes into one line without a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { DeviceLostError, ModelFormatError, ShaderCompileError, WebGpuUnavailableError } from "../errors.ts";

/**
 * A usage error: bad or missing option. Printed as one line with exit status 1.
 *
 * @example
 * ```ts
 * import { CliError } from "./common.ts";
 * console.log(new CliError("--model is required").message);
 * ```
 */
export class CliError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Option definitions as `node:util` parseArgs takes them. */
export type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` strictly; unknown options and bad values become {@linkcode CliError}s.
 *
 * @example
 * ```ts
 * import { parseOptions } from "./common.ts";
 * const { values } = parseOptions(["--n", "5"], { n: { type: "string" } });
 * console.log(values.n); // "5"
 * ```
 */
export function parseOptions(
  args: string[],
  options: Options,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    const message = (e as Error).message.replace(/\. To specify a positional.*$/s, "");
    throw new CliError(message.split("\n").map((l) => l.trim()).filter(Boolean).join(" "));
  }
}

/**
 * Reads a numeric option: undefined when absent, else a finite number (integer when `integer`).
 *
 * @example
 * ```ts
 * import { numberOption } from "./common.ts";
 * console.log(numberOption({ n: "12" }, "n", { integer: true })); // 12
 * ```
 */
export function numberOption(
  values: Record<string, string | boolean | undefined>,
  name: string,
  opts: { integer?: boolean; min?: number } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined || typeof raw === "boolean") return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) {
    throw new CliError(
      `--${name} must be ${opts.integer ? "an integer" : "a number"}: current value is "${raw}"`,
    );
  }
  if (opts.min !== undefined && v < opts.min) {
    throw new CliError(`--${name} must be >= ${opts.min}: current value is ${v}`);
  }
  return v;
}

/** Errors that are the user's to fix (bad input or environment): message only, no stack. */
function isUserError(e: unknown): boolean {
  return e instanceof CliError || e instanceof ModelFormatError || e instanceof RangeError ||
    e instanceof WebGpuUnavailableError || e instanceof DeviceLostError || e instanceof ShaderCompileError ||
    e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.NotFound;
}

/**
 * Prints an error as `thinkv: error: …` on stderr and returns the exit status (1). Stack traces
 * appear only for internal errors with THINKV_DEBUG=1.
 *
 * @example
 * ```ts
 * import { CliError, reportError } from "./common.ts";
 * const status = reportError(new CliError("--model is required")); // prints one line
 * console.log(status); // 1
 * ```
 */
export function reportError(e: unknown): number {
  const message = e instanceof Error ? e.message : String(e);
  console.error(`thinkv: error: ${message}`);
  let debug = false;
  try {
    debug = Deno.env.get("THINKV_DEBUG") === "1";
  } catch {
    // no --allow-env
  }
  if (!isUserError(e)) {
    if (debug && e instanceof Error && e.stack) console.error(e.stack);
    else console.error("thinkv: this looks like a bug in thinkv; rerun with THINKV_DEBUG=1 for details");
  }
  return 1;
}

/**
 * Formats a byte count with binary units.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./common.ts";
 * console.log(formatBytes(1536)); // "1.50 KiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(2)} ${units[u]}`;
}

/** parseArgs definitions of the sampling flags shared by `thinkv run` and `thinkv chat`. */
export const SAMPLING_FLAG_OPTIONS: Options = {
  "n-predict": { type: "string", short: "n" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
};

/**
 * Reads the sampling flags: `--n-predict` (default `maxTokens`, at least `minTokens`), `--temperature`
 * (0.8), `--top-k` (40), `--top-p` (0.95), `--seed`.
 *
 * @example
 * ```ts
 * import { samplingFromFlags } from "./common.ts";
 * console.log(samplingFromFlags({ temperature: "0" }, { maxTokens: 128, minTokens: 0 }));
 * ```
 */
export function samplingFromFlags(
  values: Record<string, string | boolean | undefined>,
  defaults: { maxTokens: number; minTokens: number },
): { maxTokens: number; temperature: number; topK: number; topP: number; seed: number | undefined } {
  return {
    maxTokens: numberOption(values, "n-predict", { integer: true, min: defaults.minTokens }) ??
      defaults.maxTokens,
    temperature: numberOption(values, "temperature", { min: 0 }) ?? 0.8,
    topK: numberOption(values, "top-k", { integer: true, min: 0 }) ?? 40,
    topP: numberOption(values, "top-p") ?? 0.95,
    seed: numberOption(values, "seed", { integer: true }),
  };
}
