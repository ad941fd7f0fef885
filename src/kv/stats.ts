/**
 * Text reports of {@linkcode KvStats} for the CLI's `--stats`: the bytes the KV cache really allocated
 * (keys, values, channel lists), per layer and in total, beside what a full f32 cache would take.
 *
 * @module
 */

import type { KvStats } from "./cache.ts";

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

/**
 * One line: `KV cache snapkv(B=512,…) + think(0.4): 1.23 MiB of 4.00 MiB full (30.8%): keys 0.41, values 0.80, channel lists 0.02 MiB`.
 *
 * @example
 * ```ts
 * import { formatKvSummary } from "./stats.ts";
 * const layer = { layer: 0, keys: 1024, values: 2048, index: 0, fullKeys: 2048, promptTokens: 4, keyChannels: 8 };
 * console.log(formatKvSummary({ policy: "full", capacity: 16, bytes: 3072, keyBytes: 1024, valueBytes: 2048, indexBytes: 0, fullBytes: 4096, layers: [layer] }));
 * ```
 */
export function formatKvSummary(s: KvStats): string {
  const pct = s.fullBytes > 0 ? ` (${(s.bytes / s.fullBytes * 100).toFixed(1)}%)` : "";
  return `KV cache ${s.policy}: ${mib(s.bytes)} of ${mib(s.fullBytes)} full${pct}: keys ${
    (s.keyBytes / 2 ** 20).toFixed(2)
  }, values ${(s.valueBytes / 2 ** 20).toFixed(2)}, channel lists ${(s.indexBytes / 2 ** 20).toFixed(2)} MiB`;
}

/**
 * A per-layer table (kept prompt tokens, key channels, bytes of keys / values / channel lists, % of
 * full) followed by the summary line.
 *
 * @example
 * ```ts
 * import { formatKvStats } from "./stats.ts";
 * const layer = { layer: 0, keys: 1024, values: 2048, index: 0, fullKeys: 2048, promptTokens: 4, keyChannels: 8 };
 * console.log(formatKvStats({ policy: "full", capacity: 16, bytes: 3072, keyBytes: 1024, valueBytes: 2048, indexBytes: 0, fullBytes: 4096, layers: [layer] }));
 * ```
 */
export function formatKvStats(s: KvStats): string {
  const rows = [["layer", "prompt tokens", "key channels", "keys", "values", "channel lists", "of full"]];
  for (const l of s.layers) {
    rows.push([
      String(l.layer),
      String(l.promptTokens),
      String(l.keyChannels),
      String(l.keys),
      String(l.values),
      String(l.index),
      `${((l.keys + l.values + l.index) / (2 * l.fullKeys) * 100).toFixed(1)}%`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")
  );
  return [...lines, formatKvSummary(s)].join("\n");
}
