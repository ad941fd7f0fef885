/**
 * Tokenizer throughput on 1 MB of text: byte-level BPE (Llama 3, GPT-2) and SentencePiece (LLaMA 2).
 * "cold" builds a fresh tokenizer per run outside the timed region, so every distinct word goes
 * through the BPE merge loop once; "warm" reuses one tokenizer whose word cache already holds the
 * text's words (the steady state of a long-running process). Napkin math: tokens/s = tokens / time;
 * the tokens per text are printed once before the runs, with one warm-run figure per case.
 *
 * Run: `deno bench --allow-read bench/tokenizer_bench.ts`
 */
import { GgufFile } from "../src/model/gguf.ts";
import type { GgufValue } from "../src/model/gguf.ts";
import { type Tokenizer, tokenizerFromGguf } from "../src/tokenizer/tokenizer.ts";

const MODELS = new URL("../../shared/models/", import.meta.url);
const SIZE = 1_000_000;

async function metadata(name: string): Promise<Map<string, GgufValue>> {
  const f = await GgufFile.open(new URL(name, MODELS).pathname);
  const m = f.metadata;
  f.close();
  return m;
}

/** Prose, code, numbers, emoji and other scripts, repeated to 1 MB (few distinct words). */
function mixedText(): string {
  const unit = "Once upon a time, there was a little girl named Lily. She loved 🚀 rockets and Äpfel.\n" +
    "def area(r):\n    return 3.14159 * r ** 2  # π r², 2024-05-17\n" +
    "Привет, мир! 我想在apple工作1314151天～ <|eot_id|> I'm sure they'll say it's fine.\n\n";
  return unit.repeat(Math.ceil(SIZE / unit.length)).slice(0, SIZE);
}

/** 1 MB of pseudo-random lowercase words (many distinct words: mostly cache misses when cold). */
function randomWords(): string {
  let seed = 1;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff;
  const parts: string[] = [];
  let n = 0;
  while (n < SIZE) {
    let w = "";
    for (let i = 1 + Math.floor(rnd() * 10); i > 0; i--) {
      w += String.fromCharCode(97 + Math.floor(rnd() * 26));
    }
    w += rnd() < 0.1 ? ".\n" : " ";
    parts.push(w);
    n += w.length;
  }
  return parts.join("").slice(0, SIZE);
}

const vocabs: [string, Map<string, GgufValue>][] = [
  ["llama3", await metadata("llama3-vocab.gguf")],
  ["gpt2", await metadata("ggml-vocab-gpt-2.gguf")],
  ["llama2-spm", await metadata("ggml-vocab-llama-spm.gguf")],
];
const texts: [string, string][] = [["mixed", mixedText()], ["random words", randomWords()]];

for (const [vocabName, meta] of vocabs) {
  const warm: Tokenizer = tokenizerFromGguf(meta);
  for (const [textName, text] of texts) {
    const t0 = performance.now();
    warm.encode(text); // fills the word cache
    const cold = performance.now() - t0;
    const t1 = performance.now();
    const n = warm.encode(text).length;
    const hot = performance.now() - t1;
    console.log(
      `${vocabName}, ${textName}: ${n} tokens per MB; first run ${(n / cold / 1e3).toFixed(2)} M tokens/s, ` +
        `warm ${(n / hot / 1e3).toFixed(2)} M tokens/s`,
    );
    Deno.bench({
      name: `${vocabName} encode 1 MB ${textName}, cold (${n} tokens)`,
      group: `encode ${textName}`,
      baseline: vocabName === "llama3",
      n: 10,
      warmup: 1,
      fn(b) {
        const tok = tokenizerFromGguf(meta);
        b.start();
        tok.encode(text);
        b.end();
      },
    });
    Deno.bench({
      name: `${vocabName} encode 1 MB ${textName}, warm (${n} tokens)`,
      group: `encode ${textName}`,
      fn() {
        warm.encode(text);
      },
    });
  }
  const ids = warm.encode(texts[0][1]);
  Deno.bench({
    name: `${vocabName} decode ${ids.length} tokens`,
    group: "decode",
    baseline: vocabName === "llama3",
    fn() {
      warm.decode(ids);
    },
  });
}
