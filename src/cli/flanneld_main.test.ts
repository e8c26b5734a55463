import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../log/logger.js";
import { SHUTDOWN_DEADLINE_MS, armShutdownDeadline } from "./flanneld_main.js";

test("armShutdownDeadline() exits 1 once the deadline passes, and not before (fake clock)", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const codes: number[] = [];
  armShutdownDeadline(silentLogger(), "SIGTERM", (code) => codes.push(code));
  t.mock.timers.tick(SHUTDOWN_DEADLINE_MS - 1);
  assert.deepEqual(codes, []);
  t.mock.timers.tick(1);
  assert.deepEqual(codes, [1]);
});
