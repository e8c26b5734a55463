/** Test helpers for lab-based tests: a lab that is always taken down, and polling. */
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

export { eventually } from "../../src/util/poll.js";
