/**
 * Runs the Netlink contract suite against the real kernel, in a namespace of its own (RtNetlink
 * acts on the namespace of the process that opens it), and fails with its report when any case
 * fails there.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "../../lab/cluster.js";
import { addNetns, deleteNetns, uniquePrefix } from "../../lab/netns.js";
import { runCapture } from "../../src/util/exec.js";

test("the Netlink contract holds for RtNetlink on a real kernel", async () => {
  const netns = uniquePrefix("ftnl");
  await addNetns(netns);
  try {
    const { code, stdout, stderr } = await runCapture(
      "ip",
      [
        "netns",
        "exec",
        netns,
        process.execPath,
        "--test",
        "--test-reporter=tap",
        join(REPO_ROOT, "dist/test/helpers/netlink_contract_rtnetlink.js"),
      ],
      {
        // A test runner inside a test run reports to its parent unless told it is on its own.
        env: Object.fromEntries(
          Object.entries(process.env).filter(([k]) => k !== "NODE_TEST_CONTEXT"),
        ),
      },
    );
    assert.match(stdout, /^# pass [1-9]\d*$/m, "the cases ran");
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /^# fail 0$/m);
  } finally {
    await deleteNetns(netns);
  }
});
