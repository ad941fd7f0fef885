/**
 * `thinkv synth --shape NAME --type T OUT.gguf`: writes a synthetic LLaMA model (seeded random weights,
 * a working tokenizer) for speed runs, streaming tensor by tensor. Needs no GPU.
 *
 * @module
 */

import { SYNTH_SHAPES, SYNTH_TYPES, synthPlan, writeSynthModel } from "../model/synth.ts";
import { typeInfo } from "../model/quant.ts";
import { CliError, formatBytes, numberOption, parseOptions } from "./common.ts";

const HELP = `Usage: thinkv synth --shape NAME --type T OUT.gguf [--seed N] [--vocab FILE] [--max-size GIB]

Writes a valid LLaMA GGUF with seeded random weights (finite, unit-scale activations) and a working
SentencePiece tokenizer, tensor by tensor.
  --shape NAME      ${Object.keys(SYNTH_SHAPES).join(", ")}
  --type T          ${
  SYNTH_TYPES.map((t) => typeInfo(t).name.toUpperCase()).join(", ")
} (matrices; norms stay F32)
  --seed N          weight seed (default 1): the same seed writes the same bytes
  --vocab FILE      copy tokenizer.* from this GGUF (its token count must match the shape)
  --max-size GIB    refuse files larger than this (default 16)
  --list            print the shapes and their sizes per type, write nothing`;

/**
 * Runs `thinkv synth`; returns the exit status.
 *
 * @example
 * ```ts ignore
 * await synthCommand(["--shape", "tiny-64", "--type", "Q8_0", "/tmp/tiny.gguf"]);
 * ```
 */
export async function synthCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    shape: { type: "string" },
    type: { type: "string" },
    seed: { type: "string" },
    vocab: { type: "string" },
    "max-size": { type: "string" },
    list: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const types = new Map(SYNTH_TYPES.map((t) => [typeInfo(t).name, t]));
  if (values.list) {
    for (const name of Object.keys(SYNTH_SHAPES)) {
      const sizes: string[] = [];
      let params = 0;
      for (const [tn, t] of types) {
        const p = await synthPlan(name, t);
        params = p.parameters;
        sizes.push(`${tn.toUpperCase()} ${formatBytes(p.fileBytes)}`);
      }
      console.log(`${name.padEnd(16)} ${(params / 1e6).toFixed(1).padStart(8)}M params  ${sizes.join(", ")}`);
    }
    return 0;
  }
  if (typeof values.shape !== "string") {
    throw new CliError("--shape NAME is required (see thinkv synth --help)");
  }
  if (typeof values.type !== "string") throw new CliError("--type T is required (see thinkv synth --help)");
  const type = types.get(values.type.toLowerCase());
  if (type === undefined) {
    throw new CliError(
      `--type must be one of ${
        [...types.keys()].map((t) => t.toUpperCase()).join(", ")
      }: current value is "${values.type}"`,
    );
  }
  if (!(values.shape in SYNTH_SHAPES)) {
    throw new CliError(
      `--shape must be one of ${Object.keys(SYNTH_SHAPES).join(", ")}: current value is "${values.shape}"`,
    );
  }
  if (positionals.length !== 1) {
    throw new CliError("expected one output file OUT.gguf (see thinkv synth --help)");
  }
  const seed = numberOption(values, "seed", { integer: true, min: 0 }) ?? 1;
  const maxGiB = numberOption(values, "max-size", { min: 0 }) ?? 16;
  const opts = { seed, vocabPath: typeof values.vocab === "string" ? values.vocab : undefined };
  const plan = await synthPlan(values.shape, type, opts);
  if (plan.fileBytes > maxGiB * 2 ** 30) {
    throw new CliError(
      `${values.shape} ${values.type.toUpperCase()} would write ${formatBytes(plan.fileBytes)} ` +
        `(${(plan.parameters / 1e9).toFixed(2)}B parameters), over --max-size ${maxGiB} GiB; ` +
        `use a smaller type (Q4_0 is ${
          formatBytes((await synthPlan(values.shape, types.get("q4_0")!, opts)).fileBytes)
        }) ` +
        `or raise --max-size`,
    );
  }
  const out = positionals[0];
  const t0 = performance.now();
  console.error(
    `thinkv: writing ${out}: ${values.shape}, ${values.type.toUpperCase()}, ${
      (plan.parameters / 1e6).toFixed(1)
    }M parameters, ${formatBytes(plan.fileBytes)}`,
  );
  let last = 0;
  await writeSynthModel(out, values.shape, type, {
    ...opts,
    onProgress: (done, total, bytes) => {
      const now = performance.now();
      if (done === total || now - last > 2000) {
        last = now;
        console.error(
          `thinkv: ${done}/${total} tensors, ${formatBytes(bytes)}, ${((now - t0) / 1000).toFixed(1)} s`,
        );
      }
    },
  });
  return 0;
}
