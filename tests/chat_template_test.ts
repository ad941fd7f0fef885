import assert from "node:assert/strict";
import { renderChat } from "../src/chat/template.ts";

const convo = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "Hi" },
  { role: "assistant" as const, content: "Hello." },
  { role: "user" as const, content: "Bye" },
];

Deno.test("renderChat() falls back to Llama 3 headers", () => {
  assert.equal(
    renderChat(convo, { fallback: "llama3", bosToken: "<|begin_of_text|>" }),
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
});

Deno.test("renderChat() falls back to Llama 2 [INST] with the system prompt in the first turn", () => {
  assert.equal(
    renderChat(convo, { fallback: "llama2", bosToken: "<s>", eosToken: "</s>" }),
    "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]",
  );
});

Deno.test("renderChat() renders a model's own Jinja template and rejects a broken one", () => {
  const template =
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
  assert.equal(renderChat(convo.slice(1, 2), { template }), "<user>Hi<assistant>");
  assert.equal(renderChat(convo.slice(1, 2), { template, addGenerationPrompt: false }), "<user>Hi");
  assert.throws(() => renderChat(convo, { template: "{% for %}" }), /Cannot parse the chat template/);
});
