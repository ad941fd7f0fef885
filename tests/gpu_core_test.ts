import assert from "node:assert/strict";
import { expandWgsl } from "../src/gpu/wgsl.ts";
import { params } from "../src/gpu/params.ts";
import { ShaderCompileError } from "../src/errors.ts";
import { gpuTest } from "./_gpu.ts";

Deno.test("expandWgsl() resolves includes and keys, and rejects unknown ones", () => {
  const src = { "a.wgsl": '#include "b.wgsl"\nalias T = {{T}};', "b.wgsl": "const ONE = 1;" };
  assert.equal(expandWgsl("a.wgsl", src, { T: "f32" }), "const ONE = 1;\nalias T = f32;");
  let msg = "";
  try {
    expandWgsl("a.wgsl", src, {});
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.equal(msg.includes("{{T}}"), true);
  try {
    expandWgsl("a.wgsl", src, { T: "f32", X: "1" });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.equal(msg.includes('"X"'), true);
});

Deno.test("params() packs fields in declaration order and emits matching WGSL", () => {
  const P = params("P", { a: "u32", b: "f32", c: "i32", d: "u32", e: "u32" });
  assert.equal(P.wgsl(), "struct P { a: u32, b: f32, c: i32, d: u32, e: u32, }");
  assert.equal(P.byteSize, 32);
  const buf = P.pack({ a: 7, b: 0.5, c: -3, d: 1, e: 2 });
  assert.equal(new Uint32Array(buf)[0], 7);
  assert.equal(new Float32Array(buf)[1], 0.5);
  assert.equal(new Int32Array(buf)[2], -3);
});

gpuTest("Gpu.pipeline() names the .wgsl file when compilation fails", async (gpu) => {
  await assert.rejects(
    () => gpu.pipeline({ key: "broken", file: "broken.wgsl", code: "fn main( {" }),
    (e: unknown) => e instanceof ShaderCompileError && e.message.includes("broken.wgsl"),
  );
});
