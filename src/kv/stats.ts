/**
 * Text reports of {@linkcode KvStats} for the CLI's `--stats`: the bytes the KV cache really allocated
 * (keys, values, channel lists; with KIVI also codes, scales, mins and the f32 residual inside them),
 * per layer and in total, beside what a full f32 cache would take.
 *
 * @module
 */

import type { KvStats } from "./cache.ts";

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

/**
 * One line: `KV cache snapkv(B=512,…) + think(0.4): 1.23 MiB of 4.00 MiB full (30.8%): keys 0.41, values 0.80, channel lists 0.02 MiB`;
 * with KIVI it ends `…; KIVI codes 0.20, scales 0.05, mins 0.05, f32 residual 0.13 MiB`.
 *
 * @example
 * ```ts
 * import { formatKvSummary } from "./stats.ts";
 * const layer = { layer: 0, keys: 1024, values: 2048, index: 0, codes: 0, scales: 0, mins: 0, residual: 0, fullKeys: 2048, promptTokens: 4, keyChannels: 8 };
 * console.log(formatKvSummary({ policy: "full", capacity: 16, bytes: 3072, keyBytes: 1024, valueBytes: 2048, indexBytes: 0,
 *   codeBytes: 0, scaleBytes: 0, minBytes: 0, residualBytes: 0, fullBytes: 4096, layers: [layer] }));
 * ```
 */
export function formatKvSummary(s: KvStats): string {
  const pct = s.fullBytes > 0 ? ` (${(s.bytes / s.fullBytes * 100).toFixed(1)}%)` : "";
  const m = (b: number) => (b / 2 ** 20).toFixed(2);
  const kivi = s.codeBytes > 0 || s.residualBytes > 0
    ? `; KIVI codes ${m(s.codeBytes)}, scales ${m(s.scaleBytes)}, mins ${m(s.minBytes)}, f32 residual ${
      m(s.residualBytes)
    } MiB`
    : "";
  return `KV cache ${s.policy}: ${mib(s.bytes)} of ${mib(s.fullBytes)} full${pct}: keys ${
    m(s.keyBytes)
  }, values ${m(s.valueBytes)}, channel lists ${m(s.indexBytes)} MiB${kivi}`;
}

/**
 * A per-layer table (kept prompt tokens, key channels, bytes of keys / values / channel lists, with
 * KIVI also codes, scales + mins and the f32 residual, % of full) followed by the summary line.
 *
 * @example
 * ```ts
 * import { formatKvStats } from "./stats.ts";
 * const layer = { layer: 0, keys: 1024, values: 2048, index: 0, codes: 0, scales: 0, mins: 0, residual: 0, fullKeys: 2048, promptTokens: 4, keyChannels: 8 };
 * console.log(formatKvStats({ policy: "full", capacity: 16, bytes: 3072, keyBytes: 1024, valueBytes: 2048, indexBytes: 0,
 *   codeBytes: 0, scaleBytes: 0, minBytes: 0, residualBytes: 0, fullBytes: 4096, layers: [layer] }));
 * ```
 */
export function formatKvStats(s: KvStats): string {
  const kivi = s.codeBytes > 0 || s.residualBytes > 0;
  const rows = [[
    "layer",
    "prompt tokens",
    "key channels",
    "keys",
    "values",
    "channel lists",
    ...(kivi ? ["codes", "scales+mins", "f32 residual"] : []),
    "of full",
  ]];
  for (const l of s.layers) {
    rows.push([
      String(l.layer),
      String(l.promptTokens),
      String(l.keyChannels),
      String(l.keys),
      String(l.values),
      String(l.index),
      ...(kivi ? [String(l.codes), String(l.scales + l.mins), String(l.residual)] : []),
      `${((l.keys + l.values + l.index) / (2 * l.fullKeys) * 100).toFixed(1)}%`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")
  );
  return [...lines, formatKvSummary(s)].join("\n");
}
