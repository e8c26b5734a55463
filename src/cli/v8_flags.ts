/**
 * The V8 flags flanneld runs with (measured in docs/data-plane.md). bin/flanneld's snapshots are
 * made with all of them (scripts/bundle.mjs) and started with them; the packaged flanneld, a
 * single executable that takes no flags of its own, sets those that V8 still reads once it runs.
 */

/**
 * V8 reads these at any time: `--optimize-for-size` grows the heap in smaller steps and gives
 * back sooner (the 5,000-peer peak 109 -> 92 MiB); the interrupt budget, 8 times V8's 67,584, has
 * a function run longer before the optimizing compiler takes it, so that a start with a few peers
 * never pages TurboFan's code in (3.7 MiB of RSS); the listing of 5,000 leases still gets it.
 */
export const FLANNELD_RUNTIME_V8_FLAGS = [
  "--optimize-for-size",
  "--interrupt-budget=540672",
] as const;

/**
 * All of them: the runtime ones and `--max-semi-space-size=4`, a young generation of at most
 * 4 MiB (V8's default grows to 16), which V8 reads only when it sets the heap up.
 */
export const FLANNELD_V8_FLAGS = ["--max-semi-space-size=4", ...FLANNELD_RUNTIME_V8_FLAGS] as const;
