import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { healthzGet, metricValue } from "../helpers/healthz.js";
import { eventually, withLab } from "../helpers/lab_fixture.js";
import { addPod, listPods } from "../../lab/cluster.js";
import type { Lab } from "../../lab/cluster.js";
import { ping } from "../../lab/lab_check.js";
import { execIn } from "../../lab/netns.js";

async function subnetOf(lab: Lab): Promise<string> {
  const env = await readFile(lab.nodes[0]!.subnetFile, "utf8");
  return /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/.exec(env)![1]! + ".0/24";
}

test("iptables mode writes flannel's golden masquerade and forward rules, and restores a deleted one", async () => {
  await withLab(
    "fttr",
    { nodes: 1, backend: "vxlan", flanneldArgs: ["--ip-masq", "--iptables-resync=1"] },
    async (lab) => {
      const h1 = lab.nodes[0]!.netns;
      const pc = await subnetOf(lab);
      const cc = "10.244.0.0/16";
      const masq = '-m comment --comment "flanneld masq"';
      const fwd = '-m comment --comment "flanneld forward"';
      await eventually(async () => {
        assert.equal(
          await execIn(h1, "iptables", ["-t", "nat", "-S", "FLANNEL-POSTRTG"]),
          [
            "-N FLANNEL-POSTRTG",
            `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG -s ${pc} -d ${cc} ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG -s ${cc} -d ${pc} ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG ! -s ${cc} -d ${pc} ${masq} -j RETURN`,
            `-A FLANNEL-POSTRTG -s ${cc} ! -d 224.0.0.0/4 ${masq} -j MASQUERADE --random-fully`,
            `-A FLANNEL-POSTRTG ! -s ${cc} -d ${cc} ${masq} -j MASQUERADE --random-fully`,
            "",
          ].join("\n"),
        );
      });
      assert.match(
        await execIn(h1, "iptables", ["-t", "nat", "-S", "POSTROUTING"]),
        new RegExp(`-A POSTROUTING ${masq} -j FLANNEL-POSTRTG`),
      );
      assert.equal(
        await execIn(h1, "iptables", ["-S", "FLANNEL-FWD"]),
        `-N FLANNEL-FWD\n-A FLANNEL-FWD -s ${cc} ${fwd} -j ACCEPT\n-A FLANNEL-FWD -d ${cc} ${fwd} -j ACCEPT\n`,
      );
      assert.match(
        await execIn(h1, "iptables", ["-S", "FORWARD"]),
        new RegExp(`-A FORWARD ${fwd} -j FLANNEL-FWD`),
      );

      await execIn(h1, "iptables", [
        "-t",
        "nat",
        "-D",
        "FLANNEL-POSTRTG",
        "-s",
        pc,
        "-d",
        cc,
        "-m",
        "comment",
        "--comment",
        "flanneld masq",
        "-j",
        "RETURN",
      ]);
      await execIn(h1, "iptables", [
        "-D",
        "FORWARD",
        "-m",
        "comment",
        "--comment",
        "flanneld forward",
        "-j",
        "FLANNEL-FWD",
      ]);
      await eventually(async () => {
        assert.match(
          await execIn(h1, "iptables", ["-t", "nat", "-S", "FLANNEL-POSTRTG"]),
          new RegExp(`-s ${pc} -d ${cc}`),
        );
        assert.match(await execIn(h1, "iptables", ["-S", "FORWARD"]), /-j FLANNEL-FWD/);
      });
      const log = await readFile(lab.nodes[0]!.logFile, "utf8");
      assert.match(log, /Some traffic rules are missing; deleting and recreating rules/);
      assert.equal(
        (await execIn(h1, "iptables", ["-t", "nat", "-S", "POSTROUTING"])).split("FLANNEL-POSTRTG")
          .length,
        2,
        "one jump rule, not two",
      );
    },
  );
});

test("nftables mode writes flannel's golden table, and restores a flushed chain", async () => {
  const config = '{"Network":"10.244.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}';
  await withLab(
    "fttr",
    {
      nodes: 1,
      backend: "vxlan",
      networkConfig: config,
      flanneldArgs: ["--ip-masq", "--iptables-resync=1"],
    },
    async (lab) => {
      const h1 = lab.nodes[0]!.netns;
      const pc = await subnetOf(lab);
      const cc = "10.244.0.0/16";
      const rulesOf = async () =>
        (await execIn(h1, "nft", ["list", "table", "ip", "flannel-ipv4"]))
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => / (return|accept|masquerade.*)$/.test(l) || l.startsWith("chain "));
      const golden = [
        "chain postrtg {",
        "meta mark 0x00004000 return",
        `ip saddr ${pc} ip daddr ${cc} return`,
        `ip saddr ${cc} ip daddr ${pc} return`,
        `ip saddr != ${pc} ip daddr ${cc} return`,
        `ip saddr ${cc} ip daddr != 224.0.0.0/4 masquerade fully-random`,
        `ip saddr != ${cc} ip daddr ${cc} masquerade fully-random`,
        "chain forward {",
        `ip saddr ${cc} accept`,
        `ip daddr ${cc} accept`,
      ];
      assert.deepEqual(await rulesOf(), golden);
      assert.doesNotMatch(
        await execIn(h1, "iptables-save", []),
        /FLANNEL/,
        "no iptables rules in nftables mode",
      );
      await execIn(h1, "nft", ["flush", "chain", "ip", "flannel-ipv4", "postrtg"]);
      await eventually(async () => {
        assert.deepEqual(await rulesOf(), golden);
      });
    },
  );
});

test("masquerade: a pod reaches an underlay address with no route back only when --ip-masq is on", async () => {
  for (const ipMasq of [false, true]) {
    await withLab(
      "fttr",
      { nodes: 1, backend: "vxlan", pods: 0, flanneldArgs: ipMasq ? ["--ip-masq"] : [] },
      async (lab) => {
        // ipMasq false in the delegate: only flanneld's rules may masquerade.
        const pod = await addPod(lab, lab.nodes[0]!, 1, { ipMasq: false });
        const hub = { name: "hub", netns: lab.hub, node: "hub", ip: "10.250.0.1" };
        const result = await ping(pod, hub, 1);
        assert.equal(result.ok, ipMasq, `--ip-masq ${ipMasq ? "on" : "off"}`);
      },
    );
  }
});

const metricsOf = async (netns: string) => (await healthzGet(netns, "/metrics")).body;
const metric = metricValue;

test("--ip-blackhole-route keeps a blackhole route for the host's subnet behind cni0's; a deleted rule or route comes back and is counted", async () => {
  await withLab(
    "fttb",
    {
      nodes: 2,
      pods: 1,
      backend: "vxlan",
      flanneldArgs: [
        "--ip-masq",
        "--ip-blackhole-route",
        "--iptables-resync=1",
        "--healthz-port=8081",
      ],
    },
    async (lab) => {
      const h1 = lab.nodes[0]!.netns;
      const pc = await subnetOf(lab);
      const blackholes = () => execIn(h1, "ip", ["route", "show", "type", "blackhole"]);
      assert.match(
        await blackholes(),
        new RegExp(`^blackhole ${pc.replace(/\./g, "\\.")} proto 76 metric 4294967294`, "m"),
      );
      // The pods still reach each other: cni0's connected route stays in front.
      const [p1, p2] = await listPods(lab);
      assert.ok((await ping(p1!, p2!)).ok);
      assert.match(await execIn(h1, "ip", ["route", "get", p1!.ip]), /dev cni0/);

      await execIn(h1, "ip", ["route", "del", "blackhole", pc, "metric", "4294967294"]);
      await eventually(async () => {
        assert.match(await blackholes(), new RegExp(pc.replace(/\./g, "\\.")));
      });
      assert.equal(metric(await metricsOf(h1), "flannel_traffic_rule_repairs_total"), 0);
      await execIn(h1, "iptables", ["-t", "nat", "-F", "FLANNEL-POSTRTG"]);
      await eventually(async () => {
        assert.equal(metric(await metricsOf(h1), "flannel_traffic_rule_repairs_total"), 1);
      });
    },
  );
});
