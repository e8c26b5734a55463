/**
 * Giving back what a burst of work freed. Node never trims glibc's heap, so the pages that the
 * start (the snapshot's file, the bootstrap) and a large listing of leases allocated and freed
 * stay in flanneld's RSS for its whole life. A trim shortly after the start and then at a slow
 * interval returns them (about 2 MiB of a 57 MiB daemon with 2 peers, more after 5,000).
 */
import type { CallOptions } from "../util/call_options.js";
import type { Clock } from "../util/clock.js";

/** The first trim, this long after flanneld holds its lease and runs. */
export const HEAP_TRIM_FIRST_MS = 1_000;
/** Then one trim per interval (malloc_trim takes well under a millisecond on this heap). */
export const HEAP_TRIM_INTERVAL_MS = 30_000;

/** Calls `trim` after HEAP_TRIM_FIRST_MS, then every HEAP_TRIM_INTERVAL_MS, until aborted. */
export async function trimHeapPeriodically(
  trim: () => void,
  clock: Clock,
  opts: CallOptions,
): Promise<void> {
  let wait = HEAP_TRIM_FIRST_MS;
  while (await clock.sleep(wait, opts.signal)) {
    trim();
    wait = HEAP_TRIM_INTERVAL_MS;
  }
}
