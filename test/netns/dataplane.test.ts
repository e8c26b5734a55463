import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { assertAllReach, eventually, putLease, subnetOf, withLab } from "../helpers/lab_fixture.js";
import { addNode, killFlanneld, labEtcdctl, listPods, restartFlanneld } from "../../lab/cluster.js";
import type { Lab } from "../../lab/cluster.js";
import { ping } from "../../lab/lab_check.js";
import { execIn, ip } from "../../lab/netns.js";
import { waitFor } from "../../lab/poll.js";
import { buildHandHost, handHostReaches } from "../helpers/hand_host.js";
import { setTimeout as delay } from "node:timers/promises";

const quiet = () => undefined;

const node = (lab: Lab, i: number) => lab.nodes[i - 1]!;

describe("data plane: three hosts, two pods each, every pod reaches every other", () => {
  for (const [label, backend, config] of [
    ["vxlan", "vxlan", undefined],
    [
      "vxlan with DirectRouting",
      "vxlan",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}',
    ],
    ["host-gw", "host-gw", undefined],
  ] as const) {
    test(label, async () => {
      await withLab(
        "ftdp",
        { nodes: 3, pods: 2, backend, ...(config ? { networkConfig: config } : {}) },
        async (lab) => {
          await assertAllReach(lab);
          const routes = await ip(["route", "show"], node(lab, 1).netns);
          const remote = await subnetOf(node(lab, 2));
          if (backend === "host-gw" || config) {
            assert.match(
              routes,
              new RegExp(
                `${remote.replace(/\./g, "\\.")}/24 via 10\\.250\\.0\\.12 dev eth0 proto 76`,
              ),
              routes,
            );
          } else {
            assert.match(
              routes,
              new RegExp(
                `${remote.replace(/\./g, "\\.")}/24 via ${remote.replace(/\./g, "\\.")} dev flannel\\.1 proto 76 onlink`,
              ),
              routes,
            );
          }
        },
      );
    });
  }
});

test("vxlan: a deleted lease takes exactly its entries away; a new host joins and is reached", async () => {
  await withLab("ftdp", { nodes: 3, pods: 1, backend: "vxlan" }, async (lab) => {
    const gone = await subnetOf(node(lab, 3));
    const stays = await subnetOf(node(lab, 2));
    const h1 = node(lab, 1).netns;
    await labEtcdctl(lab, ["del", `/coreos.com/network/subnets/${gone}-24`]);
    await eventually(async () => {
      assert.doesNotMatch(await ip(["route", "show"], h1), new RegExp(`${gone}/24`));
      assert.doesNotMatch(
        await ip(["neigh", "show", "dev", "flannel.1"], h1),
        new RegExp(`^${gone} `, "m"),
      );
      assert.doesNotMatch(
        await execIn(h1, "bridge", ["fdb", "show", "dev", "flannel.1"]),
        /dst 10\.250\.0\.13/,
      );
    });
    assert.match(
      await ip(["route", "show"], h1),
      new RegExp(`${stays}/24 via ${stays} dev flannel\\.1`),
    );
    assert.match(
      await ip(["neigh", "show", "dev", "flannel.1"], h1),
      new RegExp(`^${stays} `, "m"),
    );

    // A fourth host joins; the others reach its pod.
    const { lab: grown, node: h4 } = await addNode(lab, quiet);
    const pod = (await listPods(grown)).find((p) => p.node === h4.name)!;
    const from = (await listPods(lab)).find((p) => p.node === "h1")!;
    await eventually(async () => {
      assert.ok((await ping(from, pod)).ok);
    });
  });
});

test("vxlan: a written lease that halves a host's subnet, or has another prefix length, is kept out and cuts no host off", async () => {
  await withLab("ftdp", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const h1 = node(lab, 1);
    const h2 = node(lab, 2);
    const victim = await subnetOf(h1);
    const macOfH1 = await ip(["link", "show", "flannel.1"], h1.netns).then(
      (out) => /link\/ether (\S+)/.exec(out)?.[1],
    );
    const foreign = (ipAddr: string) =>
      `{"PublicIP":"${ipAddr}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:66:66:66:66:66"}}`;
    await labEtcdctl(lab, [
      "put",
      `/coreos.com/network/subnets/${victim}-25`,
      foreign("10.250.0.66"),
    ]);
    await labEtcdctl(lab, [
      "put",
      "/coreos.com/network/subnets/10.244.0.0-20",
      foreign("10.250.0.67"),
    ]);
    // Both were seen and refused, by name, on the other host.
    await waitFor(
      "h2 to refuse both leases",
      async () => {
        const log = await readFile(h2.logFile, "utf8");
        return log.includes(`"subnet":"${victim}-25"`) && log.includes('"subnet":"10.244.0.0-20"');
      },
      { timeoutMs: 30_000 },
    );
    const neighbours = await ip(["neigh", "show", "dev", "flannel.1"], h2.netns);
    assert.match(neighbours, new RegExp(`^${victim} lladdr ${macOfH1 ?? "?"} `, "m"), neighbours);
    assert.doesNotMatch(neighbours, /0e:66:66:66:66:66/);
    assert.doesNotMatch(await ip(["route", "show"], h2.netns), /10\.244\.0\.0\/20|\/25/);
    await assertAllReach(lab);
  });
});

test("vxlan: a host built by hand the way flannel (Go) builds one shares the network", async () => {
  await withLab("ftdp", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    // The hand-made host: namespace on the lab bridge, flannel.1 by iproute2, lease by etcdctl;
    // its subnet one that no lab host leased (they pick theirs at random).
    const taken = new Set(await Promise.all(lab.nodes.map((n) => subnetOf(n))));
    const index = [99, 98, 97].find((i) => !taken.has(`10.244.${i}.0`))!;
    const hand = await buildHandHost(lab, index, `0e:00:00:00:00:${index}`);
    const value = `{"PublicIP":"${hand.publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${hand.mac}"}}`;
    await putLease(lab, `${hand.subnet}-24`, value);
    // The hand-made host programs the flannel-ts hosts the way flannel (Go) does, from their leases.
    for (const n of lab.nodes) {
      const subnet = await subnetOf(n);
      const stored = JSON.parse(
        await labEtcdctl(lab, [
          "get",
          "--print-value-only",
          `/coreos.com/network/subnets/${subnet}-24`,
        ]),
      ) as { PublicIP: string; BackendData: { VtepMAC: string } };
      await hand.addPeer({ subnet, mac: stored.BackendData.VtepMAC, publicIP: stored.PublicIP });
    }
    for (const pod of await listPods(lab)) {
      await eventually(async () => {
        assert.ok((await ping(pod, hand.pod)).ok, `${pod.name} reaches the hand-made host`);
      });
      assert.ok(await handHostReaches(hand, pod), `the hand-made host reaches ${pod.name}`);
    }
  });
});

test("vxlan: flanneld killed with SIGKILL and restarted keeps subnet and VTEP MAC, and pods keep talking", async () => {
  await withLab("ftdp", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const h1 = node(lab, 1);
    const before = await readFile(h1.subnetFile, "utf8");
    const mac = (await ip(["link", "show", "flannel.1"], h1.netns)).match(/link\/ether (\S+)/)?.[1];
    const [p1, p2] = await listPods(lab);
    // 40 pings, 0.1 s apart, while flanneld dies and comes back.
    const pinging = execIn(p1!.netns, "ping", ["-c", "40", "-i", "0.1", "-W", "1", p2!.ip]);
    await delay(500);
    await killFlanneld(h1, "SIGKILL");
    await restartFlanneld(lab, h1);
    const out = await pinging;
    assert.match(out, /40 packets transmitted, 40 received/, out);
    await eventually(async () => {
      const log = await readFile(h1.logFile, "utf8");
      assert.equal(log.split("Wrote subnet file").length, 3, "started twice");
    });
    assert.equal(await readFile(h1.subnetFile, "utf8"), before);
    assert.equal(
      (await ip(["link", "show", "flannel.1"], h1.netns)).match(/link\/ether (\S+)/)?.[1],
      mac,
    );
    await assertAllReach(lab);
  });
});

test("vxlan: a flannel.1 deleted by hand comes back with its MAC and its entries", async () => {
  await withLab("ftdv", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const h1 = node(lab, 1);
    const mac = (await ip(["link", "show", "flannel.1"], h1.netns)).match(/link\/ether (\S+)/)?.[1];
    await ip(["link", "del", "flannel.1"], h1.netns);
    await eventually(
      async () => {
        assert.equal(
          (await ip(["link", "show", "flannel.1"], h1.netns)).match(/link\/ether (\S+)/)?.[1],
          mac,
        );
        await assertAllReach(lab);
      },
      { timeoutMs: 20_000 },
    );
  });
});

test("vxlan: entries deleted by hand come back; a stale route is removed at start; foreign routes stay", async () => {
  await withLab("ftdp", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const h1 = node(lab, 1);
    const remote = await subnetOf(node(lab, 2));
    await ip(["route", "del", `${remote}/24`], h1.netns);
    await execIn(h1.netns, "bridge", [
      "fdb",
      "del",
      (await execIn(h1.netns, "bridge", ["fdb", "show", "dev", "flannel.1"])).split(" ")[0]!,
      "dev",
      "flannel.1",
      "dst",
      "10.250.0.12",
      "self",
    ]);
    await eventually(
      async () => {
        assert.match(
          await ip(["route", "show"], h1.netns),
          new RegExp(`${remote}/24 via ${remote} dev flannel\\.1`),
        );
        assert.match(
          await execIn(h1.netns, "bridge", ["fdb", "show", "dev", "flannel.1"]),
          /dst 10\.250\.0\.12/,
        );
      },
      { timeoutMs: 15_000 },
    );
    await assertAllReach(lab);

    // While flanneld is down: a stale route of an old lease, and a route that is not flannel's.
    await killFlanneld(h1, "SIGTERM");
    await ip(
      ["route", "add", "10.244.250.0/24", "via", "10.244.250.0", "dev", "flannel.1", "onlink"],
      h1.netns,
    );
    await ip(
      ["route", "add", "10.99.0.0/24", "via", "10.250.0.1", "dev", "eth0", "proto", "static"],
      h1.netns,
    );
    await restartFlanneld(lab, h1);
    await eventually(async () => {
      assert.doesNotMatch(await ip(["route", "show"], h1.netns), /10\.244\.250\.0/);
    });
    assert.match(
      await ip(["route", "show"], h1.netns),
      /10\.99\.0\.0\/24 via 10\.250\.0\.1 dev eth0 proto static/,
    );
    await assertAllReach(lab);
  });
});

test("lease data with shell metacharacters reaches no shell: the lease is skipped, nothing runs, the hosts keep talking", async () => {
  await withLab(
    "ftdp",
    { nodes: 2, pods: 1, backend: "vxlan", flanneldArgs: ["--ip-masq"] },
    async (lab) => {
      const marker = `/tmp/flannel-ts-pwned-${lab.name}`;
      const evil = `$(touch ${marker}); touch ${marker}; \`touch ${marker}\``;
      // A lease whose every text field tries to run a command, and one whose VtepMAC does.
      await labEtcdctl(lab, [
        "put",
        "/coreos.com/network/subnets/10.244.250.0-24",
        JSON.stringify({
          PublicIP: `10.250.0.5;${evil}`,
          PublicIPv6: null,
          BackendType: `vxlan${evil}`,
          BackendData: { VNI: 1, VtepMAC: evil },
        }),
      ]);
      await labEtcdctl(lab, [
        "put",
        "/coreos.com/network/subnets/10.244.251.0-24",
        JSON.stringify({
          PublicIP: "10.250.0.6",
          PublicIPv6: null,
          BackendType: "vxlan",
          BackendData: { VNI: 1, VtepMAC: evil },
        }),
      ]);
      const h1 = node(lab, 1);
      await waitFor("both bad leases to be noticed on h1", async () => {
        const log = await readFile(h1.logFile, "utf8");
        return log.includes("10.244.250.0-24") && log.includes("10.244.251.0");
      });
      await assert.rejects(readFile(marker), "no command ran");
      assert.doesNotMatch(await ip(["route", "show"], h1.netns), /10\.244\.25[01]\.0/);
      await assertAllReach(lab);
    },
  );
});
