/**
 * Chat messages → prompt token ids, with the model's template (or the built-in fallback).
 *
 * @module
 */

import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type ChatFormat, type ChatMessage, renderChat } from "./template.ts";

/**
 * The built-in format for a model without a template: Llama 3 headers when the vocabulary has
 * `<|start_header_id|>`, else Llama 2's `[INST]`.
 *
 * @example
 * ```ts ignore
 * console.log(fallbackChatFormat(model.tokenizer)); // "llama3" for a Llama 3 vocabulary
 * ```
 */
export function fallbackChatFormat(tok: Tokenizer): ChatFormat {
  for (let id = Math.max(0, tok.vocabSize - 512); id < tok.vocabSize; id++) {
    if (tok.tokenText(id) === "<|start_header_id|>") return "llama3";
  }
  return "llama2";
}

/**
 * Renders `messages` for the assistant's next turn and tokenizes the result (special tokens written
 * by the template become their ids; a BOS the template writes as text becomes the BOS id).
 *
 * @example
 * ```ts ignore
 * const ids = chatPromptIds(model.tokenizer, [{ role: "user", content: "Hi" }], model.chatTemplate);
 * ```
 */
export function chatPromptIds(tok: Tokenizer, messages: ChatMessage[], template?: string): number[] {
  const bos = tok.bos >= 0 ? tok.tokenText(tok.bos) : "";
  let text = renderChat(messages, {
    template,
    fallback: template ? undefined : fallbackChatFormat(tok),
    bosToken: bos,
    eosToken: tok.eos >= 0 ? tok.tokenText(tok.eos) : "",
  });
  const addBos = tok.bos >= 0;
  if (addBos && bos && text.startsWith(bos)) text = text.slice(bos.length);
  return tok.encode(text, { addBos, parseSpecial: true });
}

/**
 * Length of the common prefix of two id lists.
 *
 * @example
 * ```ts
 * import { commonPrefix } from "./prompt.ts";
 * console.log(commonPrefix([1, 2, 3], [1, 2, 4])); // 2
 * ```
 */
export function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
