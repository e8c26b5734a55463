import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../test/helpers/test_clock.js";
import { join } from "node:path";
import { runCapture } from "../util/exec.js";
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

test("the addon gives glibc's free heap pages back: freeing alone keeps them, the trim returns them", async () => {
  // A child Node with gc() fills 40 MiB of glibc's heap (100 KiB buffers, under the mmap
  // threshold) with a small buffer above them, so that free() cannot shrink the heap from its top;
  // frees them (waiting for V8 to release their memory); then trims.
  const script = `
    import { readFileSync } from "node:fs";
    import { setImmediate as tick } from "node:timers/promises";
    const { kernelSockets } = await import(${JSON.stringify(join(import.meta.dirname, "../native/index.js"))});
    const rssAnonMiB = () =>
      Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024;
    const base = rssAnonMiB();
    let buffers = [];
    for (let i = 0; i < 400; i++) buffers.push(Buffer.allocUnsafeSlow(100 * 1024).fill(1));
    const above = Buffer.allocUnsafeSlow(1024).fill(1);
    buffers = null;
    while (process.memoryUsage().arrayBuffers > 8 * 2 ** 20) { globalThis.gc(); await tick(); }
    const freed = rssAnonMiB();
    const trimmed = kernelSockets().trimHeap();
    const after = rssAnonMiB();
    process.stdout.write(JSON.stringify({ base, freed, trimmed, after, above: above.length }));`;
  const child = await runCapture(process.execPath, [
    "--expose-gc",
    "--input-type=module",
    "-e",
    script,
  ]);
  assert.equal(child.code, 0, child.stderr);
  const m = JSON.parse(child.stdout) as {
    base: number;
    freed: number;
    trimmed: boolean;
    after: number;
  };
  assert.ok(m.freed - m.base >= 30, `freed buffers stay in RSS until trimmed: ${child.stdout}`);
  assert.equal(m.trimmed, true);
  assert.ok(m.freed - m.after >= 30, `the trim gave them back: ${child.stdout}`);
});
