/**
 * The V8 flags flanneld runs with (measured in docs/data-plane.md): its start-up snapshots are
 * made with them (scripts/bundle.mjs), and bin/flanneld and the installed launcher start Node
 * with them (a snapshot loads only with the flags it was made with).
 * - `--max-semi-space-size=4`: a young generation of at most 4 MiB (V8's default grows to 16).
 * - `--optimize-for-size`: the heap grows in smaller steps and gives back sooner (the 5,000-peer
 *   peak 109 -> 92 MiB).
 * - The interrupt budget, 8 times V8's 67,584: a function runs longer before the optimizing
 *   compiler takes it, so that a start with a few peers never pages TurboFan's code in (3.7 MiB
 *   of RSS); the listing of 5,000 leases still gets it.
 */
export const FLANNELD_V8_FLAGS = [
  "--max-semi-space-size=4",
  "--optimize-for-size",
  "--interrupt-budget=540672",
] as const;
