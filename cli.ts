#!/usr/bin/env -S deno run --allow-read --allow-env
/**
 * The `thinkv` command line: `run` (generate text), `info` (inspect a GGUF file), `tokenize`.
 *
 * ```sh
 * deno run --allow-read --allow-env cli.ts run --model ../shared/models/stories260K.gguf --prompt "Once upon a time"
 * deno run --allow-read cli.ts info ../shared/models/stories260K.gguf
 * deno run --allow-read cli.ts tokenize --model ../shared/models/stories260K.gguf --text "Hello"
 * ```
 *
 * Users' mistakes (missing file, bad option, prompt too long) print one `thinkv: error: …` line and
 * exit with status 1, never a stack trace (set THINKV_DEBUG=1 to see one).
 *
 * @module
 */

import { chatCommand } from "./src/cli/chat.ts";
import { evalCommand } from "./src/cli/eval.ts";
import { infoCommand } from "./src/cli/info.ts";
import { runCommand } from "./src/cli/run.ts";
import { tokenizeCommand } from "./src/cli/tokenize.ts";
import { synthCommand } from "./src/cli/synth.ts";
import { CliError, reportError } from "./src/cli/common.ts";

const USAGE = `thinkv — LLaMA on WebGPU with ThinK / eviction / quantized KV caches

Usage:
  thinkv run --model FILE --prompt TEXT [-n N] [options]   generate text
  thinkv chat --model FILE [--system TEXT]                 interactive chat (KV cache kept between turns)
  thinkv info FILE                                         metadata, tensor types, memory estimate
  thinkv tokenize --model FILE --text TEXT [--no-bos]      print token ids as JSON
  thinkv synth --shape NAME --type T OUT.gguf              write a random-weight model for speed runs
  thinkv eval --config FILE.yaml [--out DIR]               quality vs KV-cache bytes: table, JSON, CSV, SVG

Run 'thinkv <command> --help' for a command's options.`;

/**
 * Runs the CLI with `args` (without the program name) and returns the exit status.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const status = await main(["info", "../shared/models/stories260K.gguf"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "run":
        return await runCommand(rest);
      case "chat":
        return await chatCommand(rest);
      case "info":
        return await infoCommand(rest);
      case "tokenize":
        return await tokenizeCommand(rest);
      case "synth":
        return await synthCommand(rest);
      case "eval":
        return await evalCommand(rest);
      case undefined:
      case "-h":
      case "--help":
      case "help":
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new CliError(
          `unknown command "${command}" (commands: run, chat, info, tokenize; see thinkv --help)`,
        );
    }
  } catch (e) {
    return reportError(e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
