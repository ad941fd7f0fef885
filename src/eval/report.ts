/**
 * The evaluation report ({@linkcode EvalReport}) and its writers: a Markdown table (plus passkey heat
 * maps and LongBench per-dataset scores), JSON, CSV (RFC 4180 quoting) and an SVG chart of quality
 * against KV-cache bytes with one panel per (model, task) and one line per method. Everything here
 * is a pure function of the report; the SVG is written by hand (no dependencies).
 *
 * @module
 */

/** One (model, KV setting, task) cell of the matrix. */
export interface RunRecord {
  /** Model name. */
  model: string;
  /** KV setting name. */
  setting: string;
  /** The method the setting belongs to (one chart line per method), e.g. `"SnapKV"`. */
  method: string;
  /** Task name. */
  task: string;
  /** Task type: `fidelity`, `perplexity`, `passkey`, `longbench`. */
  type: string;
  /** Quality numbers, or null when the run failed. */
  metrics: Record<string, number> | null;
  /** The metric charts plot. */
  primary: string;
  /** Whether a larger primary metric is better. */
  higherIsBetter: boolean;
  /** Mean KV-cache bytes allocated per example, or null when the run failed. */
  kvBytes: number | null;
  /** Mean bytes of an uncompressed cache of the same capacity. */
  kvFullBytes: number | null;
  /** Examples evaluated. */
  examples: number;
  /** Tokens prefilled and decoded. */
  tokens: { prefill: number; decode: number };
  /** Task details (heat map, per-dataset scores, predictions). */
  details?: Record<string, unknown>;
  /** Why the run failed. */
  error?: string;
  /** Wall-clock time; the only field that differs between two runs of the same config. */
  timing: { seconds: number };
}

/** A whole evaluation. */
export interface EvalReport {
  /** Format version. */
  version: 1;
  /** The config file. */
  config: string;
  /** Where it ran. */
  environment: { adapter: string; deno: string; date: string };
  /** Models, in config order. */
  models: { name: string; path: string }[];
  /** KV settings, in config order. */
  settings: { name: string; method: string; kv: unknown }[];
  /** Tasks, in config order. */
  tasks: { name: string; type: string }[];
  /** Every cell, in run order (model, setting, task). */
  runs: RunRecord[];
  /** Total wall-clock seconds. */
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------
// Formatting helpers

/**
 * Bytes in binary units with 3 significant digits.
 *
 * @example
 * ```ts
 * import { formatKv } from "./report.ts";
 * console.log(formatKv(512), formatKv(1536), formatKv(5 * 2 ** 20)); // 512 B 1.50 KiB 5.00 MiB
 * ```
 */
export function formatKv(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

function seconds(s: number): string {
  return s >= 60
    ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`
    : `${s.toFixed(1)} s`;
}

/** The quality cell of a run, e.g. `KL 0.0123 · top-1 98.4%`. */
export function formatQuality(r: RunRecord): string {
  if (!r.metrics) return `error: ${r.error ?? "unknown"}`;
  const m = r.metrics;
  switch (r.type) {
    case "fidelity":
      return `KL ${m.kl.toFixed(4)} · top-1 ${m.top1.toFixed(1)}%`;
    case "perplexity":
      return `PPL ${m.ppl.toFixed(3)}`;
    case "passkey":
      return `${m.correct}/${m.total} (${m.accuracy.toFixed(1)}%)`;
    case "longbench":
      return `avg ${m.average.toFixed(2)}`;
    default:
      return `${r.primary} ${m[r.primary]}`;
  }
}

function mdCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function mdTable(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const sep = header.map((_, i) => (align?.[i] === "r" ? "---:" : "---"));
  return [header, sep, ...rows].map((r, i) => `| ${(i === 1 ? r : r.map(mdCell)).join(" | ")} |`).join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Markdown

/**
 * The Markdown report: the main table (one row per model × setting × task: quality, KV bytes, share
 * of the uncompressed cache, time), then a heat map per passkey task and a per-dataset table per
 * LongBench task.
 *
 * @example
 * ```ts ignore
 * console.log(toMarkdown(report));
 * ```
 */
export function toMarkdown(report: EvalReport): string {
  const parts: string[] = [];
  const rows = report.runs.map((r) => [
    r.model,
    r.setting,
    r.task,
    formatQuality(r),
    r.kvBytes === null ? "—" : formatKv(r.kvBytes),
    r.kvBytes === null || !r.kvFullBytes ? "—" : `${((100 * r.kvBytes) / r.kvFullBytes).toFixed(1)}%`,
    seconds(r.timing.seconds),
  ]);
  parts.push(
    mdTable(["model", "setting", "task", "quality", "KV cache", "of full", "time"], rows, [
      "l",
      "l",
      "l",
      "l",
      "r",
      "r",
      "r",
    ]),
  );
  for (const { model, task, runs } of groups(report, "passkey")) {
    const h = runs.find((r) => r.details?.heatmap)?.details?.heatmap as Heatmap | undefined;
    if (!h) continue;
    const out: string[][] = [];
    for (const r of runs) {
      const hm = r.details?.heatmap as Heatmap | undefined;
      if (!hm) continue;
      hm.lengths.forEach((len, i) => {
        const cells = hm.cells[i];
        const c = cells.reduce((a, x) => a + x[0], 0), t = cells.reduce((a, x) => a + x[1], 0);
        out.push([
          r.setting,
          `~${len}`,
          ...h.depths.map((d) => {
            const j = hm.depths.indexOf(d);
            return j < 0 || cells[j][1] === 0 ? "—" : `${cells[j][0]}/${cells[j][1]}`;
          }),
          `${c}/${t}`,
        ]);
      });
    }
    parts.push(
      `**${model} · ${task}: correct / prompts by length (tokens) × depth**\n\n` +
        mdTable(["setting", "length", ...h.depths.map((d) => `depth ${d}`), "all"], out),
    );
  }
  for (const { model, task, runs } of groups(report, "longbench")) {
    const ok = runs.filter((r) => r.metrics);
    if (ok.length === 0) continue;
    const datasets = (ok[0].details?.datasets as string[] | undefined) ?? [];
    const out = ok.map((
      r,
    ) => [r.setting, ...datasets.map((d) => r.metrics![d].toFixed(2)), r.metrics!.average.toFixed(2)]);
    parts.push(
      `**${model} · ${task}: LongBench scores (×100)**\n\n` +
        mdTable(["setting", ...datasets, "average"], out, ["l", ...datasets.map(() => "r" as const), "r"]),
    );
  }
  return parts.join("\n\n") + "\n";
}

interface Heatmap {
  lengths: number[];
  depths: number[];
  cells: [number, number][][];
}

function groups(
  report: EvalReport,
  type?: string,
): { model: string; task: string; type: string; runs: RunRecord[] }[] {
  const out: { model: string; task: string; type: string; runs: RunRecord[] }[] = [];
  for (const r of report.runs) {
    if (type && r.type !== type) continue;
    let g = out.find((x) => x.model === r.model && x.task === r.task);
    if (!g) out.push(g = { model: r.model, task: r.task, type: r.type, runs: [] });
    g.runs.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// JSON and CSV

/**
 * The report as JSON (2-space indent, trailing newline).
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("results.json", toJson(report));
 * ```
 */
export function toJson(report: EvalReport): string {
  return JSON.stringify(report, null, 2) + "\n";
}

/**
 * One CSV field, RFC 4180: quoted when it holds a comma, a double quote, CR or LF (quotes doubled).
 *
 * @example
 * ```ts
 * import { csvField } from "./report.ts";
 * console.log(csvField('say "hi", bye')); // "say ""hi"", bye"
 * ```
 */
export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return "";
  const s = typeof v === "number" ? (Number.isFinite(v) ? String(v) : "") : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV columns. */
export const CSV_COLUMNS: readonly string[] = [
  "model",
  "setting",
  "method",
  "task",
  "type",
  "metric",
  "value",
  "primary",
  "kv_bytes",
  "kv_full_bytes",
  "examples",
  "seconds",
  "error",
];

/**
 * The report as CSV: a header, then one row per (run, metric) — a failed run gives one row with its
 * error. CRLF line ends (RFC 4180).
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("results.csv", toCsv(report));
 * ```
 */
export function toCsv(report: EvalReport): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const r of report.runs) {
    const base = [r.model, r.setting, r.method, r.task, r.type];
    const tail = [r.kvBytes, r.kvFullBytes, r.examples, Number(r.timing.seconds.toFixed(3))];
    if (!r.metrics) {
      lines.push([...base, "", null, "", ...tail, r.error ?? "error"].map(csvField).join(","));
      continue;
    }
    for (const [k, v] of Object.entries(r.metrics)) {
      lines.push([...base, k, v, k === r.primary ? "yes" : "", ...tail, ""].map(csvField).join(","));
    }
  }
  return lines.join("\r\n") + "\r\n";
}

// ---------------------------------------------------------------------------------------------------
// SVG chart

/** Okabe–Ito colours (colour-blind safe); `full` is always black. */
const PALETTE = ["#E69F00", "#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#999999", "#7A5C00"];
/** A point marker shape of the chart. */
export type MarkerKind = "circle" | "square" | "triangle" | "diamond" | "triangle-down" | "plus" | "cross";

const MARKERS: readonly MarkerKind[] = [
  "circle",
  "square",
  "triangle",
  "diamond",
  "triangle-down",
  "plus",
  "cross",
];

/**
 * Escapes text for SVG/XML content and attributes.
 *
 * @example
 * ```ts
 * import { xmlEscape } from "./report.ts";
 * console.log(xmlEscape(`a<b & "c"`)); // a&lt;b &amp; &quot;c&quot;
 * ```
 */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(
    /'/g,
    "&apos;",
  );
}

/**
 * "Nice" axis ticks (steps of 1, 2 or 5 × 10^k) covering [lo, hi], about `count` of them.
 *
 * @example
 * ```ts
 * import { niceTicks } from "./report.ts";
 * console.log(niceTicks(0, 97, 5)); // { lo: 0, hi: 100, step: 20, ticks: [0, 20, 40, 60, 80, 100] }
 * ```
 */
export function niceTicks(
  lo: number,
  hi: number,
  count = 5,
): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = a; v <= b + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo: a, hi: b, step, ticks };
}

function tickLabel(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(decimals, 6));
}

/** The y-axis title of a task type. */
function yTitle(type: string, primary: string): string {
  switch (type) {
    case "fidelity":
      return "top-1 agreement with full cache (%)";
    case "perplexity":
      return "perplexity (lower is better)";
    case "passkey":
      return "passkey accuracy (%)";
    case "longbench":
      return "LongBench average (×100)";
    default:
      return primary;
  }
}

function marker(kind: MarkerKind, x: number, y: number, color: string, r = 4.5): string {
  const f = (n: number) => n.toFixed(1);
  switch (kind) {
    case "square":
      return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${f(2 * r)}" height="${
        f(2 * r)
      }" fill="${color}"/>`;
    case "triangle":
      return `<path d="M${f(x)},${f(y - r * 1.2)} L${f(x + r * 1.1)},${f(y + r * 0.8)} L${f(x - r * 1.1)},${
        f(y + r * 0.8)
      } Z" fill="${color}"/>`;
    case "triangle-down":
      return `<path d="M${f(x)},${f(y + r * 1.2)} L${f(x + r * 1.1)},${f(y - r * 0.8)} L${f(x - r * 1.1)},${
        f(y - r * 0.8)
      } Z" fill="${color}"/>`;
    case "diamond":
      return `<path d="M${f(x)},${f(y - r * 1.3)} L${f(x + r)},${f(y)} L${f(x)},${f(y + r * 1.3)} L${
        f(x - r)
      },${f(y)} Z" fill="${color}"/>`;
    case "plus":
      return `<path d="M${f(x - r)},${f(y)} H${f(x + r)} M${f(x)},${f(y - r)} V${
        f(y + r)
      }" stroke="${color}" stroke-width="2.5"/>`;
    case "cross":
      return `<path d="M${f(x - r)},${f(y - r)} L${f(x + r)},${f(y + r)} M${f(x - r)},${f(y + r)} L${
        f(x + r)
      },${f(y - r)}" stroke="${color}" stroke-width="2.5"/>`;
    default:
      return `<circle cx="${f(x)}" cy="${f(y)}" r="${f(r)}" fill="${color}"/>`;
  }
}

/** Colour and marker of every method, in order of first appearance (`full` black circles). */
export function methodStyles(
  methods: readonly string[],
): Map<string, { color: string; marker: MarkerKind }> {
  const out = new Map<string, { color: string; marker: MarkerKind }>();
  let i = 0;
  for (const m of methods) {
    if (out.has(m)) continue;
    if (m === "full") out.set(m, { color: "#000000", marker: "circle" });
    else {
      out.set(m, { color: PALETTE[i % PALETTE.length], marker: MARKERS[(i + 1) % MARKERS.length] });
      i++;
    }
  }
  return out;
}

/**
 * The chart: one panel per (model, task) with at least one successful run, x = mean KV-cache bytes
 * per example (KiB or MiB, from 0), y = the task's primary metric; one line per method (points by
 * increasing bytes), the full cache as a point and a dashed reference line; setting names beside the
 * points; a shared legend on top. Returns a complete SVG document.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("chart.svg", renderChart(report));
 * ```
 */
export function renderChart(report: EvalReport): string {
  const panels = groups(report).filter((g) => g.runs.some((r) => r.metrics && r.kvBytes !== null));
  const methods = report.settings.map((s) => s.method);
  const styles = methodStyles(methods);
  const W = 460, H = 330, margin = { l: 68, r: 20, t: 34, b: 52 };
  const cols = Math.min(2, Math.max(1, panels.length));
  const rowsN = Math.max(1, Math.ceil(panels.length / cols));
  const legendH = 26 + 20 * Math.ceil([...styles.keys()].length / 4);
  const width = cols * W, height = legendH + rowsN * H + 10;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<title>KV-cache quality against memory</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  // Legend.
  out.push(`<g class="legend">`);
  out.push(`<text x="12" y="18" font-weight="bold">Methods</text>`);
  [...styles.entries()].forEach(([name, st], i) => {
    const x = 12 + (i % 4) * (width - 24) / 4, y = 38 + Math.floor(i / 4) * 20;
    out.push(
      `<line x1="${x}" y1="${y - 4}" x2="${x + 26}" y2="${y - 4}" stroke="${st.color}" stroke-width="2"${
        name === "full" ? ' stroke-dasharray="5,4"' : ""
      }/>`,
    );
    out.push(marker(st.marker, x + 13, y - 4, st.color, 4));
    const none = !report.runs.some((r) => r.method === name && r.metrics);
    out.push(`<text x="${x + 32}" y="${y}">${xmlEscape(name)}${none ? " (no results)" : ""}</text>`);
  });
  out.push(`</g>`);
  panels.forEach((p, idx) => {
    const ox = (idx % cols) * W, oy = legendH + Math.floor(idx / cols) * H;
    const ok = p.runs.filter((r) => r.metrics && r.kvBytes !== null);
    const ys = ok.map((r) => r.metrics![r.primary]);
    const maxBytes = Math.max(...ok.map((r) => r.kvBytes!));
    const unit = maxBytes >= 2 ** 20 ? { div: 2 ** 20, name: "MiB" } : { div: 1024, name: "KiB" };
    const xt = niceTicks(0, (maxBytes / unit.div) * 1.05, 5);
    const percent = ok[0].primary === "top1" || ok[0].primary === "accuracy";
    let ylo = Math.min(...ys), yhi = Math.max(...ys);
    const pad = (yhi - ylo) * 0.08 || Math.max(Math.abs(yhi) * 0.05, 1);
    ylo -= pad;
    yhi += pad;
    if (percent) [ylo, yhi] = [Math.max(0, ylo), Math.min(100, yhi)];
    if (ok[0].type === "longbench") ylo = Math.max(0, ylo);
    const yt = niceTicks(ylo, yhi, 5);
    const pw = W - margin.l - margin.r, ph = H - margin.t - margin.b;
    const sx = (v: number) => ox + margin.l + ((v / unit.div - xt.lo) / (xt.hi - xt.lo)) * pw;
    const sy = (v: number) => oy + margin.t + ph - ((v - yt.lo) / (yt.hi - yt.lo)) * ph;
    out.push(`<g class="panel">`);
    out.push(
      `<text x="${ox + margin.l + pw / 2}" y="${
        oy + 20
      }" text-anchor="middle" font-weight="bold" font-size="13">${
        xmlEscape(`${p.model} · ${p.task}`)
      }</text>`,
    );
    // Grid and ticks.
    for (const t of yt.ticks) {
      const y = sy(t).toFixed(1);
      out.push(
        `<line x1="${ox + margin.l}" y1="${y}" x2="${ox + margin.l + pw}" y2="${y}" stroke="#e5e5e5"/>`,
        `<text x="${ox + margin.l - 6}" y="${y}" dy="4" text-anchor="end">${tickLabel(t, yt.step)}</text>`,
      );
    }
    for (const t of xt.ticks) {
      const x = (ox + margin.l + ((t - xt.lo) / (xt.hi - xt.lo)) * pw).toFixed(1);
      out.push(
        `<line x1="${x}" y1="${oy + margin.t}" x2="${x}" y2="${oy + margin.t + ph}" stroke="#f0f0f0"/>`,
        `<line x1="${x}" y1="${oy + margin.t + ph}" x2="${x}" y2="${oy + margin.t + ph + 5}" stroke="#333"/>`,
        `<text x="${x}" y="${oy + margin.t + ph + 18}" text-anchor="middle">${tickLabel(t, xt.step)}</text>`,
      );
    }
    out.push(
      `<rect x="${ox + margin.l}" y="${
        oy + margin.t
      }" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
      `<text x="${ox + margin.l + pw / 2}" y="${
        oy + H - 12
      }" text-anchor="middle">KV cache per example (${unit.name})</text>`,
      `<text transform="translate(${ox + 16},${oy + margin.t + ph / 2}) rotate(-90)" text-anchor="middle">${
        xmlEscape(yTitle(p.type, ok[0].primary))
      }</text>`,
    );
    // Lines, one per method.
    const labels: { x: number; y: number; w: number }[] = [];
    for (const [method, st] of styles) {
      const pts = ok.filter((r) => r.method === method).sort((a, b) => a.kvBytes! - b.kvBytes!);
      if (pts.length === 0) continue;
      if (method === "full") {
        const y = sy(pts[0].metrics![pts[0].primary]).toFixed(1);
        out.push(
          `<line x1="${ox + margin.l}" y1="${y}" x2="${
            ox + margin.l + pw
          }" y2="${y}" stroke="#000" stroke-width="1" stroke-dasharray="5,4"/>`,
        );
      } else if (pts.length > 1) {
        const d = pts.map((r, i) =>
          `${i ? "L" : "M"}${sx(r.kvBytes!).toFixed(1)},${sy(r.metrics![r.primary]).toFixed(1)}`
        )
          .join(" ");
        out.push(`<path d="${d}" fill="none" stroke="${st.color}" stroke-width="2"/>`);
      }
      for (const r of pts) {
        const x = sx(r.kvBytes!), y = sy(r.metrics![r.primary]);
        out.push(
          `<g>${marker(st.marker, x, y, st.color)}<title>${
            xmlEscape(`${r.setting}: ${r.primary} ${r.metrics![r.primary]} at ${formatKv(r.kvBytes!)}`)
          }</title></g>`,
        );
        // A label beside the point: the first of four spots that stays inside the panel and clear of
        // the labels already placed; none if all four collide.
        const w = r.setting.length * 6 + 4;
        const spots = [[x + 7, y - 7], [x + 7, y + 16], [x - 7 - w, y - 7], [x - 7 - w, y + 16]];
        const spot = spots.find(([lx, ly]) =>
          lx >= ox + margin.l && lx + w <= ox + margin.l + pw && ly - 10 >= oy + margin.t &&
          ly <= oy + margin.t + ph &&
          !labels.some((b) => lx < b.x + b.w && lx + w > b.x && Math.abs(ly - b.y) < 12)
        );
        if (spot) {
          labels.push({ x: spot[0], y: spot[1], w });
          out.push(
            `<text x="${spot[0].toFixed(1)}" y="${spot[1].toFixed(1)}" font-size="10" fill="#444">${
              xmlEscape(r.setting)
            }</text>`,
          );
        }
      }
    }
    out.push(`</g>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/**
 * Writes `results.md`, `results.json`, `results.csv` and `chart.svg` to `dir` (created if needed)
 * and returns the paths.
 *
 * @example
 * ```ts ignore
 * await writeReport(report, "eval-results");
 * ```
 */
export async function writeReport(report: EvalReport, dir: string): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ["results.md", toMarkdown(report)],
    ["results.json", toJson(report)],
    ["results.csv", toCsv(report)],
    ["chart.svg", renderChart(report)],
  ];
  const paths: string[] = [];
  for (const [name, text] of files) {
    const path = `${dir.replace(/\/+$/, "")}/${name}`;
    await Deno.writeTextFile(path, text);
    paths.push(path);
  }
  return paths;
}
