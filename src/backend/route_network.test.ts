import assert from "node:assert/strict";
import { waitFor } from "../../lab/poll.js";
import { test } from "node:test";
import { IPNet } from "../ip/ip.js";
import type { Lease } from "../lease/lease.js";
import fc from "fast-check";
import { pino } from "pino";
import { newAnnotations } from "../subnet/kube/annotations.js";
import { nodeToLease } from "../subnet/kube/node_lease.js";
import { silentLogger } from "../log/logger.js";
import { FakeNetlink } from "../net/fake_netlink.js";
import { FLANNEL_ROUTE_PROTOCOL, NetlinkError } from "../net/netlink.js";
import type { LeaseEvent } from "../lease/lease.js";
import type { LeaseWatchResult, SubnetManager } from "../subnet/manager.js";
import { createHostGwBackend } from "./hostgw/hostgw.js";
import { DataPlaneError, MAX_CONSECUTIVE_SYNC_FAILURES, RouteNetwork } from "./route_network.js";
import { createVxlanBackend, parseVxlanConfig } from "./vxlan/vxlan.js";
import { backendFor } from "./registry.js";
import type { ExternalInterface } from "./backend.js";

/** A subnet manager whose watch yields what the test pushes. */
function scriptedManager(own: Lease) {
  const pending: LeaseWatchResult[] = [];
  let wake: (() => void) | null = null;
  const manager: SubnetManager = {
    name: "scripted",
    getNetworkConfig: () => Promise.reject(new Error("unused")),
    acquireLease: () => Promise.resolve(own),
    renewLease: (l) => Promise.resolve(l),
    completeLease: () => Promise.resolve(),
    listLeases: () => Promise.resolve([]),
    close: () => Promise.resolve(),
    async *watchLeases({ signal }) {
      while (!signal.aborted) {
        const next = pending.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
    },
  };
  return {
    manager,
    push(result: LeaseWatchResult) {
      pending.push(result);
      wake?.();
    },
  };
}

function lease(
  subnet: string,
  publicIP: string,
  backendType = "vxlan",
  mac = "0e:00:00:00:00:02",
): Lease {
  return {
    subnet: IPNet.parse(subnet)!,
    ipv6Subnet: null,
    attrs: { publicIP, publicIPv6: null, backendType, backendData: { VNI: 1, VtepMAC: mac } },
    expiration: null,
    reserved: false,
  };
}

const config = (type: string, extra: Record<string, unknown> = {}) => ({
  enableIPv4: true,
  enableIPv6: false,
  enableNFTables: false,
  network: IPNet.parse("10.244.0.0/16"),
  ipv6Network: null,
  subnetLen: 24,
  ipv6SubnetLen: 0,
  subnetMin: null,
  subnetMax: null,
  ipv6SubnetMin: null,
  ipv6SubnetMax: null,
  backendType: type,
  backend: { Type: type, ...extra },
  warnings: [],
  leaseRanges: null,
});

async function setUp(type: "vxlan" | "host-gw", extra: Record<string, unknown> = {}) {
  const netlink = new FakeNetlink();
  const ethIndex = netlink.addEthernet("eth0", "192.168.1.1", 24);
  const extIface: ExternalInterface = {
    name: "eth0",
    index: ethIndex,
    mtu: 1500,
    mac: "02:00:00:00:00:01",
    ifaceAddr: "192.168.1.1",
    ifaceV6Addr: null,
    ifaceNet: "192.168.1.1/24",
    ifaceV6Net: null,
    extAddr: "192.168.1.1",
    extV6Addr: null,
  };
  const own = lease("10.244.1.0/24", "192.168.1.1", type);
  const scripted = scriptedManager(own);
  const logs: Record<string, unknown>[] = [];
  const log = pino(
    { level: "info" },
    { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const deps = { subnetManager: scripted.manager, extIface, netlink, log };
  const backend = backendFor(type).configure(config(type, extra).backend).create(deps);
  const controller = new AbortController();
  const network = await backend.registerNetwork(config(type, extra), { signal: controller.signal });
  assert.ok(network instanceof RouteNetwork);
  const running = network.run({ signal: controller.signal });
  // Each scripted watch step makes one sync; wait for it to be done (an event, not a guess).
  let syncsSeen = network.stats.syncs;
  const settle = async () => {
    await waitFor(
      "the sync of the last watch step",
      () => Promise.resolve(network.stats.syncs > syncsSeen),
      {
        timeoutMs: 10_000,
      },
    );
    syncsSeen = network.stats.syncs;
  };
  return {
    netlink,
    network,
    scripted,
    settle,
    logs,
    ethIndex,
    running,
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}

test("vxlan RouteNetwork writes neighbour, FDB, then route per lease, and removes exactly a lease's entries", async () => {
  const t = await setUp("vxlan");
  try {
    const vtep = (await t.netlink.getLink("flannel.1"))!;
    assert.equal(vtep.mtu, 1450);
    assert.equal(t.network.mtu, 1450);
    t.netlink.calls.length = 0;
    t.scripted.push({
      kind: "snapshot",
      leases: [
        lease("10.244.2.0/24", "192.168.1.2"),
        lease("10.244.3.0/24", "192.168.1.3", "vxlan", "0e:00:00:00:00:03"),
      ],
    });
    await t.settle();
    const writes = t.netlink.calls.filter(
      (c) => c.includes("10.244.2.0") || c.includes("192.168.1.2"),
    );
    assert.deepEqual(writes, [
      `neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev ${vtep.index}`,
      `fdb replace 0e:00:00:00:00:02 dst 192.168.1.2 dev ${vtep.index}`,
      `route replace 10.244.2.0/24 via 10.244.2.0 dev ${vtep.index} onlink`,
    ]);
    t.netlink.calls.length = 0;
    t.scripted.push({
      kind: "events",
      events: [{ type: "removed", lease: lease("10.244.2.0/24", "192.168.1.2") }],
    });
    await t.settle();
    assert.deepEqual(
      t.netlink.calls.filter((c) => !c.startsWith("link") && !c.startsWith("addr")),
      [
        "route del 10.244.2.0/24",
        `fdb del 0e:00:00:00:00:02 dst 192.168.1.2 dev ${vtep.index}`,
        `neigh del 10.244.2.0 dev ${vtep.index}`,
      ],
    );
    assert.ok(
      t.netlink.routes.some((r) => r.dst === "10.244.3.0/24"),
      "the other lease keeps its route",
    );
  } finally {
    await t.stop();
  }
});

test("RouteNetwork removes stale entries of its own at the first snapshot, keeps foreign routes, and changes nothing that is right", async () => {
  const netlinkCalls = (t: Awaited<ReturnType<typeof setUp>>) =>
    t.netlink.calls.filter((c) => !c.startsWith("link") && !c.startsWith("addr"));
  const t = await setUp("vxlan");
  try {
    const vtep = (await t.netlink.getLink("flannel.1"))!;
    // Left from a previous run: one right entry set, one stale route; and a route that is not ours.
    await t.netlink.replaceNeighbor({
      linkIndex: vtep.index,
      ip: "10.244.2.0",
      mac: "0e:00:00:00:00:02",
    });
    await t.netlink.replaceFdb({
      linkIndex: vtep.index,
      mac: "0e:00:00:00:00:02",
      dst: "192.168.1.2",
    });
    await t.netlink.replaceRoute({
      dst: "10.244.2.0/24",
      gateway: "10.244.2.0",
      linkIndex: vtep.index,
      onlink: true,
    });
    await t.netlink.replaceRoute({
      dst: "10.244.9.0/24",
      gateway: "10.244.9.0",
      linkIndex: vtep.index,
      onlink: true,
    });
    t.netlink.routes.push({
      dst: "10.99.0.0/24",
      gateway: "192.168.1.254",
      linkIndex: t.ethIndex,
      onlink: false,
      protocol: 4,
      table: 254,
      unicast: true,
      blackhole: false,
    });
    t.netlink.calls.length = 0;
    t.scripted.push({ kind: "snapshot", leases: [lease("10.244.2.0/24", "192.168.1.2")] });
    await t.settle();
    assert.deepEqual(netlinkCalls(t), ["route del 10.244.9.0/24"]);
    assert.ok(t.netlink.routes.some((r) => r.dst === "10.99.0.0/24"));
  } finally {
    await t.stop();
  }
});

test("RouteNetwork puts back entries deleted by hand once the kernel announces a change", async () => {
  const t = await setUp("vxlan");
  try {
    t.scripted.push({ kind: "snapshot", leases: [lease("10.244.2.0/24", "192.168.1.2")] });
    await t.settle();
    t.netlink.routes = t.netlink.routes.filter((r) => r.dst !== "10.244.2.0/24");
    t.netlink.fdb = [];
    // An announcement that names no entry: the network lists the kernel again and repairs.
    t.netlink.announce({
      kind: "link",
      removed: false,
      linkIndex: null,
      protocol: null,
      entry: null,
      learned: false,
    });
    await t.settle();
    assert.ok(t.netlink.routes.some((r) => r.dst === "10.244.2.0/24"));
    assert.equal(t.netlink.fdb.length, 1);
  } finally {
    await t.stop();
  }
});

test("host-gw: a remote that is not on the interface's network is skipped alone; the other routes go in", async () => {
  const t = await setUp("host-gw");
  try {
    t.scripted.push({
      kind: "snapshot",
      leases: [
        lease("10.244.2.0/24", "192.168.1.2", "host-gw"),
        lease("10.244.5.0/24", "172.16.0.5", "host-gw"),
        lease("10.244.3.0/24", "192.168.1.3", "host-gw"),
      ],
    });
    await t.settle();
    const dsts = t.netlink.routes
      .filter((r) => r.dst.startsWith("10.244."))
      .map((r) => `${r.dst} via ${r.gateway}`)
      .sort();
    assert.deepEqual(dsts, ["10.244.2.0/24 via 192.168.1.2", "10.244.3.0/24 via 192.168.1.3"]);
    // Refused before the kernel is asked (which would answer ENETUNREACH), with one warning.
    assert.equal(t.network.stats.failed, 0);
    const warned = t.logs.filter((l) => l.subnet === "10.244.5.0-24" && Number(l.level) >= 40);
    assert.equal(warned.length, 1, JSON.stringify(t.logs));
    assert.match(
      String(warned[0]?.err),
      /PublicIP "172\.16\.0\.5" is not on the external interface's network 192\.168\.1\.0\/24/,
    );
  } finally {
    await t.stop();
  }
});

test("vxlan DirectRouting: an on-link remote gets a plain route; another segment gets the VXLAN entries", async () => {
  const t = await setUp("vxlan", { DirectRouting: true });
  try {
    t.scripted.push({
      kind: "snapshot",
      leases: [lease("10.244.2.0/24", "192.168.1.2"), lease("10.244.5.0/24", "172.16.0.5")],
    });
    await t.settle();
    const vtep = (await t.netlink.getLink("flannel.1"))!;
    const route = (dst: string) => t.netlink.routes.find((r) => r.dst === dst);
    assert.deepEqual(
      [route("10.244.2.0/24")?.gateway, route("10.244.2.0/24")?.linkIndex],
      ["192.168.1.2", t.ethIndex],
    );
    assert.deepEqual(
      [route("10.244.5.0/24")?.gateway, route("10.244.5.0/24")?.linkIndex],
      ["10.244.5.0", vtep.index],
    );
    assert.deepEqual(
      t.netlink.fdb.map((f) => f.dst),
      ["172.16.0.5"],
    );
  } finally {
    await t.stop();
  }
});

test("RouteNetwork skips leases of another backend type, as flannel does", async () => {
  const t = await setUp("vxlan");
  try {
    t.scripted.push({
      kind: "snapshot",
      leases: [lease("10.244.2.0/24", "192.168.1.2", "host-gw")],
    });
    await t.settle(); // the sync ran: the absence below means something
    assert.ok(t.network.stats.syncs >= 1);
    assert.ok(!t.netlink.routes.some((r) => r.dst === "10.244.2.0/24"));
  } finally {
    await t.stop();
  }
});

test("vxlan keeps an existing compatible device and its MAC, and applies a changed MTU", async () => {
  const netlink = new FakeNetlink();
  const ethIndex = netlink.addEthernet("eth0", "192.168.1.1", 24);
  const old = await netlink.addVxlanLink({
    name: "flannel.1",
    vni: 1,
    local: "192.168.1.1",
    parentIndex: ethIndex,
    port: 0,
    learning: false,
    gbp: false,
    mtu: 1450,
    mac: "0e:aa:bb:cc:dd:ee",
  });
  const extIface: ExternalInterface = {
    name: "eth0",
    index: ethIndex,
    mtu: 1500,
    mac: "",
    ifaceAddr: "192.168.1.1",
    ifaceV6Addr: null,
    ifaceNet: "192.168.1.1/24",
    ifaceV6Net: null,
    extAddr: "192.168.1.1",
    extV6Addr: null,
  };
  let leased: unknown;
  const manager = {
    ...scriptedManager(lease("10.244.1.0/24", "192.168.1.1")).manager,
    acquireLease: (attrs: Lease["attrs"]) => {
      leased = attrs.backendData;
      return Promise.resolve(lease("10.244.1.0/24", "192.168.1.1"));
    },
  };
  await createVxlanBackend(
    {
      subnetManager: manager,
      extIface,
      netlink,
      log: silentLogger(),
    },
    parseVxlanConfig({ MTU: 9000 }),
  ).registerNetwork(config("vxlan", { MTU: 9000 }), { signal: new AbortController().signal });
  const now = (await netlink.getLink("flannel.1"))!;
  assert.equal(now.index, old.index);
  assert.equal(now.mac, "0e:aa:bb:cc:dd:ee");
  assert.equal(now.mtu, 8950);
  assert.deepEqual(leased, { VNI: 1, VtepMAC: "0e:aa:bb:cc:dd:ee" });
});

test("host-gw refuses a public IP that differs from the interface address, as flannel does", () => {
  const netlink = new FakeNetlink();
  const index = netlink.addEthernet("eth0", "192.168.1.1", 24);
  const extIface: ExternalInterface = {
    name: "eth0",
    index,
    mtu: 1500,
    mac: "",
    ifaceAddr: "192.168.1.1",
    ifaceV6Addr: null,
    ifaceNet: "192.168.1.1/24",
    ifaceV6Net: null,
    extAddr: "203.0.113.7",
    extV6Addr: null,
  };
  const own = lease("10.244.1.0/24", "203.0.113.7", "host-gw");
  assert.throws(
    () =>
      createHostGwBackend({
        subnetManager: scriptedManager(own).manager,
        extIface,
        netlink,
        log: silentLogger(),
      }),
    /your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend/,
  );
});

test("RouteNetwork retries a sync that failed on a transient netlink error, and counts it", async () => {
  const t = await setUp("vxlan");
  try {
    t.netlink.listFailures.push(new NetlinkError("Cannot list neighbours: EBUSY", "EBUSY"));
    t.scripted.push({ kind: "snapshot", leases: [lease("10.244.2.0/24", "192.168.1.2")] });
    await waitFor("the failed sync", () => Promise.resolve(t.network.stats.syncFailures === 1), {
      timeoutMs: 10_000,
    });
    // The next watch step syncs again, from a fresh listing, and writes what the first could not.
    t.scripted.push({
      kind: "snapshot",
      leases: [lease("10.244.2.0/24", "192.168.1.2"), lease("10.244.3.0/24", "192.168.1.3")],
    });
    await t.settle();
    assert.ok(t.netlink.routes.some((r) => r.dst === "10.244.2.0/24"));
    assert.ok(t.netlink.routes.some((r) => r.dst === "10.244.3.0/24"));
    assert.equal(t.network.stats.syncFailures, 1);
  } finally {
    await t.stop();
  }
});

test("RouteNetwork stops with the reason when every sync fails, MAX_CONSECUTIVE_SYNC_FAILURES times in a row", async () => {
  const t = await setUp("vxlan");
  try {
    t.netlink.failListingsWith = new NetlinkError("Cannot list neighbours: EPERM", "EPERM");
    for (let i = 0; i < MAX_CONSECUTIVE_SYNC_FAILURES; i++) {
      t.scripted.push({
        kind: "snapshot",
        leases: [lease(`10.244.${10 + i}.0/24`, "192.168.1.2")],
      });
    }
    await assert.rejects(
      t.running,
      (err: unknown) =>
        err instanceof DataPlaneError &&
        /Cannot program the data plane: Cannot list neighbours: EPERM: the sync failed 12 times in a row/.test(
          err.message,
        ),
    );
  } finally {
    await t.stop().catch(() => undefined);
  }
});

/** A vxlan network with one peer, synced, that follows the kernel's announcements. */
async function followingOnePeer() {
  const t = await setUp("vxlan");
  t.scripted.push({ kind: "snapshot", leases: [lease("10.244.2.0/24", "192.168.1.2")] });
  await t.settle();
  const vtep = [...t.netlink.links.values()].find((l) => l.name === "flannel.1")!;
  await waitFor("the network to follow the kernel's announcements", () =>
    Promise.resolve(t.netlink.watchers > 0),
  );
  return { t, vtep };
}

/** Waits for the peer's neighbour entry to be back. */
async function neighbourBack(t: Awaited<ReturnType<typeof setUp>>): Promise<void> {
  await waitFor(
    "the neighbour to come back",
    () => Promise.resolve(t.netlink.neighbors.some((n) => n.ip === "10.244.2.0")),
    { timeoutMs: 10_000 },
  );
}

test("RouteNetwork repairs an entry deleted by hand as soon as the kernel announces it, not at the next full check", async () => {
  const { t, vtep } = await followingOnePeer();
  try {
    const listings = t.netlink.listings;
    // By hand: the neighbour goes, and the kernel says which. The full check is minutes away.
    await t.netlink.deleteNeighbor({ linkIndex: vtep.index, ip: "10.244.2.0" });
    await neighbourBack(t);
    assert.ok(t.network.stats.eventSyncs >= 1, "repaired through the event path");
    assert.equal(t.network.stats.checkFindings, 0);
    assert.equal(t.netlink.listings, listings, "exactly that entry, without listing the kernel");
  } finally {
    await t.stop();
  }
});

test("RouteNetwork lists the kernel again when an announcement does not say which entry changed", async () => {
  const { t, vtep } = await followingOnePeer();
  try {
    const listings = t.netlink.listings;
    t.netlink.neighbors = t.netlink.neighbors.filter((n) => n.ip !== "10.244.2.0");
    t.netlink.announce({
      kind: "neighbor",
      removed: true,
      linkIndex: vtep.index,
      protocol: null,
      entry: null,
      learned: false,
    });
    await neighbourBack(t);
    assert.ok(t.netlink.listings > listings, "the kernel was listed");
  } finally {
    await t.stop();
  }
});

test("RouteNetwork takes the kernel's announcements of its own writes for what they are: no repair", async () => {
  const t = await setUp("vxlan");
  try {
    await waitFor("the network to follow the kernel's announcements", () =>
      Promise.resolve(t.netlink.watchers > 0),
    );
    t.scripted.push({ kind: "snapshot", leases: [lease("10.244.2.0/24", "192.168.1.2")] });
    await t.settle();
    // More leases come and go after the first sync: each batch's writes are announced back.
    for (let i = 3; i < 40; i++) {
      const events: LeaseEvent[] = [
        { type: "added", lease: lease(`10.244.${i}.0/24`, `192.168.1.${i}`) },
      ];
      if (i % 3 === 0)
        events.push({
          type: "removed",
          lease: lease(`10.244.${i - 1}.0/24`, `192.168.1.${i - 1}`),
        });
      t.scripted.push({ kind: "events", events });
      await t.settle();
    }
    assert.ok(t.netlink.routes.some((r) => r.dst === "10.244.39.0/24"));
    assert.ok(!t.netlink.routes.some((r) => r.dst === "10.244.38.0/24"));
    // Every write and removal after the first sync was announced back, and taken as an echo.
    await waitFor("the announcements to be read", () =>
      Promise.resolve(t.network.stats.echoes >= 3 * (37 + 12)),
    );
    assert.equal(t.network.stats.eventSyncs, 0);
    assert.equal(t.network.stats.failed, 0);
  } finally {
    await t.stop();
  }
});

/** A lease with these fields changed (subnet, public IP, VtepMAC). */
function hostile(
  type: string,
  change: { subnet?: string; publicIP?: string; mac?: string },
): Lease {
  return lease(
    change.subnet ?? "10.244.9.0/24",
    change.publicIP ?? "192.168.1.9",
    type,
    change.mac ?? "0e:00:00:00:00:09",
  );
}

/** Everything the data plane wrote, one string per entry, for searching. */
function kernelText(netlink: FakeNetlink): string[] {
  return [
    ...netlink.routes
      .filter((r) => r.protocol === FLANNEL_ROUTE_PROTOCOL)
      .map((r) => `route ${r.dst} via ${r.gateway ?? "-"}`),
    ...netlink.neighbors.map((n) => `neigh ${n.ip} ${n.mac}`),
    ...netlink.fdb.map((f) => `fdb ${f.mac} ${f.dst}`),
  ];
}

const hostileCases = [
  { name: "PublicIP 0.0.0.0", change: { publicIP: "0.0.0.0" }, field: "PublicIP" },
  { name: "a loopback PublicIP", change: { publicIP: "127.0.0.1" }, field: "PublicIP" },
  { name: "a multicast PublicIP", change: { publicIP: "224.0.0.5" }, field: "PublicIP" },
  { name: "the broadcast PublicIP", change: { publicIP: "255.255.255.255" }, field: "PublicIP" },
  { name: "this host's own PublicIP", change: { publicIP: "192.168.1.1" }, field: "PublicIP" },
  { name: "a subnet outside the network", change: { subnet: "10.99.9.0/24" }, field: "subnet" },
  {
    name: "a broadcast VtepMAC",
    change: { mac: "ff:ff:ff:ff:ff:ff" },
    field: "VtepMAC",
    only: "vxlan",
  },
  {
    name: "a multicast VtepMAC",
    change: { mac: "01:00:5e:00:00:09" },
    field: "VtepMAC",
    only: "vxlan",
  },
  {
    name: "an all-zero VtepMAC",
    change: { mac: "00:00:00:00:00:00" },
    field: "VtepMAC",
    only: "vxlan",
  },
  {
    name: "a gateway off the interface's network",
    change: { publicIP: "172.16.0.9" },
    field: "PublicIP",
    only: "host-gw",
  },
  {
    name: "the interface network's address as gateway",
    change: { publicIP: "192.168.1.0" },
    field: "PublicIP",
    only: "host-gw",
  },
  {
    name: "the interface network's broadcast as gateway",
    change: { publicIP: "192.168.1.255" },
    field: "PublicIP",
    only: "host-gw",
  },
] as const;

for (const type of ["vxlan", "host-gw"] as const) {
  for (const tc of hostileCases) {
    if ("only" in tc && tc.only !== type) continue;
    test(`${type} RouteNetwork skips a peer lease with ${tc.name}: one warning naming the key and ${tc.field}, nothing written`, async () => {
      const t = await setUp(type);
      try {
        const bad = hostile(type, tc.change);
        t.scripted.push({
          kind: "snapshot",
          leases: [lease("10.244.2.0/24", "192.168.1.2", type), bad],
        });
        await t.settle();
        // The good lease went in: the sync ran, so the absence of the bad one means something.
        assert.ok(kernelText(t.netlink).some((e) => e.startsWith("route 10.244.2.0/24")));
        const badSubnet = bad.subnet!.toString();
        assert.deepEqual(
          kernelText(t.netlink).filter(
            (e) => e.includes(badSubnet) || e.includes(bad.subnet!.ipString),
          ),
          [],
        );
        const about = (l: Record<string, unknown>) =>
          (l.subnet === "10.244.9.0-24" || l.subnet === "10.99.9.0-24") && Number(l.level) >= 40;
        const lines = t.logs.filter(about);
        assert.equal(lines.length, 1, JSON.stringify(t.logs));
        assert.equal(lines[0]?.level, 40, "a warning");
        assert.ok(JSON.stringify(lines[0]).includes(tc.field), JSON.stringify(lines[0]));
        // The same lease again: no second warning.
        t.scripted.push({ kind: "events", events: [{ type: "added", lease: bad }] });
        t.scripted.push({
          kind: "events",
          events: [{ type: "added", lease: lease("10.244.3.0/24", "192.168.1.3", type) }],
        });
        await t.settle();
        assert.equal(t.logs.filter(about).length, 1);
      } finally {
        await t.stop();
      }
    });
  }
}

/** Why an entry must never reach the kernel on this test host (192.168.1.1/24, 10.244.0.0/16). */
function forbidden(entry: string): boolean {
  const ip = String.raw`(\d+)\.(\d+)\.(\d+)\.(\d+)`;
  for (const m of entry.matchAll(new RegExp(ip, "g"))) {
    const [a, , , d] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
    if (a === 0 || a === 127 || a >= 224 || m[0] === "192.168.1.1") return true;
    if (m[0].startsWith("192.168.1.") && (d === 0 || d === 255)) return true;
  }
  const mac = /([0-9a-f]{2}):[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}/.exec(
    entry,
  );
  if (mac !== null && ((Number.parseInt(mac[1]!, 16) & 1) === 1 || mac[0] === "00:00:00:00:00:00"))
    return true;
  const dst = /^route (\S+)/.exec(entry)?.[1];
  return dst !== undefined && !dst.startsWith("10.244.");
}

test("forbidden() (the fuzz's invariant) catches each hostile value it must", () => {
  // The invariant is checked on itself, so that the fuzz below cannot pass vacuously.
  for (const entry of [
    "fdb 0e:00:00:00:00:09 0.0.0.0",
    "route 10.244.9.0/24 via 127.0.0.1",
    "neigh 10.244.9.0 ff:ff:ff:ff:ff:ff",
    "neigh 10.244.9.0 01:00:5e:00:00:01",
    "neigh 10.244.9.0 00:00:00:00:00:00",
    "fdb 0e:00:00:00:00:09 192.168.1.1",
    "route 10.244.9.0/24 via 192.168.1.255",
    "route 10.99.0.0/24 via 192.168.1.9",
  ])
    assert.ok(forbidden(entry), entry);
  assert.ok(!forbidden("route 10.244.9.0/24 via 192.168.1.9"));
  assert.ok(!forbidden("fdb 0e:00:00:00:00:09 172.16.0.9"));
});

/** Feeds these leases to a fresh network; asserts nothing forbidden was written; the count. */
async function assertNothingForbiddenWritten(
  type: "vxlan" | "host-gw",
  leases: Lease[],
): Promise<number> {
  const t = await setUp(type);
  try {
    t.scripted.push({ kind: "snapshot", leases });
    await t.settle();
    const entries = kernelText(t.netlink);
    for (const entry of entries) assert.ok(!forbidden(entry), entry);
    return entries.length;
  } finally {
    await t.stop();
  }
}

const hostileIPs = [
  "0.0.0.0",
  "127.0.0.1",
  "127.3.2.1",
  "224.0.0.1",
  "239.1.1.1",
  "255.255.255.255",
  "192.168.1.1",
  "192.168.1.0",
  "192.168.1.255",
  "0.1.2.3",
];
const goodIPs = ["192.168.1.2", "192.168.1.77", "192.168.1.254", "172.16.0.9"];
const hostileMacs = [
  "ff:ff:ff:ff:ff:ff",
  "01:00:5e:00:00:01",
  "00:00:00:00:00:00",
  "33:33:00:00:00:01",
  "not a mac",
];

const leaseArbitrary = (type: string) =>
  fc
    .record({
      third: fc.integer({ min: 0, max: 255 }),
      outside: fc.boolean(),
      publicIP: fc.oneof(fc.constantFrom(...hostileIPs, ...goodIPs), fc.ipV4()),
      mac: fc.oneof(fc.constantFrom(...hostileMacs), fc.constant("0e:00:00:00:00:22")),
    })
    .map(({ third, outside, publicIP, mac }) =>
      lease(`${outside ? "10.99" : "10.244"}.${third}.0/24`, publicIP, type, mac),
    );

for (const type of ["vxlan", "host-gw"] as const) {
  test(`${type} fuzz: random peer leases never put a hostile value into the kernel (fast-check, 60 runs)`, async () => {
    let written = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(leaseArbitrary(type), { maxLength: 12 }), async (leases) => {
        written += await assertNothingForbiddenWritten(type, leases);
      }),
      { numRuns: 60, seed: 2326 },
    );
    assert.ok(written > 0, "some good leases reached the kernel: the property was exercised");
  });
}

test("kube fuzz: random Node annotations never put a hostile value into the kernel (fast-check, 60 runs)", async () => {
  const a = newAnnotations("flannel.alpha.coreos.com");
  let written = 0;
  const nodeArbitrary = fc.record({
    third: fc.integer({ min: 2, max: 255 }),
    publicIP: fc.oneof(fc.constantFrom(...hostileIPs, ...goodIPs), fc.ipV4(), fc.string()),
    data: fc.oneof(
      fc
        .constantFrom(...hostileMacs, "0e:00:00:00:00:33")
        .map((m) => JSON.stringify({ VNI: 1, VtepMAC: m })),
      fc.string(),
      fc.json(),
    ),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(nodeArbitrary, { maxLength: 10 }), async (nodes) => {
      const leases = nodes.flatMap(({ third, publicIP, data }, i) => {
        const node = {
          name: `n${i}`,
          podCIDR: `10.244.${third}.0/24`,
          podCIDRs: [`10.244.${third}.0/24`],
          annotations: {
            [a.subnetKubeManaged]: "true",
            [a.backendType]: "vxlan",
            [a.backendPublicIP]: publicIP,
            [a.backendData]: data,
          },
        };
        try {
          const l = nodeToLease(node, a, { enableIPv4: true, enableIPv6: false });
          return l === null ? [] : [l];
        } catch {
          return []; // refused by the decoder, with its warning
        }
      });
      written += await assertNothingForbiddenWritten("vxlan", leases);
    }),
    { numRuns: 60, seed: 2326 },
  );
  assert.ok(written > 0, "some good leases reached the kernel: the property was exercised");
});

test("RouteNetwork logs a changed lease as 'Subnet changed' with what changed, not as added again", async () => {
  const t = await setUp("vxlan");
  try {
    t.scripted.push({ kind: "snapshot", leases: [lease("10.244.2.0/24", "192.168.1.2")] });
    await t.settle();
    t.scripted.push({
      kind: "events",
      events: [{ type: "added", lease: lease("10.244.2.0/24", "192.168.1.3") }],
    });
    await t.settle();
    const about = t.logs.filter((l) => l.subnet === "10.244.2.0-24");
    assert.deepEqual(
      about.map((l) => l.msg),
      ["Subnet added", "Subnet changed"],
    );
    assert.deepEqual(about[1]?.changed, { PublicIP: { from: "192.168.1.2", to: "192.168.1.3" } });
  } finally {
    await t.stop();
  }
});
