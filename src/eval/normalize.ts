/**
 * Python-compatible text and number helpers for the LongBench metrics: what `str.split()`,
 * `string.punctuation`, `re`'s Unicode `\b` and `\d`, and `round()` do in CPython, so that our
 * TypeScript metrics give the same numbers as LongBench's `metrics.py` / `eval.py`.
 *
 * @module
 */

/** Python's `string.punctuation`: the 32 ASCII punctuation characters. */
export const PY_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

const PUNCT_SET = new Set(PY_PUNCTUATION);

/**
 * True for the characters CPython's `str.isspace()` accepts (and `str.split()` splits on): ASCII
 * `\t \n \v \f \r`, the separators U+001C–U+001F, space, U+0085, U+00A0, U+1680, U+2000–U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000. Unlike JavaScript's `\s`, this includes U+001C–U+001F and
 * U+0085 and excludes U+FEFF.
 *
 * @example
 * ```ts
 * import { isPyWhitespace } from "./normalize.ts";
 * console.log(isPyWhitespace(0x1c), isPyWhitespace(0xfeff)); // true false
 * ```
 */
export function isPyWhitespace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d) || (code >= 0x1c && code <= 0x1f);
  if (code < 0x85) return false;
  return code === 0x85 || code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000;
}

/**
 * Python's `s.split()` with no argument: splits on runs of whitespace ({@linkcode isPyWhitespace}) and
 * drops empty pieces, so leading and trailing whitespace disappear.
 *
 * @example
 * ```ts
 * import { pySplit } from "./normalize.ts";
 * console.log(pySplit("  the\tcat \u0085sat\n")); // ["the", "cat", "sat"]
 * ```
 */
export function pySplit(s: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < s.length; i++) {
    // Every Python whitespace character is in the BMP, so UTF-16 code units suffice.
    if (isPyWhitespace(s.charCodeAt(i))) {
      if (start >= 0) out.push(s.slice(start, i));
      start = -1;
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(s.slice(start));
  return out;
}

/**
 * Python's `s.lstrip("\n")`: removes leading newlines only (not `\r` or spaces).
 *
 * @example
 * ```ts
 * import { lstripNewlines } from "./normalize.ts";
 * console.log(JSON.stringify(lstripNewlines("\n\n Paris\n"))); // " Paris\n"
 * ```
 */
export function lstripNewlines(s: string): string {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) === 0x0a) i++;
  return s.slice(i);
}

/**
 * LongBench's first-line rule (`eval.py`, for trec, triviaqa, samsum and lsht):
 * `prediction.lstrip('\n').split('\n')[0]`.
 *
 * @example
 * ```ts
 * import { firstLine } from "./normalize.ts";
 * console.log(JSON.stringify(firstLine("\n\nLocation\nQuestion: where?"))); // "Location"
 * ```
 */
export function firstLine(prediction: string): string {
  const s = lstripNewlines(prediction);
  const nl = s.indexOf("\n");
  return nl < 0 ? s : s.slice(0, nl);
}

// Python's Unicode `\b` around a word: a word character is `str.isalnum()` or "_" (letters and numbers
// in any script), not just ASCII as in JavaScript's `\b`.
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/**
 * LongBench's English `normalize_answer` (SQuAD style), step by step:
 * 1. lower-case;
 * 2. delete every character of {@linkcode PY_PUNCTUATION} (ASCII only: "’" and "–" stay);
 * 3. replace each whole word "a", "an", "the" by a space (`re.sub(r"\b(a|an|the)\b", " ", text)`,
 *    with Unicode word boundaries);
 * 4. collapse whitespace: `" ".join(text.split())`.
 *
 * @example
 * ```ts
 * import { normalizeAnswer } from "./normalize.ts";
 * console.log(normalizeAnswer("The  Cat's hat, (an) APPLE!")); // "cats hat apple"
 * ```
 */
export function normalizeAnswer(s: string): string {
  const lower = s.toLowerCase();
  let noPunct = "";
  for (const ch of lower) if (!PUNCT_SET.has(ch)) noPunct += ch;
  return pySplit(noPunct.replace(ARTICLES, " ")).join(" ");
}

/**
 * Python's `re.findall(r"\d+", s)`: maximal runs of Unicode decimal digits (category Nd, so "٣" counts,
 * as in Python 3's `re` on `str`).
 *
 * @example
 * ```ts
 * import { findDigitRuns } from "./normalize.ts";
 * console.log(findDigitRuns("Paragraph 12, not 3.5")); // ["12", "3", "5"]
 * ```
 */
export function findDigitRuns(s: string): string[] {
  return s.match(/\p{Nd}+/gu) ?? [];
}

/**
 * CPython's `round(x, ndigits)` for floats: the exact binary value of `x` is rounded to `ndigits`
 * decimals, ties to even, and the result is the double nearest that decimal. This differs from
 * `Math.round(x * 100) / 100` (which rounds `x * 100` after a rounding error and sends ties up) and
 * from `toFixed` (ties away from zero): `round(0.125, 2)` is 0.12 and `round(2.5)` is 2 in Python.
 * A tie is only possible when `x · 2^(ndigits+1)` is an odd integer (e.g. 0.125, 0.375 at 2 digits);
 * values like 0.285 are not ties because their double is slightly below or above the decimal.
 *
 * @param x the value.
 * @param ndigits decimals to keep, an integer in [0, 20] (default 0, like `round(x)`).
 * @returns the rounded value.
 *
 * @example
 * ```ts
 * import { pyRound } from "./normalize.ts";
 * console.log(pyRound(0.125, 2), pyRound(0.375, 2), pyRound(2.5), pyRound(3.5)); // 0.12 0.38 2 4
 * console.log(pyRound(1.005, 2), (1.005).toFixed(2)); // 1 "1.00" (1.005 is stored as 1.00499…)
 * ```
 */
export function pyRound(x: number, ndigits = 0): number {
  if (!Number.isInteger(ndigits) || ndigits < 0 || ndigits > 20) {
    throw new RangeError(`Cannot round: ndigits must be an integer in [0, 20]: current value is ${ndigits}`);
  }
  if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 52) return x;
  const sign = x < 0 ? -1 : 1;
  const ax = Math.abs(x);
  // Exact tie test: ax * 2^(ndigits+1) is computed exactly (a power-of-two scaling).
  const scaled2 = ax * 2 ** (ndigits + 1);
  if (Number.isInteger(scaled2) && scaled2 % 2 === 1) {
    // ax·10^d = scaled2·5^d / 2 is exactly k + 1/2: keep the even neighbour.
    const p = 10 ** ndigits;
    const lo = Math.floor(ax * p);
    const n = lo % 2 === 0 ? lo : lo + 1;
    return sign * (n / p);
  }
  // Not a tie: toFixed rounds the exact binary value correctly; parsing gives the nearest double.
  return sign * Number(ax.toFixed(ndigits));
}
