/** model.chat(): templates, streaming, and the KV cache kept between turns. */
import assert from "node:assert/strict";
import type { GenerationStats } from "../src/generate.ts";
import { loadModel } from "../src/model/model.ts";
import type { ChatMessage } from "../src/chat/template.ts";
import { gpuTest } from "./_gpu.ts";

const MODELS = new URL("../../shared/models/", import.meta.url).pathname;

gpuTest(
  "model.chat() prefills only what the cache lacks on the next turn, and starts over otherwise",
  async (gpu) => {
    const m = await loadModel(`${MODELS}stories260K.gguf`, { gpu, contextLength: 512 });
    try {
      const turn = async (messages: ChatMessage[]) => {
        const it = m.chat(messages, { maxTokens: 16, temperature: 0 });
        let text = "";
        let r = await it.next();
        for (; !r.done; r = await it.next()) text += r.value;
        return { text, stats: r.value as GenerationStats };
      };
      const messages: ChatMessage[] = [{ role: "system", content: "Tell stories." }, {
        role: "user",
        content: "A cat",
      }];
      const first = await turn(messages);
      assert.equal(first.stats.prefilledTokens, first.stats.promptTokens);
      messages.push({ role: "assistant", content: first.text }, { role: "user", content: "And a dog?" });
      const second = await turn(messages);
      assert.ok(second.stats.promptTokens > first.stats.promptTokens);
      assert.ok(second.stats.promptTokens - second.stats.prefilledTokens >= first.stats.promptTokens);
      // the same conversation from a cold cache gives the same reply
      m.forgetChat();
      const cold = await turn(messages);
      assert.equal(cold.stats.prefilledTokens, cold.stats.promptTokens);
      assert.deepEqual(cold.stats.tokens, second.stats.tokens);
      // another generation in between invalidates the cached chat
      for await (const _ of m.generate("Unrelated", { maxTokens: 4, temperature: 0 })) { /* drain */ }
      const after = await turn(messages);
      assert.equal(after.stats.prefilledTokens, after.stats.promptTokens);
    } finally {
      m.dispose();
    }
  },
);
