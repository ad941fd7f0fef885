/**
 * The KV-cache flags shared by `thinkv run` and `thinkv chat`: thin wrappers over
 * `src/kv/options.ts`, so the CLI, the library and YAML files accept exactly the same settings.
 *
 * @module
 */

import { type KvOptions, kvOptionsFromFlags, loadKvConfig } from "../kv/options.ts";
import type { Options } from "./common.ts";

/** parseArgs definitions of the KV flags. */
export const KV_FLAG_OPTIONS: Options = {
  kv: { type: "string" },
  budget: { type: "string" },
  window: { type: "string" },
  kernel: { type: "string" },
  pool: { type: "string" },
  beta: { type: "string" },
  sinks: { type: "string" },
  think: { type: "string" },
  "think-recent": { type: "string" },
  "think-window": { type: "string" },
  "think-pad": { type: "boolean" },
  "kv-bits": { type: "string" },
  "key-bits": { type: "string" },
  "value-bits": { type: "string" },
  "kv-group": { type: "string" },
  "kv-residual": { type: "string" },
  "kv-config": { type: "string" },
};

/** Help text for the KV flags. */
export const KV_FLAG_HELP = `KV cache (default: full, uncompressed):
      --kv POLICY         token eviction: full | snapkv | pyramidkv | streamingllm | h2o
      --budget N          tokens kept per layer and KV head, the observation window included
      --window N          SnapKV/PyramidKV observation window; StreamingLLM recent window (default 32)
      --kernel N          SnapKV pooling kernel (default 7)
      --pool KIND         SnapKV pooling: max | avg | none (default max)
      --beta N            PyramidKV budget schedule (default 20)
      --sinks N           StreamingLLM sink tokens (default 4)
      --think RATIO       ThinK: fraction of key channels removed, in [0, 1) (e.g. 0.4)
      --think-recent N    last cached prompt tokens kept full width (default 32)
      --think-window N    ThinK observation queries (default 32)
      --think-pad         pad thin key rows to a multiple of 4 channels
      --kv-bits 2|4|8     KIVI: quantize keys and values to this many bits (after eviction and ThinK)
      --key-bits 2|4|8    KIVI bits of the keys (overrides --kv-bits)
      --value-bits 2|4|8  KIVI bits of the values (overrides --kv-bits)
      --kv-group G        KIVI group: tokens per key group, channels per value group (default 32)
      --kv-residual R     KIVI full-precision residual, a multiple of G (default 128)
      --kv-config FILE    a YAML file with { eviction: {...}, think: {...}, quant: {...} }; flags override it`;

/**
 * Turns parsed flags into KV options (undefined = full cache). Invalid settings throw a RangeError
 * naming the setting and its allowed range.
 *
 * @example
 * ```ts
 * import { kvOptionsFromCli } from "./kv_flags.ts";
 * console.log(await kvOptionsFromCli({ kv: "snapkv", budget: "128", think: "0.5", "kv-bits": "2" }));
 * ```
 */
export async function kvOptionsFromCli(
  values: Record<string, string | boolean | undefined>,
): Promise<KvOptions | undefined> {
  const str = (k: string) => (typeof values[k] === "string" ? values[k] as string : undefined);
  const base = str("kv-config") ? await loadKvConfig(str("kv-config")!) : undefined;
  return kvOptionsFromFlags({
    kv: str("kv"),
    budget: str("budget"),
    window: str("window"),
    kernel: str("kernel"),
    pool: str("pool"),
    beta: str("beta"),
    sinks: str("sinks"),
    think: str("think"),
    thinkRecent: str("think-recent"),
    thinkWindow: str("think-window"),
    thinkPad: values["think-pad"] === true ? true : undefined,
    kvBits: str("kv-bits"),
    keyBits: str("key-bits"),
    valueBits: str("value-bits"),
    kvGroup: str("kv-group"),
    kvResidual: str("kv-residual"),
  }, base);
}
