/**
 * `thinkv eval`: run an evaluation config (models × KV settings × tasks), print the Markdown table and
 * write `results.md`, `results.json`, `results.csv` and `chart.svg`.
 *
 * @module
 */

import { loadEvalConfig, ProgressBar, runEval } from "../eval/harness.ts";
import { toMarkdown, writeReport } from "../eval/report.ts";
import { CliError, parseOptions } from "./common.ts";

const HELP = `Usage: thinkv eval --config FILE.yaml [--out DIR]

Runs every model × KV setting × task of the config and prints a Markdown table of quality against
KV-cache bytes; writes results.md, results.json, results.csv and chart.svg to DIR. A progress bar goes
to stderr when it is a terminal. Needs --allow-read --allow-env --allow-write.
  -c, --config FILE       the YAML config (see examples/eval.yaml)
  -o, --out DIR           output folder (default: the config's out:, else ./eval-results)
  -h, --help              this help`;

/**
 * Runs `thinkv eval`; returns the exit status (0 when the reports were written, even if some cells
 * failed: their errors are in the table and listed on stderr).
 *
 * @example
 * ```ts ignore
 * await evalCommand(["--config", "examples/eval.yaml", "--out", "/tmp/eval"]);
 * ```
 */
export async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    config: { type: "string", short: "c" },
    out: { type: "string", short: "o" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 0) {
    throw new CliError(`unexpected argument "${positionals[0]}" (see thinkv eval --help)`);
  }
  if (typeof values.config !== "string") {
    throw new CliError("--config FILE is required (see thinkv eval --help)");
  }
  const config = await loadEvalConfig(values.config);
  const out = typeof values.out === "string" ? values.out : config.out ?? "eval-results";
  // Fail before a long run, not after it, when the results cannot be written.
  if (Deno.permissions.querySync({ name: "write", path: out }).state !== "granted") {
    throw new CliError(
      `cannot write the results to ${out}: run deno with --allow-write (or --allow-write=${out})`,
    );
  }
  await Deno.mkdir(out, { recursive: true });
  const bar = new ProgressBar();
  let report;
  try {
    report = await runEval(config, { onProgress: (p) => bar.update(p) });
  } finally {
    bar.done();
  }
  console.log(toMarkdown(report));
  const files = await writeReport(report, out);
  const failed = report.runs.filter((r) => r.error !== undefined);
  for (const r of failed) console.error(`thinkv: ${r.model} · ${r.setting} · ${r.task} failed: ${r.error}`);
  console.error(
    `thinkv: ${report.runs.length - failed.length}/${report.runs.length} runs in ${
      report.seconds.toFixed(1)
    } s on ` +
      `${report.environment.adapter}; wrote ${files.join(", ")}`,
  );
  return 0;
}
