/**
 * The KV-cache quality table of issues 3 and 4: for each configuration, the KV bytes it allocates, its
 * fidelity to the full cache on stories260K, and its passkey accuracy with passkey-tiny.
 *
 *   XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno run --allow-read --allow-env bench/kv_table.ts \
 *     [--passkey 60] [--only snapkv | --only kivi]
 *
 * `--only TEXT` keeps the rows whose name contains TEXT (e.g. `kivi`: the 6 KIVI rows, 8/4/2 bits with
 * and without ThinK 0.4, G = 32, R = 128); the full cache's distributions are computed as the
 * fidelity reference either way.
 *
 * - Fidelity: a 300-token stories260K prompt (BOS + text the full model samples from "Once upon a
 *   time", temperature 1, seed 1) and its 64-token continuation. Each configuration prefills the prompt
 *   (compressing it) and is teacher-forced through the continuation: 64 next-token distributions,
 *   compared with the full cache's by KL(full ‖ config) (mean over the steps) and top-1 agreement.
 *   "KV bytes" is what that run allocates (context 364), beside the full cache's.
 * - Passkey: the 60 prompts of ../shared/golden/passkey-tiny.eval.jsonl (237–1513 tokens), greedy
 *   decoding of 7 tokens; correct when the 5 digits after the leading space equal the answer.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/gpu.ts";
import { describeKvOptions, type KvOptions } from "../src/kv/options.ts";
import { type KvStats, loadModel, type Model } from "../src/model/model.ts";

const SHARED = new URL("../../shared/", import.meta.url).pathname;
const STORIES = `${SHARED}models/stories260K.gguf`;
const PASSKEY = `${SHARED}models/passkey-tiny.gguf`;
const PROMPT = 300, STEPS = 64;

/** The configurations of the table, in its order. */
export const TABLE_CONFIGS: KvOptions[] = [
  {},
  { think: { ratio: 0.4 } },
  { think: { ratio: 0.5 } },
  { think: { ratio: 0.75 } },
  ...(["snapkv", "pyramidkv", "streamingllm", "h2o"] as const).flatMap((policy) =>
    [64, 128].map((budget) => ({ eviction: { policy, budget } }))
  ),
  { eviction: { policy: "snapkv", budget: 128 }, think: { ratio: 0.5 } },
  ...[8, 4, 2].flatMap((bits): KvOptions[] => [
    { quant: { keyBits: bits, valueBits: bits } },
    { think: { ratio: 0.4 }, quant: { keyBits: bits, valueBits: bits } },
  ]),
];

const { values } = parseArgs({
  args: Deno.args,
  options: { passkey: { type: "string", default: "60" }, only: { type: "string" } },
});
const nPasskey = Number(values.passkey);
const configs = TABLE_CONFIGS.filter((c) => !values.only || describeKvOptions(c).includes(values.only));

const gpu = await Gpu.create();

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const p = Float64Array.from(logits, (x) => Math.exp(x - max));
  const sum = p.reduce((a, x) => a + x, 0);
  return p.map((x) => x / sum);
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Logits after the prompt, then after each of the first STEPS − 1 continuation tokens. */
async function teacherForced(model: Model, ids: number[]): Promise<Float32Array[]> {
  model.prefill(ids.slice(0, PROMPT), 0, { logits: "last" });
  const first = await model.readLogits();
  return [first, ...await model.evaluate(ids.slice(PROMPT, PROMPT + STEPS - 1), PROMPT)];
}

// the stories260K sequence: BOS + sampled text, 300 prompt + 64 continuation tokens
const storyIds = await (async () => {
  const m = await loadModel(STORIES, { gpu, contextLength: PROMPT + STEPS });
  const prompt = m.tokenizer.encode("Once upon a time");
  const it = m.generate(prompt, {
    maxTokens: PROMPT + STEPS - prompt.length,
    temperature: 1,
    seed: 1,
    stopAtEos: false,
  });
  let r = await it.next();
  while (!r.done) r = await it.next();
  m.dispose();
  return [...prompt, ...r.value.tokens];
})();

const passkeyExamples = (await Deno.readTextFile(`${SHARED}golden/passkey-tiny.eval.jsonl`))
  .trim().split("\n").slice(0, nPasskey).map((l) => JSON.parse(l) as { context: string; answers: string[] });

/** Next-token distributions of a configuration, and the bytes it allocated. */
async function fidelityRows(kv: KvOptions): Promise<{ rows: Float64Array[]; stats: KvStats }> {
  const m = await loadModel(STORIES, { gpu, contextLength: PROMPT + STEPS, kv });
  const rows = (await teacherForced(m, storyIds)).map(softmax);
  const stats = m.kvStats();
  m.dispose();
  return { rows, stats };
}

// the fidelity reference: the full cache (also when --only leaves it out of the table)
const fullRows = (await fidelityRows({})).rows;
const lines: string[] = [];
console.log(`adapter: ${gpu.adapterName}`);
console.log(
  `stories260K: prompt ${PROMPT} tokens, ${STEPS} teacher-forced steps; passkey-tiny: ${passkeyExamples.length} prompts\n`,
);
const header =
  "| KV cache | KV bytes (stories, ctx 364) | vs full | mean KL vs full | top-1 agreement | passkey |";
console.log(header);
console.log("|---|---:|---:|---:|---:|---:|");
for (const kv of configs) {
  const t0 = performance.now();
  const { rows, stats } = await fidelityRows(kv);
  let kl = 0, agree = 0;
  rows.forEach((q, i) => {
    const p = fullRows[i];
    for (let j = 0; j < p.length; j++) if (p[j] > 0) kl += p[j] * Math.log(p[j] / Math.max(q[j], 1e-300));
    if (argmax(p) === argmax(q)) agree++;
  });

  const pk = await loadModel(PASSKEY, { gpu, contextLength: 1600, kv });
  let correct = 0;
  for (const ex of passkeyExamples) {
    const it = pk.generate(pk.tokenizer.encode(ex.context), {
      maxTokens: 7,
      temperature: 0,
      stopAtEos: false,
    });
    let text = "";
    let r = await it.next();
    for (; !r.done; r = await it.next()) text += r.value;
    if (/^ (\d{5})/.exec(text)?.[1] === ex.answers[0]) correct++;
  }
  pk.dispose();
  const line = `| ${describeKvOptions(kv)} | ${stats.bytes.toLocaleString("en-US")} | ` +
    `${(stats.bytes / stats.fullBytes * 100).toFixed(1)}% | ${(kl / rows.length).toFixed(4)} | ` +
    `${agree}/${rows.length} | ${correct}/${passkeyExamples.length} |`;
  lines.push(line);
  console.log(line + ` <!-- ${((performance.now() - t0) / 1000).toFixed(0)} s -->`);
}
gpu.destroy();
