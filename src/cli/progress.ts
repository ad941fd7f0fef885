/**
 * Terminal feedback on stderr: a progress bar for weight uploads (bytes, MB/s) and a counter for long
 * prefills. Both are silent when stderr is not a terminal or when `quiet` is set.
 *
 * @module
 */

import { formatBytes } from "./common.ts";

/**
 * A one-line progress bar redrawn in place with `\r`.
 *
 * @example
 * ```ts ignore
 * const bar = new ProgressBar("loading weights", { quiet: false });
 * bar.update(512, 1024);
 * bar.done();
 * ```
 */
export class ProgressBar {
  readonly #label: string;
  readonly #enabled: boolean;
  readonly #start = performance.now();
  #lastDraw = 0;
  #drawn = false;

  /** Creates a bar; it draws only on a terminal and when not `quiet`. */
  constructor(label: string, options: { quiet?: boolean } = {}) {
    this.#label = label;
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
    this.#enabled = tty && !options.quiet;
  }

  /** Redraws with `done` of `total` bytes (at most every 50 ms, and always at 100%). */
  update(done: number, total: number): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (done < total && now - this.#lastDraw < 50) return;
    this.#lastDraw = now;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(frac * width);
    const seconds = (now - this.#start) / 1000;
    const rate = seconds > 0 ? done / seconds / 1e6 : 0;
    const line = `${this.#label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ` +
      `${formatBytes(done)} / ${formatBytes(total)} ${rate.toFixed(1)} MB/s`;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}\x1b[K`));
    this.#drawn = true;
  }

  /** Clears the line. */
  done(): void {
    if (this.#drawn) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    this.#drawn = false;
  }
}

/**
 * A token counter for long prefills ("prefill 128/1500 tokens"), redrawn in place; silent when
 * stderr is not a terminal or when `quiet` is set, and only shown for prompts longer than one batch.
 *
 * @example
 * ```ts ignore
 * const counter = new PrefillCounter({ quiet: false });
 * model.generate(prompt, { onPrefillProgress: counter.callback(model.state.maxBatch) });
 * ```
 */
export class PrefillCounter {
  readonly #enabled: boolean;
  #drawn = false;

  /** Creates a counter; it draws only on a terminal and when not `quiet`. */
  constructor(options: { quiet?: boolean } = {}) {
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
    this.#enabled = tty && !options.quiet;
  }

  /** The `onPrefillProgress` callback, or undefined when nothing would be drawn. */
  callback(batch: number): ((done: number, total: number) => void) | undefined {
    if (!this.#enabled) return undefined;
    return (done, total) => {
      if (total <= batch) return;
      const line = done < total ? `prefill ${done}/${total} tokens` : "";
      Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}\x1b[K`));
      this.#drawn = done < total;
    };
  }

  /** Clears the line if something is still drawn. */
  done(): void {
    if (this.#drawn) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    this.#drawn = false;
  }
}
