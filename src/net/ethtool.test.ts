import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { hasVxlanChecksumBug } from "../doctor/check_kernel.js";
import { addNetns, deleteNetns, ip, uniquePrefix } from "../lab/netns.js";

const exec = promisify(execFile);

test("the VXLAN checksum bug is taken as present before Linux 5.7 only", () => {
  assert.equal(hasVxlanChecksumBug("4.18.0-348.el8.x86_64"), true);
  assert.equal(hasVxlanChecksumBug("5.6.19"), true);
  assert.equal(hasVxlanChecksumBug("5.7.0"), false);
  assert.equal(hasVxlanChecksumBug("6.18.44-fc"), false);
  assert.equal(hasVxlanChecksumBug("unknown"), false);
});

test("txChecksumOffload() reads a VXLAN device's TX checksum offload; setTxChecksumOffload() turns it off", async () => {
  const ns = uniquePrefix("fteth");
  await addNetns(ns);
  try {
    await ip(["link", "add", "vx0", "type", "vxlan", "id", "7", "dstport", "4789"], ns);
    const module = fileURLToPath(new URL("./ethtool.js", import.meta.url));
    const script = `
      const m = await import(${JSON.stringify(module)});
      const before = m.txChecksumOffload("vx0");
      m.setTxChecksumOffload("vx0", false);
      let missing = null;
      try { m.txChecksumOffload("nosuch0"); } catch (err) { missing = err.code; }
      console.log(JSON.stringify({ before, after: m.txChecksumOffload("vx0"), missing }));`;
    const { stdout } = await exec("ip", [
      "netns",
      "exec",
      ns,
      process.execPath,
      "--input-type=module",
      "-e",
      script,
    ]);
    assert.deepEqual(JSON.parse(stdout), { before: true, after: false, missing: "ENODEV" });
  } finally {
    await deleteNetns(ns);
  }
});
