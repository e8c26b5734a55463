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
});
