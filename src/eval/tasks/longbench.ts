/**
 * The `longbench` task: LongBench JSONL records (`input`, `context`, `answers`, `all_classes`,
 * `length`, …) run with the LongBench / ThinK protocol (THINK.md §6): the official prompt template of
 * the dataset, middle truncation by tokens to `maxLength`, BOS, greedy decoding of the dataset's
 * max new tokens with Hugging Face's `min_length = prompt + 1` (the first token is never a stop
 * token) and, for samsum, the newline token as a second stop token. Predictions are decoded without
 * special tokens and scored with `../longbench.ts` (exact parity with `eval.py`): per-dataset score
 * ×100 rounded to 2 decimals, unweighted average.
 *
 * @module
 */

import {
  buildPrompt,
  LONGBENCH_PROMPTS,
  maxNewTokens,
  NEWLINE_STOP_TASKS,
  scoreTask,
  TASK_METRIC,
  truncateMiddle,
} from "../longbench.ts";
import { averageScore } from "../longbench.ts";
import {
  type ExampleCallback,
  greedyDecode,
  KvMeter,
  type ModelProvider,
  parseJsonl,
  type TaskResult,
} from "./common.ts";

/** One LongBench dataset: its name and records. */
export interface LongBenchDataset {
  /** The LongBench task name (a key of `dataset2prompt.json`), e.g. `"triviaqa"`. */
  name: string;
  /** The records as read from the JSONL file. */
  records: Record<string, unknown>[];
}

/** Options of {@linkcode runLongBench}. */
export interface LongBenchRunOptions {
  /**
   * Prompt tokens (BOS included) above which the prompt is middle-truncated. A number, or a function
   * of the dataset's max new tokens (the harness's default: the model's context minus them).
   */
  maxLength: number | ((maxNew: number) => number);
  /** Override every dataset's max new tokens (for quick runs); default the official values. */
  maxNewTokens?: number;
}

/**
 * The dataset name of a file: `name` when given, else the file name without `.jsonl` (and without
 * LongBench-E's `_e` suffix) when it is a LongBench task, else the records' `dataset` field.
 *
 * @example
 * ```ts
 * import { datasetName } from "./longbench.ts";
 * console.log(datasetName("data/trec_e.jsonl", []), datasetName("x.jsonl", [{ dataset: "lcc" }])); // trec lcc
 * ```
 */
export function datasetName(
  path: string,
  records: readonly Record<string, unknown>[],
  name?: string,
): string {
  const known = (n: unknown): boolean => typeof n === "string" && Object.hasOwn(LONGBENCH_PROMPTS, n);
  if (name !== undefined) {
    if (!known(name)) {
      throw new RangeError(`Cannot run LongBench: unknown dataset: current value is ${JSON.stringify(name)}`);
    }
    return name;
  }
  const stem = path.replace(/^.*[\\/]/, "").replace(/\.jsonl$/, "");
  if (known(stem)) return stem;
  if (stem.endsWith("_e") && known(stem.slice(0, -2))) return stem.slice(0, -2);
  const field = records[0]?.dataset;
  if (known(field)) return field as string;
  throw new RangeError(
    `Cannot run LongBench: cannot tell the dataset of ${path}: name the file after a LongBench task (e.g. trec.jsonl) ` +
      "or set dataset",
  );
}

/**
 * Reads a LongBench JSONL text into a dataset, checking the fields the protocol needs.
 *
 * @example
 * ```ts
 * import { readLongBench } from "./longbench.ts";
 * const d = readLongBench('{"input": "q", "context": "c", "answers": ["a"], "all_classes": null, "length": 1}', "triviaqa.jsonl");
 * console.log(d.name, d.records.length); // triviaqa 1
 * ```
 */
export function readLongBench(text: string, path: string, name?: string, limit?: number): LongBenchDataset {
  let records = parseJsonl(text, path);
  const dataset = datasetName(path, records, name);
  if (limit !== undefined) records = records.slice(0, limit);
  if (records.length === 0) throw new RangeError(`Cannot run LongBench: ${path} holds no records`);
  records.forEach((r, i) => {
    const answers = r.answers;
    if (!Array.isArray(answers) || answers.some((a) => typeof a !== "string")) {
      throw new SyntaxError(`Cannot read ${path} record ${i + 1}: "answers" must be a list of strings`);
    }
    if (typeof r.context !== "string" || typeof r.input !== "string") {
      throw new SyntaxError(`Cannot read ${path} record ${i + 1}: "context" and "input" must be strings`);
    }
    if (TASK_METRIC[dataset] === "classification" && !Array.isArray(r.all_classes)) {
      throw new SyntaxError(
        `Cannot read ${path} record ${i + 1}: ${dataset} needs "all_classes" (a list of strings)`,
      );
    }
  });
  return { name: dataset, records };
}

/** The ids of one prompt after template and truncation, and its generation limits. */
export interface LongBenchPrompt {
  /** Prompt ids, BOS included. */
  ids: number[];
  /** Max new tokens. */
  maxNew: number;
  /** Extra stop ids (samsum: the newline token). */
  stopIds: number[];
}

/**
 * Builds one record's prompt: template, middle truncation to `maxLength` tokens, then encoding with
 * BOS (re-encoding after truncation, as the reference does).
 *
 * @example
 * ```ts ignore
 * const p = longBenchPrompt(tokenizer, "triviaqa", record, 3950);
 * ```
 */
export function longBenchPrompt(
  tok: {
    encode(text: string, options?: { addBos?: boolean }): number[];
    decode(ids: Iterable<number>): string;
  },
  dataset: string,
  record: Record<string, unknown>,
  maxLength: number,
  maxNewOverride?: number,
): LongBenchPrompt {
  const maxNew = maxNewOverride ?? maxNewTokens(dataset);
  const prompt = truncateMiddle(buildPrompt(dataset, record), maxLength, {
    encode: (t) => tok.encode(t),
    decode: (ids) => tok.decode(ids),
  });
  const stopIds: number[] = [];
  if (NEWLINE_STOP_TASKS.includes(dataset)) {
    // Hugging Face: tokenizer.encode("\n", add_special_tokens=False)[-1].
    const nl = tok.encode("\n", { addBos: false });
    if (nl.length > 0) stopIds.push(nl[nl.length - 1]);
  }
  return { ids: tok.encode(prompt), maxNew, stopIds };
}

/**
 * The task over one or more datasets. Metrics: `average` (primary: the unweighted mean of the
 * dataset scores, rounded to 2 decimals) and one score per dataset (×100, rounded to 2 decimals).
 *
 * @example
 * ```ts ignore
 * const r = await runLongBench(provider, [readLongBench(text, "trec.jsonl")], { maxLength: 3950 });
 * console.log(r.metrics.average, r.metrics.trec);
 * ```
 */
export async function runLongBench(
  provider: ModelProvider,
  datasets: readonly LongBenchDataset[],
  options: LongBenchRunOptions,
  onExample?: ExampleCallback,
): Promise<TaskResult> {
  const kv = new KvMeter();
  const metrics: Record<string, number> = {};
  const scores: number[] = [];
  const predictions: { dataset: string; index: number; pred: string; answers: unknown }[] = [];
  let prefill = 0, decode = 0, examples = 0;
  for (const d of datasets) {
    const maxNew = options.maxNewTokens ?? maxNewTokens(d.name);
    const maxLength = typeof options.maxLength === "number" ? options.maxLength : options.maxLength(maxNew);
    const preds: { pred: string; answers: readonly string[]; all_classes: readonly string[] | null }[] = [];
    for (let i = 0; i < d.records.length; i++) {
      const r = d.records[i];
      const p = longBenchPrompt(provider.tokenizer, d.name, r, maxLength, options.maxNewTokens);
      const model = await provider.get(p.ids.length + p.maxNew - 1);
      const { tokens, decodeSteps } = await greedyDecode(model, p.ids, {
        maxNewTokens: p.maxNew,
        stopIds: p.stopIds,
        minOneToken: true,
      });
      const pred = model.tokenizer.decode(tokens);
      const answers = r.answers as string[];
      preds.push({
        pred,
        answers,
        all_classes: Array.isArray(r.all_classes) ? r.all_classes as string[] : null,
      });
      predictions.push({ dataset: d.name, index: i, pred, answers });
      prefill += p.ids.length;
      decode += decodeSteps;
      examples++;
      kv.add(model.kvStats());
      onExample?.();
    }
    const score = scoreTask(d.name, preds);
    metrics[d.name] = score;
    scores.push(score);
  }
  return {
    metrics: { average: averageScore(scores), ...metrics },
    primary: "average",
    higherIsBetter: true,
    kvBytes: kv.bytes,
    kvFullBytes: kv.fullBytes,
    examples,
    tokens: { prefill, decode },
    details: { datasets: datasets.map((d) => d.name), predictions },
  };
}
