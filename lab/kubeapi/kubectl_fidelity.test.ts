/**
 * The double's fidelity, checked by an independent client: the real kubectl (client-go 1.32,
 * preinstalled on these machines) pointed at it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../src/util/exec.js";
import { waitFor } from "../poll.js";
import { KubeAdmin } from "./admin_client.js";
import { startKubeApiDouble } from "./server.js";
import type { KubeApiDouble } from "./server.js";

interface NodeJson {
  metadata: { annotations?: Record<string, string> };
  status: { conditions: { type: string; status: string }[] };
}

describe("kubectl against the Kubernetes API double", () => {
  let double: KubeApiDouble;
  let dir: string;
  let kubeconfig: string;
  const kubectl = (...args: string[]) => run("kubectl", ["--kubeconfig", kubeconfig, ...args]);
  const node = () => double.store.get("nodes", "k1") as unknown as NodeJson;

  before(async () => {
    double = await startKubeApiDouble();
    dir = await mkdtemp(join(tmpdir(), "flannel-ts-kubectl-"));
    kubeconfig = join(dir, "kubeconfig");
    await writeFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        `clusters: [{name: double, cluster: {server: "${double.url}"}}]`,
        "users: [{name: admin, user: {}}]",
        "contexts: [{name: double, context: {cluster: double, user: admin}}]",
        "current-context: double",
        "",
      ].join("\n"),
    );
    await new KubeAdmin({ url: double.url }).createNode({ name: "k1", podCIDR: "10.244.1.0/24" });
  });
  after(async () => {
    await double.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("kubectl get nodes lists the Nodes", async () => {
    const out = await kubectl("get", "nodes", "-o", "name");
    assert.equal(out.trim(), "node/k1");
  });

  test("kubectl get nodes -w sees a change", async () => {
    const child = spawn("kubectl", [
      "--kubeconfig",
      kubeconfig,
      "get",
      "nodes",
      "-w",
      "--output-watch-events",
    ]);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor("kubectl to list k1", () => Promise.resolve(output.includes("ADDED")), {
        timeoutMs: 20_000,
      });
      await kubectl("annotate", "node", "k1", "seen-by-watch=yes");
      await waitFor(
        "kubectl -w to print the change",
        () => Promise.resolve(output.includes("MODIFIED")),
        { timeoutMs: 20_000 },
      );
    } finally {
      child.kill();
    }
    assert.match(output, /MODIFIED\s+k1/);
  });

  test("kubectl annotate sets an annotation", async () => {
    await kubectl("annotate", "node", "k1", "flannel.alpha.coreos.com/public-ip=10.0.0.9");
    assert.equal(node().metadata.annotations?.["flannel.alpha.coreos.com/public-ip"], "10.0.0.9");
  });

  test("kubectl patch --subresource=status --type=strategic merges conditions by type", async () => {
    await kubectl(
      "patch",
      "node",
      "k1",
      "--subresource=status",
      "--type=strategic",
      "-p",
      '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp"}]}}',
    );
    assert.deepEqual(
      node().status.conditions.map((c) => `${c.type}=${c.status}`),
      ["Ready=True", "NetworkUnavailable=False"],
    );
  });

  test("kubectl patch --subresource=status --type=merge", async () => {
    await kubectl(
      "patch",
      "node",
      "k1",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"metadata":{"annotations":{"by-merge":"1"}}}',
    );
    assert.equal(node().metadata.annotations?.["by-merge"], "1");
  });

  test("kubectl patch --subresource=status --type=json", async () => {
    await kubectl(
      "patch",
      "node",
      "k1",
      "--subresource=status",
      "--type=json",
      "-p",
      '[{"op":"replace","path":"/status/conditions/0/status","value":"False"}]',
    );
    assert.equal(node().status.conditions[0]?.status, "False");
  });
});
