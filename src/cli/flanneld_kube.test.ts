/**
 * flanneld --kube-subnet-mgr refusing what it cannot use, before it touches the network: each
 * case exits 1 with a message that names what is wrong and what to do. No API server is
 * contacted (the URL given is never reached in these cases).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { runCapture } from "../util/exec.js";

const BIN = resolve(import.meta.dirname, "../../../bin/flanneld");
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "flannel-ts-kubeflags-"));
  await writeFile(
    join(dir, "net-conf.json"),
    '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}',
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const url = "--kube-api-url=http://127.0.0.1:9";
const cases: { name: string; args: () => string[]; env: Record<string, string>; error: RegExp }[] =
  [
    {
      name: "no NODE_NAME and no POD_NAME/POD_NAMESPACE",
      args: () => ["--kube-subnet-mgr", url, `--net-config-path=${join(dir, "net-conf.json")}`],
      env: {},
      error: /Cannot find this node's name: set NODE_NAME, or POD_NAME and POD_NAMESPACE/,
    },
    {
      name: "an invalid --kube-annotation-prefix",
      args: () => ["--kube-subnet-mgr", url, "--kube-annotation-prefix=example.com/a/b"],
      env: { NODE_NAME: "n1" },
      error:
        /Invalid --kube-annotation-prefix "example\.com\/a\/b": subnet\/kube: prefix can contain at most single slash/,
    },
    {
      name: "neither --kube-api-url nor --kubeconfig-file outside a pod",
      args: () => ["--kube-subnet-mgr"],
      env: { NODE_NAME: "n1" },
      error: /not running in a pod .*: pass --kube-api-url or --kubeconfig-file/,
    },
    {
      name: "a --kubeconfig-file that does not exist",
      args: () => ["--kube-subnet-mgr", `--kubeconfig-file=${join(dir, "missing")}`],
      env: { NODE_NAME: "n1" },
      error: /Cannot load --kubeconfig-file ".*missing"/,
    },
    {
      name: "a --net-config-path that does not exist",
      args: () => ["--kube-subnet-mgr", url, `--net-config-path=${join(dir, "nope.json")}`],
      env: { NODE_NAME: "n1" },
      error:
        /Cannot read network config ".*nope\.json": file does not exist: mount the kube-flannel-cfg ConfigMap's net-conf\.json there, or set --net-config-path/,
    },
  ];

for (const tc of cases) {
  test(`flanneld --kube-subnet-mgr exits 1 on ${tc.name}, saying so`, async () => {
    const { code, stderr } = await runCapture(
      BIN,
      [...tc.args(), `--subnet-file=${join(dir, "subnet.env")}`],
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...tc.env },
      },
    );
    assert.equal(code, 1, stderr);
    // The log is JSON lines; the reason is the failure line's `err`.
    const reasons = stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => (JSON.parse(line) as { err?: string }).err ?? "");
    assert.match(reasons.join("\n"), tc.error);
  });
}
