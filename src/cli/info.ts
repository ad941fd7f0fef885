/**
 * `thinkv info FILE`: metadata, tensor type counts and an estimate of GPU memory. Reads only the
 * header; needs no GPU.
 *
 * @module
 */

import { readLlamaConfig } from "../model/config.ts";
import { GgufFile, type GgufValue } from "../model/gguf.ts";
import { gpuRowBytes } from "../model/gpu_weight.ts";
import { isSupportedType } from "../model/quant.ts";
import { ggmlTypeName } from "../model/weights.ts";
import { CliError, formatBytes, numberOption, parseOptions } from "./common.ts";

const HELP = `Usage: thinkv info FILE [--ctx N]

Prints a GGUF file's metadata, tensor type counts and the GPU memory thinkv would use.
  --ctx N   context length for the KV-cache estimate (default: min(model context, 4096))`;

function show(v: GgufValue): string {
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? v.slice(0, 77) + "..." : v);
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return `[${(v as ArrayLike<unknown>).length} values]`;
  return String(v);
}

/**
 * Runs `thinkv info`; returns the exit status.
 *
 * @example
 * ```ts ignore
 * await infoCommand(["../shared/models/stories260K.gguf"]);
 * ```
 */
export async function infoCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    ctx: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError("expected one GGUF file (see thinkv info --help)");
  const file = await GgufFile.open(positionals[0]);
  try {
    console.log(`file: ${file.path} (GGUF v${file.version}, ${formatBytes(file.fileSize)})`);
    console.log("metadata:");
    for (const [k, v] of file.metadata) console.log(`  ${k} = ${show(v)}`);
    const counts = new Map<string, number>();
    for (const t of file.tensors) {
      counts.set(ggmlTypeName(t.type), (counts.get(ggmlTypeName(t.type)) ?? 0) + 1);
    }
    console.log(`tensors: ${file.tensors.length} (${[...counts].map(([k, n]) => `${k}: ${n}`).join(", ")})`);
    const unsupported = file.tensors.filter((t) => !isSupportedType(t.type));
    if (unsupported.length > 0) {
      console.log(
        `unsupported tensor types: ${
          [...new Set(unsupported.map((t) => ggmlTypeName(t.type)))].join(", ")
        } ` +
          `(e.g. ${unsupported[0].name}); thinkv cannot run this file`,
      );
      return 0;
    }
    if (file.tensors.length === 0) {
      console.log("no tensors: a vocabulary-only file (usable with thinkv tokenize)");
      return 0;
    }
    const c = readLlamaConfig(file);
    const ctx = numberOption(values, "ctx", { integer: true, min: 1 }) ?? Math.min(c.contextLength, 4096);
    const weights = file.tensors.reduce(
      (s, t) => s + gpuRowBytes(t.type, t.dims[0]) * (t.nElements / t.dims[0]),
      0,
    );
    const kv = 2 * c.nLayers * c.nKvHeads * ctx * c.headDim * 4;
    console.log(
      `model: ${c.name}: ${c.nLayers} layers, dim ${c.dim}, ${c.nHeads} heads (${c.nKvHeads} KV, head dim ${c.headDim}), ` +
        `FFN ${c.ffnDim}, vocab ${c.vocabSize}, context ${c.contextLength}, rope base ${c.ropeBase}` +
        (c.tiedEmbeddings ? ", tied embeddings" : "") + (c.hasRopeFreqs ? ", rope_freqs" : ""),
    );
    console.log(
      `estimated GPU memory: weights ${formatBytes(weights)} + f32 KV cache for ${ctx} tokens ${
        formatBytes(kv)
      }`,
    );
  } finally {
    file.close();
  }
  return 0;
}
