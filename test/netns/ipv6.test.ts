/**
 * IPv6 beside IPv4 on the lab's namespace hosts (etcd mode, EnableIPv6): vxlan and host-gw, pods
 * over both families, removal of both families' entries, IPv6 masquerade, a dual-stack host built
 * by hand as flannel (Go) builds one, and peer leases whose IPv6 part cannot be served.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { LAB_IPV6_NETWORK, labEtcdctl, labKube, listPods } from "../../lab/cluster.js";
import type { Lab, LabNode } from "../../lab/cluster.js";
import { ping } from "../../lab/lab_check.js";
import { execIn, ip } from "../../lab/netns.js";
import { waitFor } from "../../lab/poll.js";
import { buildHandHost } from "../helpers/hand_host.js";
import { assertAllReach, eventually, putLease, subnetOf, withLab } from "../helpers/lab_fixture.js";

const dualStackConfig = (backend: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    Network: "10.244.0.0/16",
    EnableIPv6: true,
    IPv6Network: LAB_IPV6_NETWORK,
    Backend: { Type: backend },
    ...extra,
  });

/** A host's lease key (`10.244.7.0-24&fd00:10:244:3::-64`), from its subnet.env. */
async function leaseKeyOf(node: LabNode): Promise<string> {
  const env = await readFile(node.subnetFile, "utf8");
  const v6 = /FLANNEL_IPV6_SUBNET=([0-9a-f:]+)::1\/64/.exec(env)?.[1];
  assert.ok(v6, env);
  return `${await subnetOf(node)}-24&${v6}::-64`;
}

const subnetsKey = (key: string) => `/coreos.com/network/subnets/${key}`;

/** Everything on a host that names a subnet: routes of both families, neighbours, FDB. */
async function kernelState(node: LabNode): Promise<string> {
  return [
    await ip(["-4", "route", "show"], node.netns),
    await ip(["-6", "route", "show"], node.netns),
    await ip(["neigh", "show", "nud", "permanent"], node.netns),
  ].join("\n");
}

describe("dual-stack: three hosts, every pod reaches every other over IPv4 and IPv6", () => {
  for (const [label, backend, config] of [
    ["vxlan", "vxlan", dualStackConfig("vxlan")],
    [
      "vxlan with DirectRouting",
      "vxlan",
      dualStackConfig("vxlan", { Backend: { Type: "vxlan", DirectRouting: true } }),
    ],
    ["host-gw", "host-gw", dualStackConfig("host-gw")],
  ] as const) {
    test(label, async () => {
      await withLab("ftv6", { nodes: 3, pods: 1, backend, networkConfig: config }, async (lab) => {
        const [h1, , h3] = lab.nodes;
        assert.ok(h1 && h3);
        const pods = await listPods(lab);
        assert.ok(
          pods.every((p) => p.ip6?.startsWith("fd00:10:244:")),
          JSON.stringify(pods),
        );
        await assertAllReach(lab); // both families: pingAll pings the IPv6 addresses too
        const env = await readFile(h1.subnetFile, "utf8");
        assert.match(env, /^FLANNEL_IPV6_NETWORK=fd00:10:244::\/56$/m);
        assert.match(env, new RegExp(`^FLANNEL_MTU=${backend === "vxlan" ? 1430 : 1500}$`, "m"));
        const h2 = lab.nodes[1]!;
        const h2v6 = (await leaseKeyOf(h2)).split("&")[1]!.split("-")[0]!;
        const routes6 = await ip(["-6", "route", "show"], h1.netns);
        if (label === "vxlan") {
          // A neighbour and a route deleted by hand come back (repair by events, IPv6 too).
          assert.match(routes6, new RegExp(`${h2v6}/64 via ${h2v6} dev flannel-v6\\.1`));
          await ip(["-6", "neigh", "del", h2v6, "dev", "flannel-v6.1"], h1.netns);
          await ip(["-6", "route", "del", `${h2v6}/64`], h1.netns);
          await waitFor("h1's IPv6 entries for h2 to come back", async () => {
            const neigh = await ip(["-6", "neigh", "show", "dev", "flannel-v6.1"], h1.netns);
            const now = await ip(["-6", "route", "show"], h1.netns);
            return neigh.includes(`${h2v6} lladdr`) && now.includes(`${h2v6}/64 via`);
          });
        } else {
          // DirectRouting and host-gw: straight via h2's public IPv6, on eth0.
          assert.match(routes6, new RegExp(`${h2v6}/64 via fd00:250::12 dev eth0 proto 76`));
        }

        // h3's lease goes: both families' entries for it go from h1.
        const key = await leaseKeyOf(h3);
        const [v4, v6] = key.split("&").map((k) => k.split("-")[0]!);
        const before = await kernelState(h1);
        assert.ok(before.includes(v4!) && before.includes(v6!), before);
        await labEtcdctl(lab, ["del", subnetsKey(key)]);
        await waitFor("h3's entries to leave h1", async () => {
          const now = await kernelState(h1);
          return !now.includes(`${v4}/24`) && !now.includes(v6!);
        });
      });
    });
  }
});

for (const nftables of [false, true]) {
  test(`dual-stack: IPv6 pod traffic leaving the network is masqueraded with --ip-masq (${nftables ? "nftables" : "iptables"})`, async () => {
    await withLab(
      "ftv6m",
      {
        nodes: 2,
        pods: 1,
        backend: "vxlan",
        networkConfig: dualStackConfig("vxlan", nftables ? { EnableNFTables: true } : {}),
        flanneldArgs: ["--ip-masq"],
      },
      async (lab) => {
        const [pod] = await listPods(lab);
        assert.ok(pod);
        // The hub has no route back to the pod network: only a masqueraded ping comes back.
        await assert.rejects(ip(["-6", "route", "get", pod.ip6 ?? "?"], lab.hub));
        const hub = { name: "hub", netns: lab.hub, node: "hub", ip: "fd00:250::1" };
        await eventually(async () => {
          assert.ok((await ping(pod, hub)).ok, "the pod reaches the hub over IPv6");
        });
        if (nftables) {
          const table = await execIn(lab.nodes[0]!.netns, "nft", [
            "list",
            "table",
            "ip6",
            "flannel-ipv6",
          ]);
          assert.match(table, /ip6 saddr fd00:10:244::\/56 ip6 daddr != ff00::\/8 masquerade/);
        } else {
          const rules = await execIn(lab.nodes[0]!.netns, "ip6tables", ["-t", "nat", "-S"]);
          assert.match(
            rules,
            /-A FLANNEL-POSTRTG -s fd00:10:244::\/56 ! -d ff00::\/8 .*MASQUERADE/,
          );
        }
      },
    );
  });
}

test("dual-stack: a host built by hand as flannel (Go) builds one shares both families", async () => {
  await withLab(
    "ftv6i",
    { nodes: 2, pods: 1, backend: "vxlan", networkConfig: dualStackConfig("vxlan") },
    async (lab) => {
      const taken = new Set(await Promise.all(lab.nodes.map((n) => subnetOf(n))));
      const index = [99, 98, 97].find((i) => !taken.has(`10.244.${i}.0`))!;
      const hand = await buildHandHost(
        lab,
        index,
        `0e:00:00:00:00:${index}`,
        `0e:00:00:00:06:${index}`,
      );
      const v6 = hand.v6!;
      // The lease as flannel (Go) writes a dual-stack vxlan lease.
      await putLease(
        lab,
        `${hand.subnet}-24&${v6.subnet}-64`,
        `{"PublicIP":"${hand.publicIP}","PublicIPv6":"${v6.publicIP}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${hand.mac}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${v6.mac}"}}`,
      );
      // The hand-made host reads flannel-ts's leases as flannel (Go) would, and programs both.
      for (const n of lab.nodes) {
        const key = await leaseKeyOf(n);
        const stored = JSON.parse(
          await labEtcdctl(lab, ["get", "--print-value-only", subnetsKey(key)]),
        ) as {
          PublicIP: string;
          PublicIPv6: string;
          BackendData: { VtepMAC: string };
          BackendV6Data: { VNI: number; VtepMAC: string };
        };
        assert.equal(stored.BackendV6Data.VNI, 1);
        const [s4, s6] = key.split("&").map((k) => k.split("-")[0]!);
        await hand.addPeer({
          subnet: s4!,
          mac: stored.BackendData.VtepMAC,
          publicIP: stored.PublicIP,
        });
        await hand.addPeer6({
          subnet: s6!,
          mac: stored.BackendV6Data.VtepMAC,
          publicIP: stored.PublicIPv6,
        });
      }
      for (const pod of await listPods(lab)) {
        await eventually(async () => {
          assert.ok((await ping(pod, hand.pod)).ok, `${pod.name} reaches the hand-made host (v4)`);
          assert.ok((await ping(pod, v6.pod)).ok, `${pod.name} reaches the hand-made host (v6)`);
        });
        for (const [from, to] of [
          [hand.pod.ip, pod.ip],
          [v6.pod.ip, pod.ip6 ?? "?"],
        ] as const) {
          await execIn(hand.netns, "ping", ["-c", "1", "-W", "2", "-I", from, to]);
        }
      }
    },
  );
});

test("dual-stack: a peer lease whose IPv6 part cannot be served loses only that part, with one warning", async () => {
  await withLab(
    "ftv6b",
    { nodes: 2, pods: 1, backend: "vxlan", networkConfig: dualStackConfig("vxlan") },
    async (lab: Lab) => {
      const h1 = lab.nodes[0]!;
      // Two IPv4 and two IPv6 subnets no real host holds (theirs are picked at random).
      const taken = await labEtcdctl(lab, [
        "get",
        "--prefix",
        "--keys-only",
        "/coreos.com/network/subnets/",
      ]);
      const [a, b] = ["c9", "ca", "cb", "cc", "cd", "ce"].filter(
        (h) => !taken.includes(`fd00:10:244:${h}::`),
      );
      const [x, y] = [201, 202, 203, 204, 205, 206].filter(
        (n) => !taken.includes(`10.244.${n}.0-`),
      );
      assert.ok(a !== undefined && b !== undefined && x !== undefined && y !== undefined);
      const cases = [
        {
          key: `10.244.${x}.0-24&fd00:10:244:${a}::-64`,
          value:
            '{"PublicIP":"10.250.0.201","PublicIPv6":"fd00:250::c9","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:c9"}}',
          missing: "BackendV6Data",
        },
        {
          key: `10.244.${y}.0-24&fd00:10:244:${b}::-64`,
          value:
            '{"PublicIP":"10.250.0.202","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:ca"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:ca"}}',
          missing: "PublicIPv6",
        },
      ];
      for (const c of cases) await labEtcdctl(lab, ["put", subnetsKey(c.key), c.value]);
      await waitFor("both leases' IPv4 routes on h1", async () => {
        const routes = await ip(["-4", "route", "show"], h1.netns);
        return routes.includes(`10.244.${x}.0/24`) && routes.includes(`10.244.${y}.0/24`);
      });
      const v6routes = await ip(["-6", "route", "show"], h1.netns);
      assert.doesNotMatch(v6routes, new RegExp(`fd00:10:244:(${a}|${b})::`));
      const log = await readFile(h1.logFile, "utf8");
      for (const c of cases) {
        const warnings = log
          .split("\n")
          .filter(
            (l) =>
              l.includes("IPv6 part of a remote lease skipped") && l.includes(c.key.split("&")[0]!),
          );
        assert.equal(warnings.length, 1, `one warning for the lease missing ${c.missing}`);
        assert.ok(warnings[0]!.includes(c.missing), warnings[0]);
      }
      // The real pods still reach each other over both families.
      await assertAllReach(lab);
    },
  );
});

describe("Kubernetes mode", () => {
  test("dual-stack: two pod CIDRs per Node, flannel's IPv6 annotations, pods reach each other over both", async () => {
    await withLab(
      "ftv6k",
      {
        nodes: 2,
        pods: 1,
        backend: "vxlan",
        datastore: "kube",
        networkConfig: dualStackConfig("vxlan"),
      },
      async (lab) => {
        await assertAllReach(lab);
        const h1 = lab.nodes[0]!;
        const node = (await labKube(lab).getNode("h1")) as unknown as {
          metadata: { annotations: Record<string, string> };
        };
        const mac6 = (await ip(["link", "show", "flannel-v6.1"], h1.netns)).match(
          /link\/ether (\S+)/,
        )?.[1];
        const P = "flannel.alpha.coreos.com/";
        assert.equal(node.metadata.annotations[`${P}public-ipv6`], "fd00:250::11");
        assert.equal(
          node.metadata.annotations[`${P}backend-v6-data`],
          `{"VNI":1,"VtepMAC":"${mac6 ?? "?"}"}`,
        );
        assert.match(
          await readFile(h1.subnetFile, "utf8"),
          /^FLANNEL_IPV6_SUBNET=fd00:10:244:1::1\/64$/m,
        );
      },
    );
  });

  for (const backend of ["vxlan", "host-gw"]) {
    test(`IPv6-only (EnableIPv4 false) on ${backend}: IPv6 subnet.env and entries only, pods reach each other`, async () => {
      await withLab(
        "ftv6o",
        {
          nodes: 3,
          pods: 1,
          backend,
          datastore: "kube",
          networkConfig: JSON.stringify({
            EnableIPv4: false,
            EnableIPv6: true,
            IPv6Network: LAB_IPV6_NETWORK,
            Backend: { Type: backend },
          }),
        },
        async (lab) => {
          const pods = await listPods(lab);
          assert.ok(pods.every((p) => p.ip.startsWith("fd00:10:244:") && p.ip6 === undefined));
          await assertAllReach(lab);
          const h1 = lab.nodes[0]!;
          const env = await readFile(h1.subnetFile, "utf8");
          assert.doesNotMatch(env, /FLANNEL_NETWORK|FLANNEL_SUBNET=/);
          assert.match(env, /^FLANNEL_IPV6_SUBNET=fd00:10:244:1::1\/64$/m);
          const routes = await ip(["-6", "route", "show"], h1.netns);
          const links = await ip(["-br", "link"], h1.netns);
          assert.doesNotMatch(links, /^flannel\.1 /m);
          if (backend === "vxlan") {
            assert.match(links, /^flannel-v6\.1 /m);
            assert.match(
              routes,
              /fd00:10:244:2::\/64 via fd00:10:244:2:: dev flannel-v6\.1 proto 76 .*onlink/,
            );
          } else {
            assert.match(routes, /fd00:10:244:2::\/64 via fd00:250::12 dev eth0 proto 76/);
          }
        },
      );
    });
  }
});
