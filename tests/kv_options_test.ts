import assert from "node:assert/strict";
import {
  describeKvOptions,
  kvOptionsFromFlags,
  loadKvConfig,
  parseKvConfig,
  resolveKvOptions,
} from "../src/kv/options.ts";

Deno.test("resolveKvOptions() fills the paper's defaults and keeps full when nothing is set", () => {
  assert.deepEqual(resolveKvOptions(), {
    eviction: { policy: "full", budget: 512, window: 32, kernel: 7, pool: "max", beta: 20, sinks: 4 },
    think: null,
    quant: null,
  });
  const r = resolveKvOptions({ eviction: { policy: "snapkv", budget: 128 }, think: { ratio: 0.4 } });
  assert.equal(r.eviction.window, 32);
  assert.deepEqual(r.think, { ratio: 0.4, recent: 32, window: 32, pad: false });
});

Deno.test("resolveKvOptions() rejects bad settings with a RangeError naming the setting and range", () => {
  const bad: [unknown, RegExp][] = [
    [{ think: { ratio: 1.5 } }, /^Cannot configure ThinK: ratio must be in \[0, 1\): current value is 1\.5$/],
    [{ think: { ratio: -0.1 } }, /ratio must be in \[0, 1\): current value is -0\.1/],
    [{ think: { ratio: 1 } }, /ratio must be in \[0, 1\)/],
    [{ think: {} }, /ratio must be in \[0, 1\): current value is undefined/],
    [
      { eviction: { policy: "snapkv", budget: 16 } },
      /^Cannot configure SnapKV: budget must be an integer ≥ window \(32\), since it counts the window: current value is 16$/,
    ],
    [
      { eviction: { policy: "lru" } },
      /policy must be one of full, snapkv, pyramidkv, streamingllm, h2o: current value is "lru"/,
    ],
    [{ eviction: { policy: "snapkv", kernel: 4 } }, /kernel must be an odd integer ≥ 1: current value is 4/],
    [
      { eviction: { policy: "snapkv", pool: "mean" } },
      /pool must be one of max, avg, none: current value is "mean"/,
    ],
    [
      { eviction: { policy: "pyramidkv", window: 0 } },
      /PyramidKV: window must be an integer ≥ 1: current value is 0/,
    ],
    [
      { eviction: { policy: "streamingllm", budget: 4 } },
      /StreamingLLM: budget must be an integer > sinks \(4\): current value is 4/,
    ],
    [
      { eviction: { policy: "h2o", budget: 12.5 } },
      /H2O: budget must be an integer ≥ 1: current value is 12\.5/,
    ],
    [{ eviction: { policy: "snapkv", budgte: 5 } }, /unknown setting "budgte"/],
    [{ think: { ratio: 0.4, pad: "yes" } }, /pad must be true or false/],
  ];
  for (const [options, re] of bad) {
    assert.throws(
      () => resolveKvOptions(options as never),
      (e: unknown) => e instanceof RangeError && re.test(e.message),
    );
  }
});

Deno.test("kvOptionsFromFlags() maps CLI flags (strings) to library options, flags over the file", () => {
  assert.equal(kvOptionsFromFlags({}), undefined);
  assert.deepEqual(
    kvOptionsFromFlags({ kv: "snapkv", budget: "512", window: "32", pool: "max", think: "0.4" }),
    { eviction: { policy: "snapkv", budget: 512, window: 32, pool: "max" }, think: { ratio: 0.4 } },
  );
  assert.deepEqual(kvOptionsFromFlags({ think: 0.5, thinkPad: true }), { think: { ratio: 0.5, pad: true } });
  const base = parseKvConfig("eviction: { policy: h2o, budget: 256 }\nthink: { ratio: 0.4 }\n");
  assert.deepEqual(kvOptionsFromFlags({ budget: "128", think: "0.5" }, base), {
    eviction: { policy: "h2o", budget: 128 },
    think: { ratio: 0.5 },
  });
  assert.throws(
    () => kvOptionsFromFlags({ budget: "abc", kv: "snapkv" }),
    /--budget: it must be a number: current value is "abc"/,
  );
  assert.throws(() => kvOptionsFromFlags({ budget: "64" }), /need --kv POLICY/);
  assert.throws(() => kvOptionsFromFlags({ thinkRecent: "8" }), /need --think RATIO/);
  assert.throws(
    () => kvOptionsFromFlags({ think: "1.5" }),
    /ratio must be in \[0, 1\): current value is 1\.5/,
  );
});

Deno.test("parseKvConfig() reads YAML (optionally under kv:) and validates it", async () => {
  const text =
    "kv:\n  eviction:\n    policy: pyramidkv\n    budget: 128\n    pool: avg\n  think:\n    ratio: 0.5\n";
  assert.deepEqual(parseKvConfig(text), {
    eviction: { policy: "pyramidkv", budget: 128, pool: "avg" },
    think: { ratio: 0.5 },
  });
  assert.deepEqual(parseKvConfig(""), {});
  assert.throws(
    () => parseKvConfig("think: { ratio: 2 }", "kv.yaml"),
    /ratio must be in \[0, 1\): current value is 2 \(in kv\.yaml\)/,
  );
  assert.throws(() => parseKvConfig("- 1\n- 2"), /must hold a mapping/);
  assert.throws(() => parseKvConfig("eviction: [unclosed"), SyntaxError);
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, "eviction: { policy: streamingllm, budget: 64, sinks: 4 }\n");
    assert.deepEqual(await loadKvConfig(path), {
      eviction: { policy: "streamingllm", budget: 64, sinks: 4 },
    });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("describeKvOptions() names a configuration for tables and --stats", () => {
  assert.equal(describeKvOptions(), "full");
  assert.equal(describeKvOptions({ think: { ratio: 0.4 } }), "full + think(0.4)");
  assert.equal(
    describeKvOptions({ eviction: { policy: "snapkv", budget: 128 }, think: { ratio: 0.5, pad: true } }),
    "snapkv(B=128,w=32,k=7,max) + think(0.5,pad)",
  );
  assert.equal(
    describeKvOptions({ eviction: { policy: "streamingllm", budget: 64 } }),
    "streamingllm(B=64,sinks=4)",
  );
  assert.equal(
    describeKvOptions({ think: { ratio: 0.4 }, quant: { keyBits: 4 } }),
    "full + think(0.4) + kivi(K4V2,G=32,R=128)",
  );
});

Deno.test("KIVI options: defaults, RangeErrors naming the setting and range, CLI flags, YAML", () => {
  assert.deepEqual(resolveKvOptions({ quant: {} }).quant, {
    keyBits: 2,
    valueBits: 2,
    group: 32,
    residual: 128,
  });
  assert.deepEqual(resolveKvOptions({ quant: { keyBits: 8, valueBits: 4, group: 64, residual: 64 } }).quant, {
    keyBits: 8,
    valueBits: 4,
    group: 64,
    residual: 64,
  });
  const bad: [unknown, RegExp][] = [
    [
      { quant: { keyBits: 3 } },
      /^Cannot configure KIVI quantization: keyBits must be one of 2, 4, 8: current value is 3$/,
    ],
    [{ quant: { valueBits: 16 } }, /valueBits must be one of 2, 4, 8: current value is 16/],
    [{ quant: { group: 24 } }, /group must be a multiple of 16 in \[16, 256\]: current value is 24/],
    [{ quant: { group: 512, residual: 512 } }, /group must be a multiple of 16 in \[16, 256\]/],
    [
      { quant: { residual: 100 } },
      /residual must be a positive multiple of group \(32\): current value is 100/,
    ],
    [
      { quant: { group: 64, residual: 32 } },
      /residual must be a positive multiple of group \(64\): current value is 32/,
    ],
    [{ quant: { bits: 2 } }, /Cannot configure KIVI quantization: unknown setting "bits"/],
    [{ quant: 2 }, /quant must be an object: current value is 2/],
  ];
  for (const [options, re] of bad) {
    assert.throws(
      () => resolveKvOptions(options as never),
      (e: unknown) => e instanceof RangeError && re.test(e.message),
      String(re),
    );
  }
  // CLI: --kv-bits sets both, --key-bits / --value-bits override it; combines with eviction and ThinK
  assert.deepEqual(kvOptionsFromFlags({ kvBits: "2" }), { quant: { keyBits: 2, valueBits: 2 } });
  assert.deepEqual(kvOptionsFromFlags({ kvBits: "4", valueBits: "8", kvGroup: "64", kvResidual: "128" }), {
    quant: { keyBits: 4, valueBits: 8, group: 64, residual: 128 },
  });
  assert.deepEqual(kvOptionsFromFlags({ kv: "snapkv", budget: "256", think: "0.4", keyBits: "2" }), {
    eviction: { policy: "snapkv", budget: 256 },
    think: { ratio: 0.4 },
    quant: { keyBits: 2 },
  });
  assert.throws(() => kvOptionsFromFlags({ kvGroup: "32" }), /--kv-group and --kv-residual need --kv-bits/);
  assert.throws(
    () => kvOptionsFromFlags({ kvBits: "3" }),
    /keyBits must be one of 2, 4, 8: current value is 3/,
  );
  assert.throws(() => kvOptionsFromFlags({ kvBits: "two" }), /--kv-bits: it must be a number/);
  // YAML, and flags over the file
  const base = parseKvConfig(
    "think: { ratio: 0.4 }\nquant: { keyBits: 2, valueBits: 2, group: 32, residual: 64 }\n",
  );
  assert.deepEqual(base.quant, { keyBits: 2, valueBits: 2, group: 32, residual: 64 });
  assert.deepEqual(kvOptionsFromFlags({ valueBits: "4" }, base)?.quant, {
    keyBits: 2,
    valueBits: 4,
    group: 32,
    residual: 64,
  });
  assert.throws(
    () => parseKvConfig("quant: { residual: 48 }", "kv.yaml"),
    /residual must be a positive multiple of group \(32\): current value is 48 \(in kv\.yaml\)/,
  );
});
