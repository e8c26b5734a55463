/**
 * The behaviour every Netlink must show, as one suite each implementation runs: the fake in
 * memory (fake_netlink.test.ts) and rtnetlink against a real kernel, as root in a namespace of
 * its own (test/netns/netlink_contract.test.ts). The fake cannot drift from the kernel unnoticed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FLANNEL_ROUTE_PROTOCOL, NetlinkError } from "./netlink.js";
import type { Netlink } from "./netlink.js";

/** What a contract run needs: a Netlink, and an underlay link with an IPv4 address on it. */
export interface NetlinkHarness {
  readonly netlink: Netlink;
  readonly underlay: { readonly index: number; readonly ip: string };
  cleanup(): Promise<void>;
}

const VTEP_MAC = "0e:12:34:56:78:9a";

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

    test("setLinkMtu() changes the MTU; deleteLink() removes the device", async () => {
      await withVxlan(open, async (h, index) => {
        await h.netlink.setLinkMtu(index, 1400);
        assert.equal((await h.netlink.getLink("flannel.1"))?.mtu, 1400);
        await h.netlink.deleteLink(index);
        assert.equal(await h.netlink.getLink("flannel.1"), null);
      });
    });

    test("addAddress() and deleteAddress() show in listAddresses()", async () => {
      await withVxlan(open, async (h, index) => {
        await h.netlink.addAddress({ linkIndex: index, ip: "10.244.1.0", prefixLen: 32 });
        assert.deepEqual(await h.netlink.listAddresses(index), [
          { linkIndex: index, ip: "10.244.1.0", prefixLen: 32 },
        ]);
        await h.netlink.deleteAddress({ linkIndex: index, ip: "10.244.1.0", prefixLen: 32 });
        assert.deepEqual(await h.netlink.listAddresses(index), []);
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
        assert.deepEqual(mine, [
          {
            dst: "10.244.2.0/24",
            gateway: "10.244.2.1",
            linkIndex: index,
            onlink: true,
            protocol: FLANNEL_ROUTE_PROTOCOL,
            table: 254,
            unicast: true,
            blackhole: false,
          },
        ]);
        await h.netlink.deleteRoute({ ...spec, gateway: "10.244.2.1" });
        assert.ok(!(await h.netlink.listRoutes()).some((r) => r.dst === "10.244.2.0/24"));
        await assert.rejects(h.netlink.deleteRoute(spec), NetlinkError);
      });
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
  });
}
