import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { SdNotifier, watchdogMs } from "./sd_notify.js";

const log = pino({ level: "silent" });

test("no NOTIFY_SOCKET, no notifier; a NOTIFY_SOCKET that is neither a path nor @name is refused", () => {
  assert.equal(SdNotifier.fromEnv({}, log), null);
  assert.equal(SdNotifier.fromEnv({ NOTIFY_SOCKET: "" }, log), null);
  assert.equal(SdNotifier.fromEnv({ NOTIFY_SOCKET: "relative.sock" }, log), null);
});

test("WATCHDOG_USEC counts only for the process WATCHDOG_PID names (or when it names none)", () => {
  assert.equal(watchdogMs({}), null);
  assert.equal(watchdogMs({ WATCHDOG_USEC: "30000000" }, 7), 30_000);
  assert.equal(watchdogMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 7), 30_000);
  assert.equal(watchdogMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "8" }, 7), null);
  assert.equal(watchdogMs({ WATCHDOG_USEC: "soon" }, 7), null);
});
