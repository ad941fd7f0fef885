#!/usr/bin/env -S deno run --allow-write
/**
 * Writes the example evaluation data for `examples/eval.yaml`: small, deterministic, TinyStories-like
 * texts that stories260K can read (its vocabulary is 512 SentencePiece tokens of children's stories).
 *
 * - `data/stories.txt`: one long text of stories, for `perplexity`;
 * - `data/fidelity.jsonl`: a few texts (`{"text": …}`) of more than 320 tokens, for `fidelity`;
 * - `data/longbench/{triviaqa,samsum,lcc}.jsonl`: LongBench-format records (`input`, `context`,
 *   `answers`, `all_classes`, `length`, `dataset`, `language`, `_id`) built from stories: question
 *   answering about a story with few-shot examples (qa_f1), dialogue summaries (Rouge-L, stops at a
 *   newline) and "next line" completion of a story written one sentence per line (code_sim); two
 *   records each, the second longer than the example's `maxLength`, so middle truncation is exercised.
 *
 * ```sh
 * deno run --allow-write examples/make_longbench_sample.ts            # writes examples/data/
 * deno run --allow-write examples/make_longbench_sample.ts /tmp/data  # elsewhere
 * ```
 *
 * Same script, same bytes: a seeded generator (mulberry32), no clock, no model.
 *
 * @module
 */

/** Deterministic random numbers in [0, 1) (mulberry32). */
export class Mulberry32 {
  #s: number;
  /** Seeds the generator. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** The next number in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A random element. */
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}

const GIRLS = ["Lily", "Mia", "Sue", "Anna", "Lucy", "Amy", "Sara", "Jane"];
const BOYS = ["Tom", "Ben", "Tim", "Sam", "Max", "Jack", "Bob", "Joe"];
const ANIMALS = ["dog", "cat", "bird", "bunny", "frog", "duck", "bear", "fish"];
const TOYS = ["ball", "kite", "toy car", "doll", "hat", "book", "box", "teddy"];
const COLORS = ["red", "blue", "green", "yellow", "big", "little", "shiny", "soft"];
const PLACES = ["park", "garden", "forest", "pond", "beach", "house", "yard", "hill"];
const HIDING = [
  "under the tree",
  "behind the rock",
  "in the grass",
  "near the pond",
  "under the bed",
  "in the box",
];
const FOODS = ["cake", "apple", "cookie", "soup", "pie", "sandwich"];

/** One story and the facts the questions ask about. */
export interface Story {
  /** The sentences, in order. */
  sentences: string[];
  /** The child's name. */
  name: string;
  /** The animal met. */
  animal: string;
  /** The lost toy. */
  toy: string;
  /** Where the child went. */
  place: string;
  /** Where the toy was found. */
  found: string;
}

/** A TinyStories-like story from the generator; `short` keeps it to seven sentences. */
export function makeStory(r: Mulberry32, short = false): Story {
  const girl = r.next() < 0.5;
  const name = girl ? r.pick(GIRLS) : r.pick(BOYS);
  const he = girl ? "she" : "he", He = girl ? "She" : "He", his = girl ? "her" : "his";
  const animal = r.pick(ANIMALS), toy = r.pick(TOYS), color = r.pick(COLORS), place = r.pick(PLACES);
  const found = r.pick(HIDING), food = r.pick(FOODS), friend = girl ? r.pick(BOYS) : r.pick(GIRLS);
  const s: string[] = [
    `Once upon a time, there was a ${girl ? "little girl" : "little boy"} named ${name}.`,
    `${He} loved to play with ${his} ${color} ${toy}.`,
    `One day, ${name} went to the ${place} with ${his} mom.`,
    `At the ${place}, ${he} saw a ${animal}.`,
    `The ${animal} was very sad.`,
    `${name} said, "Why are you sad, little ${animal}?"`,
    `The ${animal} said, "I lost my ${toy}. I can not find it."`,
    `${name} wanted to help the ${animal}.`,
    `They looked everywhere. They looked ${r.pick(HIDING)} and ${r.pick(HIDING)}.`,
    `Then ${name} saw something ${found}.`,
    `It was the ${toy}!`,
    `The ${animal} was so happy. "Thank you, ${name}!" it said.`,
  ];
  if (r.next() < 0.7) {
    s.push(`${name} and the ${animal} played together all day.`);
    s.push(`Later, ${his} friend ${friend} came to play too.`);
  }
  if (r.next() < 0.6) s.push(`When they got home, mom gave them some ${food}.`);
  s.push(`${name} learned that it is good to help others.`);
  s.push(r.pick(["They were best friends.", "The end.", "From that day on, they played every day."]));
  if (short) s.splice(5, s.length - 6, `${name} helped the ${animal} find the ${toy} ${found}.`);
  return { sentences: s, name, animal, toy, place, found };
}

function storyText(st: Story): string {
  return st.sentences.join(" ");
}

/** A short dialogue and its one-sentence summary (samsum style). */
function makeDialogue(r: Mulberry32): { dialogue: string; summary: string } {
  const a = r.pick(GIRLS), b = r.pick(BOYS), place = r.pick(PLACES), toy = r.pick(TOYS), food = r.pick(FOODS);
  const kind = Math.floor(r.next() * 3);
  if (kind === 0) {
    return {
      dialogue:
        `${a}: Can we go to the ${place} today?\n${b}: Yes! Can I bring my ${toy}?\n${a}: Yes, bring it. ` +
        `We can play with it.\n${b}: I will come after lunch.`,
      summary: `${a} and ${b} will go to the ${place} after lunch and play with ${b}'s ${toy}.`,
    };
  }
  if (kind === 1) {
    return {
      dialogue: `${a}: I lost my ${toy}.\n${b}: Where did you see it last?\n${a}: In the ${place}.\n` +
        `${b}: I will help you look for it.`,
      summary: `${a} lost her ${toy} in the ${place} and ${b} will help her find it.`,
    };
  }
  return {
    dialogue: `${a}: Mom made ${food}.\n${b}: I love ${food}!\n${a}: Come to my house and we can eat it.\n` +
      `${b}: Thank you, I will come now.`,
    summary: `${b} will go to ${a}'s house to eat the ${food} her mom made.`,
  };
}

interface Record {
  input: string;
  context: string;
  answers: string[];
  length: number;
  dataset: string;
  language: string;
  all_classes: null;
  _id: string;
}

function record(dataset: string, i: number, context: string, input: string, answers: string[]): Record {
  const words = (context + " " + input).split(/\s+/).filter(Boolean).length;
  return {
    input,
    context,
    answers,
    length: words,
    dataset,
    language: "en",
    all_classes: null,
    _id: `thinkv-${dataset}-${String(i).padStart(3, "0")}`,
  };
}

/** triviaqa-style: few-shot question answering about stories; the second record is long. */
function triviaqa(r: Mulberry32): Record[] {
  const qa = (st: Story): [string, string] => {
    const k = Math.floor(r.next() * 4);
    if (k === 0) return [`What was the name of the child?`, st.name];
    if (k === 1) return [`What did the ${st.animal} lose?`, st.toy];
    if (k === 2) return [`Where did ${st.name} go with mom?`, `the ${st.place}`];
    return [`What animal did ${st.name} meet?`, st.animal];
  };
  const block = (st: Story, withAnswer: boolean) => {
    const [q, a] = qa(st);
    return {
      text: `Passage: ${storyText(st)}\nQuestion: ${q}\nAnswer:${withAnswer ? ` ${a}` : ""}`,
      answer: a,
    };
  };
  const out: Record[] = [];
  for (let i = 0; i < 2; i++) {
    const shots = i === 1 ? 3 : 1;
    const context = Array.from({ length: shots }, () => block(makeStory(r, true), true).text).join("\n\n");
    const target = block(makeStory(r, true), false);
    out.push(record("triviaqa", i, context, target.text, [target.answer]));
  }
  return out;
}

/** samsum-style: few-shot dialogue summaries; the second record is long. */
function samsum(r: Mulberry32): Record[] {
  const out: Record[] = [];
  for (let i = 0; i < 2; i++) {
    const shots = i === 1 ? 5 : 2;
    const context = Array.from({ length: shots }, () => {
      const d = makeDialogue(r);
      return `Dialogue: ${d.dialogue}\nSummary: ${d.summary}`;
    }).join("\n\n");
    const d = makeDialogue(r);
    out.push(record("samsum", i, context, `Dialogue: ${d.dialogue}\nSummary: `, [d.summary]));
  }
  return out;
}

/** lcc-style: a story written one sentence per line; the answer is the next line; the second is long. */
function lcc(r: Mulberry32): Record[] {
  const out: Record[] = [];
  for (let i = 0; i < 2; i++) {
    const stories = i === 1 ? [makeStory(r), makeStory(r)] : [makeStory(r, true), makeStory(r, true)];
    const lines = stories.flatMap((s) => s.sentences);
    const cut = lines.length - 2 - Math.floor(r.next() * 3);
    out.push(record("lcc", i, lines.slice(0, cut).join("\n") + "\n", "", [lines[cut]]));
  }
  return out;
}

/** Everything the example needs, as file name → contents. */
export function exampleData(): Map<string, string> {
  const files = new Map<string, string>();
  const r = new Mulberry32(20240731);
  files.set("stories.txt", Array.from({ length: 3 }, () => storyText(makeStory(r))).join("\n\n") + "\n");
  const fid = Array.from(
    { length: 2 },
    () => ({ text: [makeStory(r), makeStory(r)].map(storyText).join("\n\n") }),
  );
  files.set("fidelity.jsonl", fid.map((x) => JSON.stringify(x)).join("\n") + "\n");
  for (const [name, recs] of [["triviaqa", triviaqa(r)], ["samsum", samsum(r)], ["lcc", lcc(r)]] as const) {
    files.set(`longbench/${name}.jsonl`, recs.map((x) => JSON.stringify(x)).join("\n") + "\n");
  }
  return files;
}

if (import.meta.main) {
  const dir = (Deno.args[0] ?? new URL("./data", import.meta.url).pathname).replace(/\/+$/, "");
  for (const [name, text] of exampleData()) {
    const path = `${dir}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, text);
    console.log(`wrote ${path} (${text.length} bytes)`);
  }
}
