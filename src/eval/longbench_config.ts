/**
 * LongBench's configuration data, embedded as constants: the official prompt template per task
 * (`config/dataset2prompt.json`), the maximum number of new tokens per task (`config/dataset2maxlen.json`)
 * and the prompt truncation length per model (`config/model2maxlen.json`). The values are exactly those of
 * the files shipped with LongBench and with the ThinK and KIVI repositories, typos included (for example
 * "asconcisely" in narrativeqa): changing a single character changes the prompts and so the scores.
 *
 * Licence of the data in this file (LongBench, https://github.com/THUDM/LongBench):
 *
 * MIT License
 *
 * Copyright (c) 2023 THU-KEG & Zhipu AI
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to deal
 * in the Software without restriction, including without limitation the rights
 * to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 * copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in all
 * copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 * SOFTWARE.
 *
 * @module
 */

/**
 * The official LongBench prompt template of each task (`dataset2prompt.json`), with `{context}` and
 * `{input}` placeholders filled by Python's `str.format(**record)` (see `buildPrompt` in `./longbench.ts`).
 *
 * @example
 * ```ts
 * import { LONGBENCH_PROMPTS } from "./longbench_config.ts";
 * console.log(LONGBENCH_PROMPTS["trec"].endsWith("{context}\n{input}")); // true
 * ```
 */
export const LONGBENCH_PROMPTS: Readonly<Record<string, string>> = Object.freeze({
  "narrativeqa":
    "You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
  "qasper":
    'You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write "unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write "unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:',
  "multifieldqa_en":
    "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
  "multifieldqa_zh":
    "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n问题：{input}\n回答：",
  "hotpotqa":
    "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
  "2wikimqa":
    "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
  "musique":
    "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
  "dureader":
    "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：",
  "gov_report":
    "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:",
  "qmsum":
    "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:",
  "multi_news":
    "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:",
  "vcsum":
    "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：",
  "trec":
    "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}",
  "triviaqa":
    "Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n{input}",
  "samsum":
    "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}",
  "lsht": "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}",
  "passage_count":
    "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ",
  "passage_retrieval_en":
    'Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like "Paragraph 1", "Paragraph 2", etc.\n\nThe answer is: ',
  "passage_retrieval_zh":
    '以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是"段落1"，"段落2"等格式\n\n答案是：',
  "lcc": "Please complete the code given below. \n{context}Next line of code:\n",
  "repobench-p": "Please complete the code given below. \n{context}{input}Next line of code:\n",
});

/**
 * The number of new tokens generated per task (`dataset2maxlen.json`).
 *
 * @example
 * ```ts
 * import { LONGBENCH_MAX_NEW_TOKENS } from "./longbench_config.ts";
 * console.log(LONGBENCH_MAX_NEW_TOKENS["gov_report"]); // 512
 * ```
 */
export const LONGBENCH_MAX_NEW_TOKENS: Readonly<Record<string, number>> = Object.freeze({
  "narrativeqa": 128,
  "qasper": 128,
  "multifieldqa_en": 64,
  "multifieldqa_zh": 64,
  "hotpotqa": 32,
  "2wikimqa": 32,
  "musique": 32,
  "dureader": 128,
  "gov_report": 512,
  "qmsum": 512,
  "multi_news": 512,
  "vcsum": 512,
  "trec": 64,
  "triviaqa": 32,
  "samsum": 128,
  "lsht": 64,
  "passage_count": 32,
  "passage_retrieval_en": 32,
  "passage_retrieval_zh": 32,
  "lcc": 64,
  "repobench-p": 64,
});

/**
 * LongBench's prompt length limit in tokens per model name (`model2maxlen.json`), used by LongBench's
 * `pred.py` and ThinK_kivi. (ThinK_flash instead matches substrings of the model path: see
 * `thinkFlashMaxLength` in `./longbench.ts`.)
 *
 * @example
 * ```ts
 * import { LONGBENCH_MODEL_MAX_LENGTH } from "./longbench_config.ts";
 * console.log(LONGBENCH_MODEL_MAX_LENGTH["Mistral-7B-Instruct-v0.2"]); // 31500
 * ```
 */
export const LONGBENCH_MODEL_MAX_LENGTH: Readonly<Record<string, number>> = Object.freeze({
  "llama2-7b-chat-4k": 3500,
  "longchat-v1.5-7b-32k": 31500,
  "xgen-7b-8k": 7500,
  "internlm-7b-8k": 7500,
  "chatglm2-6b": 31500,
  "chatglm2-6b-32k": 31500,
  "vicuna-v1.5-7b-16k": 15500,
  "LLaMA-2-7B-32K": 7500,
  "llama-7b": 4096,
  "Llama-2-7b-chat-hf": 4096,
  "Llama-2-7b-hf": 4096,
  "llama-13b": 4096,
  "Llama-2-13b-chat-hf": 4096,
  "Llama-2-13b-hf": 4096,
  "falcon-7b": 4096,
  "Mistral-7B-v0.1": 8192,
  "longchat-7b-v1.5-32k": 31500,
  "Mistral-7B-Instruct-v0.2": 31500,
});
