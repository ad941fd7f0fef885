/** Report writers: Markdown table, CSV quoting, JSON, and a well-formed SVG chart with its legend. */
import assert from "node:assert/strict";
import {
  csvField,
  type EvalReport,
  formatKv,
  methodStyles,
  niceTicks,
  renderChart,
  type RunRecord,
  toCsv,
  toJson,
  toMarkdown,
  xmlEscape,
} from "../src/eval/report.ts";

function run(p: Partial<RunRecord> & Pick<RunRecord, "setting" | "method" | "task" | "type">): RunRecord {
  return {
    model: "tiny",
    metrics: null,
    primary: "top1",
    higherIsBetter: true,
    kvBytes: null,
    kvFullBytes: null,
    examples: 1,
    tokens: { prefill: 10, decode: 5 },
    timing: { seconds: 1.25 },
    ...p,
  };
}

const REPORT: EvalReport = {
  version: 1,
  config: "x.yaml",
  environment: { adapter: "test", deno: "2", date: "2025-01-01T00:00:00.000Z" },
  models: [{ name: "tiny", path: "tiny.gguf" }],
  settings: [
    { name: "full", method: "full", kv: null },
    { name: "snap-64", method: "SnapKV", kv: {} },
    { name: "snap-128", method: "SnapKV", kv: {} },
    { name: 'odd, "quoted" <name>', method: "A & B", kv: {} },
    { name: "kivi", method: "KIVI", kv: {} },
  ],
  tasks: [{ name: "fidelity", type: "fidelity" }, { name: "passkey", type: "passkey" }, {
    name: "lb",
    type: "longbench",
  }],
  runs: [
    run({
      setting: "full",
      method: "full",
      task: "fidelity",
      type: "fidelity",
      metrics: { kl: 0, top1: 100 },
      kvBytes: 4096,
      kvFullBytes: 4096,
    }),
    run({
      setting: "snap-64",
      method: "SnapKV",
      task: "fidelity",
      type: "fidelity",
      metrics: { kl: 0.125, top1: 87.5 },
      kvBytes: 1024,
      kvFullBytes: 4096,
    }),
    run({
      setting: "snap-128",
      method: "SnapKV",
      task: "fidelity",
      type: "fidelity",
      metrics: { kl: 0.0625, top1: 93.75 },
      kvBytes: 2048,
      kvFullBytes: 4096,
    }),
    run({
      setting: 'odd, "quoted" <name>',
      method: "A & B",
      task: "fidelity",
      type: "fidelity",
      metrics: { kl: 0.5, top1: 50 },
      kvBytes: 3072,
      kvFullBytes: 4096,
    }),
    run({
      setting: "kivi",
      method: "KIVI",
      task: "fidelity",
      type: "fidelity",
      error: "kv.quant is not supported by this build",
    }),
    run({
      setting: "full",
      method: "full",
      task: "passkey",
      type: "passkey",
      primary: "accuracy",
      metrics: { accuracy: 75, correct: 3, total: 4 },
      kvBytes: 8 * 2 ** 20,
      kvFullBytes: 8 * 2 ** 20,
      details: {
        heatmap: { lengths: [256, 512], depths: [0.1, 0.9], cells: [[[1, 1], [1, 1]], [[0, 1], [1, 1]]] },
      },
    }),
    run({
      setting: "full",
      method: "full",
      task: "lb",
      type: "longbench",
      primary: "average",
      metrics: { average: 31.92, trec: 25.5, lcc: 38.33 },
      kvBytes: 1000,
      kvFullBytes: 1000,
      details: { datasets: ["trec", "lcc"] },
    }),
  ],
  seconds: 9,
};

Deno.test("csvField quotes commas, quotes, CR and LF (RFC 4180) and leaves the rest", () => {
  assert.equal(csvField("plain"), "plain");
  assert.equal(csvField("a,b"), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField("two\nlines"), '"two\nlines"');
  assert.equal(csvField("cr\r"), '"cr\r"');
  assert.equal(csvField(0.5), "0.5");
  assert.equal(csvField(null), "");
  assert.equal(csvField(NaN), "");
});

/** A minimal RFC 4180 reader, to check the writer round-trips. */
function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = "", i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') [field, i] = [field + '"', i + 2];
      else if (c === '"') [quoted, i] = [false, i + 1];
      else [field, i] = [field + c, i + 1];
    } else if (c === '"') [quoted, i] = [true, i + 1];
    else if (c === ",") [row, field, i] = [[...row, field], "", i + 1];
    else if (c === "\r" && text[i + 1] === "\n") {
      rows.push([...row, field]);
      [row, field, i] = [[], "", i + 2];
    } else [field, i] = [field + c, i + 1];
  }
  return rows;
}

Deno.test("toCsv writes one row per metric, one per failed run, and round-trips odd names", () => {
  const csv = toCsv(REPORT);
  assert.ok(csv.endsWith("\r\n"));
  const rows = readCsv(csv);
  assert.deepEqual(rows[0], [
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
  ]);
  // 2 + 2 + 2 + 2 fidelity metrics, 1 error row, 3 passkey metrics, 3 longbench metrics
  assert.equal(rows.length, 1 + 8 + 1 + 3 + 3);
  assert.ok(rows.every((r) => r.length === 13));
  const odd = rows.find((r) => r[1] === 'odd, "quoted" <name>' && r[5] === "top1")!;
  assert.deepEqual(odd.slice(2, 11), [
    "A & B",
    "fidelity",
    "fidelity",
    "top1",
    "50",
    "yes",
    "3072",
    "4096",
    "1",
  ]);
  const err = rows.find((r) => r[1] === "kivi")!;
  assert.equal(err[5], "");
  assert.equal(err[12], "kv.quant is not supported by this build");
  assert.match(csv, /"odd, ""quoted"" <name>"/);
});

Deno.test("toMarkdown: the main table, the passkey heat map and the LongBench table", () => {
  const md = toMarkdown(REPORT);
  const lines = md.split("\n");
  assert.equal(lines[0], "| model | setting | task | quality | KV cache | of full | time |");
  assert.equal(lines[1], "| --- | --- | --- | --- | ---: | ---: | ---: |");
  assert.ok(
    lines.includes("| tiny | full | fidelity | KL 0.0000 · top-1 100.0% | 4.00 KiB | 100.0% | 1.3 s |"),
  );
  assert.ok(
    lines.includes("| tiny | snap-64 | fidelity | KL 0.1250 · top-1 87.5% | 1.00 KiB | 25.0% | 1.3 s |"),
  );
  assert.ok(
    lines.includes(
      "| tiny | kivi | fidelity | error: kv.quant is not supported by this build | — | — | 1.3 s |",
    ),
  );
  assert.ok(lines.includes("| tiny | full | passkey | 3/4 (75.0%) | 8.00 MiB | 100.0% | 1.3 s |"));
  assert.ok(lines.includes("| tiny | full | lb | avg 31.92 | 1000 B | 100.0% | 1.3 s |"));
  // Every row of the main table has 7 cells.
  for (const l of lines.slice(2, 2 + REPORT.runs.length)) assert.equal(l.split(" | ").length, 7, l);
  assert.ok(md.includes("| setting | length | depth 0.1 | depth 0.9 | all |"));
  assert.ok(md.includes("| full | ~256 | 1/1 | 1/1 | 2/2 |"));
  assert.ok(md.includes("| full | ~512 | 0/1 | 1/1 | 1/2 |"));
  assert.ok(md.includes("| setting | trec | lcc | average |"));
  assert.ok(md.includes("| full | 25.50 | 38.33 | 31.92 |"));
});

Deno.test("toMarkdown escapes pipes in cells", () => {
  const r: EvalReport = {
    ...REPORT,
    runs: [run({ setting: "a|b", method: "m", task: "t", type: "fidelity", error: "x | y" })],
  };
  assert.ok(toMarkdown(r).includes("| tiny | a\\|b | t | error: x \\| y |"));
});

Deno.test("toJson round-trips the report", () => {
  assert.deepEqual(JSON.parse(toJson(REPORT)), REPORT);
});

/** Checks XML well-formedness: balanced tags, quoted attributes, escaped text, one root. */
function assertWellFormedXml(xml: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;
  let last = 0, roots = 0;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const text = xml.slice(last, m.index);
    assert.doesNotMatch(text, /[<>]/, `stray angle bracket before ${m[0]}`);
    assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos|#\d+);)/, `raw & in text: ${text}`);
    last = re.lastIndex;
    if (!m[2]) continue;
    for (const a of (m[3] ?? "").matchAll(/="([^"]*)"/g)) {
      assert.doesNotMatch(a[1], /&(?!(amp|lt|gt|quot|apos|#\d+);)/, `raw & in attribute: ${a[1]}`);
    }
    if (m[1]) {
      assert.equal(stack.pop(), m[2], `mismatched </${m[2]}>`);
    } else {
      if (stack.length === 0) roots++;
      names.push(m[2]);
      if (!m[4]) stack.push(m[2]);
    }
  }
  assert.equal(xml.slice(last).trim(), "", "text after the root");
  assert.deepEqual(stack, [], "unclosed tags");
  assert.equal(roots, 1, "exactly one root element");
  return names;
}

Deno.test("renderChart: well-formed SVG with legend labels, axes, ticks and one line per method", () => {
  const svg = renderChart(REPORT);
  const tags = assertWellFormedXml(svg);
  assert.equal(tags[0], "svg");
  assert.match(
    svg,
    /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/,
  );
  // Legend: every method, escaped.
  for (const label of ["full", "SnapKV", "A &amp; B", "KIVI (no results)"]) {
    assert.ok(svg.includes(`>${label}</text>`), label);
  }
  assert.ok(svg.includes("odd, &quot;quoted&quot; &lt;name&gt;"));
  // Panels: fidelity and passkey and lb (all have a successful run); titles and axis labels with units.
  assert.ok(svg.includes(">tiny · fidelity</text>"));
  assert.ok(svg.includes(">tiny · passkey</text>"));
  assert.ok(svg.includes(">KV cache per example (KiB)</text>"));
  assert.ok(svg.includes(">KV cache per example (MiB)</text>"));
  assert.ok(svg.includes(">top-1 agreement with full cache (%)</text>"));
  assert.ok(svg.includes(">passkey accuracy (%)</text>"));
  // The SnapKV line joins its two points in order of bytes; full is a dashed reference line.
  const snapColor = methodStyles(REPORT.settings.map((s) => s.method)).get("SnapKV")!.color;
  assert.match(
    svg,
    new RegExp(`<path d="M[\\d.]+,[\\d.]+ L[\\d.]+,[\\d.]+" fill="none" stroke="${snapColor}"`),
  );
  assert.match(svg, /stroke-dasharray="5,4"/);
  // Tick labels on the x axis of the fidelity panel (0 … 4 KiB).
  for (const t of ["0", "1", "2", "3", "4"]) assert.ok(svg.includes(`text-anchor="middle">${t}</text>`), t);
});

Deno.test("renderChart with no successful run is still a valid SVG with a legend", () => {
  const svg = renderChart({ ...REPORT, runs: [REPORT.runs[4]] });
  assertWellFormedXml(svg);
  assert.ok(svg.includes(">KIVI (no results)</text>"));
});

Deno.test("niceTicks, formatKv, xmlEscape and methodStyles", () => {
  assert.deepEqual(niceTicks(0, 97, 5), { lo: 0, hi: 100, step: 20, ticks: [0, 20, 40, 60, 80, 100] });
  assert.deepEqual(niceTicks(2.95, 3.41, 5).ticks, [2.9, 3, 3.1, 3.2, 3.3, 3.4, 3.5]);
  assert.deepEqual(niceTicks(5, 5, 4).ticks.length > 1, true);
  assert.equal(formatKv(512), "512 B");
  assert.equal(formatKv(1536), "1.50 KiB");
  assert.equal(formatKv(400 * 1024), "400 KiB");
  assert.equal(formatKv(3.25 * 2 ** 20), "3.25 MiB");
  assert.equal(xmlEscape(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
  const st = methodStyles(["SnapKV", "full", "SnapKV", "ThinK"]);
  assert.deepEqual([...st.keys()], ["SnapKV", "full", "ThinK"]);
  assert.equal(st.get("full")!.color, "#000000");
  assert.notEqual(st.get("SnapKV")!.color, st.get("ThinK")!.color);
  assert.notEqual(st.get("SnapKV")!.marker, st.get("ThinK")!.marker);
});
