import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { handleCniRequest } from "./plugin.js";

/** A data dir holding the saved state of two attachments, as ADD leaves it. */
async function withSavedState(fn: (dataDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "ftcp-"));
  try {
    const dataDir = join(dir, "flannel");
    await mkdir(dataDir);
    for (const id of ["pod-a", "pod-b"])
      await writeFile(join(dataDir, id), '{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}');
    await fn(dataDir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const gcCases = [
  {
    name: "an older conflist (1.0.0)",
    version: "1.0.0",
    code: 1,
    msg: /config version does not allow GC/,
  },
  { name: "a conflist without cniVersion", version: undefined, code: 1, msg: /does not allow GC/ },
  {
    name: "a 1.1.0 conflist without cni.dev/valid-attachments",
    version: "1.1.0",
    code: 0,
    msg: null,
  },
];
for (const tc of gcCases) {
  test(`handleCniRequest() GC with ${tc.name} releases nothing`, async () => {
    await withSavedState(async (dataDir) => {
      const conf = {
        ...(tc.version === undefined ? {} : { cniVersion: tc.version }),
        name: "cbr0",
        type: "flannel",
        dataDir,
      };
      const response = await handleCniRequest({
        env: { CNI_COMMAND: "GC", CNI_PATH: "/nonexistent" },
        stdin: JSON.stringify(conf),
      });
      if (tc.msg === null) {
        assert.equal(response.code, 0, response.stdout);
      } else {
        assert.equal(response.code, 1);
        const error = JSON.parse(response.stdout) as { code: number; msg: string };
        assert.equal(error.code, tc.code, response.stdout);
        assert.match(error.msg, tc.msg);
      }
      assert.deepEqual((await readdir(dataDir)).sort(), ["pod-a", "pod-b"]);
    });
  });
}

test("handleCniRequest() GC on 1.1.0 releases what is not listed (its delegate missing: kept and named)", async () => {
  // The proof that GC acts at all: the unlisted attachment is tried (its delegate cannot be
  // found here, so the state stays and the error names it), the listed one is not.
  await withSavedState(async (dataDir) => {
    const response = await handleCniRequest({
      env: { CNI_COMMAND: "GC", CNI_PATH: "/nonexistent" },
      stdin: JSON.stringify({
        cniVersion: "1.1.0",
        name: "cbr0",
        type: "flannel",
        dataDir,
        "cni.dev/valid-attachments": [{ containerID: "pod-a", ifname: "eth0" }],
      }),
    });
    assert.equal(response.code, 1);
    const error = JSON.parse(response.stdout) as { details: string };
    assert.match(error.details, /^pod-b: failed to find plugin "bridge"/);
    assert.doesNotMatch(error.details, /pod-a/);
  });
});

const versionCases = [
  { command: "STATUS", version: "1.0.0", refused: true },
  { command: "STATUS", version: "0.4.0", refused: true },
  { command: "CHECK", version: "0.3.1", refused: true },
  { command: "CHECK", version: "0.4.0", refused: false },
];
for (const tc of versionCases) {
  test(`handleCniRequest() ${tc.command} on cniVersion ${tc.version} is ${tc.refused ? "refused with code 1" : "served"}`, async () => {
    const response = await handleCniRequest({
      env: {
        CNI_COMMAND: tc.command,
        CNI_CONTAINERID: "pod-x",
        CNI_NETNS: "/nonexistent",
        CNI_IFNAME: "eth0",
        CNI_PATH: "/nonexistent",
      },
      stdin: JSON.stringify({
        cniVersion: tc.version,
        name: "cbr0",
        type: "flannel",
        dataDir: "/nonexistent",
      }),
    });
    const error = JSON.parse(response.stdout) as { code: number; msg: string };
    if (tc.refused) {
      assert.equal(error.code, 1, response.stdout);
      assert.match(error.msg, new RegExp(`config version does not allow ${tc.command}`));
    } else {
      assert.notEqual(error.code, 1, response.stdout); // CHECK ran: no saved state (code 3)
      assert.equal(error.code, 3, response.stdout);
    }
  });
}

test("handleCniRequest() STATUS on 1.1.0 without subnet.env answers code 50", async () => {
  const response = await handleCniRequest({
    env: { CNI_COMMAND: "STATUS" },
    stdin: JSON.stringify({
      cniVersion: "1.1.0",
      name: "cbr0",
      type: "flannel",
      subnetFile: "/nonexistent/subnet.env",
    }),
  });
  assert.equal((JSON.parse(response.stdout) as { code: number }).code, 50, response.stdout);
});
