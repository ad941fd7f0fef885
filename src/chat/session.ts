/**
 * A multi-turn chat over one model that keeps the KV cache between turns: each turn renders the whole
 * conversation with the chat template, finds how many leading tokens are already cached, and
 * prefills only the new ones.
 *
 * @module
 */

import type { GenerateOptions, GenerationStats } from "../generate.ts";
import type { Model } from "../model/model.ts";
import { type ChatFormat, type ChatMessage, renderChat } from "./template.ts";

/** Options for a {@linkcode ChatSession}. */
export interface ChatSessionOptions {
  /** A system prompt, kept across `/reset`. */
  system?: string;
  /** Override the model's `tokenizer.chat_template`. */
  template?: string;
}

/**
 * Picks the built-in chat format for a model without a template: Llama 3 headers when the
 * vocabulary has `<|start_header_id|>`, else Llama 2's `[INST]`.
 */
function fallbackFormat(model: Model): ChatFormat {
  const t = model.tokenizer;
  for (let id = Math.max(0, t.vocabSize - 512); id < t.vocabSize; id++) {
    if (t.tokenText(id) === "<|start_header_id|>") return "llama3";
  }
  return "llama2";
}

/** Length of the common prefix of two id lists. */
function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * A chat with a model. Other generations on the same model invalidate the cached turns (the session
 * notices and prefills the whole conversation again).
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
  readonly #format: ChatFormat;
  #cached: number[] = []; // tokens whose keys and values sit in the cache at positions 0…n−1

  /** Starts a conversation (with the system prompt, if given). */
  constructor(model: Model, options: ChatSessionOptions = {}) {
    this.#model = model;
    this.#options = options;
    this.#format = fallbackFormat(model);
    this.reset();
  }

  /** Forgets the conversation (keeping the system prompt) and the cached tokens. */
  reset(): void {
    this.messages.length = 0;
    if (this.#options.system) this.messages.push({ role: "system", content: this.#options.system });
    this.#cached = [];
  }

  /** The prompt ids of the conversation, ready for the assistant's next turn. */
  promptIds(): number[] {
    const tok = this.#model.tokenizer;
    const template = this.#options.template ?? this.#model.chatTemplate;
    const bos = tok.bos >= 0 ? tok.tokenText(tok.bos) : "";
    let text = renderChat(this.messages, {
      template,
      fallback: this.#format,
      bosToken: bos,
      eosToken: tok.eos >= 0 ? tok.tokenText(tok.eos) : "",
    });
    // The template may write BOS as text; the tokenizer adds it as an id instead.
    const addBos = tok.bos >= 0;
    if (addBos && bos && text.startsWith(bos)) text = text.slice(bos.length);
    return tok.encode(text, { addBos, parseSpecial: true });
  }

  /**
   * Adds a user message and streams the assistant's reply; the reply is added to the conversation
   * when the stream ends.
   */
  async *send(content: string, options: GenerateOptions = {}): AsyncGenerator<string, GenerationStats> {
    this.messages.push({ role: "user", content });
    const ids = this.promptIds();
    const stillCached = this.lastStats !== undefined && this.#model.lastStats === this.lastStats;
    let reuse = stillCached ? Math.min(commonPrefix(this.#cached, ids), ids.length - 1) : 0;
    // A compressed cache cannot rewind: reuse it only when the new tokens continue it exactly.
    if (!this.#model.canContinueAt(reuse)) reuse = 0;
    const it = this.#model.generate(ids, { ...options, startPos: reuse });
    let reply = "";
    let r = await it.next();
    for (; !r.done; r = await it.next()) {
      reply += r.value;
      yield r.value;
    }
    const stats = r.value;
    this.messages.push({ role: "assistant", content: reply });
    this.#cached = [...ids, ...stats.tokens].slice(0, stats.contextTokens);
    this.lastStats = stats;
    return stats;
  }
}
