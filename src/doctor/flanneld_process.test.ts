import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findFlanneld } from "./flanneld_process.js";

/** A /proc of our own: each process's command line, environment and network namespace. */
async function fakeProc(
  dir: string,
  processes: Record<string, { argv: string[]; env?: string[]; net?: string }>,
): Promise<void> {
  await mkdir(join(dir, "self", "ns"), { recursive: true });
  await symlink("net:[1]", join(dir, "self", "ns", "net"));
  for (const [pid, { argv, env = [], net = "net:[1]" }] of Object.entries(processes)) {
    await mkdir(join(dir, pid, "ns"), { recursive: true });
    await writeFile(join(dir, pid, "cmdline"), argv.map((a) => `${a}\0`).join(""));
    await writeFile(join(dir, pid, "environ"), env.map((e) => `${e}\0`).join(""));
    await symlink(net, join(dir, pid, "ns", "net"));
  }
}

test("findFlanneld finds flanneld run by Node, with Node's flags before it, or packaged", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-proc-"));
  try {
    await fakeProc(dir, {
      "10": {
        argv: ["node", "--max-semi-space-size=1", "/repo/bin/flanneld", "--iface=eth0"],
        env: ["FLANNELD_IP_MASQ=true", "HOME=/root"],
      },
      "11": { argv: ["/usr/bin/flanneld", "-v=2"] },
      "12": { argv: ["node", "/repo/bin/flanneld", "--kube-subnet-mgr"] },
      "20": { argv: ["node", "/repo/bin/flannelctl", "doctor"] },
      "21": { argv: ["node", "--max-semi-space-size=1", "server.js", "flanneld"] },
      "22": { argv: ["/usr/bin/flanneld"], net: "net:[2]" },
    });
    const found = (await findFlanneld(dir)).sort((a, b) => a.pid - b.pid);
    assert.deepEqual(found, [
      { pid: 10, args: ["--iface=eth0"], env: { FLANNELD_IP_MASQ: "true" } },
      { pid: 11, args: ["-v=2"], env: {} },
      { pid: 12, args: ["--kube-subnet-mgr"], env: {} },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
