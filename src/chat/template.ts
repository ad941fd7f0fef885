/**
 * Chat prompts: renders `tokenizer.chat_template` (Jinja, as Hugging Face and llama.cpp do) with
 * `npm:@huggingface/jinja`, or a built-in Llama-3 / Llama-2 template when the GGUF has none.
 *
 * @module
 */

import { Template } from "@huggingface/jinja";

/** One chat message. */
export interface ChatMessage {
  /** Who speaks. */
  role: "system" | "user" | "assistant";
  /** What they say. */
  content: string;
}

/** Which built-in template to use when the model has none. */
export type ChatFormat = "llama3" | "llama2";

/**
 * Llama 3's header format (what Meta's template renders), used when a vocabulary has
 * `<|start_header_id|>` but the file carries no template.
 */
export const LLAMA3_TEMPLATE: string = "{{ bos_token }}{% for message in messages %}" +
  "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** Llama 2 chat's `[INST]` format, with the system prompt folded into the first user turn. */
export const LLAMA2_TEMPLATE: string = "{% if messages[0]['role'] == 'system' %}" +
  "{% set system = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% set loop_messages = messages[1:] %}" +
  "{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}" +
  "{% for message in loop_messages %}{% if message['role'] == 'user' %}" +
  "{% if loop.index0 > 0 %}{{ bos_token }}{% endif %}" +
  "{{ '[INST] ' + (system if loop.index0 == 0 else '') + message['content'] | trim + ' [/INST]' }}" +
  "{% else %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}";

/** Options for {@linkcode renderChat}. */
export interface RenderChatOptions {
  /** The model's Jinja template (`tokenizer.chat_template`), if any. */
  template?: string;
  /** The built-in format used when `template` is absent; default "llama2". */
  fallback?: ChatFormat;
  /** Text of the BOS token (e.g. "<s>", "<|begin_of_text|>"). */
  bosToken?: string;
  /** Text of the EOS token. */
  eosToken?: string;
  /** Append the assistant header so the model answers next; default true. */
  addGenerationPrompt?: boolean;
}

/**
 * Renders a conversation into the prompt text the model was trained on.
 *
 * @example
 * ```ts
 * import { renderChat } from "./template.ts";
 * const text = renderChat([{ role: "user", content: "Hi" }], { fallback: "llama3", bosToken: "<|begin_of_text|>" });
 * console.log(JSON.stringify(text));
 * // "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
 * ```
 */
export function renderChat(messages: ChatMessage[], options: RenderChatOptions = {}): string {
  for (const m of messages) {
    if (!["system", "user", "assistant"].includes(m.role) || typeof m.content !== "string") {
      throw new TypeError(
        `Cannot render chat: each message needs a role (system, user, assistant) and string content`,
      );
    }
  }
  const source = options.template ?? (options.fallback === "llama3" ? LLAMA3_TEMPLATE : LLAMA2_TEMPLATE);
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new SyntaxError(`Cannot parse the chat template: ${(e as Error).message}`);
  }
  return template.render({
    messages,
    bos_token: options.bosToken ?? "",
    eos_token: options.eosToken ?? "",
    add_generation_prompt: options.addGenerationPrompt ?? true,
  });
}
