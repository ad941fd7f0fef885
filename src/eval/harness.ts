/**
 * The evaluation harness behind `thinkv eval`: a YAML config ({@linkcode parseEvalConfig}) names
 * models, KV settings and tasks; {@linkcode runEval} runs the matrix model × setting × task and
 * returns an {@linkcode EvalReport} (see `./report.ts` for the writers).
 *
 * ```yaml
 * models:
 *   - name: stories260K
 *     path: ../shared/models/stories260K.gguf   # relative to the config file
 *     contextLength: auto      # auto (default): each example gets a cache of exactly its length
 *     tasks: [fidelity, perplexity]             # default: every task
 * settings:
 *   - name: full
 *   - name: snapkv-128
 *     method: SnapKV           # chart line; default from kv
 *     kv: { eviction: { policy: snapkv, budget: 128 } }   # passed to loadModel unchanged
 * tasks:
 *   - { type: fidelity, files: [data/fidelity.jsonl], promptTokens: 320, steps: 64 }
 *   - { type: perplexity, file: data/stories.txt, window: 320, stride: 64 }
 *   - { type: passkey, file: ../shared/golden/passkey-tiny.eval.jsonl }
 *   - { type: longbench, files: [data/longbench/triviaqa.jsonl], maxLength: 448 }
 * ```
 *
 * Settings are validated up front with the KV options of this build; a setting whose keys this
 * build does not know yet (e.g. `kv.quant` before KIVI lands), or that `loadModel` rejects, fails on
 * its own with a one-line error in the report while the rest of the matrix runs. Quality numbers are
 * deterministic (greedy GPU kernels, fixed order); timings are recorded apart.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { Gpu } from "../gpu/gpu.ts";
import { resolveKvOptions } from "../kv/options.ts";
import { readLlamaConfig } from "../model/config.ts";
import { GgufFile } from "../model/gguf.ts";
import { loadModel, type LoadOptions, type Model } from "../model/model.ts";
import { type Tokenizer, tokenizerFromGguf } from "../tokenizer/tokenizer.ts";
import { LONGBENCH_PROMPTS } from "./longbench.ts";
import type { EvalReport, RunRecord } from "./report.ts";
import type { EvalModel, ModelProvider, TaskResult } from "./tasks/common.ts";
import { parseJsonl } from "./tasks/common.ts";
import { type FidelityReference, fidelityReference, prepareFidelity, runFidelity } from "./tasks/fidelity.ts";
import { type LongBenchDataset, readLongBench, runLongBench } from "./tasks/longbench.ts";
import {
  generatePasskeyPrompts,
  type PasskeyPrompt,
  passkeyPromptsFromJsonl,
  runPasskey,
} from "./tasks/passkey.ts";
import { perplexityWindowCount, runPerplexity } from "./tasks/perplexity.ts";

// ---------------------------------------------------------------------------------------------------
// Config types

/** A model entry. */
export interface ModelSpec {
  /** Display name (default: the file name without `.gguf`). */
  name: string;
  /** GGUF path, resolved against the config file's folder. */
  path: string;
  /** KV capacity: `"auto"` (each example gets a cache of its own length) or a fixed number of tokens. */
  contextLength: "auto" | number;
  /** Prefill batch size (default: the library's). */
  batchSize?: number;
  /** Names of the tasks to run on this model (default: all). */
  tasks?: string[];
  /** Names of the KV settings to run on this model (default: all). */
  settings?: string[];
}

/** A KV setting. */
export interface SettingSpec {
  /** Unique name. */
  name: string;
  /** The chart line it belongs to (default from `kv`, e.g. `SnapKV+ThinK`). */
  method: string;
  /** `loadModel`'s `kv` option, unchanged; absent for the full cache. */
  kv?: Record<string, unknown>;
  /** Why this build cannot run the setting (found at validation), if so. */
  unsupported?: string;
}

/** Fields every task has. */
export interface TaskBase {
  /** Unique name (default: the type). */
  name: string;
}

/** `type: fidelity`. */
export interface FidelitySpec extends TaskBase {
  /** Task type. */
  type: "fidelity";
  /** The texts (inline ones, then the files': `.jsonl` gives one per line's `text`, other files one each). */
  texts: string[];
  /** Distributions compared per text; default 64. */
  steps: number;
  /** Prompt tokens per text (BOS included); default the whole text. */
  promptTokens?: number;
  /** Reference continuation: `greedy` (the full cache's, default) or `text`. */
  reference: "greedy" | "text";
}

/** `type: perplexity`. */
export interface PerplexitySpec extends TaskBase {
  /** Task type. */
  type: "perplexity";
  /** The text. */
  text: string;
  /** Window tokens; default 512. */
  window: number;
  /** Scored tokens per window; default window/2. */
  stride: number;
  /** Score at most this many tokens. */
  maxTokens?: number;
}

/** `type: passkey` (or `needle`). */
export interface PasskeySpec extends TaskBase {
  /** Task type. */
  type: "passkey";
  /** Prompts from a JSONL file. */
  file?: string;
  /** Or prompts generated per model. */
  generate?: { lengths: number[]; depths: number[]; perCell: number; seed: number };
  /** Use only the first N prompts. */
  limit?: number;
  /** Tokens decoded; default 7. */
  newTokens: number;
  /** Heat-map length buckets. */
  lengthBuckets?: number[];
  /** Heat-map depth buckets. */
  depthBuckets?: number[];
  /** The file's prompts (read at parse time). */
  prompts?: PasskeyPrompt[];
}

/** `type: longbench`. */
export interface LongBenchSpec extends TaskBase {
  /** Task type. */
  type: "longbench";
  /** The datasets (read at parse time). */
  datasets: LongBenchDataset[];
  /** Middle-truncation length; `auto` = model context − the dataset's max new tokens. */
  maxLength: "auto" | number;
  /** Override the official max new tokens. */
  maxNewTokens?: number;
}

/** Any task. */
export type TaskSpec = FidelitySpec | PerplexitySpec | PasskeySpec | LongBenchSpec;

/** A validated config with its data loaded. */
export interface EvalConfig {
  /** Where it came from. */
  source: string;
  /** Models. */
  models: ModelSpec[];
  /** KV settings. */
  settings: SettingSpec[];
  /** Tasks. */
  tasks: TaskSpec[];
  /** Output folder from the config (`out:`), resolved. */
  out?: string;
}

/** A config mistake: one line that names the file and the key. */
export class EvalConfigError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "EvalConfigError";
  }
}

// ---------------------------------------------------------------------------------------------------
// Config parsing

/** Keys that later builds add to `kv`: a setting using one this build rejects is reported, not fatal. */
export const FUTURE_KV_KEYS: readonly string[] = [];

const TASK_TYPES = ["fidelity", "perplexity", "passkey", "needle", "longbench"];

type Obj = Record<string, unknown>;

class Reader {
  constructor(readonly source: string, readonly baseDir: string) {}

  fail(path: string, message: string): never {
    throw new EvalConfigError(`Cannot read the eval config ${this.source}: ${path} ${message}`);
  }

  show(v: unknown): string {
    return typeof v === "string"
      ? JSON.stringify(v)
      : Array.isArray(v)
      ? "a list"
      : typeof v === "object" && v
      ? "a mapping"
      : String(v);
  }

  obj(v: unknown, path: string, known: readonly string[]): Obj {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(path, `must be a mapping: current value is ${this.show(v)}`);
    }
    for (const k of Object.keys(v as Obj)) {
      if (!known.includes(k)) {
        this.fail(
          `${path === "(top level)" ? "" : path + "."}${k}`,
          `is not a known key (known: ${known.join(", ")})`,
        );
      }
    }
    return v as Obj;
  }

  list(v: unknown, path: string, nonEmpty = true): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `must be a list: current value is ${this.show(v)}`);
    if (nonEmpty && v.length === 0) this.fail(path, "must not be empty");
    return v;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== "string" || v === "") {
      this.fail(path, `must be a non-empty string: current value is ${this.show(v)}`);
    }
    return v;
  }

  int(v: unknown, path: string, min: number, max = Infinity): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      const range = max === Infinity ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`;
      this.fail(path, `must be ${range}: current value is ${this.show(v)}`);
    }
    return v;
  }

  num(v: unknown, path: string, min: number, max: number): number {
    if (typeof v !== "number" || !(v >= min && v <= max)) {
      this.fail(path, `must be a number in [${min}, ${max}]: current value is ${this.show(v)}`);
    }
    return v;
  }

  ints(v: unknown, path: string, min: number): number[] {
    return this.list(v, path).map((x, i) => this.int(x, `${path}[${i}]`, min));
  }

  resolve(p: string): string {
    return p.startsWith("/") ? p : `${this.baseDir}${p}`;
  }

  async read(p: string, path: string): Promise<string> {
    try {
      return await Deno.readTextFile(this.resolve(p));
    } catch (e) {
      this.fail(
        path,
        `names a file that cannot be read: ${this.resolve(p)}: ${(e as Error).message.split("\n")[0]}`,
      );
    }
  }
}

/** The chart method of a setting: its eviction policy, `ThinK`, `KIVI`, joined by `+`; `full` when none. */
export function defaultMethod(kv: Record<string, unknown> | undefined): string {
  if (!kv) return "full";
  const names: Record<string, string> = {
    snapkv: "SnapKV",
    pyramidkv: "PyramidKV",
    streamingllm: "StreamingLLM",
    h2o: "H2O",
  };
  const parts: string[] = [];
  const policy = (kv.eviction as Obj | undefined)?.policy;
  if (typeof policy === "string" && policy !== "full") parts.push(names[policy] ?? policy);
  if (kv.think !== undefined) parts.push("ThinK");
  if (kv.quant !== undefined) parts.push("KIVI");
  return parts.length ? parts.join("+") : "full";
}

/**
 * Checks a setting's `kv` with this build's validator. Returns `undefined` when it is valid, a reason
 * when it only uses keys this build does not have yet ({@linkcode FUTURE_KV_KEYS}), and throws the
 * validator's error otherwise.
 */
function checkKv(kv: Obj): string | undefined {
  try {
    resolveKvOptions(kv as Parameters<typeof resolveKvOptions>[0]);
    return undefined;
  } catch (e) {
    const future = Object.keys(kv).filter((k) => FUTURE_KV_KEYS.includes(k));
    if (future.length === 0) throw e;
    const rest = Object.fromEntries(Object.entries(kv).filter(([k]) => !FUTURE_KV_KEYS.includes(k)));
    resolveKvOptions(rest as Parameters<typeof resolveKvOptions>[0]); // a real mistake elsewhere still throws
    return future.map((k) => `kv.${k}`).join(", ") + " is not supported by this build";
  }
}

/**
 * Parses and validates an eval config (YAML text) and reads the data files it names. Paths are
 * relative to `baseDir` (the config file's folder). Throws an {@linkcode EvalConfigError} naming the
 * key, e.g. `Cannot read the eval config eval.yaml: tasks[1].stride must be an integer ≥ 1: current
 * value is 0`.
 *
 * @example
 * ```ts
 * import { parseEvalConfig } from "./harness.ts";
 * const c = await parseEvalConfig(
 *   "models: [{ path: m.gguf }]\nsettings: [{ name: full }]\ntasks: [{ type: fidelity, texts: [Once upon a time] }]\n",
 *   { source: "inline.yaml", baseDir: "/tmp/" },
 * );
 * console.log(c.models[0].name, c.settings[0].method, c.tasks[0].type); // m full fidelity
 * ```
 */
export async function parseEvalConfig(
  text: string,
  options: { source: string; baseDir: string },
): Promise<EvalConfig> {
  const baseDir = options.baseDir === "" || options.baseDir.endsWith("/")
    ? options.baseDir
    : options.baseDir + "/";
  const rd = new Reader(options.source, baseDir);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new EvalConfigError(
      `Cannot parse the eval config ${options.source}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  const top = rd.obj(doc ?? {}, "(top level)", ["models", "settings", "tasks", "out"]);
  for (const k of ["models", "settings", "tasks"]) if (top[k] === undefined) rd.fail(k, "is required");

  const settings: SettingSpec[] = rd.list(top.settings, "settings").map((s, i) => {
    const p = `settings[${i}]`;
    const o = rd.obj(s, p, ["name", "method", "kv"]);
    const name = rd.str(o.name, `${p}.name`);
    let kv: Obj | undefined;
    let unsupported: string | undefined;
    if (o.kv !== undefined && o.kv !== null) {
      kv = rd.obj(o.kv, `${p}.kv`, Object.keys(o.kv as Obj));
      try {
        unsupported = checkKv(kv);
      } catch (e) {
        rd.fail(`${p}.kv`, `is invalid: ${(e as Error).message}`);
      }
    }
    const method = o.method === undefined ? defaultMethod(kv) : rd.str(o.method, `${p}.method`);
    return { name, method, kv, unsupported };
  });
  unique(rd, settings.map((s) => s.name), "settings", "name");

  const tasks: TaskSpec[] = [];
  const taskList = rd.list(top.tasks, "tasks");
  for (let i = 0; i < taskList.length; i++) tasks.push(await parseTask(rd, taskList[i], `tasks[${i}]`));
  unique(rd, tasks.map((t) => t.name), "tasks", "name");

  const models: ModelSpec[] = rd.list(top.models, "models").map((m, i) => {
    const p = `models[${i}]`;
    const o = rd.obj(m, p, ["name", "path", "contextLength", "batchSize", "tasks", "settings"]);
    const path = rd.resolve(rd.str(o.path, `${p}.path`));
    const name = o.name === undefined
      ? path.replace(/^.*\//, "").replace(/\.gguf$/, "")
      : rd.str(o.name, `${p}.name`);
    const contextLength = o.contextLength === undefined || o.contextLength === "auto"
      ? "auto" as const
      : rd.int(o.contextLength, `${p}.contextLength`, 1);
    const batchSize = o.batchSize === undefined ? undefined : rd.int(o.batchSize, `${p}.batchSize`, 1);
    const names = (key: "tasks" | "settings", all: string[]) =>
      o[key] === undefined ? undefined : rd.list(o[key], `${p}.${key}`).map((t, j) => {
        const n = rd.str(t, `${p}.${key}[${j}]`);
        if (!all.includes(n)) {
          rd.fail(
            `${p}.${key}[${j}]`,
            `names no ${key.slice(0, -1)}: current value is ${JSON.stringify(n)} (${key}: ${all.join(", ")})`,
          );
        }
        return n;
      });
    return {
      name,
      path,
      contextLength,
      batchSize,
      tasks: names("tasks", tasks.map((t) => t.name)),
      settings: names("settings", settings.map((s) => s.name)),
    };
  });
  unique(rd, models.map((m) => m.name), "models", "name");
  const out = top.out === undefined ? undefined : rd.resolve(rd.str(top.out, "out"));
  return { source: options.source, models, settings, tasks, out };
}

function unique(rd: Reader, names: string[], list: string, key: string): void {
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) {
      rd.fail(`${list}[${i}].${key}`, `must be unique: ${JSON.stringify(n)} is used twice`);
    }
  });
}

async function parseTask(rd: Reader, v: unknown, p: string): Promise<TaskSpec> {
  const head = rd.obj(v, p, Object.keys(typeof v === "object" && v ? v : {}));
  const type = head.type;
  if (typeof type !== "string" || !TASK_TYPES.includes(type)) {
    rd.fail(`${p}.type`, `must be one of ${TASK_TYPES.join(", ")}: current value is ${rd.show(type)}`);
  }
  const name = head.name === undefined
    ? (type === "needle" ? "needle" : type)
    : rd.str(head.name, `${p}.name`);
  switch (type) {
    case "fidelity": {
      const o = rd.obj(v, p, ["name", "type", "texts", "files", "steps", "promptTokens", "reference"]);
      const texts: string[] = [];
      if (o.texts !== undefined) {
        rd.list(o.texts, `${p}.texts`).forEach((t, i) => texts.push(rd.str(t, `${p}.texts[${i}]`)));
      }
      if (o.files !== undefined) {
        const files = rd.list(o.files, `${p}.files`);
        for (let i = 0; i < files.length; i++) {
          const f = rd.str(files[i], `${p}.files[${i}]`);
          const body = await rd.read(f, `${p}.files[${i}]`);
          if (f.endsWith(".jsonl")) {
            let recs: Obj[];
            try {
              recs = parseJsonl(body, rd.resolve(f));
            } catch (e) {
              rd.fail(`${p}.files[${i}]`, `is not valid JSONL: ${(e as Error).message}`);
            }
            recs.forEach((r, j) => texts.push(rd.str(r.text, `${p}.files[${i}] record ${j + 1} "text"`)));
          } else texts.push(body);
        }
      }
      if (texts.length === 0) rd.fail(p, "needs texts or files");
      const reference = o.reference === undefined ? "greedy" : o.reference;
      if (reference !== "greedy" && reference !== "text") {
        rd.fail(`${p}.reference`, `must be greedy or text: current value is ${rd.show(reference)}`);
      }
      return {
        name,
        type,
        texts,
        steps: o.steps === undefined ? 64 : rd.int(o.steps, `${p}.steps`, 1),
        promptTokens: o.promptTokens === undefined
          ? undefined
          : rd.int(o.promptTokens, `${p}.promptTokens`, 1),
        reference,
      };
    }
    case "perplexity": {
      const o = rd.obj(v, p, ["name", "type", "file", "text", "window", "stride", "maxTokens"]);
      if ((o.file === undefined) === (o.text === undefined)) rd.fail(p, "needs exactly one of file or text");
      const text = o.file !== undefined
        ? await rd.read(rd.str(o.file, `${p}.file`), `${p}.file`)
        : rd.str(o.text, `${p}.text`);
      const window = o.window === undefined ? 512 : rd.int(o.window, `${p}.window`, 2);
      const stride = o.stride === undefined
        ? Math.floor(window / 2)
        : rd.int(o.stride, `${p}.stride`, 1, window - 1);
      return {
        name,
        type,
        text,
        window,
        stride,
        maxTokens: o.maxTokens === undefined ? undefined : rd.int(o.maxTokens, `${p}.maxTokens`, 1),
      };
    }
    case "passkey":
    case "needle": {
      const o = rd.obj(v, p, [
        "name",
        "type",
        "file",
        "generate",
        "limit",
        "newTokens",
        "lengthBuckets",
        "depthBuckets",
      ]);
      if ((o.file === undefined) === (o.generate === undefined)) {
        rd.fail(p, "needs exactly one of file or generate");
      }
      const spec: PasskeySpec = {
        name,
        type: "passkey",
        limit: o.limit === undefined ? undefined : rd.int(o.limit, `${p}.limit`, 1),
        newTokens: o.newTokens === undefined ? 7 : rd.int(o.newTokens, `${p}.newTokens`, 1),
        lengthBuckets: o.lengthBuckets === undefined
          ? undefined
          : rd.ints(o.lengthBuckets, `${p}.lengthBuckets`, 1),
        depthBuckets: o.depthBuckets === undefined
          ? undefined
          : rd.list(o.depthBuckets, `${p}.depthBuckets`).map((d, i) =>
            rd.num(d, `${p}.depthBuckets[${i}]`, 0, 1)
          ),
      };
      if (o.file !== undefined) {
        const f = rd.str(o.file, `${p}.file`);
        try {
          spec.prompts = passkeyPromptsFromJsonl(await rd.read(f, `${p}.file`), rd.resolve(f));
        } catch (e) {
          if (e instanceof EvalConfigError) throw e;
          rd.fail(`${p}.file`, `is not a passkey JSONL file: ${(e as Error).message}`);
        }
        if (spec.limit !== undefined) spec.prompts = spec.prompts.slice(0, spec.limit);
      } else {
        const g = rd.obj(o.generate, `${p}.generate`, ["lengths", "depths", "perCell", "seed"]);
        spec.generate = {
          lengths: rd.ints(g.lengths, `${p}.generate.lengths`, 16),
          depths: rd.list(g.depths, `${p}.generate.depths`).map((d, i) =>
            rd.num(d, `${p}.generate.depths[${i}]`, 0, 1)
          ),
          perCell: g.perCell === undefined ? 1 : rd.int(g.perCell, `${p}.generate.perCell`, 1),
          seed: g.seed === undefined ? 1 : rd.int(g.seed, `${p}.generate.seed`, 0),
        };
      }
      return spec;
    }
    default: {
      const o = rd.obj(v, p, ["name", "type", "files", "dataset", "maxLength", "limit", "maxNewTokens"]);
      const files = rd.list(o.files, `${p}.files`).map((f, i) => rd.str(f, `${p}.files[${i}]`));
      let dataset: string | undefined;
      if (o.dataset !== undefined) {
        dataset = rd.str(o.dataset, `${p}.dataset`);
        if (files.length !== 1) {
          rd.fail(`${p}.dataset`, "needs exactly one file (a file's dataset is otherwise its name)");
        }
        if (!Object.hasOwn(LONGBENCH_PROMPTS, dataset)) {
          rd.fail(`${p}.dataset`, `is not a LongBench task: current value is ${JSON.stringify(dataset)}`);
        }
      }
      const limit = o.limit === undefined ? undefined : rd.int(o.limit, `${p}.limit`, 1);
      const datasets: LongBenchDataset[] = [];
      for (let i = 0; i < files.length; i++) {
        const body = await rd.read(files[i], `${p}.files[${i}]`);
        try {
          datasets.push(readLongBench(body, rd.resolve(files[i]), dataset, limit));
        } catch (e) {
          rd.fail(`${p}.files[${i}]`, `cannot be used: ${(e as Error).message}`);
        }
      }
      return {
        name,
        type: "longbench",
        datasets,
        maxLength: o.maxLength === undefined || o.maxLength === "auto"
          ? "auto"
          : rd.int(o.maxLength, `${p}.maxLength`, 2),
        maxNewTokens: o.maxNewTokens === undefined
          ? undefined
          : rd.int(o.maxNewTokens, `${p}.maxNewTokens`, 1),
      };
    }
  }
}

/**
 * Reads, parses and validates a config file (see {@linkcode parseEvalConfig}).
 *
 * @example
 * ```ts ignore
 * const config = await loadEvalConfig("examples/eval.yaml");
 * ```
 */
export async function loadEvalConfig(path: string): Promise<EvalConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new EvalConfigError(`Cannot read the eval config ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  const slash = path.lastIndexOf("/");
  return await parseEvalConfig(text, { source: path, baseDir: slash >= 0 ? path.slice(0, slash + 1) : "" });
}

// ---------------------------------------------------------------------------------------------------
// Models

/** Loads models for one (model, setting, task) cell, sized per example with `contextLength: auto`. */
class GgufProvider implements ModelProvider {
  #model: Model | undefined;
  #failed: unknown;

  constructor(
    readonly tokenizer: Tokenizer,
    readonly spec: ModelSpec,
    readonly gpu: Gpu,
    readonly kv: Record<string, unknown> | undefined,
  ) {}

  async get(tokens: number): Promise<EvalModel> {
    if (this.#failed !== undefined) throw this.#failed;
    const want = this.spec.contextLength === "auto" ? Math.max(1, tokens) : this.spec.contextLength;
    if (tokens > want) {
      throw new RangeError(
        `an example needs ${tokens} positions but contextLength is ${want}: raise the model's contextLength or use auto`,
      );
    }
    if (this.#model && this.#model.contextLength === want) return this.#model;
    this.dispose();
    try {
      const options = {
        contextLength: want,
        batchSize: this.spec.batchSize,
        gpu: this.gpu,
        kv: this.kv,
      } as LoadOptions;
      const model = await loadModel(this.spec.path, options);
      if (this.kv && (model.kvStats() as { policy?: unknown }).policy === undefined) {
        model.dispose();
        throw new RangeError("kv settings are not supported by this build (loadModel has no kv option)");
      }
      this.#model = model;
      return model;
    } catch (e) {
      this.#failed = e;
      throw e;
    }
  }

  dispose(): void {
    this.#model?.dispose();
    this.#model = undefined;
  }
}

interface ModelInfo {
  tokenizer: Tokenizer;
  contextLength: number;
}

async function readModelInfo(spec: ModelSpec, source: string, index: number): Promise<ModelInfo> {
  let file: GgufFile;
  try {
    file = await GgufFile.open(spec.path);
  } catch (e) {
    throw new EvalConfigError(
      `Cannot read the eval config ${source}: models[${index}].path: ${(e as Error).message}`,
    );
  }
  try {
    return {
      tokenizer: tokenizerFromGguf(file.metadata),
      contextLength: readLlamaConfig(file).contextLength,
    };
  } finally {
    file.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Running

/** Progress of {@linkcode runEval}. */
export interface EvalProgress {
  /** Examples done (all cells together). */
  done: number;
  /** Examples in the whole matrix. */
  total: number;
  /** What runs now. */
  label: string;
}

/** Options of {@linkcode runEval}. */
export interface RunEvalOptions {
  /** A device to share (default: one created and destroyed by the run). */
  gpu?: Gpu;
  /** Progress callback (see {@linkcode ProgressBar}). */
  onProgress?: (p: EvalProgress) => void;
}

/** One prepared (model, task) pair: the examples as that model's tokenizer sees them. */
interface Prepared {
  task: TaskSpec;
  units: number;
  fidelity?: ReturnType<typeof prepareFidelity>;
  ids?: number[];
  prompts?: PasskeyPrompt[];
}

function prepare(task: TaskSpec, info: ModelInfo): Prepared {
  const tok = info.tokenizer;
  switch (task.type) {
    case "fidelity": {
      const fidelity = prepareFidelity(task.texts, (t) => tok.encode(t), task);
      return { task, fidelity, units: fidelity.length };
    }
    case "perplexity": {
      const ids = tok.encode(task.text);
      return { task, ids, units: perplexityWindowCount(ids.length, task) };
    }
    case "passkey": {
      const prompts = task.prompts ??
        generatePasskeyPrompts(task.generate!, (t) => tok.encode(t, { addBos: false })).slice(0, task.limit);
      return { task, prompts, units: prompts.length };
    }
    case "longbench":
      return { task, units: task.datasets.reduce((a, d) => a + d.records.length, 0) };
  }
}

/**
 * Runs the matrix: for each model, for each KV setting, for each of the model's tasks. Fidelity
 * references (full cache) are computed once per model and task. A cell that fails (a setting this
 * build rejects, a prompt that does not fit) is recorded with its error; the others still run.
 *
 * @example
 * ```ts ignore
 * const report = await runEval(await loadEvalConfig("examples/eval.yaml"));
 * console.log(toMarkdown(report));
 * ```
 */
export async function runEval(config: EvalConfig, options: RunEvalOptions = {}): Promise<EvalReport> {
  const t0 = performance.now();
  const infos: ModelInfo[] = [];
  for (let i = 0; i < config.models.length; i++) {
    infos.push(await readModelInfo(config.models[i], config.source, i));
  }
  const plans: Prepared[][] = config.models.map((m, i) =>
    config.tasks.filter((t) => !m.tasks || m.tasks.includes(t.name)).map((t) => {
      try {
        return prepare(t, infos[i]);
      } catch (e) {
        throw new EvalConfigError(
          `Cannot prepare task ${t.name} for model ${m.name}: ${(e as Error).message}`,
        );
      }
    })
  );
  const settingsOf = (m: ModelSpec) =>
    config.settings.filter((s) => !m.settings || m.settings.includes(s.name));
  let total = 0;
  plans.forEach((plan, mi) => {
    const n = settingsOf(config.models[mi]).length;
    for (const p of plan) total += p.units * n + (p.task.type === "fidelity" ? p.units : 0);
  });
  let done = 0;
  let label = "";
  const tick = () => {
    done++;
    options.onProgress?.({ done, total, label });
  };

  const gpu = options.gpu ?? await Gpu.create();
  const runs: RunRecord[] = [];
  try {
    for (let mi = 0; mi < config.models.length; mi++) {
      const spec = config.models[mi], info = infos[mi];
      const refs = new Map<string, FidelityReference[] | Error>();
      for (const p of plans[mi]) {
        if (p.task.type !== "fidelity") continue;
        label = `${spec.name} · full-cache reference · ${p.task.name}`;
        const provider = new GgufProvider(info.tokenizer, spec, gpu, undefined);
        try {
          const list: FidelityReference[] = [];
          for (const ex of p.fidelity!) {
            list.push(await fidelityReference(provider, ex, p.task.steps));
            tick();
          }
          refs.set(p.task.name, list);
        } catch (e) {
          refs.set(p.task.name, e instanceof Error ? e : new Error(String(e)));
        } finally {
          provider.dispose();
        }
      }
      for (const setting of settingsOf(spec)) {
        for (const p of plans[mi]) {
          label = `${spec.name} · ${setting.name} · ${p.task.name}`;
          options.onProgress?.({ done, total, label });
          const startDone = done;
          const t = performance.now();
          const provider = new GgufProvider(info.tokenizer, spec, gpu, setting.kv);
          let result: TaskResult | undefined;
          let error: string | undefined;
          try {
            if (setting.unsupported) throw new RangeError(setting.unsupported);
            result = await runTask(p, provider, info, refs, tick);
          } catch (e) {
            error = oneLine(e);
          } finally {
            provider.dispose();
          }
          done = startDone + p.units;
          const type = p.task.type;
          runs.push({
            model: spec.name,
            setting: setting.name,
            method: setting.method,
            task: p.task.name,
            type,
            metrics: result?.metrics ?? null,
            primary: result?.primary ?? PRIMARY[type],
            higherIsBetter: result?.higherIsBetter ?? type !== "perplexity",
            kvBytes: result ? result.kvBytes : null,
            kvFullBytes: result ? result.kvFullBytes : null,
            examples: result?.examples ?? 0,
            tokens: result?.tokens ?? { prefill: 0, decode: 0 },
            ...(result?.details ? { details: result.details } : {}),
            ...(error !== undefined ? { error } : {}),
            timing: { seconds: (performance.now() - t) / 1000 },
          });
        }
      }
    }
  } finally {
    if (!options.gpu) gpu.destroy();
  }
  return {
    version: 1,
    config: config.source,
    environment: { adapter: gpu.adapterName, deno: Deno.version.deno, date: new Date().toISOString() },
    models: config.models.map((m) => ({ name: m.name, path: m.path })),
    settings: config.settings.map((s) => ({ name: s.name, method: s.method, kv: s.kv ?? null })),
    tasks: config.tasks.map((t) => ({ name: t.name, type: t.type })),
    runs,
    seconds: (performance.now() - t0) / 1000,
  };
}

const PRIMARY: Record<string, string> = {
  fidelity: "top1",
  perplexity: "ppl",
  passkey: "accuracy",
  longbench: "average",
};

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
}

async function runTask(
  p: Prepared,
  provider: GgufProvider,
  info: ModelInfo,
  refs: Map<string, FidelityReference[] | Error>,
  tick: () => void,
): Promise<TaskResult> {
  const task = p.task;
  switch (task.type) {
    case "fidelity": {
      const r = refs.get(task.name)!;
      if (r instanceof Error) throw new Error(`the full-cache reference failed: ${r.message}`);
      return await runFidelity(provider, r, tick);
    }
    case "perplexity":
      return await runPerplexity(provider, p.ids!, task, tick);
    case "passkey":
      return await runPasskey(provider, p.prompts!, task, tick);
    case "longbench": {
      const fixed = task.maxLength;
      const ctx = provider.spec.contextLength === "auto" ? info.contextLength : provider.spec.contextLength;
      return await runLongBench(provider, task.datasets, {
        maxLength: fixed === "auto" ? (maxNew) => Math.max(2, ctx - maxNew) : fixed,
        maxNewTokens: task.maxNewTokens,
      }, tick);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Progress bar

/**
 * A one-line progress bar on stderr, redrawn in place; it draws nothing unless stderr is a terminal.
 *
 * @example
 * ```ts ignore
 * const bar = new ProgressBar();
 * await runEval(config, { onProgress: (p) => bar.update(p) });
 * bar.done();
 * ```
 */
export class ProgressBar {
  readonly #enabled: boolean;
  readonly #t0 = performance.now();
  #last = 0;
  #enc = new TextEncoder();

  /** `enabled` defaults to `Deno.stderr.isTerminal()`. */
  constructor(enabled: boolean = Deno.stderr.isTerminal()) {
    this.#enabled = enabled;
  }

  /** The line for a progress state (no escape codes), e.g. `[#####-----] 12/60 ...`. */
  static line(p: EvalProgress, elapsedSeconds: number, width = 24): string {
    const frac = p.total ? Math.min(1, p.done / p.total) : 0;
    const fill = Math.round(frac * width);
    const s = Math.round(elapsedSeconds);
    const time = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    return `[${"#".repeat(fill)}${"-".repeat(width - fill)}] ${p.done}/${p.total} ${time} ${p.label}`;
  }

  /** Redraws (at most every 100 ms, always at the end). */
  update(p: EvalProgress): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#last < 100 && p.done < p.total) return;
    this.#last = now;
    let cols = 100;
    try {
      cols = Deno.consoleSize().columns;
    } catch {
      // not a console
    }
    const line = ProgressBar.line(p, (now - this.#t0) / 1000).slice(0, Math.max(20, cols - 1));
    Deno.stderr.writeSync(this.#enc.encode(`\r\x1b[2K${line}`));
  }

  /** Clears the bar's line. */
  done(): void {
    if (this.#enabled) Deno.stderr.writeSync(this.#enc.encode("\r\x1b[2K"));
  }
}
