/**
 * A tiny WGSL template expander (the Deno cousin of llama.cpp's `embed_wgsl.py`):
 *
 * - `#include "file.wgsl"` on its own line is replaced by that file's text (recursively);
 * - `{{KEY}}` is replaced by `vars.KEY`.
 *
 * It throws when a key is left unfilled, when a var is given that the template never uses, and when
 * an include is unknown, so a typo cannot silently produce a different kernel. Numbers that only size
 * things belong in WGSL `override` constants instead; templates are for types and code variants.
 *
 * @module
 */

/** Sources by file name, e.g. `{ "matmul.wgsl": text, "quant_q4_0.wgsl": text }`. */
export type WgslSources = Record<string, string>;

/**
 * Expands `file` from `sources` with `vars`.
 *
 * @example
 * ```ts
 * import { expandWgsl } from "./wgsl.ts";
 * const code = expandWgsl("k.wgsl", {
 *   "k.wgsl": '#include "common.wgsl"\nfn f() -> {{T}} { return one(); }',
 *   "common.wgsl": "fn one() -> f32 { return 1.0; }",
 * }, { T: "f32" });
 * console.log(code);
 * ```
 */
export function expandWgsl(file: string, sources: WgslSources, vars: Record<string, string> = {}): string {
  const used = new Set<string>();
  const seen: string[] = [];
  const include = (name: string): string => {
    const text = sources[name];
    if (text === undefined) {
      throw new Error(
        `Cannot expand ${file}: unknown include "${name}" (known: ${Object.keys(sources).join(", ")})`,
      );
    }
    if (seen.includes(name)) return ""; // include once
    seen.push(name);
    return text.replace(/^[ \t]*#include\s+"([^"]+)"[ \t]*$/gm, (_m, inc: string) => include(inc));
  };
  const code = include(file).replace(/\{\{(\w+)\}\}/g, (_m, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new Error(`Cannot expand ${file}: template key {{${key}}} has no value`);
    used.add(key);
    return v;
  });
  for (const key of Object.keys(vars)) {
    if (!used.has(key)) throw new Error(`Cannot expand ${file}: var "${key}" is not used by the template`);
  }
  return code;
}
