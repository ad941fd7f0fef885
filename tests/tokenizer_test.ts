import assert from "node:assert/strict";
import { GgufFile } from "../src/model/gguf.ts";
import type { GgufValue } from "../src/model/gguf.ts";
import { ModelFormatError } from "../src/errors.ts";
import { tokenizerFromGguf } from "../src/tokenizer/tokenizer.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { SpmTokenizer } from "../src/tokenizer/spm.ts";
import { Utf8StreamDecoder } from "../src/tokenizer/utf8_stream.ts";
import { MODELS, vocabVectors } from "./_vocab_vectors.ts";

const GOLDEN = new URL("../../shared/golden/", import.meta.url);

async function load(name: string): Promise<{ tok: Tokenizer; metadata: Map<string, GgufValue> }> {
  const f = await GgufFile.open(new URL(name, MODELS).pathname);
  const metadata = f.metadata;
  f.close();
  return { tok: tokenizerFromGguf(metadata), metadata };
}

const llama = await load("ggml-vocab-llama-spm.gguf");
const stories = await load("stories260K.gguf");

Deno.test("SpmTokenizer.encode() matches every llama.cpp test vector of the LLaMA vocab", async () => {
  const cases = await vocabVectors("ggml-vocab-llama-spm.gguf");
  assert.equal(cases.length, 46);
  for (const { input, ids } of cases) {
    assert.deepEqual(llama.tok.encode(input, { addBos: false }), ids, `input ${JSON.stringify(input)}`);
  }
});

Deno.test("SpmTokenizer.decode() inverts encode() on every test vector, with and without BOS", async () => {
  for (const { input } of await vocabVectors("ggml-vocab-llama-spm.gguf")) {
    assert.equal(llama.tok.decode(llama.tok.encode(input, { addBos: false })), input);
    assert.equal(llama.tok.decode(llama.tok.encode(input)), input);
  }
  assert.equal(llama.tok.decode(llama.tok.encode("Hello world", { addBos: false })), "Hello world");
});

Deno.test("SpmTokenizer reads BOS/EOS and add_bos_token from the LLaMA vocab", () => {
  const { tok } = llama;
  assert.equal(tok.model, "llama");
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bos, 1);
  assert.equal(tok.eos, 2);
  assert.deepEqual(tok.encode("Hello world"), [1, 15043, 3186]);
  assert.deepEqual(tok.encode("Hello world", { addBos: false, addEos: true }), [15043, 3186, 2]);
  assert.deepEqual(tok.encode(""), [1]);
  assert.deepEqual(tok.encode("", { addBos: false }), []);
  assert.equal(tok.tokenText(15043), "▁Hello");
  assert.equal(tok.tokenText(13), "<0x0A>");
  assert.deepEqual(tok.tokenBytes(13), new Uint8Array([10]));
  assert.deepEqual(tok.tokenBytes(1), new Uint8Array());
  assert.throws(() => tok.tokenText(32000), RangeError);
});

Deno.test("SpmTokenizer.encode() does not parse special-token text", () => {
  const ids = llama.tok.encode("<s>hi</s>", { addBos: false });
  assert.equal(ids.includes(1) || ids.includes(2), false);
  assert.equal(llama.tok.decode(ids), "<s>hi</s>");
});

Deno.test("SpmTokenizer.decode() prints control tokens as nothing and keeps spaces on request", () => {
  const { tok } = llama;
  assert.equal(tok.decode([1, 15043, 3186, 2]), "Hello world");
  assert.equal(tok.decode([15043, 3186], { stripLeadingSpace: false }), " Hello world");
  assert.equal(tok.decode([]), "");
});

Deno.test("SpmTokenizer encodes the stories260K golden prompts like llama.cpp (with BOS)", async () => {
  for (const name of ["stories260K.once-upon-a-time.json", "stories260K.lily-and-tom.json"]) {
    const golden = JSON.parse(await Deno.readTextFile(new URL(name, GOLDEN)));
    assert.deepEqual(stories.tok.encode(golden.prompt), golden.prompt_ids, name);
    assert.equal(stories.tok.decode(golden.prompt_ids), golden.prompt);
  }
  assert.deepEqual(stories.tok.encode("Once upon a time"), [1, 403, 407, 261, 378]);
  assert.equal(stories.tok.vocabSize, 512);
});

Deno.test("SpmTokenizer.encode() merges the highest score first and the leftmost on ties", () => {
  // "▁ab" is no token: "▁a" + "b" or "▁" + "ab", whichever pair scores higher merges first.
  const tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "aa"];
  const types = [2, 3, 3, 1, 1, 1, 1, 1, 1];
  const tok = (scores: number[], addSpacePrefix = true) =>
    new SpmTokenizer({ tokens, types, scores, addSpacePrefix, addBos: false });
  assert.deepEqual(tok([0, 0, 0, 0, 0, 0, -1, -2, -3]).encode("ab"), [6, 5]);
  assert.deepEqual(tok([0, 0, 0, 0, 0, 0, -2, -1, -3]).encode("ab"), [3, 7]);
  // equal scores: the leftmost pair ("▁a") wins
  assert.deepEqual(tok([0, 0, 0, 0, 0, 0, -1, -1, -3]).encode("ab"), [6, 5]);
  // without the prefix, "aaa" → "aa" + "a" (a tie between the two "aa" pairs: leftmost wins)
  assert.deepEqual(tok([0, 0, 0, 0, 0, 0, -1, -1, -3], false).encode("aaa"), [8, 4]);
  // "▁" missing → bytes; here no <0xXX> tokens and no fallback: the unknown token
  const noBytes = new SpmTokenizer({ tokens: ["<unk>", "<s>", "</s>", "a"], addBos: false });
  assert.deepEqual(noBytes.encode("a", { addBos: false }), [0, 0, 0, 3]);
});

Deno.test("SpmTokenizer honours add_space_prefix = false and splits out user-defined tokens", () => {
  const meta = new Map<string, GgufValue>(llama.metadata);
  meta.set("tokenizer.ggml.add_space_prefix", false);
  const tok = tokenizerFromGguf(meta);
  assert.deepEqual(tok.encode("Hello", { addBos: false }), [10994]); // "Hello" without "▁"
  assert.equal(tok.decode(tok.encode(" Hello world")), " Hello world");

  const user = new SpmTokenizer({
    tokens: ["<unk>", "<s>", "</s>", "▁", "x", "▁x", "<tag>"],
    types: [2, 3, 3, 1, 1, 1, 4],
    scores: [0, 0, 0, 0, 0, -1, 0],
  });
  // The space prefix is added again after a user-defined token, as llama.cpp does.
  assert.deepEqual(user.encode("x<tag>x"), [1, 5, 6, 5]);
  assert.equal(user.decode([1, 5, 6, 5]), "x<tag> x");
});

Deno.test("SpmTokenizer.encode() handles 1 MB of text quickly", () => {
  const unit = "Once upon a time, there was a little girl named Lily. 🚀 Äpfel € 3.14\n\t  ";
  const text = unit.repeat(Math.ceil(1_000_000 / unit.length));
  const t0 = performance.now();
  const ids = llama.tok.encode(text);
  const ms = performance.now() - t0;
  assert.ok(ms < 5000, `encoding 1 MB took ${ms.toFixed(0)} ms`);
  assert.equal(llama.tok.decode(ids), text);
  // Worst case for naive BPE: one long run that merges pairwise.
  const run = "a".repeat(1_000_000);
  const t1 = performance.now();
  assert.equal(llama.tok.decode(llama.tok.encode(run)), run);
  assert.ok(performance.now() - t1 < 5000);
});

Deno.test("Utf8StreamDecoder emits an emoji split over byte tokens only once complete", () => {
  const ids = llama.tok.encode("Go🚀!", { addBos: false }); // ▁Go, bytes F0 9F 9A 80, !
  assert.deepEqual(ids.slice(1, 5), [243, 162, 157, 131]);
  const dec = llama.tok.streamDecoder({ stripLeadingSpace: true });
  const parts = ids.map((id) => dec.push(id));
  assert.deepEqual(parts, ["Go", "", "", "", "🚀", "!"]);
  assert.equal(dec.flush(), "");
  // batches, and the leading space kept by default (a continuation of a prompt)
  const cont = llama.tok.streamDecoder();
  assert.equal(cont.push(ids.slice(0, 3)) + cont.push(ids.slice(3)), " Go🚀!");
});

Deno.test("Utf8StreamDecoder.flush() returns an incomplete character as U+FFFD and resets", () => {
  const bytes = { tokenBytes: (id: number) => new Uint8Array([id]) };
  const dec = new Utf8StreamDecoder(bytes);
  assert.equal(dec.push([0xf0, 0x9f, 0x98]), "");
  assert.equal(dec.flush(), "\uFFFD");
  assert.equal(dec.push([0xc3, 0x41]), "\uFFFDA"); // invalid as soon as it is known to be
  assert.equal(dec.push([0xef, 0xbb, 0xbf]), "\uFEFF"); // a BOM character is text, not stripped
  assert.equal(dec.push([0xe2, 0x82]), "");
  assert.equal(dec.push(0xac), "€");
  assert.equal(dec.flush(), "");
});

Deno.test("tokenizerFromGguf() rejects an unsupported or missing tokenizer.ggml.model", () => {
  const meta = new Map<string, GgufValue>(llama.metadata);
  meta.set("tokenizer.ggml.model", "bert");
  assert.throws(() => tokenizerFromGguf(meta), (e: Error) => {
    assert.ok(e instanceof ModelFormatError);
    assert.match(e.message, /tokenizer\.ggml\.model "bert" is not supported \(supported: "llama"/);
    return true;
  });
  meta.delete("tokenizer.ggml.model");
  assert.throws(() => tokenizerFromGguf(meta), ModelFormatError);
  meta.set("tokenizer.ggml.model", "llama");
  meta.set("tokenizer.ggml.scores", new Float32Array(3));
  assert.throws(() => tokenizerFromGguf(meta), /3 scores for 32000 tokens/);
});

Deno.test("SpmTokenizer parses and renders control tokens on request and knows its end-of-generation ids", () => {
  const { tok } = llama;
  assert.deepEqual(tok.encode("<s>hi</s>", { addBos: false, parseSpecial: true }), [1, 7251, 2]);
  assert.equal(tok.decode([1, 7251, 2], { renderSpecial: true }), "<s> hi</s>");
  assert.equal(tok.decode([1, 7251, 2]), "hi");
  assert.ok(tok.isEndOfGeneration(2));
  assert.ok(!tok.isEndOfGeneration(1));
});
