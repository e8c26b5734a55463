import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { addNetns, deleteNetns, ip, uniquePrefix } from "../../lab/netns.js";
import { REPO_ROOT } from "../helpers/single_host.js";

const exec = promisify(execFile);

test("txChecksumOffload() reads a VXLAN device's TX checksum offload; setTxChecksumOffload() turns it off", async () => {
  const ns = uniquePrefix("fteth");
  await addNetns(ns);
  try {
    await ip(["link", "add", "vx0", "type", "vxlan", "id", "7", "dstport", "4789"], ns);
    const module = join(REPO_ROOT, "dist/src/net/ethtool.js");
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
