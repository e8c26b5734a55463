/** Waiting for a condition by polling: for the lab's set-up, the benches and the tests. */
import { setTimeout as delay } from "node:timers/promises";

/** Options of eventually. */
export interface PollOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/** Polls until `check` resolves; rethrows its last failure once `timeoutMs` has passed. */
export async function eventually<T>(
  check: () => Promise<T>,
  options: PollOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(options.intervalMs ?? 200);
    }
  }
}

/** Polls until `check` is true; throws "Timed out ... waiting for <what>" after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  options: PollOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  await eventually(
    async () => {
      if (!(await check())) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    },
    { timeoutMs, intervalMs: options.intervalMs ?? 50 },
  );
}
