/** Test helpers for lab-based tests: a lab that is always taken down, and polling. */
import { setTimeout as delay } from "node:timers/promises";
import { labDown, labUp } from "../../src/lab/cluster.js";
import type { Lab, LabSpec } from "../../src/lab/cluster.js";
import { uniquePrefix } from "../../src/lab/netns.js";

const quiet = () => undefined;

/** Runs a test body against a fresh lab with a unique name; the lab is taken down in any case. */
export async function withLab(
  tag: string,
  spec: Omit<LabSpec, "name">,
  body: (lab: Lab) => Promise<void>,
): Promise<void> {
  const name = uniquePrefix(tag);
  try {
    await body(await labUp({ ...spec, name }, quiet));
  } finally {
    await labDown(name, quiet);
  }
}

/** Polls until `check` passes, or rethrows its last failure after `timeoutMs`. */
export async function eventually(check: () => Promise<void>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(200);
    }
  }
}
