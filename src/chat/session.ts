/**
 * A multi-turn chat over one model: keeps the conversation, and lets {@linkcode Model.chat} reuse
 * the KV cache between turns (only the tokens the cache lacks are prefilled).
 *
 * @module
 */

import type { GenerateOptions, GenerationStats } from "../generate.ts";
import type { Model } from "../model/model.ts";
import type { ChatMessage } from "./template.ts";

/** Options for a {@linkcode ChatSession}. */
export interface ChatSessionOptions {
  /** A system prompt, kept across {@linkcode ChatSession.reset}. */
  system?: string;
  /** Override the model's `tokenizer.chat_template`. */
  template?: string;
}

/**
 * A chat with a model.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "../model/model.ts";
 * import { ChatSession } from "./session.ts";
 * const model = await loadModel("model.gguf");
 * const chat = new ChatSession(model, { system: "Be brief." });
 * for await (const text of chat.send("Hello!", { maxTokens: 64 })) Deno.stdout.writeSync(new TextEncoder().encode(text));
 * console.log(chat.lastStats?.prefilledTokens);
 * ```
 */
export class ChatSession {
  /** The conversation so far (system message first, if any). */
  readonly messages: ChatMessage[] = [];
  /** Stats of the last turn. */
  lastStats: GenerationStats | undefined;
  readonly #model: Model;
  readonly #options: ChatSessionOptions;

  /** Starts a conversation (with the system prompt, if given). */
  constructor(model: Model, options: ChatSessionOptions = {}) {
    this.#model = model;
    this.#options = options;
    this.reset();
  }

  /** Forgets the conversation (keeping the system prompt) and the model's cached chat tokens. */
  reset(): void {
    this.messages.length = 0;
    if (this.#options.system) this.messages.push({ role: "system", content: this.#options.system });
    this.#model.forgetChat();
    this.lastStats = undefined;
  }

  /**
   * Adds a user message and streams the assistant's reply; the reply joins the conversation when
   * the stream ends (also when it was aborted through `options.signal`).
   */
  async *send(content: string, options: GenerateOptions = {}): AsyncGenerator<string, GenerationStats> {
    this.messages.push({ role: "user", content });
    const it = this.#model.chat(this.messages, { ...options, template: this.#options.template });
    let reply = "";
    let r = await it.next();
    for (; !r.done; r = await it.next()) {
      reply += r.value;
      yield r.value;
    }
    this.messages.push({ role: "assistant", content: reply });
    this.lastStats = r.value;
    return r.value;
  }
}
