/**
 * Text generation: tokenize, prefill in batches, then decode several tokens per submit. Tokens are
 * picked on the GPU (argmax, or the seeded sampler) straight into the slot the next step's embedding
 * lookup reads, and only the ids come back, once per `syncEvery` tokens. Stop conditions are checked
 * after the fact and surplus steps discarded. Text is streamed as valid UTF-8 and held back while it
 * could still become a stop sequence.
 *
 * @module
 */

import type { Model, TokenPick } from "./model/model.ts";
import { type SamplingOptions, validateSampling } from "./sampling.ts";

/** Options for {@linkcode Model.generate}. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate; default 128. */
  maxTokens?: number;
  /** Stop sequences: generation ends before the first occurrence of any (not included in the output). */
  stop?: string[];
  /** Stop at an end-of-generation token (EOS, or Llama 3's `<|eot_id|>` / `<|eom_id|>`); default true. */
  stopAtEos?: boolean;
  /**
   * How many leading prompt tokens are already in the KV cache at positions 0…startPos−1 (from an
   * earlier call on this model, e.g. the previous chat turn); only the rest is prefilled. Default 0.
   * The caller guarantees those positions hold exactly these tokens.
   */
  startPos?: number;
  /** Stops generation (stop reason "aborted") when it fires; the tokens so far are kept. */
  signal?: AbortSignal;
  /**
   * Decode steps encoded per submit; token ids are read back once per submit (each readback costs
   * ≥ 10 ms in Deno). Streaming output arrives this many tokens at a time. Default 8, at most 64.
   */
  syncEvery?: number;
  /**
   * Called after each prefill batch has run on the GPU with the prompt tokens done so far (for a
   * progress display). Setting it makes prefill wait for every batch, at ≥ 10 ms each.
   */
  onPrefillProgress?: (done: number, total: number) => void;
}

/** Why generation ended. */
export type StopReason = "eos" | "length" | "stop" | "context" | "aborted";

/** What a finished generation reports. */
export interface GenerationStats {
  /** Prompt tokens (BOS included). */
  promptTokens: number;
  /** Prompt tokens actually prefilled (the rest were already cached: `promptTokens − startPos`). */
  prefilledTokens: number;
  /** Positions of the KV cache that hold valid tokens when generation ended (prompt + fed tokens). */
  contextTokens: number;
  /** Tokens generated (the EOS that ended generation is not counted). */
  generatedTokens: number;
  /** Prefill time, ms (until the first generated token was known). */
  prefillMs: number;
  /** Decode time after the first token, ms. */
  decodeMs: number;
  /** Prompt tokens per second of prefill. */
  prefillTokensPerSecond: number;
  /** Generated tokens per second of decode (after the first token). */
  decodeTokensPerSecond: number;
  /** Bytes allocated for the KV cache. */
  kvCacheBytes: number;
  /** Why generation ended. */
  stopReason: StopReason;
  /** The generated token ids. */
  tokens: number[];
}

/**
 * The generation loop behind {@linkcode Model.generate}.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "./model/model.ts";
 * const model = await loadModel("../shared/models/stories260K.gguf");
 * const it = model.generate("Once upon a time", { maxTokens: 20, temperature: 0 });
 * let r = await it.next();
 * for (; !r.done; r = await it.next()) Deno.stdout.writeSync(new TextEncoder().encode(r.value));
 * console.log(r.value.decodeTokensPerSecond);
 * ```
 */
export async function* generate(
  model: Model,
  prompt: string | number[],
  options: GenerateOptions = {},
): AsyncGenerator<string, GenerationStats> {
  validateSampling(options);
  const maxTokens = options.maxTokens ?? 128;
  if (!Number.isInteger(maxTokens) || maxTokens < 0) {
    throw new RangeError(`Cannot generate: maxTokens must be an integer >= 0: current value is ${maxTokens}`);
  }
  const tok = model.tokenizer;
  const ids = typeof prompt === "string" ? tok.encode(prompt) : [...prompt];
  if (ids.length === 0) {
    throw new RangeError("Cannot generate: the prompt is empty (and the model adds no BOS)");
  }
  if (ids.length > model.contextLength) {
    throw new RangeError(
      `Cannot generate: the prompt has ${ids.length} tokens but the context holds ${model.contextLength}; ` +
        "shorten the prompt or raise the context length (--ctx)",
    );
  }
  const startPos = options.startPos ?? 0;
  if (!Number.isInteger(startPos) || startPos < 0 || startPos >= ids.length) {
    throw new RangeError(
      `Cannot generate: startPos must be an integer in [0, ${
        ids.length - 1
      }] (at least one prompt token is prefilled): ` +
        `current value is ${startPos}`,
    );
  }
  const syncEvery = options.syncEvery ?? 8;
  if (!Number.isInteger(syncEvery) || syncEvery < 1 || syncEvery > 64) {
    throw new RangeError(
      `Cannot generate: syncEvery must be an integer in [1, 64]: current value is ${syncEvery}`,
    );
  }
  const pick: TokenPick = {
    temperature: options.temperature ?? 0.8,
    topK: options.topK ?? 40,
    topP: options.topP ?? 0.95,
    seed: (options.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0,
    step: 0,
  };
  const stops = (options.stop ?? []).filter((s) => s.length > 0);
  const stopAtEos = options.stopAtEos ?? true;
  const stream = tok.streamDecoder();
  const tokens: number[] = [];
  let stopReason: StopReason = "length";
  let pending = ""; // text held back because it could be the start of a stop sequence
  let contextTokens = startPos;

  const t0 = performance.now();
  let tFirst = t0;
  if (maxTokens > 0) {
    if (options.onPrefillProgress) {
      await model.prefillWithProgress(
        ids.slice(startPos),
        startPos,
        { logits: "last", pick },
        options.onPrefillProgress,
      );
    } else {
      model.prefill(ids.slice(startPos), startPos, { logits: "last", pick });
    }
    let queue = [await model.readNextToken()];
    tFirst = performance.now();
    let fed = ids.length; // positions whose keys and values are in the cache
    let drawn = 1; // picks made so far: the sampler's draw index
    generation: while (true) {
      for (const id of queue) {
        if (stopAtEos && tok.isEndOfGeneration(id)) {
          stopReason = "eos";
          break generation;
        }
        tokens.push(id);
        pending += stream.push(id);
        const cut = findStop(pending, stops);
        if (cut >= 0) {
          if (cut > 0) yield pending.slice(0, cut);
          pending = "";
          stopReason = "stop";
          break generation;
        }
        const hold = stopPrefixLength(pending, stops);
        if (pending.length > hold) {
          yield pending.slice(0, pending.length - hold);
          pending = pending.slice(pending.length - hold);
        }
        if (tokens.length >= maxTokens) break generation;
      }
      if (options.signal?.aborted) {
        stopReason = "aborted";
        break;
      }
      if (fed >= model.contextLength) {
        stopReason = "context";
        break;
      }
      // Every queued token was accepted: feed the last one and pick up to syncEvery more on the GPU,
      // then read them all back at once. Picks past a stop are discarded below (settle).
      const count = Math.min(syncEvery, maxTokens - tokens.length, model.contextLength - fed);
      model.decodeSteps(fed, count, { ...pick, step: drawn });
      fed += count;
      drawn += count;
      queue = await model.readTokens(count);
    }
    contextTokens = Math.min(fed, ids.length + tokens.length);
    model.settle(contextTokens);
  }
  const rest = stopReason === "stop" ? "" : pending + stream.flush();
  if (rest) yield rest;
  const tEnd = performance.now();
  const prefillMs = tFirst - t0;
  const decodeMs = tEnd - tFirst;
  const stats: GenerationStats = {
    promptTokens: ids.length,
    prefilledTokens: ids.length - startPos,
    contextTokens,
    generatedTokens: tokens.length,
    prefillMs,
    decodeMs,
    prefillTokensPerSecond: prefillMs > 0 ? (ids.length - startPos) / (prefillMs / 1000) : 0,
    decodeTokensPerSecond: decodeMs > 0 && tokens.length > 1 ? (tokens.length - 1) / (decodeMs / 1000) : 0,
    kvCacheBytes: model.kvStats().bytes,
    stopReason,
    tokens,
  };
  model.lastStats = stats;
  return stats;
}

/** Index of the earliest stop sequence in `text`, or −1. */
function findStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop sequence. */
function stopPrefixLength(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
