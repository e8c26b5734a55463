import assert from "node:assert/strict";
import { get } from "node:http";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { KubeAdmin } from "./admin_client.js";
import { startKubeApiDouble } from "./server.js";
import type { KubeApiDouble } from "./server.js";

interface StreamEvent {
  type: string;
  object: { metadata?: { name?: string }; code?: number };
}

/** Reads a watch stream until `count` events arrived or the stream ended (or was cut). */
function watchEvents(
  url: string,
  count: number,
): Promise<{ status: number; events: StreamEvent[] }> {
  return new Promise((resolve, reject) => {
    const events: StreamEvent[] = [];
    const req = get(url, { headers: { Authorization: "Bearer admin-token" } }, (res) => {
      const status = res.statusCode ?? 0;
      const finish = () => {
        resolve({ status, events });
      };
      if (status !== 200) {
        res.resume();
        res.on("end", finish);
        return;
      }
      const lines = createInterface({ input: res });
      lines.on("line", (line) => {
        events.push(JSON.parse(line) as StreamEvent);
        if (events.length >= count) req.destroy();
      });
      lines.on("close", finish);
      lines.on("error", finish);
      res.on("error", finish); // a cut connection ends the stream too
    });
    req.on("error", (err) => {
      if (events.length > 0 || req.destroyed) resolve({ status: 200, events });
      else reject(err);
    });
  });
}

describe("Kubernetes API double", () => {
  let double: KubeApiDouble;
  let admin: KubeAdmin;
  before(async () => {
    double = await startKubeApiDouble({
      users: {
        "flannel-token": {
          name: "system:serviceaccount:kube-flannel:flannel",
          rules: [
            { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
            { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
            { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch"] },
          ],
        },
        "admin-token": {
          name: "admin",
          rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
        },
      },
      anonymous: null,
    });
    admin = new KubeAdmin({ url: double.url }, "admin-token");
    await admin.createNode({ name: "n1", podCIDR: "10.244.1.0/24" });
  });
  after(async () => {
    await double.close();
  });

  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${double.url}${path}`, {
      ...init,
      headers: {
        Authorization: `Bearer ${init.token ?? "admin-token"}`,
        ...(init.headers as Record<string, string> | undefined),
      },
    });

  test("every write bumps the one resourceVersion, and a list returns it", async () => {
    const before = (await (await call("/api/v1/nodes")).json()) as {
      metadata: { resourceVersion: string };
    };
    await admin.annotate("n1", { x: "1" });
    const after = (await (await call("/api/v1/nodes")).json()) as {
      metadata: { resourceVersion: string };
      items: { metadata: { resourceVersion: string } }[];
    };
    assert.equal(
      Number(after.metadata.resourceVersion),
      Number(before.metadata.resourceVersion) + 1,
    );
    assert.equal(after.items[0]?.metadata.resourceVersion, after.metadata.resourceVersion);
  });

  test("a watch from a resourceVersion replays what came after it, then streams", async () => {
    const list = (await (await call("/api/v1/nodes")).json()) as {
      metadata: { resourceVersion: string };
    };
    await admin.annotate("n1", { y: "1" });
    const watching = watchEvents(
      `${double.url}/api/v1/nodes?watch=true&resourceVersion=${list.metadata.resourceVersion}`,
      2,
    );
    await admin.createNode({ name: "n2", podCIDR: "10.244.2.0/24" });
    const { events } = await watching;
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}`),
      ["MODIFIED n1", "ADDED n2"],
    );
    await admin.deleteNode("n2");
  });

  test("a watch from resourceVersion 0 starts with ADDED for every object", async () => {
    const { events } = await watchEvents(`${double.url}/api/v1/nodes?watch=1&resourceVersion=0`, 1);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}`),
      ["ADDED n1"],
    );
  });

  test("an expired resourceVersion gets an in-stream 410 Expired, or HTTP 410 when asked", async () => {
    const list = (await (await call("/api/v1/nodes")).json()) as {
      metadata: { resourceVersion: string };
    };
    double.faults.expire();
    const inStream = await watchEvents(
      `${double.url}/api/v1/nodes?watch=true&resourceVersion=${Number(list.metadata.resourceVersion) - 1}`,
      5,
    );
    assert.equal(inStream.events.length, 1);
    assert.equal(inStream.events[0]?.type, "ERROR");
    assert.equal(inStream.events[0]?.object.code, 410);
    double.faults.expire({ http: true });
    const http = await watchEvents(`${double.url}/api/v1/nodes?watch=true&resourceVersion=1`, 1);
    assert.equal(http.status, 410);
    double.faults.expire({ http: false });
  });

  test("PATCH with an unknown content type is 415, a stale resourceVersion 409", async () => {
    const r415 = await call("/api/v1/nodes/n1", {
      method: "PATCH",
      body: "{}",
      headers: { "Content-Type": "application/json" },
    });
    assert.equal(r415.status, 415);
    const r409 = await call("/api/v1/nodes/n1", {
      method: "PATCH",
      body: JSON.stringify({ metadata: { resourceVersion: "1", annotations: { z: "1" } } }),
      headers: { "Content-Type": "application/merge-patch+json" },
    });
    assert.equal(r409.status, 409);
    const status = (await r409.json()) as { kind: string; reason: string };
    assert.deepEqual([status.kind, status.reason], ["Status", "Conflict"]);
  });

  test("a patch on nodes/status keeps the spec; one on the node keeps the status", async () => {
    await call("/api/v1/nodes/n1/status", {
      method: "PATCH",
      body: JSON.stringify({
        spec: { podCIDR: "10.9.9.0/24" },
        status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] },
      }),
      headers: { "Content-Type": "application/strategic-merge-patch+json" },
    });
    await call("/api/v1/nodes/n1", {
      method: "PATCH",
      body: JSON.stringify({ status: { conditions: [] } }),
      headers: { "Content-Type": "application/merge-patch+json" },
    });
    const n1 = (await admin.getNode("n1")) as {
      spec: { podCIDR: string };
      status: { conditions: { type: string }[] };
    };
    assert.equal(n1.spec.podCIDR, "10.244.1.0/24");
    assert.deepEqual(
      n1.status.conditions.map((c) => c.type),
      ["Ready", "NetworkUnavailable"],
    );
  });

  test("RBAC: flannel's role may patch nodes/status but not nodes; no token is 401; the audit records both", async () => {
    const allowed = await call("/api/v1/nodes/n1/status", {
      token: "flannel-token",
      method: "PATCH",
      body: JSON.stringify({ metadata: { annotations: { f: "1" } } }),
      headers: { "Content-Type": "application/strategic-merge-patch+json" },
    });
    assert.equal(allowed.status, 200);
    const refused = await call("/api/v1/nodes/n1", {
      token: "flannel-token",
      method: "PATCH",
      body: "{}",
      headers: { "Content-Type": "application/merge-patch+json" },
    });
    assert.equal(refused.status, 403);
    const status = (await refused.json()) as { message: string; reason: string };
    assert.equal(status.reason, "Forbidden");
    assert.equal(
      status.message,
      'nodes "n1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot patch resource "nodes" in API group "" at the cluster scope',
    );
    assert.equal((await fetch(`${double.url}/api/v1/nodes`)).status, 401);
    const mine = double.audit.filter((r) => r.user.includes("flannel"));
    assert.deepEqual(
      mine.map((r) => `${r.verb} ${r.resource}/${r.subresource} ${r.code}`),
      ["patch nodes/status 200", "patch nodes/ 403"],
    );
  });

  test("faults: cut-watches ends open streams; fail answers 500 for the next requests", async () => {
    const watching = watchEvents(`${double.url}/api/v1/nodes?watch=true&resourceVersion=0`, 10);
    while (double.openWatches === 0) await new Promise((r) => setImmediate(r));
    double.faults.cutWatches();
    const { events } = await watching;
    assert.equal(events.length, 1, "the stream ended after the initial ADDED");
    double.faults.fail(500, 2);
    assert.equal((await call("/api/v1/nodes")).status, 500);
    assert.equal((await call("/api/v1/nodes")).status, 500);
    assert.equal((await call("/api/v1/nodes")).status, 200);
  });

  test("discovery names the networking.k8s.io group and its NetworkPolicies; OpenAPI v3 names the PATCH paths", async () => {
    const groups = (await (await call("/apis")).json()) as { groups: { name: string }[] };
    assert.deepEqual(
      groups.groups.map((g) => g.name),
      ["networking.k8s.io"],
    );
    const resources = (await (await call("/apis/networking.k8s.io/v1")).json()) as {
      groupVersion: string;
      resources: { name: string; namespaced: boolean; kind: string }[];
    };
    assert.equal(resources.groupVersion, "networking.k8s.io/v1");
    assert.deepEqual(resources.resources, [
      {
        name: "networkpolicies",
        singularName: "networkpolicy",
        namespaced: true,
        kind: "NetworkPolicy",
        verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
        shortNames: ["netpol"],
      },
    ]);
    const core = (await (await call("/api/v1")).json()) as { resources: { name: string }[] };
    assert.deepEqual(
      core.resources.map((r) => r.name),
      ["namespaces", "namespaces/status", "nodes", "nodes/status", "pods", "pods/status"],
    );
    const root = (await (await call("/openapi/v3")).json()) as { paths: Record<string, unknown> };
    assert.deepEqual(Object.keys(root.paths), ["api/v1", "apis/networking.k8s.io/v1"]);
  });

  test("NetworkPolicies: namespaced create, list across namespaces, watch, 410; a Namespace gets its name label and takes its objects along", async () => {
    await admin.createNamespace("np1", { team: "a" });
    const ns = (await (await call("/api/v1/namespaces/np1")).json()) as {
      metadata: { labels: Record<string, string> };
    };
    assert.deepEqual(ns.metadata.labels, { team: "a", "kubernetes.io/metadata.name": "np1" });
    const path = "/apis/networking.k8s.io/v1/namespaces/np1/networkpolicies";
    const list = (await (await call("/apis/networking.k8s.io/v1/networkpolicies")).json()) as {
      kind: string;
      apiVersion: string;
      metadata: { resourceVersion: string };
    };
    assert.deepEqual([list.kind, list.apiVersion], ["NetworkPolicyList", "networking.k8s.io/v1"]);
    const watching = watchEvents(
      `${double.url}/apis/networking.k8s.io/v1/networkpolicies?watch=true&resourceVersion=${list.metadata.resourceVersion}`,
      2,
    );
    await admin.create(path, { metadata: { name: "deny" }, spec: { podSelector: {} } });
    await admin.delete("/api/v1/namespaces/np1");
    const { events } = await watching;
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}`),
      ["ADDED deny", "DELETED deny"],
    );
    const stored = double.store.list("networkpolicies");
    assert.deepEqual(stored, []);
    double.faults.expire();
    const expired = await watchEvents(
      `${double.url}/apis/networking.k8s.io/v1/networkpolicies?watch=true&resourceVersion=${list.metadata.resourceVersion}`,
      1,
    );
    assert.equal(expired.events[0]?.object.code, 410);
  });

  test("RBAC checks the API group: a core-group rule does not open NetworkPolicies", async () => {
    const res = await call("/apis/networking.k8s.io/v1/networkpolicies", {
      token: "flannel-token",
    });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { message: string };
    assert.equal(
      body.message,
      'networkpolicies is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot list resource "networkpolicies" in API group "networking.k8s.io" at the cluster scope',
    );
  });

  test("labelSelector filters lists: equality, inequality, existence and set terms", async () => {
    await admin.createNamespace("sel1", { tier: "web", env: "prod" });
    await admin.createNamespace("sel2", { tier: "db" });
    const names = async (selector: string) => {
      const list = (await (
        await call(`/api/v1/namespaces?labelSelector=${encodeURIComponent(selector)}`)
      ).json()) as {
        items: { metadata: { name: string } }[];
      };
      return list.items.map((i) => i.metadata.name).filter((n) => n.startsWith("sel"));
    };
    assert.deepEqual(await names("tier=web"), ["sel1"]);
    assert.deepEqual(await names("tier!=web"), ["sel2"]);
    assert.deepEqual(await names("env"), ["sel1"]);
    assert.deepEqual(await names("!env"), ["sel2"]);
    assert.deepEqual(await names("tier in (db,cache)"), ["sel2"]);
    assert.deepEqual(await names("tier notin (db),env"), ["sel1"]);
  });
});
