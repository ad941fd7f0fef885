/** Passkey prompts: generation in passkey-tiny's format (real tokenizer, no GPU), the golden JSONL, scoring. */
import assert from "node:assert/strict";
import { GgufFile } from "../src/model/gguf.ts";
import { tokenizerFromGguf } from "../src/tokenizer/tokenizer.ts";
import {
  generatePasskeyPrompts,
  nearestBucket,
  PASSKEY_CYCLE,
  PASSKEY_DISTRACTORS,
  PASSKEY_PREFIX,
  PASSKEY_QUESTION,
  passkeyCorrect,
  passkeyHeatmap,
  passkeyNeedle,
  passkeyPromptsFromJsonl,
} from "../src/eval/tasks/passkey.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const file = await GgufFile.open(`${ROOT}../shared/models/passkey-tiny.gguf`);
const tok = tokenizerFromGguf(file.metadata);
file.close();
const encode = (t: string) => tok.encode(t, { addBos: false });

Deno.test("generated passkey prompts follow the model card's format", () => {
  const prompts = generatePasskeyPrompts({
    lengths: [256, 1024],
    depths: [0.1, 0.5, 0.9],
    perCell: 2,
    seed: 7,
  }, encode);
  assert.equal(prompts.length, 2 * 3 * 2);
  const sentences = new Set([...PASSKEY_CYCLE, ...PASSKEY_DISTRACTORS]);
  for (const p of prompts) {
    assert.match(p.answer, /^\d{5}$/);
    assert.ok(p.context.startsWith(PASSKEY_PREFIX + " "));
    assert.ok(p.context.endsWith(" " + PASSKEY_QUESTION));
    assert.ok(
      p.context.includes(" " + passkeyNeedle(p.answer) + " ") ||
        p.context.includes(passkeyNeedle(p.answer) + " What"),
    );
    // Everything between the prefix and the question is filler sentences and the needle, single spaces.
    const middle = p.context.slice(PASSKEY_PREFIX.length + 1, -PASSKEY_QUESTION.length - 1).replace(
      passkeyNeedle(p.answer),
      "",
    )
      .trim();
    for (const s of middle.split(/(?<=\.) +/).filter(Boolean)) {
      assert.ok(sentences.has(s), `unexpected sentence ${s}`);
    }
    assert.doesNotMatch(p.context, / {2}/);
    // The length is measured (tokens without BOS) and lands at or just above the target.
    assert.equal(p.length, encode(p.context).length);
  }
  for (const [i, target] of [[0, 256], [6, 1024]] as const) {
    assert.ok(
      prompts[i].length >= target - 8 && prompts[i].length <= target + 12,
      `length ${prompts[i].length} for ${target}`,
    );
  }
  // The needle sits near the requested depth of the filler.
  prompts.forEach((p, i) => {
    const want = [0.1, 0.5, 0.9][Math.floor(i / 2) % 3];
    assert.ok(Math.abs(p.depth - want) < 0.06, `depth ${p.depth} for ${want}`);
  });
});

Deno.test("passkey generation is deterministic per seed and varies across seeds", () => {
  const o = { lengths: [300], depths: [0.25, 0.75], perCell: 3 };
  const a = generatePasskeyPrompts({ ...o, seed: 1 }, encode);
  assert.deepEqual(a, generatePasskeyPrompts({ ...o, seed: 1 }, encode));
  const b = generatePasskeyPrompts({ ...o, seed: 2 }, encode);
  assert.notDeepEqual(a.map((p) => p.answer), b.map((p) => p.answer));
  // Keys are 5 random digits: over many prompts every digit occurs, leading zeros included.
  const many = generatePasskeyPrompts({ lengths: [64], depths: [0.5], perCell: 200, seed: 3 }, encode);
  assert.equal(new Set(many.map((p) => p.answer).join("")).size, 10);
  assert.ok(many.some((p) => p.answer.startsWith("0")));
});

Deno.test("the golden passkey JSONL reads as 60 prompts whose lengths match our tokenizer", async () => {
  const path = `${ROOT}../shared/golden/passkey-tiny.eval.jsonl`;
  const prompts = passkeyPromptsFromJsonl(await Deno.readTextFile(path), path);
  assert.equal(prompts.length, 60);
  for (const p of prompts) {
    assert.match(p.answer, /^\d{5}$/);
    assert.ok(p.context.endsWith(PASSKEY_QUESTION));
    assert.ok(p.context.includes(passkeyNeedle(p.answer)));
    assert.equal(encode(p.context).length, p.length);
  }
  const h = passkeyHeatmap(prompts.map((p) => ({ ...p, correct: true })));
  assert.deepEqual(h.lengths, [256, 512, 1024, 1536]);
  assert.deepEqual(h.depths, [0.1, 0.3, 0.5, 0.7, 0.9]);
  assert.equal(h.cells.flat().reduce((a, c) => a + c[1], 0), 60);
  assert.throws(
    () => passkeyPromptsFromJsonl('{"context": 1}', "bad.jsonl"),
    /bad\.jsonl record 1: "context" must be a string/,
  );
  assert.throws(
    () => passkeyPromptsFromJsonl('{"context": "x", "answers": []}', "bad.jsonl"),
    /"answers" must be a list of strings/,
  );
});

Deno.test("passkey scoring: the 5 characters after one leading space must equal the key", () => {
  assert.equal(passkeyCorrect(" 07341.", "07341"), true);
  assert.equal(passkeyCorrect("07341.", "07341"), true);
  assert.equal(passkeyCorrect(" 07341", "07341"), true);
  assert.equal(passkeyCorrect(" 7341.", "07341"), false);
  assert.equal(passkeyCorrect(" 07841.", "07341"), false);
  assert.equal(passkeyCorrect("  07341.", "07341"), false);
  assert.equal(passkeyCorrect(" 0734", "07341"), false);
});

Deno.test("heat-map buckets: lengths on a log ladder, depths to tenths or given buckets", () => {
  assert.equal(nearestBucket(1471, [1024, 1536, 2048], true), 1536);
  assert.equal(nearestBucket(1250, [1024, 1536], true), 1024); // ln: 0.199 vs 0.206
  assert.equal(nearestBucket(0.3, [0.25, 0.5]), 0.25);
  const h = passkeyHeatmap(
    [
      { length: 240, depth: 0.12, correct: true },
      { length: 250, depth: 0.48, correct: false },
      { length: 1010, depth: 0.5, correct: true },
      { length: 1000, depth: 0.52, correct: true },
    ],
    undefined,
    [0, 0.5, 1],
  );
  assert.deepEqual(h, {
    lengths: [256, 1024],
    depths: [0, 0.5],
    cells: [[[1, 1], [0, 1]], [[0, 0], [2, 2]]],
  });
});
