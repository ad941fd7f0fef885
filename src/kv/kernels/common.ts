/**
 * Helpers the KV kernel wrappers share: the workgroup size and llvmpipe's loop-trip guard.
 *
 * @module
 */

/**
 * Invocations per workgroup of every `kv_*.wgsl` entry point (the `WG` override).
 *
 * @example
 * ```ts
 * import { WG } from "./common.ts";
 * console.log(Math.ceil(1000 / WG)); // workgroups for 1000 invocations
 * ```
 */
export const WG = 64;

/**
 * llvmpipe silently stops an invocation after 65535 loop iterations; stay well below.
 *
 * @example
 * ```ts
 * import { MAX_TRIPS } from "./common.ts";
 * console.log(8192 < MAX_TRIPS); // a top-k over 8192 tokens is fine
 * ```
 */
export const MAX_TRIPS = 60000;

/**
 * Throws a RangeError when `trips` loop iterations per invocation would pass llvmpipe's limit.
 *
 * @example
 * ```ts
 * import { checkTrips } from "./common.ts";
 * checkTrips("topk", 1000, "n 1000"); // fine
 * ```
 */
export function checkTrips(what: string, trips: number, detail: string): void {
  if (trips >= MAX_TRIPS) {
    throw new RangeError(
      `Cannot encode ${what}: ${trips} loop trips per invocation would exceed llvmpipe's limit (${detail})`,
    );
  }
}
