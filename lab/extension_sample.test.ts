import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { REPO_ROOT, defaultNetworkConfig } from "./cluster.js";

test("docs/extension.md shows the sample config `lab up --backend extension` uses", async () => {
  const page = await readFile(join(REPO_ROOT, "docs/extension.md"), "utf8");
  const shown = /```json\n([\s\S]*?)```/.exec(page)?.[1];
  assert.ok(shown, "a json block in docs/extension.md");
  const used = JSON.parse(defaultNetworkConfig("extension")) as { Backend: { Type: string } };
  assert.equal(used.Backend.Type, "extension");
  assert.deepEqual(JSON.parse(shown), used);
});
