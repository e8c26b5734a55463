/**
 * The fault drills (lab/drills.ts) on lab hosts, pods pinging a pod on the next host every
 * 0.1 s throughout: what real clusters do to flannel, and what must hold through it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { addNode } from "../../lab/cluster.js";
import type { Lab, LabNode } from "../../lab/cluster.js";
import { runDrill } from "../../lab/drills.js";
import { execIn, ip } from "../../lab/netns.js";
import { assertAllReach, eventually, subnetOf, withLab } from "../helpers/lab_fixture.js";

const quiet = () => undefined;

/** The lines of a host's flanneld log with this message, after `since` (ms since epoch). */
async function logLines(node: LabNode, msg: string, since = 0): Promise<Record<string, unknown>[]> {
  const text = await readFile(node.logFile, "utf8");
  return text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg && Date.parse(String(l.time)) >= since);
}

/** flannel's kernel state on a host, as text: routes, neighbours and FDB entries of flannel.1. */
async function kernelState(node: LabNode): Promise<string> {
  const routes = await ip(["route", "show", "proto", "76"], node.netns);
  const neigh = await ip(["neigh", "show", "dev", "flannel.1", "nud", "permanent"], node.netns);
  const fdb = await execIn(node.netns, "bridge", ["fdb", "show", "dev", "flannel.1"]);
  return [routes, neigh, fdb].join("\n");
}

/** Records every route, neighbour and FDB deletion a host's kernel announces until stopped. */
function watchDeletions(node: LabNode): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const monitors = [
    ["ip", "monitor", "route", "neigh"],
    ["bridge", "monitor", "fdb"],
  ].map((argv) => {
    const child = spawn("ip", ["netns", "exec", node.netns, ...argv], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    child.stdout.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n"))
        if (line.startsWith("Deleted")) lines.push(line);
    });
    return child;
  });
  return {
    lines,
    stop: () => {
      for (const child of monitors) child.kill();
    },
  };
}

/** What must survive a drill on `host`: its subnet, its VTEP MAC, and both hosts' entries. */
async function snapshot(host: LabNode, peer: LabNode) {
  return {
    subnet: await subnetOf(host),
    mac: await macOf(host),
    host: await kernelState(host),
    peer: await kernelState(peer),
  };
}

const macOf = async (node: LabNode) =>
  /link\/ether ([0-9a-f:]+)/.exec(await ip(["link", "show", "flannel.1"], node.netns))?.[1];

test("etcd stopped for 30 s: no ping lost; each flanneld logs the outage once and the return once, and renews its lease after", async (t) => {
  // Renewed every minute (24 h leases, 1439 min margin), so that a renewal follows the outage.
  await withLab(
    "ftdout",
    { nodes: 2, pods: 1, backend: "vxlan", flanneldArgs: ["--subnet-lease-renew-margin=1439"] },
    async (lab) => {
      const result = await runDrill(lab, "etcd-outage", { seconds: 30 });
      const back = Date.now();
      t.diagnostic(`etcd-outage: ${result.pings.sent} pings sent, ${result.pings.lost} lost`);
      assert.ok(result.pings.sent > 300, `pings sent: ${result.pings.sent}`);
      assert.equal(result.pings.lost, 0);
      for (const node of lab.nodes) {
        assert.equal(
          (
            await logLines(
              node,
              "Lost the connection to etcd; the data plane stays as it is, reconnecting with backoff",
            )
          ).length,
          1,
        );
        assert.equal((await logLines(node, "Connected to etcd again")).length, 1);
        await eventually(
          async () => {
            const renewed = await logLines(node, "Lease renewed", back);
            assert.ok(renewed.length > 0, `${node.name} renewed its lease after the outage`);
            const expiration = Date.parse(String(renewed[0]?.expiration));
            assert.ok(expiration - Date.now() > 23 * 3600_000, "for another day");
          },
          { timeoutMs: 120_000, intervalMs: 1_000 },
        );
      }
      await assertAllReach(lab);
    },
  );
});

test("3-member etcd: a member killed, later another: no ping lost, a host that joins meanwhile is reached", async (t) => {
  await withLab("ftdfail", { nodes: 2, pods: 1, backend: "vxlan", etcdMembers: 3 }, async (lab) => {
    let grown: Lab = lab;
    const result = await runDrill(lab, "etcd-failover", {
      seconds: 10,
      during: async () => {
        grown = (await addNode(lab, quiet)).lab;
      },
    });
    t.diagnostic(`etcd-failover: ${result.pings.sent} pings sent, ${result.pings.lost} lost`);
    assert.equal(result.pings.lost, 0);
    assert.ok(result.pings.sent > 200);
    await eventually(() => assertAllReach(grown), { timeoutMs: 60_000 });
  });
});

test("a host cut off from etcd by dropped packets for 30 s: flanneld stays up, no ping lost, it logs the outage once and follows a host that joined meanwhile", async (t) => {
  await withLab("ftdpart", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const [h1] = lab.nodes;
    assert.ok(h1);
    const pid = await readFile(h1.pidFile, "utf8");
    let grown: Lab = lab;
    const result = await runDrill(lab, "partition", {
      node: h1,
      seconds: 30,
      during: async () => {
        grown = (await addNode(lab, quiet)).lab;
      },
    });
    t.diagnostic(`partition: ${result.pings.sent} pings sent, ${result.pings.lost} lost`);
    assert.equal(result.pings.lost, 0);
    assert.equal(await readFile(h1.pidFile, "utf8"), pid, "the same flanneld throughout");
    assert.equal(
      (
        await logLines(
          h1,
          "Lost the connection to etcd; the data plane stays as it is, reconnecting with backoff",
        )
      ).length,
      1,
    );
    await eventually(() => assertAllReach(grown), { timeoutMs: 60_000 });
  });
});

test("flanneld SIGKILLed and restarted 5 times under load: same subnet and MAC, no entry removed or duplicated on it or its peer, no ping lost", async (t) => {
  await withLab("ftdkill", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const [h1, h2] = lab.nodes;
    assert.ok(h1 && h2);
    const before = await snapshot(h1, h2);
    const deletions = [watchDeletions(h1), watchDeletions(h2)];
    try {
      const result = await runDrill(lab, "kill-flanneld", { node: h1, times: 5 });
      t.diagnostic(`kill-flanneld x5: ${result.pings.sent} pings sent, ${result.pings.lost} lost`);
      assert.equal(result.pings.lost, 0);
    } finally {
      for (const d of deletions) d.stop();
    }
    assert.deepEqual(await snapshot(h1, h2), before);
    assert.deepEqual(
      deletions.map((d) => d.lines.filter((l) => !l.includes("cni0") && !l.includes("eth0"))),
      [[], []],
    );
  });
});

test("a host rebooted (its devices and subnet.env gone, flanneld started): same subnet and MAC, every entry back, its peer never loses the route to it", async (t) => {
  await withLab("ftdboot", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const [h1, h2] = lab.nodes;
    assert.ok(h1 && h2);
    const subnet = await subnetOf(h1);
    const before = await snapshot(h1, h2);
    const peer = watchDeletions(h2);
    const own = watchDeletions(h1);
    try {
      const result = await runDrill(lab, "reboot", { node: h1 });
      // The host's own pods lose the pings sent while flannel.1 is gone: reported, not zero.
      t.diagnostic(`reboot: ${result.pings.sent} pings sent, ${result.pings.lost} lost`);
      assert.ok(result.pings.received > 0);
    } finally {
      peer.stop();
      own.stop();
    }
    // The watch sees deletions: the host's own routes went with its device.
    assert.ok(
      own.lines.some((l) => l.includes("dev flannel.1")),
      own.lines.join("\n"),
    );
    assert.deepEqual(await snapshot(h1, h2), before);
    assert.deepEqual(
      peer.lines.filter((l) => l.includes(subnet)),
      [],
      "the peer kept its route to the host",
    );
    await assertAllReach(lab);
  });
});
