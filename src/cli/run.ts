/**
 * `thinkv run`: load a model, stream generated text to stdout, one stats line to stderr.
 *
 * @module
 */

import { loadModel } from "../model/model.ts";
import {
  CliError,
  formatBytes,
  numberOption,
  parseOptions,
  SAMPLING_FLAG_OPTIONS,
  samplingFromFlags,
} from "./common.ts";
import { KV_FLAG_HELP, KV_FLAG_OPTIONS, kvOptionsFromCli } from "./kv_flags.ts";
import { PrefillCounter, ProgressBar } from "./progress.ts";
import { formatKvStats } from "../kv/stats.ts";
import { formatProfile } from "../gpu/profile.ts";

const HELP = `Usage: thinkv run --model FILE (--prompt TEXT | --file FILE) [options]

Generates text after the prompt and streams it to stdout; one stats line goes to stderr.
  -m, --model FILE        GGUF model (llama architecture)
  -p, --prompt TEXT       the prompt (BOS is added)
  -f, --file FILE         read the prompt from a file
  -n, --n-predict N       tokens to generate (default 128)
      --temperature T     sampling temperature, 0 = greedy (default 0.8)
      --top-k K           keep the K most likely tokens, 0 = all (default 40)
      --top-p P           nucleus sampling mass in (0, 1] (default 0.95)
      --seed S            random seed for reproducible sampling
      --ctx N             context length: KV-cache capacity in tokens (default min(model, 4096))
      --batch N           prompt tokens per prefill batch (default 64)
      --stop TEXT         stop before TEXT (repeatable)
      --sync-every N      decode steps per GPU submit / token readback (default 8, max 64)
      --ignore-eos        keep generating after the end-of-sequence token
      --stats             print KV-cache memory per layer to stderr
      --profile           print GPU time per kernel family to stderr (needs timestamp-query;
                          each family gets its own compute pass, so decoding runs a little slower)
  -q, --quiet             no progress bar
  -h, --help              this help
${KV_FLAG_HELP}`;

/**
 * Runs `thinkv run`; returns the exit status.
 *
 * @example
 * ```ts ignore
 * await runCommand(["--model", "../shared/models/stories260K.gguf", "--prompt", "Once upon a time", "-n", "32"]);
 * ```
 */
export async function runCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    model: { type: "string", short: "m" },
    prompt: { type: "string", short: "p" },
    file: { type: "string", short: "f" },
    ...SAMPLING_FLAG_OPTIONS,
    ctx: { type: "string" },
    batch: { type: "string" },
    stop: { type: "string", multiple: true },
    "sync-every": { type: "string" },
    "ignore-eos": { type: "boolean" },
    stats: { type: "boolean" },
    profile: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
    ...KV_FLAG_OPTIONS,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.model !== "string") {
    throw new CliError("--model FILE is required (see thinkv run --help)");
  }
  let prompt: string;
  if (typeof values.prompt === "string") prompt = values.prompt;
  else if (typeof values.file === "string") {
    try {
      prompt = await Deno.readTextFile(values.file);
    } catch (e) {
      throw new CliError(`cannot read the prompt file ${values.file}: ${(e as Error).message}`);
    }
  } else throw new CliError("--prompt TEXT or --file FILE is required (see thinkv run --help)");
  const sampling = samplingFromFlags(values, { maxTokens: 128, minTokens: 0 });
  const contextLength = numberOption(values, "ctx", { integer: true, min: 1 });
  const batchSize = numberOption(values, "batch", { integer: true, min: 1 });

  const kv = await kvOptionsFromCli(values);
  const bar = new ProgressBar("loading weights", { quiet: !!values.quiet });
  const model = await loadModel(values.model, {
    contextLength,
    batchSize,
    kv,
    profile: !!values.profile,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.done();
  try {
    const out = Deno.stdout;
    const enc = new TextEncoder();
    const counter = new PrefillCounter({ quiet: !!values.quiet });
    const it = model.generate(prompt, {
      onPrefillProgress: counter.callback(model.state.maxBatch),
      ...sampling,
      stop: (values.stop as unknown as string[] | undefined) ?? [],
      stopAtEos: !values["ignore-eos"],
      syncEvery: numberOption(values, "sync-every", { integer: true, min: 1 }),
    });
    let r = await it.next();
    counter.done();
    for (; !r.done; r = await it.next()) await out.write(enc.encode(r.value));
    await out.write(enc.encode("\n"));
    const s = r.value;
    console.error(
      `thinkv: prompt ${s.promptTokens} tokens, generated ${s.generatedTokens} (${s.stopReason}); ` +
        `prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${
          s.decodeTokensPerSecond.toFixed(1)
        } tok/s; ` +
        `KV cache ${formatBytes(s.kvCacheBytes)}; ${model.gpu.adapterName}`,
    );
    if (values.stats) console.error(formatKvStats(model.kvStats()));
    if (values.profile) console.error(formatProfile(await model.profile()));
  } finally {
    model.dispose();
  }
  return 0;
}
