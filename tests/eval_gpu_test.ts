/**
 * `thinkv eval` end to end on the GPU: a small matrix (stories260K and passkey-tiny, every task type,
 * the full cache and a compressed setting) through runEval, twice, with identical quality numbers;
 * and the CLI writing its four files. Kept under 30 s on llvmpipe.
 */
import assert from "node:assert/strict";
import { parseEvalConfig, runEval } from "../src/eval/harness.ts";
import type { EvalReport } from "../src/eval/report.ts";
import { gpuTest, ignore } from "./_gpu.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SHARED = `${ROOT}../shared/`;

const CONFIG = `
models:
  - { name: stories, path: ${SHARED}models/stories260K.gguf, tasks: [fidelity, perplexity, longbench] }
  - { name: passkey, path: ${SHARED}models/passkey-tiny.gguf, tasks: [needle, passkey], settings: [full] }
settings:
  - name: full
  - name: snapkv-32
    kv: { eviction: { policy: snapkv, budget: 32, window: 8, kernel: 3 } }
  - name: kivi
    kv: { quant: { keyBits: 2, valueBits: 2 } }
tasks:
  - { type: fidelity, texts: ["Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a big red ball in the park."], steps: 12 }
  - { type: perplexity, file: ${ROOT}examples/data/stories.txt, window: 64, stride: 16, maxTokens: 24 }
  - { type: longbench, files: [${ROOT}examples/data/longbench/triviaqa.jsonl], limit: 1, maxNewTokens: 6, maxLength: 200 }
  - { name: needle, type: passkey, generate: { lengths: [200], depths: [0.5], perCell: 2, seed: 3 } }
  - { type: passkey, file: ${SHARED}golden/passkey-tiny.eval.jsonl, limit: 2 }
`;

/** The report without what may differ between runs (timings, date). */
function quality(r: EvalReport): unknown {
  return r.runs.map(({ timing: _t, ...rest }) => rest);
}

gpuTest(
  "thinkv eval: every task type runs, failures stay in their cell, and a second run gives identical numbers",
  async (gpu) => {
    const config = await parseEvalConfig(CONFIG, { source: "e2e.yaml", baseDir: ROOT });
    const progress: number[] = [];
    const a = await runEval(config, { gpu, onProgress: (p) => progress.push(p.done) });
    // 3 stories tasks × 3 settings + 2 passkey tasks × 1 setting.
    assert.equal(a.runs.length, 11);
    const cell = (m: string, s: string, t: string) =>
      a.runs.find((r) => r.model === m && r.setting === s && r.task === t)!;

    const fid = cell("stories", "full", "fidelity");
    assert.deepEqual(fid.metrics, { kl: 0, top1: 100 }); // the full cache against itself, same path
    assert.equal(fid.kvBytes, fid.kvFullBytes);
    const ppl = cell("stories", "full", "perplexity").metrics!;
    assert.equal(ppl.tokens, 24);
    assert.ok(ppl.ppl > 1 && ppl.ppl < 30, `stories260K perplexity on its own kind of text: ${ppl.ppl}`);
    const lb = cell("stories", "full", "longbench").metrics!;
    assert.ok(lb.average >= 0 && lb.average <= 100 && lb.triviaqa === lb.average);
    // passkey-tiny finds generated and golden pass keys with the full cache.
    assert.equal(cell("passkey", "full", "needle").metrics!.accuracy, 100);
    assert.equal(cell("passkey", "full", "passkey").metrics!.accuracy, 100);
    // Both compressed settings run. SnapKV keeps less than the full cache; KIVI on these short prompts
    // (shorter than its 128-token full-precision residual, head dim 8) has nothing to quantize yet.
    for (const s of ["snapkv-32", "kivi"]) {
      for (const t of ["fidelity", "perplexity", "longbench"]) {
        const r = cell("stories", s, t);
        assert.ok(r.metrics, `${s} ${t}: ${r.error}`);
        if (s === "snapkv-32") {
          assert.ok(r.kvBytes! < r.kvFullBytes!, `${s} ${t} keeps less than the full cache`);
        }
      }
    }
    const snap = cell("stories", "snapkv-32", "fidelity");
    if (snap.metrics) assert.ok(snap.metrics.top1 <= 100 && snap.metrics.kl >= 0);
    // fidelity reference (1 text) + 3 settings × (1 text + 2 perplexity windows of 16 + 1 record) + 4 prompts
    assert.equal(progress.at(-1), 1 + 3 * (1 + 2 + 1) + 2 + 2);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1]);

    const b = await runEval(config, { gpu });
    assert.deepEqual(quality(b), quality(a));
  },
);

Deno.test({
  name: "thinkv eval (CLI) prints the table and writes results.md/json/csv and chart.svg",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "thinkv-eval-cli-" });
    const cfg = `${dir}/c.yaml`;
    await Deno.writeTextFile(
      cfg,
      `models: [{ path: ${SHARED}models/stories260K.gguf }]\nsettings: [{ name: full }]\n` +
        `tasks: [{ type: fidelity, texts: [Once upon a time there was a cat], steps: 4 }]\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        `--allow-write=${dir}`,
        `${ROOT}cli.ts`,
        "eval",
        "--config",
        cfg,
        "--out",
        `${dir}/out`,
      ],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stdout, /^\| model \| setting \| task \| quality \| KV cache \| of full \| time \|/);
    assert.match(stdout, /\| stories260K \| full \| fidelity \| KL 0\.0000 · top-1 100\.0% \|/);
    assert.doesNotMatch(stderr, /\r/, "no progress bar when stderr is not a terminal");
    assert.match(stderr, /thinkv: 1\/1 runs in .* wrote /);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/out/results.json`));
    assert.equal(json.runs[0].metrics.top1, 100);
    assert.match(await Deno.readTextFile(`${dir}/out/results.csv`), /^model,setting,method,task,/);
    assert.match(await Deno.readTextFile(`${dir}/out/chart.svg`), /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    assert.equal(await Deno.readTextFile(`${dir}/out/results.md`), stdout.slice(0, -1));
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("thinkv eval (CLI): a bad config is one error line naming the key", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "thinkv-eval-bad-" });
  await Deno.writeTextFile(
    `${dir}/bad.yaml`,
    "models: [{ path: x.gguf }]\nsettings: [{ name: full }]\ntasks: [{ type: perplexity, text: hi, window: 0 }]\n",
  );
  for (
    const [args, pattern] of [
      [["--config", `${dir}/bad.yaml`], /tasks\[0\]\.window must be an integer ≥ 2: current value is 0/],
      [[], /--config FILE is required/],
      [["--config", `${dir}/none.yaml`], /Cannot read the eval config .*none\.yaml/],
      [["--frob"], /Unknown option '--frob'/],
      [
        ["--config", `${ROOT}examples/eval.yaml`, "--out", `${dir}/out`],
        /cannot write the results to .*: run deno with --allow-write/,
      ],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", `${ROOT}cli.ts`, "eval", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1);
    assert.match(stderr, pattern);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
  await Deno.remove(dir, { recursive: true });
});
