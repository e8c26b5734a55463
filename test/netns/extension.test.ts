/**
 * The extension backend end to end on three lab hosts: the operator's commands make host-gw's
 * routes and pods reach each other; each command gets flannel's environment and stdin, and the
 * lease is flannel's bytes; a failing and a hanging add command are logged and bounded; leases
 * added and removed while flanneld was down get their commands when it is back; a failing
 * PreStartupCommand stops flanneld with its output.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  REPO_ROOT,
  killFlanneld,
  labEtcdctl,
  livePid,
  restartFlanneld,
} from "../../lab/cluster.js";
import type { Lab, LabNode } from "../../lab/cluster.js";
import { execIn, ip } from "../../lab/netns.js";
import { flannelctlOn } from "../../lab/lab_doctor.js";
import { runCapture } from "../../src/util/exec.js";
import { assertAllReach, eventually, putLease, subnetOf, withLab } from "../helpers/lab_fixture.js";

const leaseKey = (subnet: string) => `/coreos.com/network/subnets/${subnet}-24`;

/** Recording commands: each host appends what it ran to `<dir>/<its eth0 address>.log`. */
function recordingBackend(dir: string): Record<string, unknown> {
  const me = `me=$(ip -o -4 addr show dev eth0 | awk '{sub("/.*","",$4); print $4}')`;
  const log = `${dir}/$me.log`;
  return {
    Type: "extension",
    PreStartupCommand: "cat /sys/class/net/eth0/address",
    PostStartupCommand: `${me}; echo "post NETWORK=$NETWORK SUBNET=$SUBNET PUBLIC_IP=$PUBLIC_IP" >> ${log}`,
    SubnetAddCommand: [
      "case $PUBLIC_IP in 10.250.0.77) echo bad-add-output; exit 3;; 10.250.0.78) sleep 6061;; esac",
      me,
      `cat > ${dir}/$me-add-$(echo $SUBNET | tr / _).stdin`,
      `echo "add $SUBNET $PUBLIC_IP" >> ${log}`,
      "ip route replace $SUBNET via $PUBLIC_IP dev eth0",
    ].join("; "),
    SubnetRemoveCommand: [
      me,
      `cat > ${dir}/$me-remove-$(echo $SUBNET | tr / _).stdin`,
      `echo "remove $SUBNET $PUBLIC_IP" >> ${log}`,
      "ip route del $SUBNET via $PUBLIC_IP dev eth0",
    ].join("; "),
    CommandTimeout: 2,
  };
}

const recorded = async (dir: string, node: LabNode): Promise<string[]> =>
  (await readFile(join(dir, `${node.address}.log`), "utf8").catch(() => ""))
    .split("\n")
    .filter((l) => l !== "");

const macOf = async (node: LabNode) =>
  (await execIn(node.netns, "cat", ["/sys/class/net/eth0/address"])).trim();

/** A lease of a host that does not exist, as a flannel extension host writes it. */
async function fakeLease(lab: Lab, subnet: string, publicIP: string): Promise<void> {
  await putLease(
    lab,
    `${subnet}-24`,
    `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"extension","BackendData":"fake-${publicIP}"}`,
  );
}

const logLines = async (node: LabNode) =>
  (await readFile(node.logFile, "utf8"))
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("extension: commands make host-gw's routes, with flannel's env, stdin and lease; bounded failures; restart convergence", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-ext-"));
  try {
    const networkConfig = JSON.stringify({
      Network: "10.244.0.0/16",
      Backend: recordingBackend(dir),
    });
    await withLab(
      "ftext",
      { nodes: 3, pods: 1, backend: "extension", networkConfig },
      async (lab) => {
        const [h1, h2, h3] = lab.nodes;
        assert.ok(h1 && h2 && h3);
        await assertAllReach(lab);
        const [s1, s2, s3] = await Promise.all([subnetOf(h1), subnetOf(h2), subnetOf(h3)]);

        // The lease, byte for byte as flannel's extension backend writes it.
        assert.equal(
          (await labEtcdctl(lab, ["get", "--print-value-only", leaseKey(s1)])).trim(),
          `{"PublicIP":"10.250.0.11","PublicIPv6":null,"BackendType":"extension","BackendData":"${await macOf(h1)}"}`,
        );
        // PostStartupCommand's environment; the add command's, and its stdin: BackendData + "\n".
        const lines1 = await recorded(dir, h1);
        assert.deepEqual(
          lines1.filter((l) => l.startsWith("post ")),
          [`post NETWORK=10.244.0.0/16 SUBNET=${s1}/24 PUBLIC_IP=10.250.0.11`],
        );
        assert.ok(lines1.includes(`add ${s2}/24 ${h2.address}`), lines1.join("\n"));
        assert.equal(
          await readFile(join(dir, `${h1.address}-add-${s2}_24.stdin`), "utf8"),
          `${await macOf(h2)}\n`,
        );
        assert.match(
          await ip(["route", "show", `${s2}/24`], h1.netns),
          new RegExp(`via ${h2.address.replace(/\./g, "\\.")} dev eth0`),
        );
        // Every run is logged at info: the command, the lease, the exit code and time.
        const ran = (await logLines(h1)).find(
          (l) => l["msg"] === "Ran SubnetAddCommand" && l["subnet"] === `${s2}/24`,
        );
        assert.ok(ran, "h1 logged its add command for h2");
        assert.equal(ran["exitCode"], 0);
        assert.equal(typeof ran["ms"], "number");
        assert.match(String(ran["command"]), /ip route replace/);

        // A failing and a hanging add command: logged, the hang killed at the timeout, and the
        // lease after them still handled.
        await fakeLease(lab, "10.244.250.0", "10.250.0.77");
        await fakeLease(lab, "10.244.251.0", "10.250.0.78");
        await fakeLease(lab, "10.244.252.0", "10.250.0.79");
        await eventually(
          async () => {
            assert.match(
              await ip(["route", "show", "10.244.252.0/24"], h1.netns),
              /via 10\.250\.0\.79/,
            );
            const failures = (await logLines(h1)).filter(
              (l) => l["msg"] === "SubnetAddCommand failed",
            );
            assert.ok(
              failures.some((l) => l["exitCode"] === 3 && String(l["output"]) === "bad-add-output"),
              "the failing command's exit code and output",
            );
            assert.ok(
              failures.some((l) => /killed after the 2 s timeout/.test(String(l["end"]))),
              "the hanging command killed",
            );
          },
          { timeoutMs: 30_000 },
        );
        assert.ok((await livePid(h1.pidFile)) !== null, "flanneld still runs");
        // doctor names the leases whose add command never succeeded, and how it last ended.
        // flanneld logs a run before it writes extension-hooks.json (after each batch of leases),
        // which doctor reads: asked until it has the last batch.
        await eventually(
          async () => {
            const doctor = JSON.parse(
              (await flannelctlOn(lab, h1, ["doctor", "--json"])).stdout,
            ) as {
              checks: { name: string; notes?: string[] }[];
              findings: { check: string; subject: string; problem: string }[];
            };
            const hookFindings = doctor.findings
              .filter((f) => f.check.startsWith("hook-"))
              .map((f) => `${f.check} ${f.subject}`)
              .sort();
            assert.deepEqual(hookFindings, [
              "hook-add-failed 10.244.250.0-24",
              "hook-add-failed 10.244.251.0-24",
            ]);
            assert.match(
              doctor.findings.find((f) => f.subject === "10.244.251.0-24")?.problem ?? "",
              /killed after the 2 s timeout/,
            );
            const notes = doctor.checks.find((c) => c.name === "hooks")?.notes ?? [];
            assert.ok(
              notes.some((n) => n.startsWith(`${s2}-24: SubnetAddCommand ok (exit 0`)),
              notes.join("\n"),
            );
          },
          { timeoutMs: 30_000 },
        );
        const sleeping = await runCapture("pgrep", ["-f", "sleep 6061"]);
        assert.equal(sleeping.stdout.trim(), "", "no hanging command left behind");

        // Restart convergence: while h1's flanneld is down, .79's lease goes and .80's comes.
        await killFlanneld(h1, "SIGTERM");
        const mark = (await recorded(dir, h1)).length;
        await labEtcdctl(lab, ["del", leaseKey("10.244.252.0")]);
        await fakeLease(lab, "10.244.253.0", "10.250.0.80");
        await restartFlanneld(lab, h1);
        const since = async () => (await recorded(dir, h1)).slice(mark);
        await eventually(
          async () => {
            const now = await since();
            for (const want of [
              `add ${s2}/24`,
              `add ${s3}/24`,
              "add 10.244.253.0/24",
              "remove 10.244.252.0/24",
            ])
              assert.ok(
                now.some((l) => l.startsWith(want)),
                `${want} after the restart:\n${now.join("\n")}`,
              );
          },
          { timeoutMs: 30_000 },
        );
        const after = await since();
        assert.deepEqual(
          after.filter((l) => l.startsWith("remove ")),
          ["remove 10.244.252.0/24 10.250.0.79"],
          "exactly the vanished lease's remove command",
        );
        assert.equal(after.filter((l) => l.startsWith("add 10.244.253.0/24")).length, 1);
        assert.equal(
          await readFile(join(dir, `${h1.address}-remove-10.244.252.0_24.stdin`), "utf8"),
          "fake-10.250.0.79\n",
        );
        assert.equal((await ip(["route", "show", "10.244.252.0/24"], h1.netns)).trim(), "");

        // A removed lease: its remove command runs and its route goes (h3's flanneld stops).
        await labEtcdctl(lab, ["del", leaseKey(s3)]);
        await eventually(
          async () => {
            assert.equal((await ip(["route", "show", `${s3}/24`], h1.netns)).trim(), "");
            assert.ok((await recorded(dir, h1)).includes(`remove ${s3}/24 ${h3.address}`));
          },
          { timeoutMs: 30_000 },
        );

        // A failing PreStartupCommand stops flanneld with its output.
        const failing = JSON.stringify({
          Network: "10.245.0.0/16",
          Backend: { Type: "extension", PreStartupCommand: "echo pre-went-wrong; exit 4" },
        });
        await labEtcdctl(lab, ["put", "/pre-fails/network/config", failing]);
        const pre = await runCapture("timeout", [
          "60",
          "ip",
          "netns",
          "exec",
          h2.netns,
          join(REPO_ROOT, "bin/flanneld"),
          `--etcd-endpoints=${lab.etcdEndpoint}`,
          "--etcd-prefix=/pre-fails/network",
          "--iface=eth0",
          `--subnet-file=${join(dir, "pre-fails.env")}`,
        ]);
        assert.notEqual(pre.code, 0);
        assert.notEqual(pre.code, 124, "flanneld stopped by itself");
        assert.match(
          pre.stdout + pre.stderr,
          /PreStartupCommand failed \(exit 4\)[\s\S]*pre-went-wrong/,
        );
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("extension in Kubernetes mode, with the docs' sample config (lab up --backend extension): pods reach each other, doctor's hooks are clean", async () => {
  await withLab(
    "ftextk",
    { nodes: 2, pods: 1, backend: "extension", datastore: "kube" },
    async (lab) => {
      const [h1, h2] = lab.nodes;
      assert.ok(h1 && h2);
      await assertAllReach(lab);
      const s2 = await subnetOf(h2);
      assert.match(
        await ip(["route", "show", `${s2}/24`], h1.netns),
        new RegExp(`via ${h2.address.replace(/\./g, "\\.")} dev eth0`),
      );
      const doctor = await flannelctlOn(lab, h1, ["doctor"]);
      assert.match(doctor.stdout, /✓ hooks: ok\n {2}\S+-24: SubnetAddCommand ok \(exit 0/);
    },
  );
});
