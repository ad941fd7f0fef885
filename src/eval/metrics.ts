/**
 * LongBench's scoring functions as small pure TypeScript functions, giving the same numbers as
 * LongBench's `metrics.py` (THUDM/LongBench, also shipped in the ThinK repository) and the Python
 * packages it calls: `rouge` 1.0.1 (`Rouge().get_scores`), `fuzzywuzzy` 0.18 (`fuzz.ratio`, with the
 * pure-Python `difflib.SequenceMatcher` backend) and CPython's `difflib`.
 *
 * | function | `metrics.py` | LongBench tasks |
 * |---|---|---|
 * | {@linkcode qaF1Score} | `qa_f1_score` | narrativeqa, qasper, multifieldqa_en, hotpotqa, 2wikimqa, musique, triviaqa |
 * | {@linkcode rougeLScore} | `rouge_score` | gov_report, qmsum, multi_news, samsum |
 * | {@linkcode classificationScore} | `classification_score` | trec, lsht |
 * | {@linkcode retrievalScore} | `retrieval_score` | passage_retrieval_en |
 * | {@linkcode retrievalZhScore} | `retrieval_zh_score` | passage_retrieval_zh |
 * | {@linkcode countScore} | `count_score` | passage_count |
 * | {@linkcode codeSimScore} | `code_sim_score` | lcc, repobench-p |
 *
 * Each takes one prediction and one ground truth and returns a score in [0, 1]; the maximum over a
 * record's answers, first-line truncation and the per-task average live in `./longbench.ts`. Strings
 * are compared by Unicode code point, as Python does.
 *
 * @module
 */

import { findDigitRuns, lstripNewlines, normalizeAnswer, pyRound, pySplit } from "./normalize.ts";

// ---------------------------------------------------------------------------------------------------
// qa_f1

/**
 * Token-level F1 of two token lists (`metrics.py` `f1_score`): the overlap is the size of the multiset
 * intersection (`Counter(a) & Counter(b)`); 0 when nothing overlaps, else
 * `P = overlap/len(prediction)`, `R = overlap/len(groundTruth)`, `F1 = 2PR/(P+R)`, evaluated in the
 * same order as Python so the doubles are identical.
 *
 * @example
 * ```ts
 * import { tokenF1 } from "./metrics.ts";
 * // overlap {cat, sat} = 2; P = 2/2, R = 2/3, F1 = 2·1·(2/3)/(1 + 2/3) = 0.8
 * console.log(tokenF1(["cat", "sat"], ["cat", "sat", "down"])); // 0.8
 * ```
 */
export function tokenF1(prediction: readonly string[], groundTruth: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const t of groundTruth) counts.set(t, (counts.get(t) ?? 0) + 1);
  let numSame = 0;
  for (const t of prediction) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      numSame++;
      counts.set(t, c - 1);
    }
  }
  if (numSame === 0) return 0;
  const precision = (1.0 * numSame) / prediction.length;
  const recall = (1.0 * numSame) / groundTruth.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * LongBench's `qa_f1_score`: {@linkcode normalizeAnswer} both strings (lower-case, drop ASCII
 * punctuation, drop the articles a/an/the, collapse whitespace), split on whitespace, then
 * {@linkcode tokenF1}.
 *
 * @example
 * ```ts
 * import { qaF1Score } from "./metrics.ts";
 * // "The cat sat." → [cat, sat]; "a cat sat down" → [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8
 * console.log(qaF1Score("The cat sat.", "a cat sat down")); // 0.8
 * ```
 */
export function qaF1Score(prediction: string, groundTruth: string): number {
  return tokenF1(pySplit(normalizeAnswer(prediction)), pySplit(normalizeAnswer(groundTruth)));
}

// ---------------------------------------------------------------------------------------------------
// Rouge-L (the `rouge` package, version 1.0.1)

/** Options of {@linkcode rougeLScore}. */
export interface RougeOptions {
  /**
   * The `rouge` package rebuilds each sentence-pair LCS with a recursive Python function, one stack frame
   * per step of the walk back through the DP table. When a walk is longer than CPython's recursion limit
   * allows, `RecursionError` is raised and LongBench's bare `except` scores the example 0. This is the
   * longest walk that still succeeds: 990 for `python eval.py` on CPython 3.11–3.13 (9 frames are on the
   * stack below it, limit 1000; 989 on 3.10). `Infinity` turns the emulation off.
   */
  maxReconSteps?: number;
}

/** Default of {@linkcode RougeOptions.maxReconSteps}: CPython ≥ 3.11 running LongBench's `eval.py`. */
export const ROUGE_MAX_RECON_STEPS = 990;

/**
 * The `rouge` package's sentence split (`Rouge._get_avg_scores`): `text.split(".")`, drop empty
 * pieces (before trimming, so a piece of spaces stays), then `" ".join(piece.split())` on each.
 *
 * @example
 * ```ts
 * import { rougeSentences } from "./metrics.ts";
 * console.log(rougeSentences("Hi  there. How are\nyou?.. ")); // ["Hi there", "How are you?", ""]
 * ```
 */
export function rougeSentences(text: string): string[] {
  return text.split(".").filter((s) => s.length > 0).map((s) => pySplit(s).join(" "));
}

/**
 * The words of the LCS of `x` (reference words) and `y` (hypothesis words) that the `rouge` package's
 * `_recon_lcs` reconstructs (its tie-breaking: take a match; else step up in `x` only when that cell is
 * strictly larger; else step left in `y`), plus the number of steps of that walk.
 */
function reconLcs(x: readonly string[], y: readonly string[]): { words: string[]; steps: number } {
  const n = x.length, m = y.length, w = m + 1;
  const table = new Int32Array((n + 1) * w);
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      table[i * w + j] = x[i - 1] === y[j - 1]
        ? table[(i - 1) * w + j - 1] + 1
        : Math.max(table[(i - 1) * w + j], table[i * w + j - 1]);
    }
  }
  const words: string[] = [];
  let i = n, j = m, steps = 0;
  while (i > 0 && j > 0) {
    steps++;
    if (x[i - 1] === y[j - 1]) {
      words.push(x[i - 1]);
      i--;
      j--;
    } else if (table[(i - 1) * w + j] > table[i * w + j - 1]) i--;
    else j--;
  }
  return { words: words.reverse(), steps };
}

/** Rouge-L precision, recall and F of one prediction against one reference. */
export interface RougeL {
  /** `llcs / n`: union-LCS words over the number of distinct prediction words. */
  p: number;
  /** `llcs / m`: union-LCS words over the number of distinct reference words. */
  r: number;
  /** `2·(p·r)/(p + r + 1e-8)`, the value LongBench uses. */
  f: number;
}

/**
 * Rouge-L exactly as `Rouge().get_scores([prediction], [groundTruth], avg=True)["rouge-l"]` of the
 * `rouge` package 1.0.1 computes it, or `undefined` where that call raises (LongBench then scores 0):
 *
 * 1. Split both texts into sentences with {@linkcode rougeSentences}; words are `sentence.split(" ")`.
 *    No lower-casing and no punctuation removal: "Cat" ≠ "cat" and "cat," ≠ "cat".
 * 2. An empty sentence list (the text is empty or only dots) raises `ValueError` → `undefined`.
 * 3. "Exclusive" (set) mode, the package's default: `m` and `n` count the *distinct* words of the
 *    reference and the prediction; for every (reference sentence, prediction sentence) pair one LCS is
 *    rebuilt and its words are added to a single *set*; `llcs` is that set's size.
 * 4. `r = llcs/m`, `p = llcs/n`, `f = 2·((p·r)/(p + r + 1e-8))`: identical texts give 0.999999995, not 1.
 * 5. A reconstruction walk longer than {@linkcode RougeOptions.maxReconSteps} is Python's
 *    `RecursionError` → `undefined`.
 *
 * @example
 * ```ts
 * import { rougeL } from "./metrics.ts";
 * // words: hyp {the, cat, sat} (n = 3), ref {the, cat, sat, down} (m = 4); LCS = the cat sat → 3
 * // p = 3/3, r = 3/4, f = 2·(0.75/(1.75 + 1e-8))
 * console.log(rougeL("the cat sat", "the cat sat down")); // { p: 1, r: 0.75, f: 0.8571428522448981 }
 * console.log(rougeL("...", "the cat")); // undefined (no sentence)
 * ```
 */
export function rougeL(
  prediction: string,
  groundTruth: string,
  options: RougeOptions = {},
): RougeL | undefined {
  const maxSteps = options.maxReconSteps ?? ROUGE_MAX_RECON_STEPS;
  const hyp = rougeSentences(prediction);
  const ref = rougeSentences(groundTruth);
  if (hyp.length === 0 || ref.length === 0) return undefined;
  const hypWords = hyp.map((s) => s.split(" "));
  const refWords = ref.map((s) => s.split(" "));
  const m = new Set(refWords.flat()).size;
  const n = new Set(hypWords.flat()).size;
  const union = new Set<string>();
  for (const r of refWords) {
    for (const h of hypWords) {
      // The walk ends when either index reaches 0, so it takes at least min(|r|, |h|) steps.
      if (Math.min(r.length, h.length) > maxSteps) return undefined;
      const { words, steps } = reconLcs(r, h);
      if (steps > maxSteps) return undefined;
      for (const word of words) union.add(word);
    }
  }
  const llcs = union.size;
  const r = llcs / m;
  const p = llcs / n;
  return { p, r, f: 2.0 * ((p * r) / (p + r + 1e-8)) };
}

/**
 * LongBench's `rouge_score`: the Rouge-L F of {@linkcode rougeL}, or 0 where the `rouge` package raises
 * (an empty or all-dots text, or a too deep LCS reconstruction).
 *
 * @example
 * ```ts
 * import { rougeLScore } from "./metrics.ts";
 * console.log(rougeLScore("the cat sat", "the cat sat down")); // 0.8571428522448981
 * console.log(rougeLScore("", "the cat")); // 0
 * ```
 */
export function rougeLScore(prediction: string, groundTruth: string, options: RougeOptions = {}): number {
  return rougeL(prediction, groundTruth, options)?.f ?? 0;
}

// ---------------------------------------------------------------------------------------------------
// classification, retrieval, count

/**
 * LongBench's `classification_score` (trec, lsht), with its quirks kept:
 * 1. `matches` = the classes of `allClasses` that occur as substrings of the prediction, in
 *    `allClasses` order.
 * 2. Python walks `matches` with a `for` loop and calls `matches.remove(term)` (which deletes the first
 *    equal element) for each term that is a substring of the ground truth but not equal to it. Removing
 *    during the loop shifts the list, so the element after a removed one is skipped and never tested.
 * 3. Score `1/len(matches)` if the ground truth is in `matches`, else 0. (The `difflib` fallback in
 *    `metrics.py` is unreachable: its guard `em_match_list != 0` compares a list with 0 and is always
 *    true, so no class found means 0.)
 *
 * @example
 * ```ts
 * import { classificationScore } from "./metrics.ts";
 * // matches [Location, City]; "Location" ⊄ "City"; score 1/2
 * console.log(classificationScore("Location or City", "City", ["Location", "City", "Country"])); // 0.5
 * ```
 */
export function classificationScore(
  prediction: string,
  groundTruth: string,
  allClasses: readonly string[],
): number {
  const matches = allClasses.filter((c) => prediction.includes(c));
  // Python's list iterator over a list mutated by remove(): an index that moves on regardless.
  for (let idx = 0; idx < matches.length; idx++) {
    const term = matches[idx];
    if (groundTruth.includes(term) && term !== groundTruth) matches.splice(matches.indexOf(term), 1);
  }
  return matches.includes(groundTruth) ? 1.0 / matches.length : 0.0;
}

/** (number of digit runs equal to `id`) / (number of digit runs), 0 when the prediction has none. */
function digitVote(prediction: string, id: string): number {
  const numbers = findDigitRuns(prediction);
  if (numbers.length === 0) return 0.0;
  let right = 0;
  for (const x of numbers) if (x === id) right++;
  return right / numbers.length;
}

/**
 * LongBench's `count_score` (passage_count): the digit runs of the prediction (`re.findall(r"\d+")`,
 * Unicode digits) that equal the ground truth as strings, divided by the number of digit runs; 0 if
 * the prediction has no digits. "05" does not equal "5".
 *
 * @example
 * ```ts
 * import { countScore } from "./metrics.ts";
 * // runs [12, 3]: one equals "3" → 1/2
 * console.log(countScore("There are 12 paragraphs, 3 unique", "3")); // 0.5
 * ```
 */
export function countScore(prediction: string, groundTruth: string | number): number {
  return digitVote(prediction, String(groundTruth));
}

/**
 * LongBench's `retrieval_score` (passage_retrieval_en): the id is the first `Paragraph (\d+)` of the
 * ground truth; the score is the share of the prediction's digit runs equal to it (0 if none).
 * Throws a `RangeError` when the ground truth has no "Paragraph N" (Python's `IndexError`).
 *
 * @example
 * ```ts
 * import { retrievalScore } from "./metrics.ts";
 * // id 7; runs [7, 17]: 1/2
 * console.log(retrievalScore("Paragraph 7 or Paragraph 17", "Paragraph 7")); // 0.5
 * ```
 */
export function retrievalScore(prediction: string, groundTruth: string): number {
  const id = /Paragraph (\p{Nd}+)/u.exec(groundTruth)?.[1];
  if (id === undefined) {
    throw new RangeError(
      `Cannot score retrieval: the ground truth has no "Paragraph N": current value is ${
        JSON.stringify(groundTruth)
      }`,
    );
  }
  return digitVote(prediction, id);
}

/**
 * LongBench's `retrieval_zh_score` (passage_retrieval_zh): as {@linkcode retrievalScore} with the id
 * taken from `段落(\d+)`.
 *
 * @example
 * ```ts
 * import { retrievalZhScore } from "./metrics.ts";
 * console.log(retrievalZhScore("答案是：段落3", "段落3")); // 1
 * ```
 */
export function retrievalZhScore(prediction: string, groundTruth: string): number {
  const id = /段落(\p{Nd}+)/u.exec(groundTruth)?.[1];
  if (id === undefined) {
    throw new RangeError(
      `Cannot score retrieval: the ground truth has no "段落N": current value is ${
        JSON.stringify(groundTruth)
      }`,
    );
  }
  return digitVote(prediction, id);
}

// ---------------------------------------------------------------------------------------------------
// code_sim: difflib.SequenceMatcher and fuzz.ratio

/** A matching block `[i, j, size]`: `a[i:i+size] == b[j:j+size]`. */
export type Match = [i: number, j: number, size: number];

/** Options of {@linkcode SequenceMatcher}. */
export interface SequenceMatcherOptions {
  /** difflib's `autojunk` heuristic (default true, as in `fuzz.ratio`). */
  autojunk?: boolean;
}

/**
 * CPython's `difflib.SequenceMatcher(None, a, b)` on two strings, compared by code point (Python `str`
 * semantics), with no junk function. It keeps difflib's exact behaviour, including:
 *
 * - **autojunk**: when `b` has at least 200 characters, every character occurring more than
 *   `⌊len(b)/100⌋ + 1` times in `b` is "popular" and left out of the index. A longest match can then
 *   not *contain* a popular character except by the extension step that grows the best match
 *   outwards over equal neighbours, so the ratio of long strings is often far below the obvious one;
 * - `find_longest_match` picks the earliest longest match (smallest `i`, then smallest `j`);
 * - `get_matching_blocks` recurses left and right of each match.
 *
 * @example
 * ```ts
 * import { SequenceMatcher } from "./metrics.ts";
 * const sm = new SequenceMatcher("abcd", "bcde");
 * // longest match "bcd" (3), nothing left of it in both, nothing right of it in a: M = 3
 * console.log(sm.getMatchingBlocks(), sm.ratio()); // [[1, 0, 3], [4, 4, 0]] 0.75
 * ```
 */
export class SequenceMatcher {
  /** The first sequence, as code points. */
  readonly a: readonly number[];
  /** The second sequence, as code points. */
  readonly b: readonly number[];
  /** Popular elements of `b` removed by autojunk (code points). */
  readonly popular: ReadonlySet<number>;
  #b2j: Map<number, number[]>;
  #blocks: Match[] | undefined;

  /** Indexes `b` (difflib's `__chain_b`), applying autojunk when `b` has ≥ 200 code points. */
  constructor(a: string, b: string, options: SequenceMatcherOptions = {}) {
    this.a = Array.from(a, (c) => c.codePointAt(0)!);
    this.b = Array.from(b, (c) => c.codePointAt(0)!);
    const b2j = new Map<number, number[]>();
    this.b.forEach((elt, i) => {
      const idxs = b2j.get(elt);
      if (idxs) idxs.push(i);
      else b2j.set(elt, [i]);
    });
    const popular = new Set<number>();
    const n = this.b.length;
    if ((options.autojunk ?? true) && n >= 200) {
      const ntest = Math.floor(n / 100) + 1;
      for (const [elt, idxs] of b2j) if (idxs.length > ntest) popular.add(elt);
      for (const elt of popular) b2j.delete(elt);
    }
    this.#b2j = b2j;
    this.popular = popular;
  }

  /**
   * difflib's `find_longest_match(alo, ahi, blo, bhi)`: the longest run of indexed (non-popular)
   * elements equal in `a[alo:ahi]` and `b[blo:bhi]`, earliest on ties, then extended on both sides
   * over equal elements (popular ones included, since there is no junk).
   */
  findLongestMatch(alo: number, ahi: number, blo: number, bhi: number): Match {
    const { a, b } = this;
    let besti = alo, bestj = blo, bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const newj2len = new Map<number, number>();
      for (const j of this.#b2j.get(a[i]) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        newj2len.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = newj2len;
    }
    while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) {
      besti--;
      bestj--;
      bestsize++;
    }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) {
      bestsize++;
    }
    return [besti, bestj, bestsize];
  }

  /**
   * difflib's `get_matching_blocks()`: sorted, adjacent blocks merged, ending with the sentinel
   * `[len(a), len(b), 0]`.
   */
  getMatchingBlocks(): Match[] {
    if (this.#blocks) return this.#blocks.map((m) => [...m] as Match);
    const la = this.a.length, lb = this.b.length;
    const queue: [number, number, number, number][] = [[0, la, 0, lb]];
    const found: Match[] = [];
    while (queue.length > 0) {
      const [alo, ahi, blo, bhi] = queue.pop()!;
      const x = this.findLongestMatch(alo, ahi, blo, bhi);
      const [i, j, k] = x;
      if (k > 0) {
        found.push(x);
        if (alo < i && blo < j) queue.push([alo, i, blo, j]);
        if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
      }
    }
    found.sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2]);
    const blocks: Match[] = [];
    let [i1, j1, k1] = [0, 0, 0];
    for (const [i2, j2, k2] of found) {
      if (i1 + k1 === i2 && j1 + k1 === j2) k1 += k2;
      else {
        if (k1 > 0) blocks.push([i1, j1, k1]);
        [i1, j1, k1] = [i2, j2, k2];
      }
    }
    if (k1 > 0) blocks.push([i1, j1, k1]);
    blocks.push([la, lb, 0]);
    this.#blocks = blocks;
    return blocks.map((m) => [...m] as Match);
  }

  /** difflib's `ratio()`: `2.0 * M / T` (M matched elements, T = len(a) + len(b)), 1.0 when T = 0. */
  ratio(): number {
    const matches = this.getMatchingBlocks().reduce((s, m) => s + m[2], 0);
    const length = this.a.length + this.b.length;
    return length > 0 ? (2.0 * matches) / length : 1.0;
  }
}

/**
 * `fuzzywuzzy.fuzz.ratio(s1, s2)` (0.18, pure-Python backend): 100 if the strings are equal (even both
 * empty), 0 if exactly one is empty, else `round(100 · SequenceMatcher(None, s1, s2).ratio())` with
 * Python's ties-to-even `round`. (With `python-Levenshtein` installed fuzzywuzzy uses a different
 * ratio; LongBench's setup does not install it.)
 *
 * @example
 * ```ts
 * import { fuzzRatio } from "./metrics.ts";
 * // M = 3 ("bcd"), T = 8: 100·6/8 = 75
 * console.log(fuzzRatio("abcd", "bcde"), fuzzRatio("", ""), fuzzRatio("", "x")); // 75 100 0
 * ```
 */
export function fuzzRatio(s1: string, s2: string): number {
  if (s1 === s2) return 100;
  if (s1.length === 0 || s2.length === 0) return 0;
  return pyRound(100 * new SequenceMatcher(s1, s2).ratio());
}

/**
 * LongBench's `code_sim_score` (lcc, repobench-p): strip leading newlines, take the first line that
 * contains none of `` ` ``, `#`, `//` anywhere (not just at its start), or "" if every line has one,
 * and return `fuzz.ratio(line, groundTruth) / 100`. The ground truth is used as is.
 *
 * @example
 * ```ts
 * import { codeSimScore } from "./metrics.ts";
 * // line 1 has "//", line 2 is the first qualifying line: "x = 1;" vs "x = 1;" → 100 → 1
 * console.log(codeSimScore("\n// set x\nx = 1;\ny = 2;", "x = 1;")); // 1
 * ```
 */
export function codeSimScore(prediction: string, groundTruth: string): number {
  const line = codeSimLine(prediction);
  return fuzzRatio(line, groundTruth) / 100;
}

/**
 * The line of a prediction that {@linkcode codeSimScore} compares: the first line of
 * `prediction.lstrip("\n").split("\n")` containing none of `` ` ``, `#`, `//`, or "".
 *
 * @example
 * ```ts
 * import { codeSimLine } from "./metrics.ts";
 * console.log(JSON.stringify(codeSimLine("return x  # done\nreturn x\n"))); // "return x"
 * ```
 */
export function codeSimLine(prediction: string): string {
  for (const line of lstripNewlines(prediction).split("\n")) {
    if (!line.includes("`") && !line.includes("#") && !line.includes("//")) return line;
  }
  return "";
}
