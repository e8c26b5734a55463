/**
 * Time as flanneld reads it and waits for it. Passed down through the deps, as the signal is,
 * so that a test can run renewals, retries and periodic checks on a clock of its own
 * (test/helpers/test_clock.ts) instead of on options that only tests set.
 */
import { sleep } from "./sleep.js";

/** Reading the time and waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms`; resolves false instead of throwing when the signal aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<boolean>;
}

/** The system's clock and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep,
};
