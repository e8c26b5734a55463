import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../test/helpers/test_clock.js";
import { kernelSockets } from "../native/index.js";
import { HEAP_TRIM_FIRST_MS, HEAP_TRIM_INTERVAL_MS, trimHeapPeriodically } from "./heap_trim.js";

test("the heap is trimmed shortly after the start, then once per interval, until aborted", async () => {
  const clock = new ManualClock(0);
  const controller = new AbortController();
  let trims = 0;
  const running = trimHeapPeriodically(() => trims++, clock, { signal: controller.signal });
  await clock.sleepingUntil(HEAP_TRIM_FIRST_MS);
  assert.equal(trims, 0, "no trim before its time");
  clock.advance(HEAP_TRIM_FIRST_MS);
  await clock.sleepingUntil(HEAP_TRIM_FIRST_MS + HEAP_TRIM_INTERVAL_MS);
  assert.equal(trims, 1);
  clock.advance(HEAP_TRIM_INTERVAL_MS);
  await clock.sleepingUntil(HEAP_TRIM_FIRST_MS + 2 * HEAP_TRIM_INTERVAL_MS);
  assert.equal(trims, 2);
  controller.abort();
  await running;
  assert.equal(trims, 2, "no trim after the abort");
});

test("the addon trims glibc's heap: a boolean, whether pages were given back", () => {
  // How much comes back depends on the heap's state, so only the binding's contract is checked
  // here; the RSS it saves is measured by bench/footprint_bench.ts.
  assert.equal(typeof kernelSockets().trimHeap(), "boolean");
});
