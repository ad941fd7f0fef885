import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { GgufFile } from "../src/model/gguf.ts";
import { ggufHeader, writeGguf, writeGgufStream } from "../src/model/gguf_writer.ts";
import { loadModel } from "../src/model/model.ts";
import { GgmlType, tensorBytes } from "../src/model/quant.ts";
import { synthPlan, synthTensorChunks, writeSynthModel } from "../src/model/synth.ts";
import { tokenizerFromGguf } from "../src/tokenizer/tokenizer.ts";

const TMP = await Deno.makeTempDir({ prefix: "thinkv-synth-" });

function concat(chunks: Iterable<Uint8Array>): Uint8Array {
  const parts = [...chunks];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A sink that collects what writeGgufStream writes, a few bytes at a time (short writes). */
class ShortWriter {
  parts: Uint8Array[] = [];
  write(p: Uint8Array): Promise<number> {
    const n = Math.min(p.length, 7);
    this.parts.push(p.slice(0, n));
    return Promise.resolve(n);
  }
}

Deno.test("writeGgufStream() writes the same bytes as writeGguf(), and rejects a short tensor", async () => {
  const metadata = [
    { key: "general.architecture", type: "string" as const, value: "llama" },
    { key: "x.list", type: "u32" as const, array: true, value: [1, 2, 3] },
  ];
  const a = new Uint8Array(40).map((_, i) => i);
  const b = new Uint8Array(6).map((_, i) => 100 + i);
  const whole = writeGguf({
    metadata,
    tensors: [{ name: "a", dims: [10], type: 0, data: a }, { name: "b", dims: [3], type: 1, data: b }],
  });
  const sink = new ShortWriter();
  const n = await writeGgufStream(sink, {
    metadata,
    tensors: [
      { name: "a", dims: [10], type: 0, byteLength: 40, chunks: () => [a.subarray(0, 13), a.subarray(13)] },
      {
        name: "b",
        dims: [3],
        type: 1,
        byteLength: 6,
        *chunks() {
          yield b;
        },
      },
    ],
  });
  assert.equal(n, whole.length);
  assert.deepEqual(concat(sink.parts), whole);
  assert.equal(ggufHeader({ metadata, tensors: [] }).dataBytes, 0);
  await assert.rejects(
    () =>
      writeGgufStream(new ShortWriter(), {
        metadata,
        tensors: [{ name: "a", dims: [10], type: 0, byteLength: 40, chunks: () => [a.subarray(0, 39)] }],
      }),
    /must add up to 40 bytes: current total is 39/,
  );
});

Deno.test("synthPlan() gives the published parameter counts and layouts of the named shapes", async () => {
  const tiny = await synthPlan("tinyllama-1.1b", GgmlType.Q4_0);
  assert.equal(tiny.parameters, 1_100_048_384);
  assert.ok(tiny.tensors.some((t) => t.name === "output.weight"));
  const l3 = await synthPlan("llama-3.2-1b", GgmlType.Q8_0);
  assert.equal(l3.parameters, 1_235_814_400 + 32);
  assert.ok(!l3.tensors.some((t) => t.name === "output.weight"), "tied embeddings");
  const rope = l3.tensors.find((t) => t.name === "rope_freqs.weight")!;
  assert.deepEqual(rope.dims, [32]);
  const md = new Map(l3.metadata.map((m) => [m.key, m.value]));
  assert.equal(md.get("llama.rope.freq_base"), 500000);
  assert.equal(md.get("llama.attention.head_count_kv"), 8);
  assert.equal((md.get("tokenizer.ggml.tokens") as string[]).length, 128256);
  const seven = await synthPlan("llama-2-7b", GgmlType.F32);
  assert.equal(seven.parameters, 6_738_415_616);
  assert.ok(seven.fileBytes > 26.9e9 && seven.fileBytes < 27.0e9, `${seven.fileBytes}`);
  await assert.rejects(() => synthPlan("gpt-5", GgmlType.F32), /known shapes are/);
  await assert.rejects(() => synthPlan("tiny-64", GgmlType.Q4_K), /supported types are f32, f16, q8_0, q4_0/);
});

for (
  const [typeName, type] of [["F32", GgmlType.F32], ["F16", GgmlType.F16], ["Q8_0", GgmlType.Q8_0], [
    "Q4_0",
    GgmlType.Q4_0,
  ]] as const
) {
  Deno.test(`writeSynthModel() writes a tiny-64 ${typeName} GGUF that reads back with its metadata, tensors and vocabulary`, async () => {
    const path = `${TMP}/tiny-64-${typeName}.gguf`;
    const plan = await writeSynthModel(path, "tiny-64", type, { seed: 3 });
    assert.equal((await Deno.stat(path)).size, plan.fileBytes);
    const f = await GgufFile.open(path);
    try {
      assert.equal(f.metadata.get("general.architecture"), "llama");
      assert.equal(f.metadata.get("llama.embedding_length"), 64);
      assert.equal(f.metadata.get("llama.block_count"), 2);
      assert.equal(f.metadata.get("llama.attention.head_count_kv"), 2);
      assert.equal(f.tensors.length, 3 + 2 * 9);
      const q = f.tensor("blk.1.attn_k.weight")!;
      assert.deepEqual(q.dims, [64, 32]);
      assert.equal(q.type, type);
      assert.equal(f.tensor("blk.0.ffn_norm.weight")!.type, GgmlType.F32);
      assert.deepEqual(f.tensor("blk.0.ffn_down.weight")!.dims, [192, 64]);
      for (const t of f.tensors) assert.equal((f.dataOffset + t.offset) % 32, 0, `${t.name} aligned`);
      // The data is what the generator makes, and the generator is deterministic.
      const info = plan.tensors.find((t) => t.name === "blk.1.ffn_up.weight")!;
      const bytes = await f.readTensor(info.name, tensorBytes(type, 64 * 192));
      assert.deepEqual(bytes, concat(synthTensorChunks(info, plan.shape)));
      assert.deepEqual(bytes, concat(synthTensorChunks({ ...info }, plan.shape)));
      const tok = tokenizerFromGguf(f.metadata);
      assert.equal(tok.vocabSize, 512);
      assert.equal(tok.decode(tok.encode("Once upon a time")), "Once upon a time");
    } finally {
      f.close();
    }
  });
}

Deno.test("writeSynthModel() extends the LLaMA vocabulary to Llama 3's 128256 tokens, tied, with rope_freqs", async () => {
  const path = `${TMP}/tiny-l3.gguf`;
  await writeSynthModel(path, "tiny-l3", GgmlType.Q8_0);
  const f = await GgufFile.open(path);
  try {
    assert.equal(f.tensor("output.weight"), undefined);
    assert.deepEqual(f.tensor("token_embd.weight")!.dims, [128, 128256]);
    const freqs = new Float32Array((await f.readTensor("rope_freqs.weight")).slice().buffer);
    assert.equal(freqs.length, 16);
    assert.equal(freqs[15], 32);
    const tok = tokenizerFromGguf(f.metadata);
    assert.equal(tok.vocabSize, 128256);
    assert.equal(tok.decode(tok.encode("Hello world")), "Hello world");
    assert.equal(tok.decode([128255], { stripLeadingSpace: false }), " <128255>");
  } finally {
    f.close();
  }
});

for (const shape of ["tiny-64", "tiny-hd128", "tiny-l3"]) {
  gpuTest(
    `loadModel() runs a synthetic ${shape} Q4_0 model: finite logits, a few greedy tokens`,
    async (gpu) => {
      const path = `${TMP}/${shape}-gen.gguf`;
      await writeSynthModel(path, shape, GgmlType.Q4_0, { seed: 11 });
      const model = await loadModel(path, { gpu, contextLength: 64 });
      try {
        const ids = model.tokenizer.encode("Once upon a time");
        const rows = await model.evaluate(ids);
        let max = 0;
        for (const row of rows) {
          assert.ok(row.every(Number.isFinite), "finite logits");
          for (const v of row) max = Math.max(max, Math.abs(v));
        }
        assert.ok(max > 1e-3 && max < 100, `logit scale ${max}`);
        const it = model.generate(ids, { maxTokens: 5, temperature: 0, stopAtEos: false });
        let r = await it.next();
        while (!r.done) r = await it.next();
        assert.equal(r.value.generatedTokens, 5);
      } finally {
        model.dispose();
      }
    },
  );
}

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(TMP, { recursive: true });
  } catch {
    // already gone
  }
});
