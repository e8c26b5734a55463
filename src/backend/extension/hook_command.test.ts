import assert from "node:assert/strict";
import { test } from "node:test";
import { OUTPUT_KEPT_BYTES, endOf, runHook, succeeded } from "./hook_command.js";

const opts = (over: Partial<Parameters<typeof runHook>[1]> = {}) => ({
  env: {},
  stdin: "",
  timeoutMs: 30_000,
  signal: new AbortController().signal,
  ...over,
});

test("runHook: sh -c with the hook's variables, stdin + newline, combined output trimmed", async () => {
  const run = await runHook('printf "%s|" "$SUBNET"; od -An -c; echo err >&2', {
    ...opts({ env: { SUBNET: "10.244.3.0/24" }, stdin: "data" }),
  });
  assert.ok(succeeded(run));
  assert.match(run.output, /^10\.244\.3\.0\/24\|\s+d\s+a\s+t\s+a\s+\\n\nerr$/);
});

test("runHook: an exit code, a timeout and a stop are told apart; the whole group is killed", async () => {
  const failed = await runHook("echo out; exit 3", opts());
  assert.equal(failed.code, 3);
  assert.equal(endOf(failed, 1_000), "exit 3");
  assert.ok(!succeeded(failed));

  const hung = await runHook("sleep 6062 & wait", opts({ timeoutMs: 200 }));
  assert.equal(hung.killed, "timeout");
  assert.equal(endOf(hung, 200), "killed after the 0.2 s timeout");

  const controller = new AbortController();
  const stopping = runHook("sleep 6062", opts({ signal: controller.signal }));
  controller.abort();
  assert.equal((await stopping).killed, "stopped");
  const { execFileSync } = await import("node:child_process");
  let left = "";
  try {
    left = execFileSync("pgrep", ["-f", "sleep 6062"]).toString();
  } catch {
    left = ""; // pgrep exits 1 when nothing matches
  }
  assert.equal(left, "", "no sleep left behind");
});

test("runHook: keeps the end of a long output", async () => {
  const run = await runHook(
    `head -c ${OUTPUT_KEPT_BYTES * 2} /dev/zero | tr '\\0' a; echo END`,
    opts(),
  );
  assert.ok(run.output.length <= OUTPUT_KEPT_BYTES);
  assert.ok(run.output.endsWith("aEND"));
});
