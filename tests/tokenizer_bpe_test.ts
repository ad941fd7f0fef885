// Byte-level BPE (tokenizer.ggml.model = "gpt2"): llama.cpp's GPT-2 vectors, and Llama 3 against
// llama3-tokenizer-js, a test-only oracle pinned here (not in deno.json). The oracle always parses
// special tokens written in the text, so it is compared with `parseSpecial: true`; it knows the
// Llama 3.1 special tokens, which are the ones llama3-vocab.gguf holds.
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- a test-only oracle, pinned here so it stays out of deno.json
import llama3Oracle from "npm:llama3-tokenizer-js@1.2.0";
import { ModelFormatError } from "../src/errors.ts";
import { GgufFile } from "../src/model/gguf.ts";
import type { GgufValue } from "../src/model/gguf.ts";
import { bpeCharsToBytes, BpeTokenizer, bytesToBpeChars } from "../src/tokenizer/bpe.ts";
import { pretokenize, pretokenizerFor } from "../src/tokenizer/pretokenize.ts";
import { tokenizerFromGguf } from "../src/tokenizer/tokenizer.ts";
import { MODELS, vocabVectors } from "./_vocab_vectors.ts";
import { mulberry32 } from "../src/ref/random.ts";

async function load(name: string): Promise<{ tok: BpeTokenizer; metadata: Map<string, GgufValue> }> {
  const f = await GgufFile.open(new URL(name, MODELS).pathname);
  const metadata = f.metadata;
  f.close();
  const tok = tokenizerFromGguf(metadata);
  assert.ok(tok instanceof BpeTokenizer);
  return { tok, metadata };
}

const gpt2 = await load("ggml-vocab-gpt-2.gguf");
const llama3 = await load("llama3-vocab.gguf");

// ---------------------------------------------------------------------------------------------------
// Deterministic test strings for the oracle comparison

const SPECIALS = [
  "<|begin_of_text|>",
  "<|end_of_text|>",
  "<|start_header_id|>",
  "<|end_header_id|>",
  "<|eot_id|>",
  "<|eom_id|>",
  "<|python_tag|>",
  "<|finetune_right_pad_id|>",
  "<|reserved_special_token_0|>",
  "<|reserved_special_token_247|>",
];

const HANDWRITTEN = [
  "",
  " ",
  "Hello world",
  " Hello World!",
  "    Hello\n    Hello",
  "\n\n\n",
  "\r\n\r\n  \r\n",
  "\t\t\tindented\ttabs\t",
  "trailing spaces    ",
  "    leading spaces",
  " ".repeat(40) + "x",
  " ".repeat(300),
  "\n".repeat(64),
  "a" + "\u00a0".repeat(3) + "b\u3000c\u2003d",
  "I'm sure you've heard they'll say it's what we'd DO, isn't it? WE'LL SEE, YOU'RE RIGHT, I'D'VE",
  "rock 'n' roll, 'quoted', ''double'', y'all, o'clock, '90s",
  "3",
  "33333333",
  "123456789012345678901234567890",
  "3.14159 2,718 -42 +7 1e-9 0x1F 0b1010 1_000_000 ½ ¾ ² ٣٤٥ ४२",
  "Phone: +1 (555) 123-4567, ZIP 90210, date 2024-05-17T12:34:56Z",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
  "for (let i = 0; i < n; i++) { sum += a[i] * b[i]; }",
  'const x = { "key": [1, 2, 3], nested: { ok: true } };',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
  '<div class="x"><p>Hi &amp; bye</p></div>',
  "$ ls -la | grep '^d' && echo \"done\" >> /tmp/log.txt",
  "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
  "нещо на Български",
  "Привет, как дела? Всё хорошо!",
  "Γειά σου Κόσμε",
  "مرحبا بالعالم",
  "שלום עולם",
  "नमस्ते दुनिया",
  "สวัสดีชาวโลก",
  "កាន់តែពិសេសអាចខលចេញ",
  "我想在apple工作1314151天～",
  "日本語のテキスト、カタカナとひらがな。",
  "안녕하세요 세계",
  "Cửa Việt, Ångström, façade, naïve, Straße",
  "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
  "👨‍👩‍👧‍👦 👍🏽 🇺🇸🇯🇵 ❤️ ☺︎ 🦙",
  "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
  "!!!!!! ??? ... --- *** ~~~ ``` ''' \"\"\"",
  "a\u200bb\u200cc\u200dd", // zero-width characters
  "e\u0301 n\u0303 a\u0308", // combining marks
  "\u0000\u0001\u0007\u001b[31mred\u001b[0m",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝟙𝟚𝟛",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
  "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|eom_id|>",
  "text<|eot_id|>text <|eot_id|> text\n<|eot_id|>\n",
  "<|reserved_special_token_0|><|reserved_special_token_247|><|reserved_special_token_248|>",
  "<|not_a_token|> <|eot_id <eot_id|> <|EOT_ID|>",
  "<|python_tag|>import math\nprint(math.pi)<|eom_id|>",
];

const WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "WORLD", "tokenizer"];
const SCRIPTS: [number, number][] = [
  [0x0400, 0x044f], // Cyrillic
  [0x0391, 0x03c9], // Greek
  [0x0621, 0x064a], // Arabic
  [0x05d0, 0x05ea], // Hebrew
  [0x0905, 0x0939], // Devanagari
  [0x0e01, 0x0e2e], // Thai
  [0x4e00, 0x9fa5], // CJK
  [0xac00, 0xd7a3], // Hangul
  [0x3041, 0x3096], // Hiragana
  [0x30a1, 0x30fa], // Katakana
  [0x1780, 0x17b3], // Khmer
];
const EMOJI = ["😀", "😁", "🚀", "🦙", "👍", "👍🏽", "❤️", "✅", "🇫🇷", "👩‍💻", "🏳️‍🌈", "😶‍🌫️", "🤖", "🍕", "☕"];
const SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\t\n", "\u00a0", "\u3000"];
const CONTRACTIONS = [
  "'s",
  "'t",
  "'re",
  "'ve",
  "'m",
  "'ll",
  "'d",
  "'S",
  "'T",
  "'RE",
  "'Ve",
  "'M",
  "'LL",
  "'D",
  "'x",
];

function generatedStrings(): string[] {
  const r = mulberry32(0x7417);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];
  const join = (n: number, part: () => string) => Array.from({ length: n }, part).join("");
  const out: string[] = [];
  // code: identifiers, operators, numbers, indentation
  for (let i = 0; i < 40; i++) {
    const id = () => pick(WORDS).toLowerCase() + (r() < 0.3 ? "_" + int(100) : "");
    const op = () =>
      pick([" = ", " += ", " == ", " => ", "(", ")", "[", "]", "{", "}", ".", ", ", ";", " && ", "->"]);
    out.push(
      join(3 + int(8), () => pick([id, op, () => String(int(100000)), () => "\n" + " ".repeat(int(9))])()),
    );
  }
  // numbers
  for (let i = 0; i < 30; i++) {
    const digits = () => join(1 + int(14), () => String(int(10)));
    out.push(
      join(
        1 + int(4),
        () => pick(["", "-", "+", "$", " "]) + digits() + pick(["", ".", ",", "%", " ", "e-" + int(9)]),
      ),
    );
  }
  // whitespace runs between words
  for (let i = 0; i < 30; i++) {
    out.push(join(2 + int(6), () => pick(WORDS) + join(1 + int(3), () => pick(SPACES))));
  }
  // contractions
  for (let i = 0; i < 30; i++) {
    out.push(
      join(
        2 + int(5),
        () => pick(WORDS) + (r() < 0.6 ? pick(CONTRACTIONS) : "") + pick([" ", "  ", ", ", "\n"]),
      ),
    );
  }
  // non-Latin scripts
  for (let i = 0; i < 40; i++) {
    const [lo, hi] = pick(SCRIPTS);
    out.push(
      join(
        1 + int(5),
        () => join(1 + int(8), () => String.fromCodePoint(lo + int(hi - lo + 1))) + pick(SPACES),
      ),
    );
  }
  // emoji
  for (let i = 0; i < 30; i++) {
    out.push(join(1 + int(6), () => pick(EMOJI) + (r() < 0.5 ? pick([" ", "", "!", pick(WORDS)]) : "")));
  }
  // special tokens inside text
  for (let i = 0; i < 30; i++) {
    out.push(join(1 + int(5), () => (r() < 0.5 ? pick(SPECIALS) : "") + pick(WORDS) + pick(SPACES)));
  }
  // code-point soup over many ranges
  const RANGES: [number, number][] = [
    [0x20, 0x7e],
    [0x20, 0x7e],
    [0xa0, 0x24f],
    [0x2000, 0x206f],
    ...SCRIPTS,
    [
      0x1f300,
      0x1f6ff,
    ],
  ];
  for (let i = 0; i < 30; i++) {
    out.push(join(1 + int(30), () => {
      const [lo, hi] = pick(RANGES);
      return String.fromCodePoint(lo + int(hi - lo + 1));
    }));
  }
  return out;
}

const gpt2Vectors = await vocabVectors("ggml-vocab-gpt-2.gguf");
const ORACLE_STRINGS = [...HANDWRITTEN, ...gpt2Vectors.map((v) => v.input), ...generatedStrings()];

// ---------------------------------------------------------------------------------------------------
// GPT-2

Deno.test("BpeTokenizer.encode() matches every llama.cpp test vector of the GPT-2 vocab", () => {
  assert.equal(gpt2Vectors.length, 46);
  for (const { input, ids } of gpt2Vectors) {
    assert.deepEqual(gpt2.tok.encode(input, { addBos: false }), ids, `input ${JSON.stringify(input)}`);
    assert.deepEqual(gpt2.tok.encode(input), ids, "GPT-2 adds no BOS by default");
  }
});

Deno.test("BpeTokenizer.decode() inverts encode() on every GPT-2 test vector, whole and streamed", () => {
  for (const { input, ids } of gpt2Vectors) {
    assert.equal(gpt2.tok.decode(ids), input);
    const dec = gpt2.tok.streamDecoder();
    assert.equal(ids.map((id) => dec.push(id)).join("") + dec.flush(), input);
  }
});

Deno.test("BpeTokenizer reads the GPT-2 vocab's special ids and pre-tokenizer", () => {
  const { tok } = gpt2;
  assert.equal(tok.model, "gpt2");
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.pretokenizer.name, "gpt-2");
  assert.equal(tok.pretokenizer.ignoreMerges, false);
  assert.equal(tok.bos, 50256);
  assert.equal(tok.eos, 50256);
  assert.equal(tok.eot, 50256); // "<|endoftext|>", found by its text as llama.cpp does
  assert.equal(tok.addBos, false);
  assert.ok(tok.isEndOfGeneration(50256));
  assert.ok(!tok.isEndOfGeneration(198));
  assert.equal(tok.tokenText(18435), "ĠHello");
  assert.equal(new TextDecoder().decode(tok.tokenBytes(18435)), " Hello");
  assert.deepEqual(tok.tokenBytes(50256), new Uint8Array());
  assert.deepEqual(tok.encode("<|endoftext|>", { addBos: false, parseSpecial: true }), [50256]);
  assert.throws(() => tok.tokenText(50257), RangeError);
});

// ---------------------------------------------------------------------------------------------------
// Llama 3

Deno.test("BpeTokenizer reads the Llama 3 vocab's special ids and end-of-generation set", () => {
  const { tok } = llama3;
  assert.equal(tok.vocabSize, 128256);
  assert.equal(tok.pretokenizer.name, "llama-bpe");
  assert.equal(tok.pretokenizer.ignoreMerges, true);
  assert.equal(tok.bos, 128000);
  assert.equal(tok.eos, 128009);
  assert.equal(tok.eot, 128009);
  assert.equal(tok.eom, 128008);
  assert.equal(tok.addBos, true); // llama.cpp's default for the llama-bpe pre-tokenizer
  assert.deepEqual([...tok.endOfGeneration].sort(), [128008, 128009]);
  assert.ok(tok.isEndOfGeneration(128009) && !tok.isEndOfGeneration(128000));
  assert.deepEqual(tok.encode("Hello world"), [128000, 9906, 1917]);
  assert.deepEqual(tok.encode("Hello world", { addBos: false, addEos: true }), [9906, 1917, 128009]);
  assert.deepEqual(tok.encode(""), [128000]);
  assert.deepEqual(tok.encode("", { addBos: false }), []);
});

Deno.test("BpeTokenizer.encode() matches llama.cpp's Llama 3 vectors", () => {
  // from llama.cpp tests/test-tokenizer-0.cpp (the llama-bpe list kept there as a comment)
  const cases: [string, number[]][] = [
    [" ", [220]],
    ["   ", [262]],
    ["\t", [197]],
    ["\n\n\n", [1432]],
    ["\t\n", [1602]],
    [" Hello world", [22691, 1917]],
    [" this is 🦙.cpp", [420, 374, 11410, 99, 247, 13, 11055]],
    ["w048 7tuijk dsdfhu", [86, 23904, 220, 22, 83, 2005, 42908, 11729, 3013, 17156]],
    ["нещо на Български", [79862, 102118, 13373, 64571, 34694, 3114, 112203, 80112]],
    ["    Hello\n    Hello", [262, 22691, 198, 262, 22691]],
    ["' era", [6, 11639]],
    [
      "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
      [
        9906,
        11,
        379,
        65948,
        0,
        2650,
        527,
        499,
        27623,
        223,
        949,
        37046,
        101067,
        19000,
        23182,
        102301,
        9263,
        18136,
        16,
        36827,
        21909,
      ],
    ],
    ["333333333", [8765, 8765, 8765]],
  ];
  for (const [text, ids] of cases) {
    assert.deepEqual(llama3.tok.encode(text, { addBos: false }), ids, JSON.stringify(text));
  }
});

Deno.test(`BpeTokenizer.encode() equals llama3-tokenizer-js on ${ORACLE_STRINGS.length} varied strings`, () => {
  assert.ok(ORACLE_STRINGS.length >= 200);
  let withSpecials = 0;
  for (const text of ORACLE_STRINGS) {
    const expected = llama3Oracle.encode(text, { bos: false, eos: false });
    const label = JSON.stringify(text);
    assert.deepEqual(llama3.tok.encode(text, { addBos: false, parseSpecial: true }), expected, label);
    assert.deepEqual(
      llama3.tok.encode(text, { parseSpecial: true }),
      llama3Oracle.encode(text, { bos: true, eos: false }),
      label,
    );
    if (expected.some((id) => id >= 128000)) withSpecials++;
    else assert.deepEqual(llama3.tok.encode(text, { addBos: false }), expected, label);
  }
  assert.ok(withSpecials >= 20, `only ${withSpecials} strings contain special tokens`);
});

Deno.test("BpeTokenizer round-trips the oracle strings, with and without special tokens", () => {
  const { tok } = llama3;
  for (const text of ORACLE_STRINGS) {
    const label = JSON.stringify(text);
    assert.equal(tok.decode(tok.encode(text)), text, label); // BOS prints nothing
    const ids = tok.encode(text, { parseSpecial: true });
    assert.equal(tok.decode(ids, { renderSpecial: true }), "<|begin_of_text|>" + text, label);
    const dec = tok.streamDecoder({ renderSpecial: true });
    assert.equal(ids.map((id) => dec.push(id)).join("") + dec.flush(), "<|begin_of_text|>" + text, label);
  }
});

Deno.test("BpeTokenizer keeps special-token text as text unless parseSpecial is set", () => {
  const { tok } = llama3;
  const chat = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
  const plain = tok.encode(chat, { addBos: false });
  assert.ok(plain.every((id) => id < 128000));
  assert.equal(tok.decode(plain), chat);
  const parsed = tok.encode(chat, { addBos: false, parseSpecial: true });
  assert.deepEqual(parsed, [128006, 882, 128007, 271, 13347, 128009]);
  assert.equal(tok.decode(parsed), "user\n\nHi"); // control tokens print nothing by default
  assert.equal(tok.decode(parsed, { renderSpecial: true }), chat);
  assert.deepEqual(tok.tokenBytes(128009), new Uint8Array());
});

Deno.test("BpeTokenizer streams a character split over tokens only once complete", () => {
  const { tok } = llama3;
  const ids = tok.encode(" this is 🦙.cpp", { addBos: false }); // 🦙 = [11410, 99, 247]
  const dec = tok.streamDecoder();
  assert.deepEqual(ids.map((id) => dec.push(id)), [" this", " is", " ", "", "🦙", ".", "cpp"]);
  assert.equal(dec.flush(), "");
});

Deno.test("BpeTokenizer.encode() handles 1 MB of text and long single words quickly", () => {
  const { tok } = llama3;
  const unit =
    "Once upon a time, there was a little girl named Lily. 🚀 Äpfel € 3.14\n\t  def f(x): return x**2\n";
  const text = unit.repeat(Math.ceil(1_000_000 / unit.length));
  const t0 = performance.now();
  const ids = tok.encode(text, { parseSpecial: true });
  const ms = performance.now() - t0;
  assert.ok(ms < 5000, `encoding 1 MB took ${ms.toFixed(0)} ms`);
  assert.equal(tok.decode(ids), text);
  // One 1 MB word: the merge loop must not rescan (a quadratic one takes minutes here).
  for (const run of ["a".repeat(1_000_000), " ".repeat(1_000_000), "ab1".repeat(300_000)]) {
    const t1 = performance.now();
    assert.equal(tok.decode(tok.encode(run)), run);
    assert.ok(performance.now() - t1 < 5000);
  }
});

// ---------------------------------------------------------------------------------------------------
// Pieces: byte mapping, pre-tokenizers, merge order, special handling on toy vocabularies

Deno.test("bytesToBpeChars() and bpeCharsToBytes() are GPT-2's byte mapping and its inverse", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const chars = bytesToBpeChars(all);
  assert.equal(chars.length, 256);
  assert.equal(new Set(chars).size, 256);
  assert.equal(bytesToBpeChars(new TextEncoder().encode(" \n\t!~é")), "ĠĊĉ!~Ã©");
  assert.deepEqual(bpeCharsToBytes(chars), all);
});

Deno.test("pretokenize() cuts words like llama.cpp's GPT-2 and Llama 3 splitters", () => {
  const gpt = pretokenizerFor("gpt-2")!;
  assert.deepEqual(pretokenize(gpt, "Hello  world's 12345!!\n\tx"), [
    "Hello",
    " ",
    " world",
    "'s",
    " 12345",
    "!!",
    "\n",
    "\t",
    "x",
  ]);
  const l3 = pretokenizerFor("llama-bpe")!;
  assert.deepEqual(pretokenize(l3, "Hello  WORLD'S 12345!!\n\n\tx"), [
    "Hello",
    " ",
    " WORLD",
    "'S",
    " ",
    "123",
    "45",
    "!!\n\n",
    "\tx",
  ]);
  // llama.cpp's whitespace is Unicode White_Space: U+0085 is whitespace, U+FEFF is not
  assert.deepEqual(pretokenize(gpt, "a\u0085\u0085b"), ["a", "\u0085", "\u0085", "b"]);
  assert.deepEqual(pretokenize(gpt, "a \ufeffb"), ["a", " \ufeff", "b"]);
  assert.equal(pretokenizerFor(undefined)!.name, "default");
  assert.equal(pretokenizerFor("llama3")!.name, "llama-bpe");
  assert.equal(pretokenizerFor("no-such-pre"), undefined);
});

Deno.test("BpeTokenizer merges by rank, leftmost first on ties, and falls back like llama.cpp", () => {
  // "aaa": the two "a a" pairs tie; the leftmost merges first → "aa" + "a".
  const tok = new BpeTokenizer({
    tokens: ["a", "b", "aa", "ab", "aab"],
    merges: ["a a", "a b", "aa b"],
    pre: "gpt-2",
  });
  assert.deepEqual(tok.encode("aaa"), [2, 0]);
  // "aab": "a a" (rank 0) beats "a b" (rank 1), then "aa b" → "aab".
  assert.deepEqual(tok.encode("aab"), [4]);
  const swapped = new BpeTokenizer({
    tokens: ["a", "b", "aa", "ab", "aab"],
    merges: ["a b", "a a", "aa b"],
    pre: "gpt-2",
  });
  assert.deepEqual(swapped.encode("aab"), [0, 3]);
  // A merge whose result is no token: llama.cpp emits the one-byte tokens of its ASCII bytes.
  const hole = new BpeTokenizer({ tokens: ["x", "y", "Ġ"], merges: ["x y"], pre: "gpt-2" });
  assert.deepEqual(hole.encode("xy x"), [0, 1, 2, 0]);
  // ignore_merges: a word that is a token wins over what the merges would build
  const whole = (pre: string) =>
    new BpeTokenizer({
      tokens: ["a", "b", "c", "ab", "bc", "abc"],
      merges: ["b c", "a b"],
      pre,
      addBos: false,
    });
  assert.deepEqual(whole("gpt-2").encode("abc"), [0, 4]);
  assert.deepEqual(whole("llama-bpe").encode("abc"), [5]);
});

Deno.test("BpeTokenizer splits user-defined tokens always and control tokens only when parsing specials", () => {
  const tok = new BpeTokenizer({
    tokens: ["<", ">", "a", "b", "c", "t", "l", "x", "<ctl>", "<user>", "<ctl>x"],
    types: [1, 1, 1, 1, 1, 1, 1, 1, 3, 4, 3],
    merges: [],
    pre: "gpt-2",
  });
  assert.deepEqual(tok.encode("a<user>b"), [2, 9, 3]);
  assert.deepEqual(tok.encode("a<ctl>b"), [2, 0, 4, 5, 6, 1, 3]);
  assert.deepEqual(tok.encode("a<ctl>b", { parseSpecial: true }), [2, 8, 3]);
  // the longest special token is cut out first
  assert.deepEqual(tok.encode("<ctl>x<ctl>", { parseSpecial: true }), [10, 8]);
  assert.equal(tok.decode([2, 9, 8, 3]), "a<user>b"); // user-defined prints, control does not
  assert.equal(tok.decode([2, 9, 8, 3], { renderSpecial: true }), "a<user><ctl>b");
});

Deno.test("tokenizerFromGguf() builds a BpeTokenizer and rejects malformed gpt2 vocabularies", () => {
  const meta = new Map<string, GgufValue>(gpt2.metadata);
  meta.set("tokenizer.ggml.pre", "no-such-pre");
  assert.throws(() => tokenizerFromGguf(meta), (e: Error) => {
    assert.ok(e instanceof ModelFormatError);
    assert.match(
      e.message,
      /tokenizer\.ggml\.pre "no-such-pre" is not supported \(supported: "default", "gpt-2"/,
    );
    return true;
  });
  meta.delete("tokenizer.ggml.pre"); // absent: llama.cpp's "default" pre-tokenizer
  assert.equal((tokenizerFromGguf(meta) as BpeTokenizer).pretokenizer.name, "default");
  meta.delete("tokenizer.ggml.merges");
  assert.throws(() => tokenizerFromGguf(meta), /tokenizer\.ggml\.merges is missing/);
  const l3 = new Map<string, GgufValue>(llama3.metadata);
  l3.set("tokenizer.ggml.add_bos_token", false);
  assert.deepEqual(tokenizerFromGguf(l3).encode("Hi"), [13347]);
});
