/** Clocks for tests: one moved by hand, and one that runs faster than the system's. */
import type { Clock } from "../../src/util/clock.js";
import { sleep } from "../../src/util/sleep.js";

interface Sleeper {
  readonly wakeAt: number;
  readonly wake: (slept: boolean) => void;
}

/** Stands still until advance(); a sleeper wakes when the clock reaches its time. */
export class ManualClock implements Clock {
  #now: number;
  readonly #sleepers = new Set<Sleeper>();
  readonly #onSleep = new Set<() => void>();

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true); // its time has come
    return new Promise((resolve) => {
      const sleeper: Sleeper = {
        wakeAt: this.#now + Math.max(0, ms),
        wake: (slept) => {
          this.#sleepers.delete(sleeper);
          signal.removeEventListener("abort", onAbort);
          resolve(slept);
        },
      };
      const onAbort = () => sleeper.wake(false);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.add(sleeper);
      for (const tell of this.#onSleep) tell();
    });
  }

  /** How many sleeps are pending. */
  get sleepers(): number {
    return this.#sleepers.size;
  }

  /** The time the next sleeper wakes at; null when none sleeps. */
  get nextWake(): number | null {
    const times = [...this.#sleepers].map((s) => s.wakeAt);
    return times.length === 0 ? null : Math.min(...times);
  }

  /** Moves the clock on, waking every sleeper whose time has come. */
  advance(ms: number): void {
    this.#now += ms;
    for (const sleeper of [...this.#sleepers]) if (sleeper.wakeAt <= this.#now) sleeper.wake(true);
  }

  /** Resolves once at least `count` sleeps are pending (the code under test is waiting). */
  async sleeping(count = 1): Promise<void> {
    await this.#until(() => this.#sleepers.size >= count);
  }

  /** Resolves once something sleeps until exactly `time`. */
  async sleepingUntil(time: number): Promise<void> {
    await this.#until(() => [...this.#sleepers].some((s) => s.wakeAt === time));
  }

  /** Resolves, with its time, once something sleeps until a time in [from, to]. */
  async sleepingWithin(from: number, to: number): Promise<number> {
    const within = () => [...this.#sleepers].find((s) => s.wakeAt >= from && s.wakeAt <= to);
    await this.#until(() => within() !== undefined);
    return within()?.wakeAt ?? from;
  }

  async #until(done: () => boolean): Promise<void> {
    while (!done()) {
      await new Promise<void>((resolve) => {
        const tell = () => {
          this.#onSleep.delete(tell);
          resolve();
        };
        this.#onSleep.add(tell);
      });
    }
  }
}

/**
 * Runs `factor` times faster than the system's clock: for tests against real processes (etcd),
 * where periodic checks must come round quickly and a hand-moved clock cannot follow the
 * process. Only the code under test sees it; etcd keeps its own time.
 */
export function fastClock(factor: number): Clock {
  const start = Date.now();
  return {
    now: () => start + (Date.now() - start) * factor,
    sleep: (ms, signal) => sleep(ms / factor, signal),
  };
}
