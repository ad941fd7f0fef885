/** The CLI as users run it: a subprocess, stdout/stderr and exit status; never a stack trace. */
import assert from "node:assert/strict";
import { writeGguf } from "../src/model/gguf_writer.ts";
import { ignore } from "./_gpu.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MODELS = `${ROOT}../shared/models/`;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", `${ROOT}cli.ts`, ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split("\n").length, 1, `expected one line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
}

Deno.test("thinkv tokenize prints ids as JSON, works on a vocabulary-only GGUF, honours --no-bos", async () => {
  const a = await cli("tokenize", "--model", `${MODELS}ggml-vocab-llama-spm.gguf`, "--text", "Hello world");
  assert.equal(a.code, 0);
  assert.deepEqual(JSON.parse(a.stdout), [1, 15043, 3186]);
  const b = await cli(
    "tokenize",
    "--model",
    `${MODELS}ggml-vocab-llama-spm.gguf`,
    "--text",
    "Hello world",
    "--no-bos",
  );
  assert.deepEqual(JSON.parse(b.stdout), [15043, 3186]);
});

Deno.test("thinkv info prints metadata, tensor type counts and a memory estimate", async () => {
  const r = await cli("info", `${MODELS}stories260K-q4_0.gguf`);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /general\.architecture = "llama"/);
  assert.match(r.stdout, /tensors: 48 \(Q4_0: 32, F32: 16\)/);
  assert.match(r.stdout, /estimated GPU memory: weights .* KV cache for 2048 tokens/);
});

Deno.test("thinkv reports users' mistakes in one line with exit status 1", async () => {
  assertOneLineError(await cli("run", "--model", "/no/such/model.gguf", "--prompt", "x"), /no such file/);
  assertOneLineError(await cli("run", "--model", `${ROOT}deno.json`, "--prompt", "x"), /not a GGUF file/);
  assertOneLineError(await cli("run", "--prompt", "x"), /--model FILE is required/);
  assertOneLineError(
    await cli("run", "--model", `${MODELS}stories260K.gguf`, "--frob"),
    /Unknown option '--frob'/,
  );
  assertOneLineError(
    await cli("run", "--model", `${MODELS}stories260K.gguf`, "-p", "x", "-n", "abc"),
    /--n-predict must be an integer/,
  );
  assertOneLineError(await cli("frob"), /unknown command "frob"/);
  const dir = await Deno.makeTempDir();
  const q5k = `${dir}/q5k.gguf`;
  await Deno.writeFile(
    q5k,
    writeGguf({
      metadata: [
        { key: "general.architecture", type: "string", value: "llama" },
        { key: "llama.embedding_length", type: "u32", value: 256 },
      ],
      tensors: [{ name: "token_embd.weight", dims: [256, 2], type: 13, data: new Uint8Array(2 * 176) }],
    }),
  );
  assertOneLineError(
    await cli("run", "--model", q5k, "--prompt", "x"),
    /token_embd\.weight has type Q5_K, which thinkv does not support/,
  );
  const gpt = `${dir}/gpt.gguf`;
  await Deno.writeFile(
    gpt,
    writeGguf({ metadata: [{ key: "general.architecture", type: "string", value: "falcon" }], tensors: [] }),
  );
  assertOneLineError(
    await cli("run", "--model", gpt, "--prompt", "x"),
    /architecture "falcon" is not supported/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "thinkv run streams a story and one stats line, --profile adds GPU times; a too-long prompt is a clear error",
  ignore,
  fn: async () => {
    const r = await cli(
      "run",
      "--model",
      `${MODELS}stories260K.gguf`,
      "--prompt",
      "Once upon a time",
      "-n",
      "24",
      "--temperature",
      "0",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^, there was a little girl named Lily/);
    assert.match(
      r.stderr,
      /prompt 5 tokens, generated 24 \(length\); prefill [\d.]+ tok\/s, decode [\d.]+ tok\/s; KV cache/,
    );
    const profiled = await cli(
      "run",
      ...["--model", `${MODELS}stories260K.gguf`, "--prompt", "Once upon a time", "-n", "24"],
      ...["--temperature", "0", "--profile"],
    );
    assert.equal(profiled.code, 0, profiled.stderr);
    assert.equal(profiled.stdout, r.stdout, "--profile changes no token");
    assert.match(
      profiled.stderr,
      /^matmul\w*\s+[\d.]+ ms\s+[\d.]+%\s+\(\d+ passes\)$[^]*^total\s+[\d.]+ ms$|no timestamp-query/m,
    );
    assertOneLineError(
      await cli(
        "run",
        "--model",
        `${MODELS}stories260K.gguf`,
        "--prompt",
        "Once upon a time there was",
        "--ctx",
        "4",
      ),
      /prompt has 7 tokens but the context holds 4/,
    );
  },
});
