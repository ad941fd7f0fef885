/**
 * `thinkv tokenize --model FILE --text TEXT [--no-bos]`: prints token ids as a JSON array. Reads only
 * the GGUF header, so it works on vocabulary-only files and without a GPU.
 *
 * @module
 */

import { GgufFile } from "../model/gguf.ts";
import { tokenizerFromGguf } from "../tokenizer/tokenizer.ts";
import { CliError, parseOptions } from "./common.ts";

const HELP = `Usage: thinkv tokenize --model FILE --text TEXT [--no-bos]

Prints the token ids of TEXT as a JSON array.
  --model FILE   a GGUF model or vocabulary-only GGUF
  --text TEXT    the text to tokenize
  --no-bos       do not add the beginning-of-sequence token`;

/**
 * Runs `thinkv tokenize`; returns the exit status.
 *
 * @example
 * ```ts ignore
 * await tokenizeCommand(["--model", "../shared/models/stories260K.gguf", "--text", "Hello"]);
 * ```
 */
export async function tokenizeCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    model: { type: "string", short: "m" },
    text: { type: "string", short: "t" },
    "no-bos": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.model !== "string") {
    throw new CliError("--model FILE is required (see thinkv tokenize --help)");
  }
  if (typeof values.text !== "string") {
    throw new CliError("--text TEXT is required (see thinkv tokenize --help)");
  }
  const file = await GgufFile.open(values.model);
  try {
    const tokenizer = tokenizerFromGguf(file.metadata);
    console.log(JSON.stringify(tokenizer.encode(values.text, { addBos: !values["no-bos"] })));
  } finally {
    file.close();
  }
  return 0;
}
