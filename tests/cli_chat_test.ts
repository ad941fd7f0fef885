/**
 * `thinkv chat` under a pseudo-terminal (util-linux `script`), driven through stdin: two turns, the
 * second prefills only what the cache lacks; /stats; /reset clears the cache; Ctrl-C exits.
 */
import assert from "node:assert/strict";
import { ignore } from "./_gpu.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MODEL = `${ROOT}../shared/models/stories260K.gguf`;

async function hasScript(): Promise<boolean> {
  try {
    return (await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

/** Runs the chat in a pty, writing `steps` (text, then a pause in ms) to its stdin; returns the screen text. */
async function chatInPty(steps: [string, number][], flags = ""): Promise<{ code: number; screen: string }> {
  // `exec`: script runs the command through $SHELL; dash (Debian's /bin/sh) does not exec a lone
  // command, and a shell left waiting in the foreground dies of the Ctrl-C itself (exit 130).
  const command =
    `exec ${Deno.execPath()} run --allow-read --allow-env ${ROOT}cli.ts chat --model ${MODEL} -n 12 --temperature 0 -q ${flags}`;
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", TERM: "dumb" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  for (const [text, pauseMs] of steps) {
    await writer.write(new TextEncoder().encode(text));
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  await writer.close();
  const out = await child.output();
  return { code: out.code, screen: new TextDecoder().decode(out.stdout) };
}

function turnStats(screen: string): { prompt: number; prefilled: number }[] {
  return [...screen.matchAll(/prompt (\d+) tokens \(prefilled (\d+)\)/g)].map((m) => ({
    prompt: Number(m[1]),
    prefilled: Number(m[2]),
  }));
}

Deno.test({
  name: "thinkv chat keeps the KV cache between turns, /reset clears it, Ctrl-C at the prompt exits",
  ignore: ignore || !(await hasScript()),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { code, screen } = await chatInPty([
      ["Hello there\n", 0],
      ["/stats\n", 0],
      ["Tell me a story about a cat\n", 0],
      ["/stats\n", 0],
      ["/reset\n", 0],
      ["Hi\n", 0],
      ["/stats\n", 6000],
      ["\x03", 1000],
    ]);
    assert.equal(code, 0, screen);
    const stats = turnStats(screen);
    assert.equal(stats.length, 3, screen);
    const [first, second, afterReset] = stats;
    assert.equal(first.prefilled, first.prompt, "the first turn prefills its whole prompt");
    assert.ok(second.prefilled < second.prompt, "the second turn reuses the cache");
    assert.ok(
      second.prompt - second.prefilled >= first.prompt,
      `the second turn re-prefilled part of the first prompt: ${JSON.stringify(second)} after ${
        JSON.stringify(first)
      }`,
    );
    assert.match(screen, /conversation and KV cache cleared/);
    assert.equal(afterReset.prefilled, afterReset.prompt, "after /reset the whole prompt is prefilled again");
  },
});

Deno.test({
  name: "thinkv chat --profile: /stats adds the GPU time per kernel family",
  ignore: ignore || !(await hasScript()),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { code, screen } = await chatInPty(
      [["Hello there\n", 0], ["/stats\n", 0], ["/quit\n", 6000]],
      "--profile",
    );
    assert.equal(code, 0, screen);
    assert.match(screen, /prompt \d+ tokens \(prefilled \d+\)/);
    assert.match(screen, /matmul\w*\s+[\d.]+ ms\s+[\d.]+%[^]*total\s+[\d.]+ ms|no timestamp-query/, screen);
  },
});
