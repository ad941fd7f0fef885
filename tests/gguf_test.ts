import assert from "node:assert/strict";
import { GgufFile } from "../src/model/gguf.ts";
import { writeGguf } from "../src/model/gguf_writer.ts";
import { readLlamaConfig } from "../src/model/config.ts";
import { ModelFormatError } from "../src/errors.ts";

const MODELS = new URL("../../shared/models/", import.meta.url).pathname;

async function tempFile(bytes: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  await Deno.writeFile(path, bytes);
  return path;
}

for (const version of [2, 3]) {
  Deno.test(`GgufFile.open() reads every metadata value type from a v${version} file`, async () => {
    const data = new Uint8Array(40).map((_, i) => i);
    const bytes = writeGguf({
      version,
      alignment: 64,
      metadata: [
        { key: "general.alignment", type: "u32", value: 64 },
        { key: "u8", type: "u8", value: 200 },
        { key: "i8", type: "i8", value: -5 },
        { key: "u16", type: "u16", value: 60000 },
        { key: "i16", type: "i16", value: -30000 },
        { key: "i32", type: "i32", value: -123456 },
        { key: "f32", type: "f32", value: 0.5 },
        { key: "bool", type: "bool", value: true },
        { key: "str", type: "string", value: "héllo ▁" },
        { key: "u64", type: "u64", value: 1n << 40n },
        { key: "i64", type: "i64", value: -(1n << 62n) },
        { key: "f64", type: "f64", value: Math.PI },
        { key: "arr.f32", type: "f32", array: true, value: [1, 2.5, -3] },
        { key: "arr.str", type: "string", array: true, value: ["a", "", "ü"] },
        { key: "arr.i32", type: "i32", array: true, value: [-1, 7] },
        { key: "arr.bool", type: "bool", array: true, value: [true, false] },
      ],
      tensors: [
        { name: "a", dims: [10], type: 0, data: data },
        { name: "b", dims: [2, 5], type: 0, data: data.map((x) => 255 - x) },
      ],
    });
    const path = await tempFile(bytes);
    const f = await GgufFile.open(path);
    try {
      const md = f.metadata;
      assert.equal(f.version, version);
      assert.equal(f.alignment, 64);
      assert.equal(f.dataOffset % 64, 0);
      assert.equal(md.get("u8"), 200);
      assert.equal(md.get("i8"), -5);
      assert.equal(md.get("u16"), 60000);
      assert.equal(md.get("i16"), -30000);
      assert.equal(md.get("i32"), -123456);
      assert.equal(md.get("f32"), 0.5);
      assert.equal(md.get("bool"), true);
      assert.equal(md.get("str"), "héllo ▁");
      assert.equal(md.get("u64"), 2 ** 40);
      assert.equal(md.get("i64"), -(1n << 62n));
      assert.equal(md.get("f64"), Math.PI);
      assert.deepEqual([...(md.get("arr.f32") as Float32Array)], [1, 2.5, -3]);
      assert.deepEqual(md.get("arr.str"), ["a", "", "ü"]);
      assert.deepEqual([...(md.get("arr.i32") as Int32Array)], [-1, 7]);
      assert.deepEqual(md.get("arr.bool"), [true, false]);
      assert.deepEqual(f.tensors.map((t) => [t.name, t.dims, t.nElements]), [["a", [10], 10], [
        "b",
        [2, 5],
        10,
      ]]);
      assert.deepEqual(await f.readTensor("b", 40), data.map((x) => 255 - x));
      assert.deepEqual(await f.readTensor("a", 40), data);
    } finally {
      f.close();
      await Deno.remove(path);
    }
  });
}

Deno.test("GgufFile.open() gives clear errors for missing, non-GGUF and truncated files", async () => {
  await assert.rejects(
    () => GgufFile.open("/nonexistent/model.gguf"),
    (e: unknown) => e instanceof ModelFormatError && /no such file/.test(e.message),
  );
  const zip = await tempFile(new TextEncoder().encode("PK\x03\x04 not a model at all"));
  await assert.rejects(
    () => GgufFile.open(zip),
    (e: unknown) => e instanceof ModelFormatError && /not a GGUF file/.test(e.message),
  );
  const full = await Deno.readFile(`${MODELS}stories260K.gguf`);
  const cut = await tempFile(full.subarray(0, 5000));
  await assert.rejects(
    () => GgufFile.open(cut),
    (e: unknown) => e instanceof ModelFormatError && /truncated/.test(e.message),
  );
  const cutData = await tempFile(full.subarray(0, full.length - 1000));
  const f = await GgufFile.open(cutData);
  const last = f.tensors.reduce((a, b) => (b.offset > a.offset ? b : a));
  await assert.rejects(
    () => f.readTensor(last.name, last.nElements * 4),
    (e: unknown) => e instanceof ModelFormatError && /truncated/.test(e.message),
  );
  f.close();
  for (const p of [zip, cut, cutData]) await Deno.remove(p);
});

Deno.test("readLlamaConfig() reads heads, GQA, rope and tied embeddings", async () => {
  const f = await GgufFile.open(`${MODELS}stories260K.gguf`);
  const c = readLlamaConfig(f);
  f.close();
  assert.deepEqual(
    [c.dim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.ffnDim, c.vocabSize, c.ropeBase, c.tiedEmbeddings],
    [64, 5, 8, 4, 8, 172, 512, 10000, false],
  );
  const tied = await GgufFile.open(`${MODELS}synth-256-tied-q8_0.gguf`);
  assert.equal(readLlamaConfig(tied).tiedEmbeddings, true);
  tied.close();
  const vocabOnly = await GgufFile.open(`${MODELS}ggml-vocab-llama-spm.gguf`);
  assert.throws(() => readLlamaConfig(vocabOnly), ModelFormatError);
  vocabOnly.close();
});

Deno.test("readLlamaConfig() names an unsupported architecture", async () => {
  const path = await tempFile(writeGguf({
    metadata: [{ key: "general.architecture", type: "string", value: "gpt2" }],
    tensors: [],
  }));
  const f = await GgufFile.open(path);
  assert.throws(() => readLlamaConfig(f), /architecture "gpt2" is not supported/);
  f.close();
  await Deno.remove(path);
});
