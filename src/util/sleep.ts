/** Abortable waiting. */
import { setTimeout as delay } from "node:timers/promises";

/** Waits `ms`; resolves false instead of throwing when the signal aborts first. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(Math.max(0, ms), undefined, { signal });
    return true;
  } catch (err) {
    if (signal.aborted) return false;
    throw err;
  }
}

/** Exponential backoff delays: `initialMs`, doubling, capped at `maxMs`. */
export function* backoff(initialMs: number, maxMs: number): Generator<number, never> {
  let next = initialMs;
  for (;;) {
    yield next;
    next = Math.min(next * 2, maxMs);
  }
}
