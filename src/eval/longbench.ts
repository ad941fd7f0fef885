/**
 * The LongBench protocol as pure functions (THINK.md §6): the 16 English tasks and their metrics, the
 * official prompt templates, middle truncation by tokens, first-line truncation, the maximum over a
 * record's answers, per-task scores `round(100·mean, 2)` and the unweighted average. Model loading,
 * decoding and file reading are elsewhere; everything here is deterministic and synchronous.
 *
 * Sources of each rule (all re-implemented, none copied): LongBench `eval.py` (`dataset2metric`,
 * `scorer`), LongBench `pred.py` and ThinK `ThinK_flash/run_longbench.py` (prompt, truncation).
 *
 * @example
 * ```ts
 * import { averageScore, scoreTask } from "./longbench.ts";
 * const trec = scoreTask("trec", [
 *   { pred: "\nLocation\nQuestion: ...", answers: ["Location"], all_classes: ["Location", "City"] },
 *   { pred: "City", answers: ["Location"], all_classes: ["Location", "City"] },
 * ]); // (1 + 0)/2 → 50
 * const hotpot = scoreTask("hotpotqa", [{ pred: "the cat sat", answers: ["cat sat down"] }]); // 80
 * console.log(trec, hotpot, averageScore([trec, hotpot])); // 50 80 65
 * ```
 *
 * @module
 */

import { LONGBENCH_MAX_NEW_TOKENS, LONGBENCH_PROMPTS } from "./longbench_config.ts";
import {
  classificationScore,
  codeSimScore,
  countScore,
  qaF1Score,
  retrievalScore,
  retrievalZhScore,
  rougeLScore,
} from "./metrics.ts";
import { firstLine, pyRound } from "./normalize.ts";

export {
  LONGBENCH_MAX_NEW_TOKENS,
  LONGBENCH_MODEL_MAX_LENGTH,
  LONGBENCH_PROMPTS,
} from "./longbench_config.ts";

/**
 * The 16 English LongBench tasks of the ThinK paper, in the order of its tables (ThinK
 * `run_longbench.py`).
 *
 * @example
 * ```ts
 * import { LONGBENCH_EN_TASKS } from "./longbench.ts";
 * console.log(LONGBENCH_EN_TASKS.length, LONGBENCH_EN_TASKS[0]); // 16 "narrativeqa"
 * ```
 */
export const LONGBENCH_EN_TASKS = [
  "narrativeqa",
  "qasper",
  "multifieldqa_en",
  "hotpotqa",
  "2wikimqa",
  "musique",
  "gov_report",
  "qmsum",
  "multi_news",
  "trec",
  "triviaqa",
  "samsum",
  "passage_count",
  "passage_retrieval_en",
  "lcc",
  "repobench-p",
] as const;

/** One of {@linkcode LONGBENCH_EN_TASKS}. */
export type LongBenchEnTask = typeof LONGBENCH_EN_TASKS[number];

/** The scoring functions of LongBench's `metrics.py`, by short name. */
export type MetricName =
  | "qa_f1"
  | "rouge"
  | "classification"
  | "retrieval"
  | "count"
  | "code_sim"
  | "retrieval_zh"
  | "qa_f1_zh"
  | "rouge_zh";

/**
 * LongBench's `dataset2metric` (`eval.py`): the metric of each of the 21 tasks. The English tasks and
 * lsht / passage_retrieval_zh are implemented; `qa_f1_zh` and `rouge_zh` need the jieba segmenter and
 * are not.
 *
 * @example
 * ```ts
 * import { TASK_METRIC } from "./longbench.ts";
 * console.log(TASK_METRIC["samsum"], TASK_METRIC["repobench-p"]); // "rouge" "code_sim"
 * ```
 */
export const TASK_METRIC: Readonly<Record<string, MetricName>> = Object.freeze({
  "narrativeqa": "qa_f1",
  "qasper": "qa_f1",
  "multifieldqa_en": "qa_f1",
  "multifieldqa_zh": "qa_f1_zh",
  "hotpotqa": "qa_f1",
  "2wikimqa": "qa_f1",
  "musique": "qa_f1",
  "dureader": "rouge_zh",
  "gov_report": "rouge",
  "qmsum": "rouge",
  "multi_news": "rouge",
  "vcsum": "rouge_zh",
  "trec": "classification",
  "triviaqa": "qa_f1",
  "samsum": "rouge",
  "lsht": "classification",
  "passage_retrieval_en": "retrieval",
  "passage_count": "count",
  "passage_retrieval_zh": "retrieval_zh",
  "lcc": "code_sim",
  "repobench-p": "code_sim",
});

/**
 * Tasks whose prediction is cut to its first line before scoring (`eval.py`):
 * `prediction.lstrip('\n').split('\n')[0]`.
 *
 * @example
 * ```ts
 * import { FIRST_LINE_TASKS } from "./longbench.ts";
 * console.log(FIRST_LINE_TASKS.includes("samsum")); // true
 * ```
 */
export const FIRST_LINE_TASKS: readonly string[] = Object.freeze(["trec", "triviaqa", "samsum", "lsht"]);

/**
 * Tasks whose generation also stops at the newline token (ThinK `run_longbench.py`: samsum, where
 * models otherwise keep writing "\nDialogue: …").
 *
 * @example
 * ```ts
 * import { NEWLINE_STOP_TASKS } from "./longbench.ts";
 * console.log(NEWLINE_STOP_TASKS); // ["samsum"]
 * ```
 */
export const NEWLINE_STOP_TASKS: readonly string[] = Object.freeze(["samsum"]);

/** A metric as `eval.py` calls it: `metric(prediction, ground_truth, all_classes=all_classes)`. */
export type MetricFn = (
  prediction: string,
  groundTruth: string,
  allClasses: readonly string[] | null,
) => number;

/**
 * The scoring function of a task, from {@linkcode TASK_METRIC}. Throws a `RangeError` for an unknown
 * task or a jieba-based Chinese metric, and (when called) for classification without `allClasses`.
 *
 * @example
 * ```ts
 * import { metricFor } from "./longbench.ts";
 * console.log(metricFor("passage_count")("3 and 3", "3", null)); // 1
 * ```
 */
export function metricFor(task: string): MetricFn {
  const name = TASK_METRIC[task];
  if (name === undefined) {
    throw new RangeError(
      `Cannot score task: unknown LongBench task: current value is ${JSON.stringify(task)}`,
    );
  }
  switch (name) {
    case "qa_f1":
      return (p, g) => qaF1Score(p, g);
    case "rouge":
      return (p, g) => rougeLScore(p, g);
    case "classification":
      return (p, g, classes) => {
        if (classes === null) {
          throw new RangeError(
            `Cannot score ${task}: classification needs all_classes: current value is null`,
          );
        }
        return classificationScore(p, g, classes);
      };
    case "retrieval":
      return (p, g) => retrievalScore(p, g);
    case "retrieval_zh":
      return (p, g) => retrievalZhScore(p, g);
    case "count":
      return (p, g) => countScore(p, g);
    case "code_sim":
      return (p, g) => codeSimScore(p, g);
    default:
      throw new RangeError(
        `Cannot score ${task}: metric ${name} needs the jieba segmenter, which thinkv does not implement`,
      );
  }
}

/**
 * The score of one prediction (`eval.py` `scorer`, inner loop): first-line truncation for
 * {@linkcode FIRST_LINE_TASKS}, then the **maximum** of the task metric over all ground-truth answers
 * (0 when there are none).
 *
 * @example
 * ```ts
 * import { scoreExample } from "./longbench.ts";
 * // first line "Paris"; answers: "paris france" → F1 = 2/3, "Paris" → 1; max = 1
 * console.log(scoreExample("triviaqa", "\nParis\nQuestion: next?", ["paris france", "Paris"])); // 1
 * ```
 */
export function scoreExample(
  task: string,
  prediction: string,
  answers: readonly string[],
  allClasses: readonly string[] | null = null,
): number {
  const metric = metricFor(task);
  const pred = FIRST_LINE_TASKS.includes(task) ? firstLine(prediction) : prediction;
  let score = 0.0;
  for (const gt of answers) score = Math.max(score, metric(pred, gt, allClasses));
  return score;
}

/**
 * A task's score as `eval.py` `scorer` computes it: the example scores ({@linkcode scoreExample}) are
 * summed in order, then `round(100 * total / count, 2)` with Python's rounding ({@linkcode pyRound}).
 * Throws a `RangeError` when there are no predictions or the arrays differ in length.
 *
 * @example
 * ```ts
 * import { scorePredictions } from "./longbench.ts";
 * // counts: "3" → 1, "3 or 4" → 1/2, "none" → 0; 100·1.5/3 = 50
 * console.log(scorePredictions("passage_count", ["3", "3 or 4", "none"], [["3"], ["3"], ["3"]], null)); // 50
 * ```
 */
export function scorePredictions(
  task: string,
  predictions: readonly string[],
  answers: readonly (readonly string[])[],
  allClasses: readonly string[] | null,
): number {
  if (predictions.length === 0 || predictions.length !== answers.length) {
    throw new RangeError(
      `Cannot score ${task}: need as many answer lists as predictions, at least one: current value is ${predictions.length} predictions, ${answers.length} answer lists`,
    );
  }
  let total = 0.0;
  for (let i = 0; i < predictions.length; i++) {
    total += scoreExample(task, predictions[i], answers[i], allClasses);
  }
  return pyRound((100 * total) / predictions.length, 2);
}

/** One line of a LongBench predictions file, as `eval.py` reads it. */
export interface LongBenchPrediction {
  /** The model's output, decoded without special tokens. */
  pred: string;
  /** The ground-truth answers; the best one counts. */
  answers: readonly string[];
  /** The class names (trec, lsht), else `null` or absent. */
  all_classes?: readonly string[] | null;
}

/**
 * A task's score from the lines of its predictions file, as `eval.py` does it, including its quirk
 * that `all_classes` is taken from the **last** line and used for every example (harmless in the
 * official data, where it is the same on every line). See {@linkcode scorePredictions}.
 *
 * @example
 * ```ts
 * import { scoreTask } from "./longbench.ts";
 * // "Paragraph 2" → runs [2] → 1; "1 or 2" → 1/2; 100·1.5/2 = 75
 * console.log(scoreTask("passage_retrieval_en", [
 *   { pred: "Paragraph 2", answers: ["Paragraph 2"] },
 *   { pred: "1 or 2", answers: ["Paragraph 2"] },
 * ])); // 75
 * ```
 */
export function scoreTask(task: string, records: readonly LongBenchPrediction[]): number {
  const allClasses = records.length > 0 ? records[records.length - 1].all_classes ?? null : null;
  return scorePredictions(task, records.map((r) => r.pred), records.map((r) => r.answers), allClasses);
}

/**
 * The unweighted average of per-task scores (the "Average" column of the ThinK tables), summed in
 * order and rounded like the task scores: `round(sum / n, 2)`. LongBench's `eval.py` itself stops at
 * per-task scores. Throws a `RangeError` on an empty list.
 *
 * @example
 * ```ts
 * import { averageScore } from "./longbench.ts";
 * // (25.5 + 30.25 + 40)/3 = 31.916… → 31.92
 * console.log(averageScore([25.5, 30.25, 40])); // 31.92
 * ```
 */
export function averageScore(taskScores: readonly number[]): number {
  if (taskScores.length === 0) {
    throw new RangeError("Cannot average task scores: the list is empty: current value is []");
  }
  let sum = 0;
  for (const s of taskScores) sum += s;
  return pyRound(sum / taskScores.length, 2);
}

/**
 * Python's `template.format(**fields)` for plain `{name}` fields: `{{` and `}}` are literal braces,
 * values are inserted verbatim (braces inside them are not re-read), numbers as `str()` would print
 * integers. Throws a `RangeError` for a missing field (Python's `KeyError`) and a `SyntaxError` for a
 * single brace or a field with a format spec, conversion, index or attribute, which this does not
 * implement.
 *
 * @example
 * ```ts
 * import { formatTemplate } from "./longbench.ts";
 * console.log(formatTemplate("{{x}} {context}|{input}", { context: "a {input}", input: "b" })); // "{x} a {input}|b"
 * ```
 */
export function formatTemplate(template: string, fields: Readonly<Record<string, unknown>>): string {
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}|[{}]/g, (whole, name: string | undefined) => {
    if (whole === "{{") return "{";
    if (whole === "}}") return "}";
    if (name === undefined) {
      throw new SyntaxError(`Cannot format the prompt template: single '${whole}' encountered`);
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new SyntaxError(
        `Cannot format the prompt template: unsupported field: current value is {${name}}`,
      );
    }
    if (!Object.hasOwn(fields, name)) {
      throw new RangeError(
        `Cannot format the prompt template: the record has no field ${JSON.stringify(name)}`,
      );
    }
    const v = fields[name];
    if (typeof v === "string") return v;
    if (typeof v === "number" && Number.isInteger(v)) return String(v);
    throw new TypeError(
      `Cannot format the prompt template: field ${name} must be a string: current value is ${v}`,
    );
  });
}

/**
 * The official prompt of a LongBench record: the task's template from `dataset2prompt.json` (typos
 * kept) formatted with the record's fields (`context`, `input`, …) as Python's `str.format(**record)`.
 * No chat template is added (ThinK_flash adds none for Llama-3 or Mistral; THINK.md §6.2).
 *
 * @example
 * ```ts
 * import { buildPrompt } from "./longbench.ts";
 * const p = buildPrompt("lcc", { context: "int x = 1;\n", input: "" });
 * console.log(JSON.stringify(p)); // "Please complete the code given below. \nint x = 1;\nNext line of code:\n"
 * ```
 */
export function buildPrompt(task: string, record: Readonly<Record<string, unknown>>): string {
  const template = LONGBENCH_PROMPTS[task];
  if (template === undefined) {
    throw new RangeError(
      `Cannot build a prompt: unknown LongBench task: current value is ${JSON.stringify(task)}`,
    );
  }
  return formatTemplate(template, record);
}

/**
 * The number of new tokens to generate for a task (`dataset2maxlen.json`).
 *
 * @example
 * ```ts
 * import { maxNewTokens } from "./longbench.ts";
 * console.log(maxNewTokens("hotpotqa"), maxNewTokens("samsum")); // 32 128
 * ```
 */
export function maxNewTokens(task: string): number {
  const n = LONGBENCH_MAX_NEW_TOKENS[task];
  if (n === undefined) {
    throw new RangeError(
      `Cannot look up max new tokens: unknown LongBench task: current value is ${JSON.stringify(task)}`,
    );
  }
  return n;
}

/**
 * The prompt-length limit ThinK_flash uses (`run_longbench.py`): every key of
 * `{llama2: 3950, llama-2: 3950, llama3: 7950, llama-3: 7950, mistral: 31500}` is tested, in that
 * order, as a substring of the lower-cased model path, and the **last** match wins. Throws a
 * `RangeError` when none matches (the reference crashes there).
 *
 * @example
 * ```ts
 * import { thinkFlashMaxLength } from "./longbench.ts";
 * console.log(thinkFlashMaxLength("meta-llama/Meta-Llama-3-8B-Instruct")); // 7950
 * console.log(thinkFlashMaxLength("mistralai/Mistral-7B-Instruct-v0.2")); // 31500
 * ```
 */
export function thinkFlashMaxLength(modelPath: string): number {
  const path = modelPath.toLowerCase();
  let found: number | undefined;
  for (const [key, len] of THINK_FLASH_MAX_LEN) if (path.includes(key)) found = len;
  if (found === undefined) {
    throw new RangeError(
      `Cannot choose a prompt length limit: the model path names none of llama2, llama-2, llama3, llama-3, mistral: current value is ${
        JSON.stringify(modelPath)
      }`,
    );
  }
  return found;
}

const THINK_FLASH_MAX_LEN: readonly (readonly [string, number])[] = [
  ["llama2", 3950],
  ["llama-2", 3950],
  ["llama3", 7950],
  ["llama-3", 7950],
  ["mistral", 31500],
];

/**
 * What middle truncation needs from a tokenizer. `encode` must add BOS as the model's tokenizer does
 * (`add_special_tokens=True`); `decode` must drop special tokens and, like Hugging Face's Llama
 * decode, the space-prefix of the first piece (thinkv's `Tokenizer` does both by default).
 */
export interface TextCodec {
  /** Text → token ids, with BOS. */
  encode(text: string): number[];
  /** Token ids → text, special tokens skipped. */
  decode(ids: number[]): string;
}

/**
 * LongBench's middle truncation (`pred.py`, ThinK `run_longbench.py`): if the prompt encodes to more
 * than `maxLength` tokens (BOS included), keep the first and the last `half = ⌊maxLength/2⌋` tokens,
 * decode each half separately and concatenate the two strings with no separator. The caller then
 * encodes the returned text again (BOS added again), so the final length can differ slightly from
 * `2·half`. A prompt that fits is returned unchanged. `maxLength` must be an integer ≥ 2.
 *
 * @example
 * ```ts
 * import { truncateMiddle } from "./longbench.ts";
 * // A toy codec: BOS = 0, then one id per character.
 * const codec = {
 *   encode: (t: string) => [0, ...Array.from(t, (c) => c.charCodeAt(0))],
 *   decode: (ids: number[]) => String.fromCharCode(...ids.filter((i) => i !== 0)),
 * };
 * // 11 tokens > 6: half = 3 → decode [BOS, a, b] + decode [h, i, j] = "ab" + "hij"
 * console.log(truncateMiddle("abcdefghij", 6, codec)); // "abhij"
 * ```
 */
export function truncateMiddle(prompt: string, maxLength: number, codec: TextCodec): string {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new RangeError(
      `Cannot truncate the prompt: maxLength must be an integer >= 2: current value is ${maxLength}`,
    );
  }
  const ids = codec.encode(prompt);
  if (ids.length <= maxLength) return prompt;
  const half = Math.floor(maxLength / 2);
  return codec.decode(ids.slice(0, half)) + codec.decode(ids.slice(ids.length - half));
}
