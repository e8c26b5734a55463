/**
 * The external interface choice (flannel's LookupExtIface), on a real namespace with two
 * interfaces: eth0 (10.31.0.2/24 and fd00:31::2/64, the IPv4 default route) and eth1
 * (10.32.0.2/24 and fd00:32::2/64, the IPv6 default route).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { REPO_ROOT } from "../../lab/cluster.js";
import { addNetns, deleteNetns, execIn, ip, uniquePrefix } from "../../lab/netns.js";

const netns = uniquePrefix("ftif");
before(async () => {
  await addNetns(netns);
  for (const [dev, peer, addr, addr6] of [
    ["eth0", "peer0", "10.31.0.2/24", "fd00:31::2/64"],
    ["eth1", "peer1", "10.32.0.2/24", "fd00:32::2/64"],
  ] as const) {
    await ip(["link", "add", dev, "type", "veth", "peer", "name", peer], netns);
    await ip(["addr", "add", addr, "dev", dev], netns);
    await ip(["addr", "add", addr6, "dev", dev, "nodad"], netns);
    await ip(["link", "set", dev, "up"], netns);
    await ip(["link", "set", peer, "up"], netns);
  }
  await ip(["route", "add", "default", "via", "10.31.0.1", "dev", "eth0", "onlink"], netns);
  await ip(["-6", "route", "add", "default", "via", "fd00:32::1", "dev", "eth1"], netns);
});
after(async () => {
  await deleteNetns(netns);
});

interface Probe {
  name?: string;
  ifaceAddr?: string;
  extAddr?: string;
  error?: string;
}

async function probe(choice: Partial<Record<string, unknown>>): Promise<Probe> {
  const full = {
    iface: [],
    ifaceRegex: [],
    ifaceCanReach: "",
    publicIP: "",
    publicIPv6: "",
    enableIPv4: true,
    enableIPv6: false,
    ...choice,
  };
  const out = await execIn(netns, process.execPath, [
    join(REPO_ROOT, "dist/test/helpers/iface_probe.js"),
    JSON.stringify(full),
  ]);
  return JSON.parse(out) as Probe;
}

const cases: {
  name: string;
  choice: Partial<Record<string, unknown>>;
  iface: string;
  extAddr: string;
}[] = [
  {
    name: "no flags: the default route's interface",
    choice: {},
    iface: "eth0",
    extAddr: "10.31.0.2",
  },
  { name: "--iface by name", choice: { iface: ["eth1"] }, iface: "eth1", extAddr: "10.32.0.2" },
  {
    name: "--iface by address",
    choice: { iface: ["10.32.0.2"] },
    iface: "eth1",
    extAddr: "10.32.0.2",
  },
  {
    name: "--iface: the first that matches wins",
    choice: { iface: ["nosuch", "eth1", "eth0"] },
    iface: "eth1",
    extAddr: "10.32.0.2",
  },
  {
    name: "--iface-regex over names",
    choice: { ifaceRegex: ["^eth1$"] },
    iface: "eth1",
    extAddr: "10.32.0.2",
  },
  {
    name: "--iface-regex over addresses",
    choice: { ifaceRegex: ["^10\\.32\\."] },
    iface: "eth1",
    extAddr: "10.32.0.2",
  },
  {
    name: "--iface before --iface-regex",
    choice: { iface: ["eth0"], ifaceRegex: ["^eth1$"] },
    iface: "eth0",
    extAddr: "10.31.0.2",
  },
  {
    name: "--iface-can-reach",
    choice: { ifaceCanReach: "10.32.0.77" },
    iface: "eth1",
    extAddr: "10.32.0.2",
  },
  {
    name: "--public-ip held by an interface, and no --iface",
    choice: { publicIP: "10.32.0.2" },
    iface: "eth1",
    extAddr: "10.32.0.2",
  },
  {
    name: "--public-ip elsewhere, with --iface: advertised as given",
    choice: { iface: ["eth0"], publicIP: "192.0.2.7" },
    iface: "eth0",
    extAddr: "192.0.2.7",
  },
];
for (const tc of cases) {
  test(`lookupExternalInterface() with ${tc.name}`, async () => {
    const found = await probe(tc.choice);
    assert.equal(found.error, undefined, found.error);
    assert.deepEqual([found.name, found.extAddr], [tc.iface, tc.extAddr]);
  });
}

test("lookupExternalInterface() says which --iface matched nothing", async () => {
  const found = await probe({ iface: ["nosuch"] });
  assert.match(found.error ?? "", /nosuch/);
});

test("lookupExternalInterface(), dual-stack with no flags: the two default routes must agree, as in flannel", async () => {
  const found = await probe({ enableIPv6: true });
  assert.match(
    found.error ?? "",
    /IPv4 default route uses eth0 and the IPv6 one eth1; pass --iface/,
  );
  const chosen = (await probe({ enableIPv6: true, iface: ["eth1"] })) as Probe & {
    extV6Addr?: string;
  };
  assert.equal(chosen.error, undefined, chosen.error);
  assert.deepEqual(
    [chosen.name, chosen.extAddr, chosen.extV6Addr],
    ["eth1", "10.32.0.2", "fd00:32::2"],
  );
});

test("lookupExternalInterface(), IPv6-only with no flags: the IPv6 default route's interface", async () => {
  const found = (await probe({ enableIPv4: false, enableIPv6: true })) as Probe & {
    extV6Addr?: string;
  };
  assert.equal(found.error, undefined, found.error);
  assert.deepEqual([found.name, found.extV6Addr], ["eth1", "fd00:32::2"]);
});
