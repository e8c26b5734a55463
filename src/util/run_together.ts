/**
 * Go's errgroup.WithContext: runs long tasks side by side; the first failure aborts the others and
 * is rethrown once all have settled.
 */
import type { CallOptions } from "./call_options.js";

/** A long-running task that stops when its signal aborts. */
export type Task = (opts: CallOptions) => Promise<void>;

/** Runs the tasks together until all end; the first failure stops the rest and is thrown. */
export async function runTogether(tasks: readonly Task[], { signal }: CallOptions): Promise<void> {
  const group = new AbortController();
  const both = AbortSignal.any([signal, group.signal]);
  const fail = (err: unknown) => {
    if (!both.aborted) group.abort(err); // not shutdown's echo
  };
  await Promise.allSettled(tasks.map((task) => task({ signal: both }).catch(fail)));
  if (group.signal.aborted) throw group.signal.reason;
}
