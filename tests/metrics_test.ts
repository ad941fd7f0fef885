// LongBench metrics: every value below is worked out by hand in the comment next to it (and was checked
// against LongBench's metrics.py, rouge 1.0.1, fuzzywuzzy 0.18 and CPython's difflib).
import assert from "node:assert/strict";
import {
  classificationScore,
  codeSimLine,
  codeSimScore,
  countScore,
  fuzzRatio,
  qaF1Score,
  retrievalScore,
  retrievalZhScore,
  rougeL,
  rougeLScore,
  rougeSentences,
  SequenceMatcher,
  tokenF1,
} from "../src/eval/metrics.ts";
import { findDigitRuns, firstLine, normalizeAnswer, pyRound, pySplit } from "../src/eval/normalize.ts";
import {
  averageScore,
  buildPrompt,
  FIRST_LINE_TASKS,
  formatTemplate,
  LONGBENCH_EN_TASKS,
  LONGBENCH_MAX_NEW_TOKENS,
  LONGBENCH_MODEL_MAX_LENGTH,
  LONGBENCH_PROMPTS,
  maxNewTokens,
  metricFor,
  scoreExample,
  scorePredictions,
  scoreTask,
  TASK_METRIC,
  thinkFlashMaxLength,
  truncateMiddle,
} from "../src/eval/longbench.ts";

// ------------------------------------------------------------------------------------------------
// normalisation

Deno.test("normalizeAnswer() lower-cases, drops ASCII punctuation, articles and extra whitespace", () => {
  // lower: "the  cat's hat, (an) apple!"; no punctuation: "the  cats hat an apple";
  // articles → " ": "   cats hat   apple"; whitespace fix: "cats hat apple"
  assert.equal(normalizeAnswer("The  Cat's hat, (an) APPLE!"), "cats hat apple");
  // Punctuation goes before articles: "l'a" → "la", which is not the article "a".
  assert.equal(normalizeAnswer("l'a"), "la");
  // Python's \b is Unicode-aware: in "éa" the "a" follows a letter, so it is not a word.
  assert.equal(normalizeAnswer("éa b"), "éa b");
  // A digit is a word character too: "the1" is not an article; "an" is.
  assert.equal(normalizeAnswer("the1 an x"), "the1 x");
  // Non-ASCII punctuation stays: "’" and "—" are not in string.punctuation.
  assert.equal(normalizeAnswer("it’s — a"), "it’s —");
});

Deno.test("pySplit() splits like Python's str.split(), not like JavaScript's \\s", () => {
  // U+001C and U+0085 are Python whitespace; U+FEFF is not (JavaScript's \s says the opposite).
  assert.deepEqual(pySplit(" a\u001cb\u0085c\ufeffd\u3000 "), ["a", "b", "c\ufeffd"]);
  assert.deepEqual(pySplit(" \t\n"), []);
});

Deno.test("firstLine() keeps the first line after leading newlines only", () => {
  assert.equal(firstLine("\n\nLocation\nQuestion: where?"), "Location");
  // lstrip('\n') leaves a leading space and \r alone.
  assert.equal(firstLine("\n \r\nx"), " \r");
  assert.equal(firstLine(""), "");
});

Deno.test("findDigitRuns() matches Python's \\d+ (Unicode decimal digits)", () => {
  // "٣" (Arabic-Indic three) is a digit run of its own; "3.5" is two runs.
  assert.deepEqual(findDigitRuns("Paragraph 12, ٣ and 3.5"), ["12", "٣", "3", "5"]);
});

Deno.test("pyRound() rounds like CPython's round(): exact binary value, ties to even", () => {
  // 0.125 and 0.375 are exact in binary: true ties, to the even neighbour (JS toFixed would go up).
  assert.equal(pyRound(0.125, 2), 0.12);
  assert.equal(pyRound(0.375, 2), 0.38);
  // 1.005 is stored as 1.00499999999999989…, 2.675 as 2.67499999999999982…: both round down.
  assert.equal(pyRound(1.005, 2), 1);
  assert.equal(pyRound(2.675, 2), 2.67);
  // 100/3 = 33.333… → 33.33; 200/3 = 66.666… → 66.67
  assert.equal(pyRound(100 / 3, 2), 33.33);
  assert.equal(pyRound(200 / 3, 2), 66.67);
  // round(x) with no digits: 2.5 → 2, 3.5 → 4, 12.5 → 12, 37.5 → 38
  assert.deepEqual([pyRound(2.5), pyRound(3.5), pyRound(12.5), pyRound(37.5)], [2, 4, 12, 38]);
  assert.equal(pyRound(-0.125, 2), -0.12);
  assert.throws(() => pyRound(1, 1.5), RangeError);
});

// ------------------------------------------------------------------------------------------------
// qa_f1

Deno.test("qaF1Score() is token F1 after normalisation", () => {
  // 'the cat sat' vs 'cat sat down': tokens [cat, sat] ∩ [cat, sat, down] = 2;
  // P = 2/2, R = 2/3, F1 = 2·1·(2/3)/(1 + 2/3) = 0.8
  assert.equal(qaF1Score("the cat sat", "cat sat down"), 0.8);
  // Multiset overlap: [cat, cat, cat] ∩ [cat, dog] = min(3, 1) = 1; P = 1/3, R = 1/2,
  // F1 = 2·(1/3)·(1/2)/(1/3 + 1/2) = (1/3)/(5/6) = 0.4
  assert.equal(qaF1Score("cat cat cat", "cat dog"), 0.4);
  // No overlap → 0; an empty prediction → 0 (no division by zero).
  assert.equal(qaF1Score("dog", "cat"), 0);
  assert.equal(qaF1Score("", "cat"), 0);
  // Case and punctuation do not matter: "Paris!" → [paris]; P = R = 1
  assert.equal(qaF1Score("Paris!", "paris"), 1);
  assert.equal(tokenF1(["a"], ["a", "b", "c"]), 0.5); // P = 1, R = 1/3, F1 = (2/3)/(4/3)
});

// ------------------------------------------------------------------------------------------------
// Rouge-L

Deno.test("rougeL() computes the rouge package's summary-level Rouge-L F with the 1e-8 term", () => {
  // hyp words {the, cat, sat}: n = 3; ref {the, cat, sat, down}: m = 4; LCS "the cat sat" = 3
  // p = 3/3 = 1, r = 3/4, f = 2·(0.75/(1.75 + 1e-8)) = 0.8571428522448981 (not 6/7 = 0.857142857…)
  assert.deepEqual(rougeL("the cat sat", "the cat sat down"), { p: 1, r: 0.75, f: 0.8571428522448981 });
  // Identical texts: p = r = 1, f = 2·(1/(2 + 1e-8)) = 0.999999995, never exactly 1.
  assert.equal(rougeLScore("the cat", "the cat"), 0.999999995);
});

Deno.test("rougeLScore() counts distinct words (the package's exclusive/set mode)", () => {
  // hyp "the cat the cat": distinct words {the, cat} → n = 2; m = 2; LCS words as a set {the, cat} = 2
  // p = r = 1 → 0.999999995, although the hypothesis is twice as long.
  assert.equal(rougeLScore("the cat the cat", "the cat"), 0.999999995);
});

Deno.test("rougeLScore() splits sentences at '.' and unions the per-sentence LCS words", () => {
  assert.deepEqual(rougeSentences("Hi  there. How are\nyou?.. "), ["Hi there", "How are you?", ""]);
  // One sentence "sat cat" vs "cat sat": LCS length 1 → p = r = 1/2,
  // f = 2·(0.25/(1 + 1e-8)) = 0.4999999950000001
  assert.equal(rougeLScore("sat cat", "cat sat"), 0.4999999950000001);
  // Two sentences "sat" and "cat": LCS(ref, "sat") = {sat}, LCS(ref, "cat") = {cat}; union = 2
  // p = 2/2, r = 2/2 → 0.999999995
  assert.equal(rougeLScore("sat. cat", "cat sat"), 0.999999995);
  // hyp ["cat sat", "the mat"] (n = 4 distinct), ref one sentence (m = |{the, cat, sat, on, mat}| = 5);
  // union {cat, sat} ∪ {the, mat} = 4: p = 1, r = 0.8, f = 2·(0.8/(1.8 + 1e-8)) = 0.8888888839506174
  assert.equal(rougeLScore("cat sat. the mat", "the cat sat on the mat"), 0.8888888839506174);
});

Deno.test("rougeLScore() is case- and punctuation-sensitive and 0 where the package raises", () => {
  // words [The, cat,] vs [the, cat]: nothing equal → llcs = 0 → f = 0
  assert.equal(rougeLScore("The cat,", "the cat"), 0);
  // "" and "..." have no sentence: ValueError → LongBench's except → 0
  assert.equal(rougeLScore("", "the cat"), 0);
  assert.equal(rougeLScore("...", "the cat"), 0);
  assert.equal(rougeLScore("the cat", ""), 0);
  assert.equal(rougeL("...", "the cat"), undefined);
});

Deno.test("rougeLScore() reproduces Python's RecursionError on very long sentence pairs", () => {
  // hyp "c a a … a" (k words) vs ref "c": the LCS walk steps left k - 1 times over the a's, then takes
  // the c: k steps, one Python frame each. 990 steps fit under CPython's limit of 1000 frames (9 below).
  // k = 990: n = |{c, a}| = 2, m = 1, llcs = 1: p = 1/2, r = 1, f = 2·(0.5/(1.5 + 1e-8)) = 0.6666666622222223
  const hyp = (k: number) => "c" + " a".repeat(k - 1);
  assert.equal(rougeLScore(hyp(990), "c"), 0.6666666622222223);
  // k = 991: RecursionError → 0
  assert.equal(rougeLScore(hyp(991), "c"), 0);
  // The same with the emulation turned off.
  assert.equal(rougeLScore(hyp(991), "c", { maxReconSteps: Infinity }), 0.6666666622222223);
});

// ------------------------------------------------------------------------------------------------
// classification

Deno.test("classificationScore() scores 1/len(matches) when the ground truth is among the matches", () => {
  // classes found in the prediction: [Location, City]; "Location" is not inside "City"; City matched
  // → 1/2
  assert.equal(classificationScore("Location or City", "City", ["Location", "City", "Country"]), 0.5);
  // Only the right class found → 1/1
  assert.equal(classificationScore("Country", "Country", ["Location", "City", "Country"]), 1);
  // A wrong class found → 0; no class found → 0 (metrics.py's difflib fallback is unreachable)
  assert.equal(classificationScore("City", "Country", ["Location", "City", "Country"]), 0);
  assert.equal(classificationScore("no idea", "Country", ["Location", "City", "Country"]), 0);
});

Deno.test("classificationScore() keeps Python's remove-while-iterating skip", () => {
  // classes [Cit, ity, City], prediction "City": all three are substrings → matches [Cit, ity, City].
  // i = 0: "Cit" ⊂ "City" and ≠ → remove → [ity, City]; i = 1: "City" (the shift skipped "ity") = gt,
  // kept. Final [ity, City] → 1/2. (Testing every element would remove "ity" too and give 1.)
  assert.equal(classificationScore("City", "City", ["Cit", "ity", "City"]), 0.5);
  // Order matters: [City, Cit, ity]: i = 0 City kept; i = 1 Cit removed → [City, ity]; loop ends → 1/2
  assert.equal(classificationScore("City", "City", ["City", "Cit", "ity"]), 0.5);
  // [Cit, City, ity]: i = 0 Cit removed → [City, ity]; i = 1 "ity" removed → [City] → 1/1
  assert.equal(classificationScore("City", "City", ["Cit", "City", "ity"]), 1);
});

// ------------------------------------------------------------------------------------------------
// retrieval and count

Deno.test("retrievalScore() is the share of the prediction's numbers equal to the paragraph id", () => {
  // id 7 (from "Paragraph 7"); numbers in the prediction [7, 17]: one equal → 1/2
  assert.equal(retrievalScore("Paragraph 7 or Paragraph 17", "Paragraph 7"), 0.5);
  assert.equal(retrievalScore("The answer is Paragraph 7.", "Paragraph 7"), 1);
  // No number in the prediction → 0
  assert.equal(retrievalScore("I don't know", "Paragraph 7"), 0);
  // "Paragraph 7" and "07": strings differ → 0/1
  assert.equal(retrievalScore("07", "Paragraph 7"), 0);
  assert.throws(() => retrievalScore("7", "the seventh"), RangeError);
  // Chinese variant: id from 段落(\d+)
  assert.equal(retrievalZhScore("段落3和段落4", "段落3"), 0.5);
});

Deno.test("countScore() is the share of the prediction's numbers equal to the count", () => {
  // numbers [12, 3]: one equals "3" → 1/2
  assert.equal(countScore("There are 12 paragraphs, 3 unique", "3"), 0.5);
  // "03" ≠ "3" and "٣" ≠ "3" (Unicode digit runs are found but compared as strings): [03, ٣, 3] → 1/3
  assert.equal(countScore("03 ٣ 3", "3"), 1 / 3);
  assert.equal(countScore("three", "3"), 0);
  assert.equal(countScore("5", 5), 1);
});

// ------------------------------------------------------------------------------------------------
// code_sim: difflib and fuzz.ratio

Deno.test("SequenceMatcher matches difflib on a small case", () => {
  // "abcd" vs "bcde": longest match "bcd" at a[1], b[0]; left: a[0:1] vs b[0:0] empty; right: a[4:] empty
  // M = 3, T = 8 → ratio = 2·3/8 = 0.75
  const sm = new SequenceMatcher("abcd", "bcde");
  assert.deepEqual(sm.getMatchingBlocks(), [[1, 0, 3], [4, 4, 0]]);
  assert.equal(sm.ratio(), 0.75);
  // Code points, not UTF-16 units: "😀a" vs "😀b" is 2 + 2 code points, match "😀" → 2·1/4 = 0.5
  assert.equal(new SequenceMatcher("😀a", "😀b").ratio(), 0.5);
  assert.equal(new SequenceMatcher("", "").ratio(), 1);
});

Deno.test("SequenceMatcher applies difflib's autojunk to a second string of 200+ characters", () => {
  const a = "y" + "x".repeat(100); // 101 chars
  // b = "x" × 199: below 200, no autojunk. Longest match "x" × 100 → M = 100, T = 101 + 199 = 300,
  // ratio = 200/300 = 0.666…
  assert.equal(new SequenceMatcher(a, "x".repeat(199)).ratio(), 200 / 300);
  // b = "x" × 200: ntest = 200//100 + 1 = 3 and "x" occurs 200 > 3 times → popular, dropped from the
  // index. No indexed match is found, so the best match is the empty one at (0, 0); extending it needs
  // a[0] == b[0], but "y" ≠ "x". M = 0 → ratio 0 (without autojunk: 2·100/301 = 0.6644…).
  const sm = new SequenceMatcher(a, "x".repeat(200));
  assert.deepEqual([...sm.popular], ["x".codePointAt(0)]);
  assert.equal(sm.ratio(), 0);
  assert.equal(new SequenceMatcher(a, "x".repeat(200), { autojunk: false }).ratio(), 200 / 301);
  // The extension step can still rescue popular characters: a = "x" × 100 starts with the same "x",
  // so the empty match at (0, 0) grows over 100 equal "x" → M = 100, ratio = 200/300.
  assert.equal(new SequenceMatcher("x".repeat(100), "x".repeat(200)).ratio(), 200 / 300);
  // fuzz.ratio on the same pairs: round(100·0) = 0 with autojunk, round(66.67) = 67 below 200 chars.
  assert.equal(fuzzRatio(a, "x".repeat(200)), 0);
  assert.equal(fuzzRatio(a, "x".repeat(199)), 67);
});

Deno.test("fuzzRatio() is round(100·ratio) with Python's ties-to-even and fuzzywuzzy's guards", () => {
  // "abcd" vs "bcde": 100·0.75 = 75
  assert.equal(fuzzRatio("abcd", "bcde"), 75);
  // "abcdefgh" vs "aijklmno": only "a" matches → 2·1/16 = 0.125 → 12.5 → ties to even → 12 (not 13)
  assert.equal(fuzzRatio("abcdefgh", "aijklmno"), 12);
  // "abcdefgh" vs "abcijklm": "abc" → 2·3/16 = 0.375 → 37.5 → 38
  assert.equal(fuzzRatio("abcdefgh", "abcijklm"), 38);
  // Equal strings → 100 (even both empty); one empty → 0
  assert.deepEqual([fuzzRatio("", ""), fuzzRatio("", "x"), fuzzRatio("x", "")], [100, 0, 0]);
});

Deno.test("codeSimScore() compares the first line without `, # or // to the ground truth", () => {
  // Line 1 "// set x" has "//"; line 2 "x = 1;" qualifies; equal to the ground truth → 100 → 1
  assert.equal(codeSimScore("\n// set x\nx = 1;\ny = 2;", "x = 1;"), 1);
  // "#" anywhere disqualifies a line, not only at its start; so do backticks
  assert.equal(codeSimLine("```python\nreturn x  # done\nreturn x\n```"), "return x");
  // URLs contain "//": "u = 'http://a'" is skipped, "v = 1" is taken
  assert.equal(codeSimLine("u = 'http://a'\nv = 1"), "v = 1");
  // Every line disqualified → "" → fuzz.ratio("", gt) = 0
  assert.equal(codeSimLine("# a\n// b"), "");
  assert.equal(codeSimScore("# a\n// b", "x = 1;"), 0);
  // "abcd" vs "bcde" → 75 → 0.75
  assert.equal(codeSimScore("abcd", "bcde"), 0.75);
  // Leading blank lines are stripped, but a line of spaces is a line: "  " vs "ab" → no match → 0
  assert.equal(codeSimScore("\n\n  \nab", "ab"), 0);
});

// ------------------------------------------------------------------------------------------------
// the LongBench protocol

Deno.test("TASK_METRIC maps the 16 English tasks to eval.py's metrics", () => {
  assert.equal(LONGBENCH_EN_TASKS.length, 16);
  const want: Record<string, string> = {
    narrativeqa: "qa_f1",
    qasper: "qa_f1",
    multifieldqa_en: "qa_f1",
    hotpotqa: "qa_f1",
    "2wikimqa": "qa_f1",
    musique: "qa_f1",
    gov_report: "rouge",
    qmsum: "rouge",
    multi_news: "rouge",
    trec: "classification",
    triviaqa: "qa_f1",
    samsum: "rouge",
    passage_count: "count",
    passage_retrieval_en: "retrieval",
    lcc: "code_sim",
    "repobench-p": "code_sim",
  };
  for (const t of LONGBENCH_EN_TASKS) {
    assert.equal(TASK_METRIC[t], want[t], t);
    assert.ok(LONGBENCH_PROMPTS[t].length > 0, t);
  }
  // THINK.md §6.1 max new tokens
  assert.deepEqual(
    LONGBENCH_EN_TASKS.map((t) => maxNewTokens(t)),
    [128, 128, 64, 32, 32, 32, 512, 512, 512, 64, 32, 128, 32, 32, 64, 64],
  );
  assert.equal(LONGBENCH_MAX_NEW_TOKENS["lsht"], 64);
  assert.equal(LONGBENCH_MODEL_MAX_LENGTH["Llama-2-7b-hf"], 4096);
  assert.deepEqual([...FIRST_LINE_TASKS], ["trec", "triviaqa", "samsum", "lsht"]);
  assert.throws(() => metricFor("dureader"), RangeError); // rouge_zh needs jieba
  assert.throws(() => metricFor("nope"), RangeError);
});

Deno.test("scoreExample() takes the maximum over the answers", () => {
  // "Paris" vs "paris france": P = 1, R = 1/2, F1 = 2/3; vs "Paris": 1 → max = 1
  assert.equal(scoreExample("hotpotqa", "Paris", ["paris france", "Paris"]), 1);
  // Only the first answer: 2/3
  assert.equal(scoreExample("hotpotqa", "Paris", ["paris france"]), 2 / 3);
  assert.equal(scoreExample("hotpotqa", "Paris", []), 0);
});

Deno.test("scoreExample() cuts trec/triviaqa/samsum/lsht predictions to their first line", () => {
  const pred = "\n\nParis\nQuestion: Where is the Louvre?";
  // triviaqa: first line "Paris" → F1 1
  assert.equal(scoreExample("triviaqa", pred, ["Paris"]), 1);
  // hotpotqa keeps everything: [paris, question, where, is, louvre] ("the" dropped) vs [paris]:
  // P = 1/5, R = 1, F1 = 2·(1/5)/(6/5) = 1/3 (0.33333333333333337 in floating point)
  assert.equal(scoreExample("hotpotqa", pred, ["Paris"]), 0.33333333333333337);
  // samsum (Rouge-L): first line "the cat" vs "the cat" → 0.999999995; the "Dialogue" line is ignored
  assert.equal(scoreExample("samsum", "the cat\nDialogue: more", ["the cat"]), 0.999999995);
  // trec: first line "Location" → matches [Location] → 1; the second line's "City" is not seen
  assert.equal(scoreExample("trec", "Location\nCity", ["Location"], ["Location", "City"]), 1);
  // lsht uses the same classification rule
  assert.equal(scoreExample("lsht", "体育\n财经", ["体育"], ["体育", "财经"]), 1);
});

Deno.test("scorePredictions() is round(100·mean, 2) with Python's rounding", () => {
  // passage_count: "3" → 1, "3 or 4" → 1/2, "none" → 0: 100·1.5/3 = 50
  assert.equal(scorePredictions("passage_count", ["3", "3 or 4", "none"], [["3"], ["3"], ["3"]], null), 50);
  // 1 right of 3: 100·1/3 = 33.333… → 33.33
  assert.equal(scorePredictions("passage_count", ["3", "0", "0"], [["3"], ["3"], ["3"]], null), 33.33);
  // 1 right of 800: 100·1/800 = 0.125 exactly → tie → even → 0.12 (Math.round(12.5)/100 would say 0.13)
  const preds = Array.from({ length: 800 }, (_, i) => (i === 0 ? "3" : "0"));
  assert.equal(scorePredictions("passage_count", preds, preds.map(() => ["3"]), null), 0.12);
  assert.throws(() => scorePredictions("passage_count", [], [], null), RangeError);
  assert.throws(() => scorePredictions("trec", ["x"], [["x"]], null), RangeError); // trec needs all_classes
});

Deno.test("scoreTask() uses the last record's all_classes for every record, as eval.py does", () => {
  // Both predictions "A B" with answer "A". With the last line's classes [A, B]: matches [A, B] → 1/2
  // each → 50. (With the first line's [A] the first record alone would score 1.)
  const score = scoreTask("trec", [
    { pred: "A B", answers: ["A"], all_classes: ["A"] },
    { pred: "A B", answers: ["A"], all_classes: ["A", "B"] },
  ]);
  assert.equal(score, 50);
});

Deno.test("averageScore() is the unweighted mean of the task scores, rounded to 2 decimals", () => {
  // (25.5 + 30.25 + 40)/3 = 95.75/3 = 31.9166… → 31.92
  assert.equal(averageScore([25.5, 30.25, 40]), 31.92);
  // A task with many examples weighs the same as one with few: (100 + 0)/2 = 50
  assert.equal(averageScore([100, 0]), 50);
  assert.throws(() => averageScore([]), RangeError);
});

Deno.test("buildPrompt() fills the official template as Python's str.format", () => {
  // lcc: "Please complete the code given below. \n{context}Next line of code:\n"
  assert.equal(
    buildPrompt("lcc", { context: "int x = 1;\n", input: "" }),
    "Please complete the code given below. \nint x = 1;\nNext line of code:\n",
  );
  // The upstream typo "asconcisely" is kept.
  assert.ok(buildPrompt("narrativeqa", { context: "c", input: "q" }).includes("asconcisely"));
  // Values are inserted once: braces inside the context are not read again.
  assert.equal(buildPrompt("trec", { context: "{input} {x}", input: "Q" }).endsWith("{input} {x}\nQ"), true);
  assert.equal(formatTemplate("{{a}} {b}", { b: "c" }), "{a} c");
  assert.throws(() => buildPrompt("trec", { context: "c" }), RangeError); // no "input" (KeyError)
  assert.throws(() => formatTemplate("a } b", {}), SyntaxError);
});

Deno.test("truncateMiddle() keeps the first and last ⌊max/2⌋ tokens, decoded separately", () => {
  // Toy codec: BOS = 0, one id per character; decode skips BOS.
  const codec = {
    encode: (t: string) => [0, ...Array.from(t, (c) => c.charCodeAt(0))],
    decode: (ids: number[]) => String.fromCharCode(...ids.filter((i) => i !== 0)),
  };
  // "abcdefghij" → 11 ids > 6: half = 3 → decode [BOS, a, b] = "ab", decode [h, i, j] = "hij" → "abhij"
  assert.equal(truncateMiddle("abcdefghij", 6, codec), "abhij");
  // max 7: half = int(7/2) = 3 → the same
  assert.equal(truncateMiddle("abcdefghij", 7, codec), "abhij");
  // 11 ids ≤ 11: unchanged
  assert.equal(truncateMiddle("abcdefghij", 11, codec), "abcdefghij");
  assert.throws(() => truncateMiddle("abc", 1, codec), RangeError);
});

Deno.test("thinkFlashMaxLength() picks the last matching substring of the model path", () => {
  assert.equal(thinkFlashMaxLength("meta-llama/Llama-2-7b-chat-hf"), 3950);
  assert.equal(thinkFlashMaxLength("meta-llama/Meta-Llama-3-8B-Instruct"), 7950);
  assert.equal(thinkFlashMaxLength("mistralai/Mistral-7B-Instruct-v0.2"), 31500);
  // Both "llama3" and "mistral" occur: mistral is tested last and wins.
  assert.equal(thinkFlashMaxLength("/models/llama3-mistral-merge"), 31500);
  assert.throws(() => thinkFlashMaxLength("Qwen2-7B"), RangeError);
});
