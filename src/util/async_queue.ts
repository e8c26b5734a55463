/**
 * A queue that callbacks push into and one consumer reads with `for await`: the bridge from a
 * callback API (a watch stream) to an async iterator. `close(err)` ends the iteration after the
 * queued items; the error, if any, is then in `error`. A queue given a signal closes when it
 * aborts.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #closed = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;
  readonly #signal: AbortSignal | null;
  readonly #onAbort = () => {
    this.close();
  };

  constructor(signal?: AbortSignal) {
    this.#signal = signal ?? null;
    if (signal?.aborted === true) this.#closed = true;
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The error the queue was closed with; null for a clean close. */
  get error(): unknown {
    return this.#error;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  push(item: T): void {
    if (this.#closed) return;
    this.#items.push(item);
    this.#notify();
  }

  /** Ends the iteration once the queued items are read. Only the first call counts. */
  close(err: unknown = null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = err;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}
