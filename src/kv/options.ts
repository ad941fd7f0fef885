/**
 * KV-cache options: the library shape ({@linkcode KvOptions}), their validation and defaults
 * ({@linkcode resolveKvOptions}), the CLI flags ({@linkcode kvOptionsFromFlags}) and the YAML file
 * ({@linkcode parseKvConfig}, {@linkcode loadKvConfig}). The CLI and the YAML file are thin wrappers:
 * both end in {@linkcode resolveKvOptions}, so every setting is checked in one place, with errors in
 * std grammar that name the setting and its allowed range.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";

/** Token-eviction policies (THINK.md Part 3). */
export type EvictionPolicy = "full" | "snapkv" | "pyramidkv" | "streamingllm" | "h2o";

/**
 * The eviction policies, in the order help texts list them.
 *
 * @example
 * ```ts
 * import { EVICTION_POLICIES } from "./options.ts";
 * console.log(EVICTION_POLICIES.join(" | ")); // full | snapkv | pyramidkv | streamingllm | h2o
 * ```
 */
export const EVICTION_POLICIES: readonly EvictionPolicy[] = [
  "full",
  "snapkv",
  "pyramidkv",
  "streamingllm",
  "h2o",
];

/** SnapKV / PyramidKV pooling of the window votes along the sequence. */
export type PoolKind = "max" | "avg" | "none";

/** Token eviction at the end of prefill, once per sequence. */
export interface EvictionOptions {
  /** Which tokens to keep: `full` keeps all. */
  policy: EvictionPolicy;
  /** Prompt tokens kept per (layer, KV head), the window included (PyramidKV: the mean target); default 512. */
  budget?: number;
  /**
   * Always-kept most recent tokens: SnapKV / PyramidKV observation window (its queries vote), H2O recent
   * window; default 32. StreamingLLM keeps `budget − sinks` recent tokens instead.
   */
  window?: number;
  /** SnapKV / PyramidKV pooling kernel (odd); default 7. */
  kernel?: number;
  /** SnapKV / PyramidKV pooling; default `"max"`. `"none"` is the ThinK repository's "H2O". */
  pool?: PoolKind;
  /** PyramidKV: the smallest layer budget is `⌊(budget − window)/beta⌋`; default 20. */
  beta?: number;
  /** StreamingLLM attention sinks (first tokens always kept); default 4. */
  sinks?: number;
}

/** ThinK key-channel pruning of the cached prompt keys. */
export interface ThinkOptions {
  /** Fraction of key channels removed, in [0, 1): `n_keep = D − ⌊ratio·D⌋`. */
  ratio: number;
  /** Last cached prompt tokens kept at full width; default 32. */
  recent?: number;
  /** Last prompt queries that score the channels; default 32. */
  window?: number;
  /**
   * Pad thin key rows to a multiple of 4 channels (77 → 80), aligning every row for vec4 loads; default
   * false. The unpadded layout is the smallest (81.3% of full prompt KV at D = 128, B = 512, ratio 0.4,
   * vs 82.4% padded) and decode attention reads it as vec4s too (from unaligned row starts, see
   * `wgsl/attention.wgsl`), so padding buys little; `bench/kv_decode.ts` measures both.
   */
  pad?: boolean;
}

/**
 * KIVI quantization of the cached keys and values (THINK.md Part 4): asymmetric min/scale codes of
 * `keyBits` / `valueBits` bits, keys per channel over groups of `group` tokens, values per token over
 * groups of `group` channels (`min(group, headDim)` for heads narrower than a group), and the last
 * tokens kept in full precision: keys flush to codes `residual` tokens at a time, values one token at
 * a time (the `residual` most recent stay f32). With ThinK the quantized keys are the thin ones (pruned
 * with the prefill mask, then quantized); the key residual stays full width, and ThinK's `recent` has
 * no effect (the residual is the full-width part).
 */
export interface QuantOptions {
  /** Bits per key code: 2, 4 or 8; default 2. */
  keyBits?: number;
  /** Bits per value code: 2, 4 or 8; default 2. */
  valueBits?: number;
  /** Tokens per key group (per channel) and channels per value group (per token): a multiple of 16 in [16, 256]; default 32. */
  group?: number;
  /** Full-precision residual R: a multiple of `group`; default 128. */
  residual?: number;
}

/** KV-cache options of `loadModel(path, { kv })`: eviction, then ThinK, then KIVI. Absent means `full`. */
export interface KvOptions {
  /** Token eviction; default none. */
  eviction?: EvictionOptions;
  /** Key-channel pruning; default none. */
  think?: ThinkOptions;
  /** KIVI quantization of keys and values; default none (f32). */
  quant?: QuantOptions;
}

/** {@linkcode EvictionOptions} with every default filled in. */
export type ResolvedEviction = Required<EvictionOptions>;

/** {@linkcode ThinkOptions} with every default filled in. */
export type ResolvedThink = Required<ThinkOptions>;

/** {@linkcode QuantOptions} with every default filled in. */
export type ResolvedQuant = Required<QuantOptions>;

/** Validated options with defaults; `think` / `quant` are null when not used. */
export interface ResolvedKvOptions {
  /** Eviction settings (`policy: "full"` when none). */
  eviction: ResolvedEviction;
  /** ThinK settings, or null. */
  think: ResolvedThink | null;
  /** KIVI settings, or null (f32 keys and values). */
  quant: ResolvedQuant | null;
}

/**
 * Defaults of every eviction setting (the ThinK paper's SnapKV settings: w = 32, k = 7, max pooling).
 *
 * @example
 * ```ts
 * import { EVICTION_DEFAULTS } from "./options.ts";
 * console.log(EVICTION_DEFAULTS.budget, EVICTION_DEFAULTS.window); // 512 32
 * ```
 */
export const EVICTION_DEFAULTS: Readonly<Omit<ResolvedEviction, "policy">> = {
  budget: 512,
  window: 32,
  kernel: 7,
  pool: "max",
  beta: 20,
  sinks: 4,
};

/**
 * Defaults of the ThinK settings other than the ratio.
 *
 * @example
 * ```ts
 * import { THINK_DEFAULTS } from "./options.ts";
 * console.log(THINK_DEFAULTS.recent); // 32
 * ```
 */
export const THINK_DEFAULTS: Readonly<Omit<ResolvedThink, "ratio">> = { recent: 32, window: 32, pad: false };

/**
 * Defaults of the KIVI settings: 2-bit keys and values, G = 32, R = 128 (KIVI's LongBench settings).
 *
 * @example
 * ```ts
 * import { QUANT_DEFAULTS } from "./options.ts";
 * console.log(QUANT_DEFAULTS.group, QUANT_DEFAULTS.residual); // 32 128
 * ```
 */
export const QUANT_DEFAULTS: Readonly<ResolvedQuant> = { keyBits: 2, valueBits: 2, group: 32, residual: 128 };

/**
 * Code widths KIVI supports.
 *
 * @example
 * ```ts
 * import { QUANT_BITS } from "./options.ts";
 * console.log(QUANT_BITS.join(", ")); // 2, 4, 8
 * ```
 */
export const QUANT_BITS: readonly number[] = [2, 4, 8];

const POLICY_NAMES: Record<EvictionPolicy, string> = {
  full: "the full KV cache",
  snapkv: "SnapKV",
  pyramidkv: "PyramidKV",
  streamingllm: "StreamingLLM",
  h2o: "H2O",
};

function fail(what: string, message: string): never {
  throw new RangeError(`Cannot configure ${what}: ${message}`);
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function checkKeys(what: string, o: object, known: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) {
      fail(what, `unknown setting "${k}" (known: ${known.join(", ")})`);
    }
  }
}

function integer(what: string, name: string, v: unknown, min: number, range = `an integer ≥ ${min}`): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    fail(what, `${name} must be ${range}: current value is ${show(v)}`);
  }
  return v;
}

/**
 * Checks `options` and fills in the defaults. Throws a `RangeError` naming the first bad setting and
 * its allowed range, e.g. `Cannot configure ThinK: ratio must be in [0, 1): current value is 1.5`.
 *
 * @example
 * ```ts
 * import { resolveKvOptions } from "./options.ts";
 * const r = resolveKvOptions({ eviction: { policy: "snapkv", budget: 128 }, think: { ratio: 0.4 } });
 * console.log(r.eviction.window, r.eviction.pool, r.think?.recent); // 32 max 32
 * ```
 */
export function resolveKvOptions(options: KvOptions = {}): ResolvedKvOptions {
  if (typeof options !== "object" || options === null) {
    fail("the KV cache", `kv must be an object: current value is ${show(options)}`);
  }
  checkKeys("the KV cache", options, ["eviction", "think", "quant"]);
  const e = options.eviction ?? { policy: "full" as const };
  if (typeof e !== "object" || e === null) {
    fail("KV eviction", `eviction must be an object: current value is ${show(e)}`);
  }
  checkKeys("KV eviction", e, ["policy", ...Object.keys(EVICTION_DEFAULTS)]);
  if (!EVICTION_POLICIES.includes(e.policy)) {
    fail(
      "KV eviction",
      `policy must be one of ${EVICTION_POLICIES.join(", ")}: current value is ${show(e.policy)}`,
    );
  }
  const what = POLICY_NAMES[e.policy];
  const eviction: ResolvedEviction = { ...EVICTION_DEFAULTS, ...stripUndefined(e) } as ResolvedEviction;
  integer(what, "window", eviction.window, 1);
  integer(what, "budget", eviction.budget, 1);
  integer(what, "kernel", eviction.kernel, 1, "an odd integer ≥ 1");
  if (eviction.kernel % 2 === 0) {
    fail(what, `kernel must be an odd integer ≥ 1: current value is ${eviction.kernel}`);
  }
  if (!["max", "avg", "none"].includes(eviction.pool)) {
    fail(what, `pool must be one of max, avg, none: current value is ${show(eviction.pool)}`);
  }
  integer(what, "beta", eviction.beta, 1);
  integer(what, "sinks", eviction.sinks, 0, "an integer ≥ 0");
  if (e.policy === "streamingllm") {
    if (eviction.budget <= eviction.sinks) {
      fail(
        what,
        `budget must be an integer > sinks (${eviction.sinks}): current value is ${eviction.budget}`,
      );
    }
  } else if (e.policy !== "full" && eviction.budget < eviction.window) {
    fail(
      what,
      `budget must be an integer ≥ window (${eviction.window}), since it counts the window: current value is ${eviction.budget}`,
    );
  }

  let think: ResolvedThink | null = null;
  if (options.think !== undefined) {
    const t = options.think;
    if (typeof t !== "object" || t === null) {
      fail("ThinK", `think must be an object: current value is ${show(t)}`);
    }
    checkKeys("ThinK", t, ["ratio", ...Object.keys(THINK_DEFAULTS)]);
    if (typeof t.ratio !== "number" || !(t.ratio >= 0 && t.ratio < 1)) {
      fail("ThinK", `ratio must be in [0, 1): current value is ${show(t.ratio)}`);
    }
    think = { ...THINK_DEFAULTS, ...stripUndefined(t) } as ResolvedThink;
    integer("ThinK", "recent", think.recent, 0, "an integer ≥ 0");
    integer("ThinK", "window", think.window, 1);
    if (typeof think.pad !== "boolean") {
      fail("ThinK", `pad must be true or false: current value is ${show(think.pad)}`);
    }
  }
  return { eviction, think, quant: resolveQuant(options.quant) };
}

function resolveQuant(q: QuantOptions | null | undefined): ResolvedQuant | null {
  if (q === undefined || q === null) return null;
  const what = "KIVI quantization";
  if (typeof q !== "object") fail(what, `quant must be an object: current value is ${show(q)}`);
  checkKeys(what, q, Object.keys(QUANT_DEFAULTS));
  const r = { ...QUANT_DEFAULTS, ...stripUndefined(q) } as ResolvedQuant;
  for (const name of ["keyBits", "valueBits"] as const) {
    if (!QUANT_BITS.includes(r[name])) {
      fail(what, `${name} must be one of ${QUANT_BITS.join(", ")}: current value is ${show(r[name])}`);
    }
  }
  const g = r.group;
  if (typeof g !== "number" || !Number.isInteger(g) || g < 16 || g > 256 || g % 16 !== 0) {
    fail(what, `group must be a multiple of 16 in [16, 256]: current value is ${show(g)}`);
  }
  const R = r.residual;
  if (typeof R !== "number" || !Number.isInteger(R) || R < g || R % g !== 0) {
    fail(what, `residual must be a positive multiple of group (${g}): current value is ${show(R)}`);
  }
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A short name for a configuration, e.g. `"snapkv(B=128,w=32,k=7,max) + think(0.5)"`,
 * `"full + kivi(K2V2,G=32,R=128)"` or `"full"`.
 *
 * @example
 * ```ts
 * import { describeKvOptions } from "./options.ts";
 * console.log(describeKvOptions({ think: { ratio: 0.4 } })); // full + think(0.4)
 * ```
 */
export function describeKvOptions(options: KvOptions | ResolvedKvOptions = {}): string {
  const r = resolveKvOptions({
    eviction: options.eviction,
    think: options.think ?? undefined,
    quant: options.quant ?? undefined,
  });
  const e = r.eviction;
  let s: string = e.policy;
  if (e.policy === "snapkv" || e.policy === "pyramidkv") {
    s += `(B=${e.budget},w=${e.window},k=${e.kernel},${e.pool})`;
  }
  if (e.policy === "h2o") s += `(B=${e.budget},w=${e.window})`;
  if (e.policy === "streamingllm") s += `(B=${e.budget},sinks=${e.sinks})`;
  if (r.think) s += ` + think(${r.think.ratio}${r.think.pad ? ",pad" : ""})`;
  const q = r.quant;
  if (q) s += ` + kivi(K${q.keyBits}V${q.valueBits},G=${q.group},R=${q.residual})`;
  return s;
}

/**
 * CLI-style flags, as a parser hands them over: numbers may still be strings. Each maps to one
 * setting: `--kv` policy, `--budget`, `--window`, `--kernel`, `--pool`, `--beta`, `--sinks`,
 * `--think` ratio, `--think-recent`, `--think-window`, `--think-pad`, and KIVI's `--kv-bits` (keys and
 * values), `--key-bits`, `--value-bits`, `--kv-group`, `--kv-residual`.
 */
export interface KvFlags {
  /** `--kv POLICY`. */
  kv?: string;
  /** `--budget N`. */
  budget?: string | number;
  /** `--window N`. */
  window?: string | number;
  /** `--kernel N`. */
  kernel?: string | number;
  /** `--pool max|avg|none`. */
  pool?: string;
  /** `--beta N` (PyramidKV). */
  beta?: string | number;
  /** `--sinks N` (StreamingLLM). */
  sinks?: string | number;
  /** `--think RATIO`. */
  think?: string | number;
  /** `--think-recent N`. */
  thinkRecent?: string | number;
  /** `--think-window N`. */
  thinkWindow?: string | number;
  /** `--think-pad`. */
  thinkPad?: boolean;
  /** `--kv-bits 2|4|8`: KIVI with keys and values at this width. */
  kvBits?: string | number;
  /** `--key-bits 2|4|8` (overrides `--kv-bits` for keys). */
  keyBits?: string | number;
  /** `--value-bits 2|4|8` (overrides `--kv-bits` for values). */
  valueBits?: string | number;
  /** `--kv-group G`. */
  kvGroup?: string | number;
  /** `--kv-residual R`. */
  kvResidual?: string | number;
}

function flagNumber(flag: string, v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "number" ? v : v.trim() === "" ? NaN : Number(v);
  if (!Number.isFinite(n)) {
    throw new RangeError(`Cannot parse --${flag}: it must be a number: current value is ${show(v)}`);
  }
  return n;
}

/**
 * Turns CLI flags into {@linkcode KvOptions}, on top of `base` (e.g. a `--kv-config` file: flags
 * win). Returns `undefined` when neither gives any setting (the full cache). The result is validated.
 * Eviction settings without `--kv` apply to the base's policy, or are an error.
 *
 * @example
 * ```ts
 * import { kvOptionsFromFlags } from "./options.ts";
 * const kv = kvOptionsFromFlags({ kv: "snapkv", budget: "512", window: "32", pool: "max", think: "0.4" });
 * console.log(kv); // { eviction: { policy: "snapkv", budget: 512, window: 32, pool: "max" }, think: { ratio: 0.4 } }
 * ```
 */
export function kvOptionsFromFlags(flags: KvFlags, base?: KvOptions): KvOptions | undefined {
  const eviction: Partial<EvictionOptions> = { ...base?.eviction };
  if (flags.kv !== undefined) eviction.policy = flags.kv as EvictionPolicy;
  const set = <K extends keyof EvictionOptions>(k: K, v: EvictionOptions[K] | undefined) => {
    if (v !== undefined) eviction[k] = v;
  };
  set("budget", flagNumber("budget", flags.budget));
  set("window", flagNumber("window", flags.window));
  set("kernel", flagNumber("kernel", flags.kernel));
  set("pool", flags.pool as PoolKind | undefined);
  set("beta", flagNumber("beta", flags.beta));
  set("sinks", flagNumber("sinks", flags.sinks));
  const hasEviction = Object.keys(eviction).length > 0;
  if (hasEviction && eviction.policy === undefined) {
    throw new RangeError(
      `Cannot configure KV eviction: --budget, --window, --kernel, --pool, --beta and --sinks need --kv POLICY ` +
        `(one of ${EVICTION_POLICIES.join(", ")})`,
    );
  }
  let think: Partial<ThinkOptions> | undefined = base?.think ? { ...base.think } : undefined;
  const ratio = flagNumber("think", flags.think);
  const recent = flagNumber("think-recent", flags.thinkRecent);
  const window = flagNumber("think-window", flags.thinkWindow);
  if (ratio !== undefined || recent !== undefined || window !== undefined || flags.thinkPad) {
    think = { ...think };
    if (ratio !== undefined) think.ratio = ratio;
    if (recent !== undefined) think.recent = recent;
    if (window !== undefined) think.window = window;
    if (flags.thinkPad) think.pad = true;
    if (think.ratio === undefined) {
      throw new RangeError(
        "Cannot configure ThinK: --think-recent, --think-window and --think-pad need --think RATIO",
      );
    }
  }
  let quant: QuantOptions | undefined = base?.quant ? { ...base.quant } : undefined;
  const bits = flagNumber("kv-bits", flags.kvBits);
  const qFlags: [keyof QuantOptions, number | undefined][] = [
    ["keyBits", flagNumber("key-bits", flags.keyBits) ?? bits],
    ["valueBits", flagNumber("value-bits", flags.valueBits) ?? bits],
    ["group", flagNumber("kv-group", flags.kvGroup)],
    ["residual", flagNumber("kv-residual", flags.kvResidual)],
  ];
  if (qFlags.some(([, v]) => v !== undefined)) {
    if (!quant && qFlags[0][1] === undefined && qFlags[1][1] === undefined) {
      throw new RangeError(
        "Cannot configure KIVI quantization: --kv-group and --kv-residual need --kv-bits BITS (or --key-bits / --value-bits)",
      );
    }
    quant = { ...quant };
    for (const [k, v] of qFlags) if (v !== undefined) quant[k] = v;
  }
  if (!hasEviction && !think && !quant) return undefined;
  const out: KvOptions = {};
  if (hasEviction) out.eviction = eviction as EvictionOptions;
  if (think) out.think = think as ThinkOptions;
  if (quant) out.quant = quant;
  resolveKvOptions(out);
  return out;
}

/**
 * Parses and validates a YAML KV configuration (the `--kv-config` file). The document holds the
 * library's {@linkcode KvOptions}, optionally under a top-level `kv:` key (the `yaml` package reads the
 * LOG_TOKENS environment variable, so this needs `--allow-env`):
 *
 * ```yaml
 * eviction: { policy: snapkv, budget: 512, window: 32, kernel: 7, pool: max }
 * think: { ratio: 0.4, recent: 32 }
 * quant: { keyBits: 2, valueBits: 2, group: 32, residual: 128 }
 * ```
 *
 * @example
 * ```ts
 * import { parseKvConfig } from "./options.ts";
 * const kv = parseKvConfig("eviction:\n  policy: h2o\n  budget: 128\nthink:\n  ratio: 0.5\n");
 * console.log(kv.eviction?.policy, kv.think?.ratio); // h2o 0.5
 * ```
 */
export function parseKvConfig(text: string, source = "KV config"): KvOptions {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    if (!(e instanceof Error && e.name.startsWith("YAML"))) throw e; // e.g. no --allow-env: see above
    throw new SyntaxError(`Cannot parse ${source}: ${e.message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new RangeError(
      `Cannot configure the KV cache: ${source} must hold a mapping: current value is ${show(doc)}`,
    );
  }
  const root = (doc as Record<string, unknown>).kv !== undefined && Object.keys(doc).length === 1
    ? (doc as Record<string, unknown>).kv
    : doc;
  if (typeof root !== "object" || root === null || Array.isArray(root)) {
    throw new RangeError(`Cannot configure the KV cache: ${source} key "kv" must hold a mapping`);
  }
  try {
    resolveKvOptions(root as KvOptions);
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`${e.message} (in ${source})`);
    throw e;
  }
  return root as KvOptions;
}

/**
 * Reads, parses and validates a YAML KV configuration file (see {@linkcode parseKvConfig}).
 *
 * @example
 * ```ts ignore
 * import { loadKvConfig } from "./options.ts";
 * const kv = await loadKvConfig("kv.yaml");
 * ```
 */
export async function loadKvConfig(path: string): Promise<KvOptions> {
  return parseKvConfig(await Deno.readTextFile(path), path);
}
