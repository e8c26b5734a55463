/**
 * The behaviour every Netlink must show, as one suite each implementation runs: the fake in
 * memory (fake_netlink.test.ts) and rtnetlink against a real kernel, as root in a namespace of
 * its own (test/netns/netlink_contract.test.ts). The fake cannot drift from the kernel unnoticed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FLANNEL_ROUTE_PROTOCOL, NetlinkError } from "./netlink.js";
import type { EntryWrite, Netlink } from "./netlink.js";

/** What a contract run needs: a Netlink, and an underlay link with IPv4 and IPv6 addresses. */
export interface NetlinkHarness {
  readonly netlink: Netlink;
  readonly underlay: { readonly index: number; readonly ip: string; readonly ip6: string };
  cleanup(): Promise<void>;
}

const VTEP_MAC = "0e:12:34:56:78:9a";

/** An onlink route flannel-ts wrote (protocol 76, main table), as listRoutes() gives it back. */
const ownRoute = (dst: string, gateway: string, linkIndex: number) => ({
  dst,
  gateway,
  linkIndex,
  onlink: true,
  protocol: FLANNEL_ROUTE_PROTOCOL,
  table: 254,
  unicast: true,
  blackhole: false,
});

/** The kernel gives every IPv6-capable link fe80:: addresses and routes of its own. */
const isLinkLocal = (ip: string) => ip.startsWith("fe80:");

async function withVxlan(
  open: () => Promise<NetlinkHarness>,
  body: (h: NetlinkHarness, vtepIndex: number) => Promise<void>,
): Promise<void> {
  const h = await open();
  try {
    const link = await h.netlink.addVxlanLink({
      name: "flannel.1",
      vni: 1,
      local: h.underlay.ip,
      parentIndex: h.underlay.index,
      port: 8472,
      learning: false,
      gbp: false,
      mtu: 1450,
      mac: VTEP_MAC,
    });
    await h.netlink.setLinkUp(link.index);
    await body(h, link.index);
  } finally {
    await h.cleanup();
  }
}

/** Runs the contract suite against one implementation. */
export function describeNetlink(name: string, open: () => Promise<NetlinkHarness>): void {
  describe(`Netlink contract: ${name}`, () => {
    test("addVxlanLink() makes the device as asked; getLink() finds it, and null for none", async () => {
      await withVxlan(open, async (h, index) => {
        const link = await h.netlink.getLink("flannel.1");
        assert.ok(link !== null);
        assert.equal(link.index, index);
        assert.equal(link.kind, "vxlan");
        assert.equal(link.mac, VTEP_MAC);
        assert.equal(link.mtu, 1450);
        assert.equal(link.up, true);
        assert.deepEqual(link.vxlan, {
          vni: 1,
          local: h.underlay.ip,
          parentIndex: h.underlay.index,
          port: 8472,
          learning: false,
          gbp: false,
        });
        assert.equal(await h.netlink.getLink("nosuch0"), null);
      });
    });

    test("addWireguardLink() makes a WireGuard link, or says EOPNOTSUPP where the kernel has none", async () => {
      const h = await open();
      try {
        let link: Awaited<ReturnType<Netlink["addWireguardLink"]>> | null = null;
        try {
          link = await h.netlink.addWireguardLink("flannel-wg", 1420);
        } catch (err) {
          assert.ok(err instanceof NetlinkError, String(err));
          assert.equal(err.errno, "EOPNOTSUPP");
        }
        if (link !== null) {
          assert.equal(link.kind, "wireguard");
          assert.equal(link.mtu, 1420);
          assert.equal((await h.netlink.getLink("flannel-wg"))?.index, link.index);
        } else assert.equal(await h.netlink.getLink("flannel-wg"), null, "nothing half made");
      } finally {
        await h.cleanup();
      }
    });

    test("setLinkMtu() changes the MTU; deleteLink() removes the device", async () => {
      await withVxlan(open, async (h, index) => {
        await h.netlink.setLinkMtu(index, 1400);
        assert.equal((await h.netlink.getLink("flannel.1"))?.mtu, 1400);
        await h.netlink.deleteLink(index);
        assert.equal(await h.netlink.getLink("flannel.1"), null);
      });
    });

    test("setLinkMac() changes the hardware address", async () => {
      await withVxlan(open, async (h, index) => {
        await h.netlink.setLinkMac(index, "02:aa:bb:cc:dd:01");
        assert.equal((await h.netlink.getLink("flannel.1"))?.mac, "02:aa:bb:cc:dd:01");
      });
    });

    test("addAddress() and deleteAddress() show in listAddresses()", async () => {
      await withVxlan(open, async (h, index) => {
        await h.netlink.addAddress({ linkIndex: index, ip: "10.244.1.0", prefixLen: 32 });
        const mine = async () =>
          (await h.netlink.listAddresses(index)).filter((a) => !isLinkLocal(a.ip));
        assert.deepEqual(await mine(), [{ linkIndex: index, ip: "10.244.1.0", prefixLen: 32 }]);
        await h.netlink.deleteAddress({ linkIndex: index, ip: "10.244.1.0", prefixLen: 32 });
        assert.deepEqual(await mine(), []);
      });
    });

    test("replaceRoute() writes one tagged onlink route, replaces it, and deleteRoute() removes it", async () => {
      await withVxlan(open, async (h, index) => {
        const spec = {
          dst: "10.244.2.0/24",
          gateway: "10.244.2.0",
          linkIndex: index,
          onlink: true,
        };
        await h.netlink.replaceRoute(spec);
        await h.netlink.replaceRoute({ ...spec, gateway: "10.244.2.1" });
        const mine = (await h.netlink.listRoutes()).filter((r) => r.dst === "10.244.2.0/24");
        assert.deepEqual(mine, [ownRoute("10.244.2.0/24", "10.244.2.1", index)]);
        await h.netlink.deleteRoute({ ...spec, gateway: "10.244.2.1" });
        assert.ok(!(await h.netlink.listRoutes()).some((r) => r.dst === "10.244.2.0/24"));
        await assert.rejects(h.netlink.deleteRoute(spec), NetlinkError);
      });
    });

    test("IPv6: a VXLAN device with an IPv6 local address, its /128, neighbour, FDB entry and onlink route", async () => {
      const h = await open();
      try {
        const link = await h.netlink.addVxlanLink({
          name: "flannel-v6.1",
          vni: 1,
          local: h.underlay.ip6,
          parentIndex: h.underlay.index,
          port: 8472,
          learning: false,
          gbp: false,
          mtu: 1430,
          mac: VTEP_MAC,
        });
        assert.equal(link.vxlan?.local, h.underlay.ip6);
        await h.netlink.setLinkUp(link.index);
        const index = link.index;
        await h.netlink.addAddress({ linkIndex: index, ip: "fd00:10:244:1::", prefixLen: 128 });
        assert.deepEqual(
          (await h.netlink.listAddresses(index)).filter((a) => !isLinkLocal(a.ip)),
          [{ linkIndex: index, ip: "fd00:10:244:1::", prefixLen: 128 }],
        );
        const mac = "0e:00:00:00:00:02";
        const results = await h.netlink.writeEntries([
          {
            op: "replace",
            entry: { kind: "neighbor", neighbor: { linkIndex: index, ip: "fd00:10:244:2::", mac } },
          },
          {
            op: "replace",
            entry: { kind: "fdb", fdb: { linkIndex: index, mac, dst: "fd00:250::12" } },
          },
          {
            op: "replace",
            entry: {
              kind: "route",
              route: {
                dst: "fd00:10:244:2::/64",
                gateway: "fd00:10:244:2::",
                linkIndex: index,
                onlink: true,
              },
            },
          },
        ]);
        assert.deepEqual(results, [null, null, null]);
        assert.deepEqual(
          (await h.netlink.listNeighbors(index)).filter((n) => n.permanent),
          [{ linkIndex: index, ip: "fd00:10:244:2::", mac, permanent: true }],
        );
        assert.deepEqual(
          (await h.netlink.listFdb(index)).filter((f) => f.permanent),
          [{ linkIndex: index, mac, dst: "fd00:250::12", permanent: true }],
        );
        const routes = (await h.netlink.listRoutes()).filter((r) => r.dst === "fd00:10:244:2::/64");
        assert.deepEqual(routes, [ownRoute("fd00:10:244:2::/64", "fd00:10:244:2::", index)]);
      } finally {
        await h.cleanup();
      }
    });

    test("replaceRoute() refuses a gateway that is not on-link unless the route says onlink", async () => {
      await withVxlan(open, async (h) => {
        await assert.rejects(
          h.netlink.replaceRoute({
            dst: "10.244.3.0/24",
            gateway: "10.99.99.1",
            linkIndex: h.underlay.index,
            onlink: false,
          }),
          (err: unknown) => err instanceof NetlinkError && err.errno === "ENETUNREACH",
        );
      });
    });

    test("replaceBlackholeRoute() writes one blackhole route, however often it is called", async () => {
      await withVxlan(open, async (h) => {
        await h.netlink.replaceBlackholeRoute("10.244.1.0/24");
        await h.netlink.replaceBlackholeRoute("10.244.1.0/24");
        const holes = (await h.netlink.listRoutes()).filter((r) => r.blackhole);
        assert.deepEqual(
          holes.map((r) => [r.dst, r.protocol, r.unicast]),
          [["10.244.1.0/24", FLANNEL_ROUTE_PROTOCOL, false]],
        );
      });
    });

    test("replaceNeighbor() writes one permanent entry per address, and deleteNeighbor() removes it", async () => {
      await withVxlan(open, async (h, index) => {
        await h.netlink.replaceNeighbor({
          linkIndex: index,
          ip: "10.244.2.0",
          mac: "0e:00:00:00:00:02",
        });
        await h.netlink.replaceNeighbor({
          linkIndex: index,
          ip: "10.244.2.0",
          mac: "0e:00:00:00:00:03",
        });
        const mine = (await h.netlink.listNeighbors(index)).filter((n) => n.ip === "10.244.2.0");
        assert.deepEqual(mine, [
          { linkIndex: index, ip: "10.244.2.0", mac: "0e:00:00:00:00:03", permanent: true },
        ]);
        await h.netlink.deleteNeighbor({ linkIndex: index, ip: "10.244.2.0" });
        assert.ok(!(await h.netlink.listNeighbors(index)).some((n) => n.ip === "10.244.2.0"));
      });
    });

    test("watchChanges() announces neighbour changes on the device, whoever makes them", async () => {
      await withVxlan(open, async (h, index) => {
        const controller = new AbortController();
        const seen: string[] = [];
        const watching = (async () => {
          for await (const change of h.netlink.watchChanges({ signal: controller.signal })) {
            if (change.kind === "neighbor" && change.linkIndex === index)
              seen.push(change.removed ? "removed" : "written");
            if (seen.includes("removed")) return;
          }
        })();
        try {
          // The watch is open once an announcement gets through: write until one does.
          for (let i = 0; i < 50 && seen.length === 0; i++) {
            await h.netlink.replaceNeighbor({
              linkIndex: index,
              ip: "10.244.5.0",
              mac: "0e:00:00:00:00:05",
            });
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          await h.netlink.deleteNeighbor({ linkIndex: index, ip: "10.244.5.0" });
          await watching;
        } finally {
          controller.abort();
        }
        assert.equal(seen[0], "written");
        assert.equal(seen.at(-1), "removed");
      });
    });

    test("replaceFdb() writes one permanent entry per MAC, and deleteFdb() removes it", async () => {
      await withVxlan(open, async (h, index) => {
        const entry = { linkIndex: index, mac: "0e:00:00:00:00:02", dst: "10.250.0.12" };
        await h.netlink.replaceFdb(entry);
        await h.netlink.replaceFdb(entry);
        const mine = (await h.netlink.listFdb(index)).filter((f) => f.mac === entry.mac);
        assert.deepEqual(mine, [{ ...entry, permanent: true }]);
        await h.netlink.deleteFdb(entry);
        assert.ok(!(await h.netlink.listFdb(index)).some((f) => f.mac === entry.mac));
      });
    });

    test("writeEntries() applies a batch bigger than a chunk, in order, and removes it again", async () => {
      await withVxlan(open, async (h, index) => {
        const count = 1_500;
        const peers = Array.from({ length: count }, (_, i) => ({
          subnet: `10.${100 + Math.floor(i / 256)}.${i % 256}.0`,
          mac: `0e:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
          vtep: `10.250.${Math.floor(i / 256)}.${i % 256}`,
        }));
        const entries = peers.flatMap((p) => [
          { kind: "neighbor" as const, neighbor: { linkIndex: index, ip: p.subnet, mac: p.mac } },
          { kind: "fdb" as const, fdb: { linkIndex: index, mac: p.mac, dst: p.vtep } },
          {
            kind: "route" as const,
            route: { dst: `${p.subnet}/24`, gateway: p.subnet, linkIndex: index, onlink: true },
          },
        ]);
        const written = await h.netlink.writeEntries(
          entries.map((entry): EntryWrite => ({ op: "replace", entry })),
        );
        assert.deepEqual(
          written,
          entries.map(() => null),
        );
        const routes = (await h.netlink.listRoutes()).filter(
          (r) => r.linkIndex === index && !isLinkLocal(r.dst),
        );
        assert.equal(routes.length, count);
        assert.deepEqual(
          routes.find((r) => r.dst === "10.105.219.0/24"),
          ownRoute("10.105.219.0/24", "10.105.219.0", index),
        );
        // The kernel's own IPv6 entries (multicast, NOARP) are on the device too.
        const neighbors = (await h.netlink.listNeighbors(index)).filter((n) => n.permanent);
        assert.equal(neighbors.length, count);
        assert.ok(neighbors.some((n) => n.ip === "10.105.219.0" && n.mac === "0e:00:00:00:05:db"));
        const fdb = await h.netlink.listFdb(index);
        assert.equal(fdb.filter((f) => f.permanent).length, count);
        assert.ok(fdb.some((f) => f.mac === "0e:00:00:00:05:db" && f.dst === "10.250.5.219"));

        const removed = await h.netlink.writeEntries(
          [...entries].reverse().map((entry): EntryWrite => ({ op: "delete", entry })),
        );
        assert.deepEqual(
          removed,
          entries.map(() => null),
        );
        assert.equal(
          (await h.netlink.listRoutes()).filter((r) => r.linkIndex === index && !isLinkLocal(r.dst))
            .length,
          0,
        );
        assert.equal((await h.netlink.listNeighbors(index)).filter((n) => n.permanent).length, 0);
        assert.equal((await h.netlink.listFdb(index)).filter((f) => f.permanent).length, 0);
      });
    });

    test("writeEntries() answers a refused write with its own error, and applies the others", async () => {
      await withVxlan(open, async (h, index) => {
        const route = (n: number, onlink: boolean, linkIndex: number) => ({
          kind: "route" as const,
          route: { dst: `10.244.${n}.0/24`, gateway: `10.99.${n}.1`, linkIndex, onlink },
        });
        const results = await h.netlink.writeEntries([
          { op: "replace", entry: route(10, true, index) },
          { op: "replace", entry: route(11, false, h.underlay.index) }, // gateway not on-link
          { op: "replace", entry: route(12, true, index) },
          { op: "delete", entry: route(13, true, index) }, // no such route
          { op: "replace", entry: route(14, true, index) },
        ]);
        assert.deepEqual(
          results.map((r) => r?.errno ?? null),
          [null, "ENETUNREACH", null, "ESRCH", null],
        );
        assert.ok(results[1] instanceof NetlinkError);
        assert.match(results[1].message, /10\.244\.11\.0\/24/);
        const dsts = (await h.netlink.listRoutes()).map((r) => r.dst);
        for (const n of [10, 12, 14]) assert.ok(dsts.includes(`10.244.${n}.0/24`), `route ${n}`);
        assert.ok(!dsts.includes("10.244.11.0/24"));
      });
    });

    test("listNeighbors() and listFdb() list one device's entries only", async () => {
      await withVxlan(open, async (h, index) => {
        const other = await h.netlink.addVxlanLink({
          name: "flannel.2",
          vni: 2,
          local: h.underlay.ip,
          parentIndex: h.underlay.index,
          port: 8473,
          learning: false,
          gbp: false,
          mtu: 1450,
          mac: "0e:12:34:56:78:9b",
        });
        const neighbor = (linkIndex: number, ip: string, mac: string): EntryWrite => ({
          op: "replace",
          entry: { kind: "neighbor", neighbor: { linkIndex, ip, mac } },
        });
        const fdb = (linkIndex: number, mac: string, dst: string): EntryWrite => ({
          op: "replace",
          entry: { kind: "fdb", fdb: { linkIndex, mac, dst } },
        });
        await h.netlink.writeEntries([
          neighbor(index, "10.244.2.0", "0e:00:00:00:00:02"),
          neighbor(other.index, "10.244.3.0", "0e:00:00:00:00:03"),
          fdb(index, "0e:00:00:00:00:02", "10.250.0.2"),
          fdb(other.index, "0e:00:00:00:00:03", "10.250.0.3"),
        ]);
        assert.deepEqual(
          (await h.netlink.listNeighbors(index)).filter((n) => n.permanent).map((n) => n.ip),
          ["10.244.2.0"],
        );
        assert.deepEqual(
          (await h.netlink.listFdb(other.index))
            .filter((f) => f.permanent)
            .map((f) => [f.linkIndex, f.dst]),
          [[other.index, "10.250.0.3"]],
        );
      });
    });
  });
}
