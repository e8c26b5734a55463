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

  test("kubectl apply -f creates a Namespace and a NetworkPolicy, and applies a change to it", async () => {
    const file = join(dir, "netpol.yaml");
    const manifest = (port: number) =>
      [
        "apiVersion: v1",
        "kind: Namespace",
        "metadata: {name: kx}",
        "---",
        "apiVersion: networking.k8s.io/v1",
        "kind: NetworkPolicy",
        "metadata: {name: allow-y, namespace: kx}",
        "spec:",
        "  podSelector: {matchLabels: {pod: a}}",
        "  ingress:",
        '  - from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]',
        `    ports: [{port: ${port}, protocol: TCP}]`,
        "",
      ].join("\n");
    await writeFile(file, manifest(80));
    assert.match(
      await kubectl("apply", "-f", file),
      /networkpolicy\.networking\.k8s\.io\/allow-y created/,
    );
    await writeFile(file, manifest(81));
    assert.match(
      await kubectl("apply", "-f", file),
      /networkpolicy\.networking\.k8s\.io\/allow-y configured/,
    );
    const stored = double.store.get("networkpolicies", "kx/allow-y") as unknown as {
      spec: { ingress: { ports: { port: number }[] }[] };
    };
    assert.equal(stored.spec.ingress[0]?.ports[0]?.port, 81);
    assert.equal(
      (await kubectl("get", "netpol", "-A", "-o", "name")).trim(),
      "networkpolicy.networking.k8s.io/allow-y",
    );
    const ns = double.store.get("namespaces", "kx") as unknown as {
      metadata: { labels: Record<string, string> };
    };
    assert.equal(ns.metadata.labels["kubernetes.io/metadata.name"], "kx");
  });

  test("kubectl label changes a Pod's and a Namespace's labels; get -l selects by them", async () => {
    await new KubeAdmin({ url: double.url }).create("/api/v1/namespaces/kx/pods", {
      metadata: { name: "a", labels: { pod: "a" } },
      spec: { nodeName: "k1", containers: [{ name: "c", image: "i" }] },
      status: { podIP: "10.244.1.5", podIPs: [{ ip: "10.244.1.5" }] },
    });
    await kubectl("label", "pod", "a", "-n", "kx", "pod2=updated");
    await kubectl("label", "namespace", "kx", "ns2=updated");
    const pod = double.store.get("pods", "kx/a") as unknown as {
      metadata: { labels: Record<string, string> };
      status: { podIP: string };
    };
    assert.deepEqual(pod.metadata.labels, { pod: "a", pod2: "updated" });
    assert.equal(pod.status.podIP, "10.244.1.5", "a label keeps the status");
    assert.equal(
      (await kubectl("get", "pods", "-n", "kx", "-l", "pod2=updated", "-o", "name")).trim(),
      "pod/a",
    );
    assert.equal(
      (await kubectl("get", "namespaces", "-l", "ns2", "-o", "name")).trim(),
      "namespace/kx",
    );
  });

  test("kubectl delete deletes the NetworkPolicy, then the Namespace with its Pods", async () => {
    // By name: the double deletes a Namespace's objects at once (no Terminating phase), so a
    // `delete -f` listing the Namespace first would find the policy gone already.
    await kubectl("delete", "networkpolicy", "allow-y", "-n", "kx");
    assert.deepEqual(double.store.list("networkpolicies"), []);
    await kubectl("delete", "namespace", "kx");
    assert.deepEqual(double.store.list("networkpolicies"), []);
    assert.deepEqual(
      double.store.list("pods").filter((p) => p.metadata.namespace === "kx"),
      [],
    );
    assert.equal((await kubectl("get", "netpol", "-A", "-o", "name")).trim(), "");
  });
});
