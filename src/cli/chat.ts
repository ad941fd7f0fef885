/**
 * `thinkv chat --model FILE [--system TEXT]`: an interactive terminal chat that keeps the KV cache
 * between turns (only new tokens are prefilled). Commands: `/reset`, `/stats`, `/quit`. Ctrl-C stops
 * the reply being generated; at the prompt it exits.
 *
 * @module
 */

import { ChatSession } from "../chat/session.ts";
import { loadModel } from "../model/model.ts";
import {
  CliError,
  formatBytes,
  numberOption,
  parseOptions,
  SAMPLING_FLAG_OPTIONS,
  samplingFromFlags,
} from "./common.ts";
import { KV_FLAG_HELP, KV_FLAG_OPTIONS, kvOptionsFromCli } from "./kv_flags.ts";
import { PrefillCounter, ProgressBar } from "./progress.ts";
import { formatProfile } from "../gpu/profile.ts";

const HELP = `Usage: thinkv chat --model FILE [options]

An interactive chat; the KV cache is kept between turns, so each turn prefills only its new tokens.
  -m, --model FILE        GGUF model
  -s, --system TEXT       system prompt
  -n, --n-predict N       most tokens per reply (default 256)
      --temperature T     default 0.8 (0 = greedy)
      --top-k K           default 40
      --top-p P           default 0.95
      --seed S            random seed
      --ctx N             context length (default min(model, 4096))
      --profile           /stats adds GPU time per kernel family since the last /stats
  -q, --quiet             no progress bar
Commands at the prompt: /reset (forget the conversation), /stats (last turn's figures), /quit.
Ctrl-C stops a reply; at the prompt it exits.
${KV_FLAG_HELP}`;

/** Reads lines from stdin one at a time. */
class LineReader {
  #reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  #buffer = "";

  async next(): Promise<string | undefined> {
    while (!this.#buffer.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) {
        const rest = this.#buffer;
        this.#buffer = "";
        return rest.length > 0 ? rest : undefined;
      }
      this.#buffer += value;
    }
    const i = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, i).replace(/\r$/, "");
    this.#buffer = this.#buffer.slice(i + 1);
    return line;
  }
}

/**
 * Runs `thinkv chat`; returns the exit status.
 *
 * @example
 * ```ts ignore
 * await chatCommand(["--model", "model.gguf", "--system", "Be brief."]);
 * ```
 */
export async function chatCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    model: { type: "string", short: "m" },
    system: { type: "string", short: "s" },
    ...SAMPLING_FLAG_OPTIONS,
    ctx: { type: "string" },
    profile: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
    ...KV_FLAG_OPTIONS,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.model !== "string") {
    throw new CliError("--model FILE is required (see thinkv chat --help)");
  }
  const generateOptions = samplingFromFlags(values, { maxTokens: 256, minTokens: 1 });
  const bar = new ProgressBar("loading weights", { quiet: !!values.quiet });
  const kv = await kvOptionsFromCli(values);
  const model = await loadModel(values.model, {
    kv,
    contextLength: numberOption(values, "ctx", { integer: true, min: 1 }),
    profile: !!values.profile,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.done();
  const session = new ChatSession(model, {
    system: typeof values.system === "string" ? values.system : undefined,
  });
  const out = new TextEncoder();
  const write = (s: string) => Deno.stdout.writeSync(out.encode(s));
  let abort: AbortController | undefined;
  const onInterrupt = () => {
    if (abort) return abort.abort(); // stop the reply, keep the session
    write("\n");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  const lines = new LineReader();
  try {
    write(
      `thinkv chat: ${model.config.name} (${model.contextLength} tokens of context). /reset /stats /quit\n`,
    );
    while (true) {
      write("> ");
      const line = await lines.next();
      if (line === undefined || line.trim() === "/quit" || line.trim() === "/exit") break;
      const text = line.trim();
      if (text === "") continue;
      if (text === "/reset") {
        session.reset();
        write("(conversation and KV cache cleared)\n");
        continue;
      }
      if (text === "/stats") {
        const s = session.lastStats;
        write(
          s
            ? `prompt ${s.promptTokens} tokens (prefilled ${s.prefilledTokens}), generated ${s.generatedTokens}; ` +
              `prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${
                s.decodeTokensPerSecond.toFixed(1)
              } tok/s; ` +
              `context ${s.contextTokens}/${model.contextLength}; KV cache ${formatBytes(s.kvCacheBytes)}\n`
            : "(no turn yet)\n",
        );
        if (values.profile) write(`${formatProfile(await model.profile({ reset: true }))}\n`);
        continue;
      }
      if (text.startsWith("/")) {
        write(`unknown command ${text} (commands: /reset /stats /quit)\n`);
        continue;
      }
      abort = new AbortController();
      try {
        const counter = new PrefillCounter({ quiet: !!values.quiet });
        const onPrefillProgress = counter.callback(model.state.maxBatch);
        for await (
          const chunk of session.send(text, { ...generateOptions, signal: abort.signal, onPrefillProgress })
        ) {
          counter.done();
          write(chunk);
        }
        counter.done();
      } catch (e) {
        if (e instanceof RangeError) write(`\n(${e.message}; /reset starts over)`);
        else throw e;
      } finally {
        abort = undefined;
      }
      write("\n");
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    model.dispose();
  }
  return 0;
}
