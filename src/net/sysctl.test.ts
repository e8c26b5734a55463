import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../errors.js";
import { checkBrNetfilter } from "./sysctl.js";

test("checkBrNetfilter() refuses a kernel without br_netfilter, naming the file and the fix, as flannel does", async () => {
  const proc = await mkdtemp(join(tmpdir(), "flannel-ts-proc-"));
  try {
    assert.throws(
      () => checkBrNetfilter({ enableIPv4: true, enableIPv6: false }, proc),
      (err: unknown) =>
        err instanceof ConfigError &&
        /Failed to check br_netfilter: stat .*bridge-nf-call-iptables: no such file or directory: load the module with "modprobe br_netfilter"/.test(
          err.message,
        ),
    );
    await mkdir(join(proc, "sys/net/bridge"), { recursive: true });
    await writeFile(join(proc, "sys/net/bridge/bridge-nf-call-iptables"), "1\n");
    checkBrNetfilter({ enableIPv4: true, enableIPv6: false }, proc);
    assert.throws(
      () => checkBrNetfilter({ enableIPv4: true, enableIPv6: true }, proc),
      /bridge-nf-call-ip6tables/,
    );
  } finally {
    await rm(proc, { recursive: true, force: true });
  }
});
