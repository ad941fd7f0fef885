/**
 * The eval tasks on a CPU fake of the model (no GPU): perplexity windows and PPL on a tiny case,
 * fidelity KL / top-1, greedy decoding's stop rules, passkey and LongBench runs. The arithmetic is
 * written out in each test.
 */
import assert from "node:assert/strict";
import {
  argmaxExcept,
  type EvalModel,
  type EvalTokenizer,
  greedyDecode,
  klDivergence,
  logSoftmax,
  type ModelProvider,
  nll,
} from "../src/eval/tasks/common.ts";
import { fidelityReference, prepareFidelity, runFidelity } from "../src/eval/tasks/fidelity.ts";
import { perplexityWindows, runPerplexity } from "../src/eval/tasks/perplexity.ts";
import { runPasskey } from "../src/eval/tasks/passkey.ts";
import { datasetName, longBenchPrompt, readLongBench, runLongBench } from "../src/eval/tasks/longbench.ts";

/** Characters as tokens: id = the character code, except 1 = BOS, 2 = EOS, 3 = "\n". */
const charTok: EvalTokenizer = {
  bos: 1,
  eos: 2,
  isEndOfGeneration: (id) => id === 2,
  encode: (
    text,
    o,
  ) => [...(o?.addBos === false ? [] : [1]), ...Array.from(text, (c) => (c === "\n" ? 3 : c.charCodeAt(0)))],
  decode: (ids) =>
    Array.from(ids).filter((i) => i > 2).map((i) => (i === 3 ? "\n" : String.fromCharCode(i))).join(""),
};

/**
 * A model whose next-token logits are a function of (previous token, position). Records every call so
 * tests can check positions, capacities and the number of prefills.
 */
class FakeModel implements EvalModel {
  readonly config: { vocabSize: number };
  readonly calls: string[] = [];
  #last = -1;
  #pos = -1;
  #next = -1;
  constructor(
    readonly contextLength: number,
    readonly logitsFn: (prev: number, pos: number) => number[],
    readonly tokenizer: EvalTokenizer = charTok,
    readonly kvBytes = 100,
  ) {
    this.config = { vocabSize: logitsFn(0, 0).length };
  }
  prefill(ids: number[], pos0: number, o: { greedy?: boolean }): void {
    assert.ok(pos0 + ids.length <= this.contextLength, `prefill past the context: ${pos0}+${ids.length}`);
    this.calls.push(`prefill ${pos0} ${ids.length}`);
    this.#last = ids[ids.length - 1];
    this.#pos = pos0 + ids.length - 1;
    if (o.greedy) this.#next = argmaxExcept(this.logitsFn(this.#last, this.#pos));
  }
  decodeStep(pos: number, greedy: boolean): void {
    assert.ok(pos < this.contextLength, `decode past the context: ${pos}`);
    assert.equal(pos, this.#pos + 1, "decode positions are consecutive");
    this.calls.push(`decode ${pos}`);
    this.#last = this.#next;
    this.#pos = pos;
    if (greedy) this.#next = argmaxExcept(this.logitsFn(this.#last, pos));
  }
  readLogits(): Promise<Float32Array> {
    return Promise.resolve(new Float32Array(this.logitsFn(this.#last, this.#pos)));
  }
  readNextToken(): Promise<number> {
    return Promise.resolve(this.#next);
  }
  setNextToken(id: number): void {
    this.#next = id;
  }
  kvStats() {
    return { bytes: this.kvBytes, fullBytes: 4 * this.kvBytes };
  }
}

/** A provider that sizes a fresh fake per request (like `contextLength: auto`) and logs the sizes. */
class FakeProvider implements ModelProvider {
  readonly sizes: number[] = [];
  readonly models: FakeModel[] = [];
  readonly tokenizer: EvalTokenizer;
  constructor(
    readonly logitsFn: (prev: number, pos: number) => number[],
    tokenizer = charTok,
    readonly kvBytes = 100,
  ) {
    this.tokenizer = tokenizer;
  }
  get(tokens: number): Promise<EvalModel> {
    this.sizes.push(tokens);
    const m = new FakeModel(tokens, this.logitsFn, this.tokenizer, this.kvBytes);
    this.models.push(m);
    return Promise.resolve(m);
  }
}

Deno.test("logSoftmax, nll and klDivergence on hand-computed cases", () => {
  const l = logSoftmax([0, Math.log(3)]); // p = (1/4, 3/4)
  assert.ok(Math.abs(l[0] - Math.log(0.25)) < 1e-15 && Math.abs(l[1] - Math.log(0.75)) < 1e-15);
  assert.equal(nll([0, 0, 0, 0], 3), Math.log(4));
  assert.ok(Math.abs(nll([0, 0, 0, Math.log(3)], 3) - Math.log(2)) < 1e-15); // 3/6
  assert.equal(klDivergence(l, l), 0);
  // KL((½,½) ‖ (¼,¾)) = ½ ln(½/¼) + ½ ln(½/¾) = ½ ln 2 + ½ ln(2/3)
  const kl = klDivergence(logSoftmax([0, 0]), l);
  assert.ok(Math.abs(kl - (0.5 * Math.log(2) + 0.5 * Math.log(2 / 3))) < 1e-15);
  assert.equal(argmaxExcept([1, 5, 5, 2]), 1);
  assert.equal(argmaxExcept([1, 5, 5, 2], [1, 2]), 3);
});

Deno.test("perplexityWindows: context window − stride, each token after it scored once", () => {
  assert.deepEqual(perplexityWindows(10, 6, 2), [
    { begin: 0, scoreFrom: 4, end: 6 },
    { begin: 2, scoreFrom: 6, end: 8 },
    { begin: 4, scoreFrom: 8, end: 10 },
  ]);
  // 9 ids: the last window scores one token.
  assert.deepEqual(perplexityWindows(9, 6, 2).at(-1), { begin: 4, scoreFrom: 8, end: 9 });
  // maxTokens = 3: ids 4, 5, 6 only.
  assert.deepEqual(perplexityWindows(10, 6, 2, 3), [{ begin: 0, scoreFrom: 4, end: 6 }, {
    begin: 2,
    scoreFrom: 6,
    end: 7,
  }]);
  assert.throws(
    () => perplexityWindows(4, 6, 2),
    /the text has 4 tokens but a window needs more than its 4 context tokens/,
  );
  assert.throws(() => perplexityWindows(10, 6, 6), /stride must be an integer in \[1, window − 1 = 5\]/);
  assert.throws(() => perplexityWindows(10, 1, 1), /window must be an integer >= 2/);
});

Deno.test("perplexity on a tiny case: PPL = exp(mean NLL) over the scored tokens, window-relative positions", async () => {
  // Vocabulary of 4; the model puts logit ln 3 on (prev + 1) mod 4: p = 3/6 = ½ for it, 1/6 for others.
  const fn = (prev: number) => [0, 1, 2, 3].map((t) => (t === (prev + 1) % 4 ? Math.log(3) : 0));
  const ids = [0, 1, 2, 3, 0, 1, 2, 0];
  // window 4, stride 2 → context 2; scored ids 2…7, predicted from ids 1…6:
  //   1→2 ✓, 2→3 ✓, 3→0 ✓, 0→1 ✓, 1→2 ✓ (p = ½ each), 2→0 ✗ (p = 1/6)
  //   mean NLL = (5 ln 2 + ln 6)/6, PPL = (2⁵·6)^(1/6) = 192^(1/6)
  const p = new FakeProvider(fn);
  const r = await runPerplexity(p, ids, { window: 4, stride: 2 });
  // (logits are f32, so ln 3 is rounded to 1.0986123: agreement to ~1e-7)
  assert.ok(Math.abs(r.metrics.nll - (5 * Math.log(2) + Math.log(6)) / 6) < 1e-7);
  assert.ok(Math.abs(r.metrics.ppl - 192 ** (1 / 6)) < 1e-7);
  assert.equal(r.metrics.tokens, 6);
  assert.equal(r.primary, "ppl");
  assert.equal(r.higherIsBetter, false);
  assert.equal(r.examples, 3);
  // Each window: prefill its 2 context ids at position 0, one decode step at position 2; cache of 3.
  assert.deepEqual(p.sizes, [3, 3, 3]);
  for (const m of p.models) assert.deepEqual(m.calls, ["prefill 0 2", "decode 2"]);
  assert.deepEqual(r.tokens, { prefill: 6, decode: 3 });
  assert.equal(r.kvBytes, 100);
  assert.equal(r.kvFullBytes, 400);
});

Deno.test("fidelity: identical models give KL 0 and 100% top-1; a shifted model gives the hand-computed KL", async () => {
  // Full: logits (0, 0) → p = (½, ½), argmax 0. Setting: (0, ln 3) → q = (¼, ¾), argmax 1.
  const full = new FakeProvider(() => [0, 0]);
  const [ex] = prepareFidelity(["ab"], charTok.encode, { steps: 4 });
  assert.deepEqual(ex.prompt, [1, 97, 98]);
  const ref = await fidelityReference(full, ex, 4);
  assert.equal(ref.logits.length, 4);
  assert.deepEqual(ref.forced, [0, 0, 0]); // greedy continuation: argmax 0 every step
  assert.deepEqual(full.sizes, [3 + 3]);
  assert.deepEqual(full.models[0].calls, ["prefill 0 3", "decode 3", "decode 4", "decode 5"]);

  const same = await runFidelity(new FakeProvider(() => [0, 0]), [ref]);
  assert.equal(same.metrics.kl, 0);
  assert.equal(same.metrics.top1, 100);

  const shifted = await runFidelity(new FakeProvider(() => [0, Math.log(3)]), [ref, ref]);
  assert.ok(Math.abs(shifted.metrics.kl - (0.5 * Math.log(2) + 0.5 * Math.log(2 / 3))) < 1e-7); // f32 ln 3
  assert.equal(shifted.metrics.top1, 0);
  assert.equal(shifted.examples, 2);
  assert.deepEqual(shifted.tokens, { prefill: 6, decode: 6 });

  // Half the steps differ (odd positions): top-1 50%, KL half the shifted value.
  const half = await runFidelity(new FakeProvider((_, pos) => (pos % 2 ? [0, Math.log(3)] : [0, 0])), [ref]);
  assert.equal(half.metrics.top1, 50);
  assert.ok(Math.abs(half.metrics.kl - (0.5 * Math.log(2) + 0.5 * Math.log(2 / 3)) / 2) < 1e-7);
});

Deno.test("fidelity with reference: text forces the text's own continuation", async () => {
  const [ex] = prepareFidelity(["abcdef"], charTok.encode, { promptTokens: 3, steps: 3, reference: "text" });
  assert.deepEqual(ex, { prompt: [1, 97, 98], continuation: [99, 100] });
  const ref = await fidelityReference(new FakeProvider(() => [0, 0]), ex, 3);
  assert.deepEqual(ref.forced, [99, 100]);
  assert.throws(
    () => prepareFidelity(["abc"], charTok.encode, { promptTokens: 3, steps: 3, reference: "text" }),
    /text 1 has 4 tokens, fewer than promptTokens \+ steps − 1 = 5/,
  );
});

Deno.test("greedyDecode: EOS and extra stop ids end generation; minOneToken masks them for the first token", async () => {
  // Vocabulary 6: after BOS (1) the best is EOS (2), then "\n" (3), then 5; after 5 comes "\n".
  const fn = (
    prev: number,
  ) => (prev === 1 ? [0, 0, 9, 8, 0, 7] : prev === 5 ? [0, 0, 0, 9, 0, 1] : [0, 0, 0, 0, 9, 0]);
  const m = () => new FakeModel(16, fn);
  assert.deepEqual((await greedyDecode(m(), [1], { maxNewTokens: 5 })).tokens, [2]);
  // min_length: EOS is masked → "\n" (3); it is not a stop id here, so generation goes on: 3 → 4 → 4 …
  assert.deepEqual((await greedyDecode(m(), [1], { maxNewTokens: 3, minOneToken: true })).tokens, [3, 4, 4]);
  // samsum: "\n" is a stop id too: both masked for the first token → 5; then "\n" stops (kept, as HF does).
  const r = await greedyDecode(m(), [1], { maxNewTokens: 8, minOneToken: true, stopIds: [3] });
  assert.deepEqual(r.tokens, [5, 3]);
  assert.equal(r.decodeSteps, 1);
  // maxNewTokens bounds the decode steps: n tokens need n − 1 steps.
  const long = await greedyDecode(new FakeModel(16, () => [0, 0, 0, 0, 9]), [1], { maxNewTokens: 4 });
  assert.deepEqual(long, { tokens: [4, 4, 4, 4], decodeSteps: 3 });
});

Deno.test("runPasskey: exact match of the 5 digits after the space, accuracy and heat map", async () => {
  // A tokenizer for digits: id = digit + 10, " " = 4, "." = 5; the fake "reads" the key from a table.
  const digitTok: EvalTokenizer = {
    bos: 1,
    eos: 2,
    isEndOfGeneration: (id) => id === 2,
    encode: (
      t,
      o,
    ) => [...(o?.addBos === false ? [] : [1]), ...Array.from(t, (c) => (/\d/.test(c) ? Number(c) + 10 : 6))],
    decode: (ids) =>
      Array.from(ids).map((i) => (i >= 10 ? String(i - 10) : i === 4 ? " " : i === 5 ? "." : "")).join(""),
  };
  // The answer " 12345." follows any prompt: position-driven output.
  const answer = [4, 11, 12, 13, 14, 15, 5];
  let start = 0;
  const fn = (_prev: number, pos: number) => {
    const want = answer[pos - start] ?? 5;
    return Array.from({ length: 20 }, (_, i) => (i === want ? 1 : 0));
  };
  const prompts = [
    { context: "aaaa", answer: "12345", length: 256, depth: 0.1 },
    { context: "aaaa", answer: "12340", length: 260, depth: 0.5 },
    { context: "aaaaaaaa", answer: "12345", length: 1000, depth: 0.5 },
  ];
  const provider: ModelProvider = {
    tokenizer: digitTok,
    get: (n) => {
      start = n - 7; // n = prompt ids + 7 − 1: the logits at the prompt's last position give answer[0]
      return Promise.resolve(new FakeModel(n, fn, digitTok));
    },
  };
  const r = await runPasskey(provider, prompts);
  assert.equal(r.metrics.correct, 2);
  assert.equal(r.metrics.total, 3);
  assert.ok(Math.abs(r.metrics.accuracy - 200 / 3) < 1e-12);
  const d = r.details as { heatmap: unknown; predictions: { prediction: string; correct: boolean }[] };
  assert.equal(d.predictions[0].prediction, " 12345.");
  assert.deepEqual(d.predictions.map((p) => p.correct), [true, false, true]);
  assert.deepEqual(d.heatmap, {
    lengths: [256, 1024],
    depths: [0.1, 0.5],
    cells: [[[1, 1], [0, 1]], [[0, 0], [1, 1]]],
  });
});

Deno.test("LongBench: dataset names, records, prompts with truncation and scoring through ../longbench.ts", async () => {
  assert.equal(datasetName("/x/trec.jsonl", []), "trec");
  assert.equal(datasetName("/x/hotpotqa_e.jsonl", []), "hotpotqa");
  assert.equal(datasetName("/x/data.jsonl", [{ dataset: "lcc" }]), "lcc");
  assert.equal(datasetName("/x/data.jsonl", [], "samsum"), "samsum");
  assert.throws(() => datasetName("/x/data.jsonl", []), /cannot tell the dataset of \/x\/data\.jsonl/);
  assert.throws(
    () => readLongBench('{"input": "q", "context": "c", "answers": "a"}', "triviaqa.jsonl"),
    /"answers" must be a list/,
  );
  assert.throws(
    () =>
      readLongBench('{"input": "q", "context": "c", "answers": ["a"], "all_classes": null}', "trec.jsonl"),
    /trec needs "all_classes"/,
  );

  // samsum template "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}"
  // is far longer than maxLength 12: keep the first 6 and the last 6 tokens ([BOS, S, u, m, m, a] + "\n\nab c"),
  // decode each, join, re-encode with BOS.
  const rec = { input: "ab c", context: "x", answers: ["ab c"], all_classes: null };
  const p = longBenchPrompt(charTok, "samsum", rec, 12);
  assert.deepEqual(p.ids, charTok.encode("Summa\n\nab c"));
  assert.equal(p.maxNew, 128);
  assert.deepEqual(p.stopIds, [3]); // the last id of encode("\n") without BOS
  assert.deepEqual(longBenchPrompt(charTok, "lcc", { context: "x", input: "" }, 1000).stopIds, []);

  // The fake always answers "ab c\n": samsum stops at the newline; qa_f1 for triviaqa.
  const answerIds = charTok.encode("ab c\n", { addBos: false });
  let promptLen = 0;
  const fn = (_prev: number, pos: number) => {
    const want = answerIds[pos - promptLen + 1] ?? 2;
    return Array.from({ length: 128 }, (_, i) => (i === want ? 1 : 0));
  };
  const provider: ModelProvider = {
    tokenizer: charTok,
    get: (n) => Promise.resolve(new FakeModel(n, fn)),
  };
  const wrapped: ModelProvider = {
    tokenizer: charTok,
    get: async (n) => {
      const m = await provider.get(n);
      const prefill = m.prefill.bind(m);
      m.prefill = (ids, pos0, o) => {
        promptLen = ids.length;
        prefill(ids, pos0, o);
      };
      return m;
    },
  };
  const samsum = readLongBench(
    JSON.stringify(rec) + "\n" + JSON.stringify({ ...rec, answers: ["zz"] }),
    "samsum.jsonl",
  );
  const trivia = readLongBench(JSON.stringify({ ...rec, answers: ["the ab", "q"] }), "triviaqa.jsonl");
  const r = await runLongBench(wrapped, [samsum, trivia], { maxLength: (maxNew) => 300 - maxNew });
  // samsum: rouge-L("ab c\n" → first line "ab c", "ab c") = 2·(1·1)/(2 + 1e-8), and 0 against "zz":
  //   round(100·(0.999999995 + 0)/2, 2) = 50
  // triviaqa: first line "ab c"; max(F1 vs "the ab" → [ab] vs [ab, c]: P=½, R=1 → ⅔, vs "q" → 0) → 66.67
  assert.equal(r.metrics.samsum, 50);
  assert.equal(r.metrics.triviaqa, 66.67);
  // Python: round((50 + 66.67)/2, 2) = 58.34 (the double 58.335 is 58.33500000000000085…)
  assert.equal(r.metrics.average, 58.34);
  assert.equal(r.primary, "average");
  const preds = (r.details as { predictions: { pred: string }[] }).predictions;
  assert.equal(preds[0].pred, "ab c\n"); // the newline stop token is kept, as Hugging Face keeps it
  assert.equal(r.examples, 3);
});
