/**
 * flannelctl doctor on a lab host broken one way at a time: it names exactly what was broken, and
 * --fix mends what is safe to mend. flanneld is stopped first on the host under test (it would
 * repair each break itself within milliseconds), so every report also names that.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import {
  REPO_ROOT,
  flanneldCommand,
  killFlanneld,
  labEtcdctl,
  livePid,
  startFlanneld,
} from "../../lab/cluster.js";
import type { Lab, LabNode } from "../../lab/cluster.js";
import { firstProblem } from "../../src/doctor/trace.js";
import { labTrace } from "../../lab/lab_doctor.js";
import { execIn, ip } from "../../lab/netns.js";
import { runCapture } from "../../src/util/exec.js";
import { assertAllReach, eventually, putLease, subnetOf, withLab } from "../helpers/lab_fixture.js";

interface DoctorJson {
  healthy: boolean;
  source: string;
  findings: { check: string; subject: string; fix: string; fixable: boolean }[];
  fixed?: { check: string; error: string | null }[];
}

/** Runs doctor in a host's namespace; `flags` false: it reads the running flanneld's. */
async function doctor(
  lab: Lab,
  node: LabNode,
  opts: { flags?: boolean; fix?: boolean } = {},
): Promise<{ code: number | null; report: DoctorJson }> {
  const { args, env } = flanneldCommand(lab, node);
  const result = await runCapture(
    "ip",
    [
      "netns",
      "exec",
      node.netns,
      join(REPO_ROOT, "bin/flannelctl"),
      "doctor",
      "--json",
      ...(opts.fix === true ? ["--fix"] : []),
      ...(opts.flags === false ? [] : args),
    ],
    { env: { ...process.env, ...env } },
  );
  assert.ok(result.stdout.startsWith("{"), `doctor printed: ${result.stdout}${result.stderr}`);
  return { code: result.code, report: JSON.parse(result.stdout) as DoctorJson };
}

const checksOf = (report: DoctorJson) => [...new Set(report.findings.map((f) => f.check))].sort();

test("doctor names each break of a lab host exactly, and --fix mends the safe ones", async (t) => {
  await withLab(
    "ftdoc",
    { nodes: 3, pods: 1, backend: "vxlan", flanneldArgs: ["--ip-masq"] },
    async (lab) => {
      const [h1, h2] = lab.nodes;
      assert.ok(h1 && h2);
      const ns = h1.netns;

      await t.test("healthy: nothing found, flags read from the running flanneld", async () => {
        const { code, report } = await doctor(lab, h1, { flags: false });
        assert.deepEqual(report.findings, []);
        assert.equal(report.healthy, true);
        assert.match(report.source, /^flanneld pid \d+$/);
        assert.equal(code, 0);
      });

      await killFlanneld(h1);
      await t.test("flanneld stopped: flanneld-not-running, nothing else", async () => {
        const { code, report } = await doctor(lab, h1);
        assert.deepEqual(checksOf(report), ["flanneld-not-running"]);
        assert.equal(code, 1);
      });

      const peer = await subnetOf(h2);
      // Subnets no host of the lab holds (theirs are random), for the hand-written leases.
      const taken = await Promise.all(lab.nodes.map(subnetOf));
      const [freeA, freeB, freeC] = [...Array(250).keys()]
        .map((i) => `10.244.${i + 2}.0`)
        .filter((net) => !taken.includes(net));
      assert.ok(freeA !== undefined && freeB !== undefined && freeC !== undefined);
      const peerSubnet = `${peer}/24`;
      const routeLine = (await ip(["route", "show", peerSubnet], ns)).trim();
      const neighbor = (await ip(["neigh", "show", "dev", "flannel.1", peer], ns)).trim();
      const peerMac = neighbor.split(/\s+/)[2] ?? "";
      assert.match(peerMac, /^[0-9a-f:]{17}$/, neighbor);
      const breaks: {
        name: string;
        check: string;
        also?: string[];
        fixable: boolean;
        apply: () => Promise<unknown>;
      }[] = [
        {
          name: "a route deleted",
          check: "route-missing",
          fixable: true,
          apply: () => ip(["route", "del", peerSubnet], ns),
        },
        {
          name: "a neighbour deleted",
          check: "neighbor-missing",
          fixable: true,
          apply: () => ip(["neigh", "del", peer, "dev", "flannel.1"], ns),
        },
        {
          name: "an FDB entry deleted",
          check: "fdb-missing",
          fixable: true,
          apply: async () => {
            const dst = h2.address;
            await execIn(ns, "bridge", [
              "fdb",
              "del",
              peerMac,
              "dev",
              "flannel.1",
              "dst",
              dst,
              "self",
            ]);
          },
        },
        {
          name: "the device MTU changed",
          check: "device-mtu",
          fixable: true,
          apply: () => ip(["link", "set", "flannel.1", "mtu", "1300"], ns),
        },
        {
          name: "the device MAC changed (the kernel then drops the device's neighbours)",
          check: "device-mac",
          also: ["neighbor-missing"],
          fixable: true,
          apply: () => ip(["link", "set", "flannel.1", "address", "02:de:ad:be:ef:01"], ns),
        },
        {
          name: "the masquerade rules flushed",
          check: "traffic-rules",
          fixable: true,
          apply: () => execIn(ns, "iptables", ["-t", "nat", "-F", "FLANNEL-POSTRTG"]),
        },
        {
          name: "subnet.env removed",
          check: "subnet-env-missing",
          fixable: true,
          apply: () => rm(h1.subnetFile),
        },
        {
          name: "a route no lease needs",
          check: "route-stale",
          fixable: true,
          apply: () =>
            ip(
              [
                "route",
                "add",
                `${freeC}/24`,
                "via",
                freeC,
                "dev",
                "flannel.1",
                "onlink",
                "proto",
                "76",
              ],
              ns,
            ),
        },
        {
          name: "IPv4 forwarding turned off",
          check: "ip-forward-off",
          fixable: true,
          apply: () => execIn(ns, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]),
        },
        {
          name: "strict reverse-path filtering on the VXLAN device",
          check: "rp-filter-strict",
          fixable: true,
          apply: () => execIn(ns, "sysctl", ["-qw", "net.ipv4.conf.flannel/1.rp_filter=1"]),
        },
        {
          name: "an overlapping lease written",
          check: "lease-overlap",
          // Its prefix length is not SubnetLen, too: flanneld's lease watch refuses it for that.
          also: ["lease-subnet-len"],
          fixable: false,
          apply: () =>
            putLease(
              lab,
              `${peer.replace(/\.0$/, ".128")}-25`,
              '{"PublicIP":"10.250.0.99","PublicIPv6":null,"BackendType":"host-gw"}',
              86_400,
            ),
        },
        {
          // flanneld skips it: doctor must not call its entries missing, nor --fix write them.
          name: "a lease outside the network written",
          check: "lease-outside-network",
          fixable: false,
          apply: () =>
            putLease(lab, "10.99.5.0-24", vxlanLease("10.250.0.98", "0e:00:00:00:00:98"), 86_400),
        },
        {
          name: "a lease with a loopback PublicIP written",
          check: "lease-bad-public-ip",
          fixable: false,
          apply: () =>
            putLease(lab, `${freeA}-24`, vxlanLease("127.0.0.1", "0e:00:00:00:00:97"), 86_400),
        },
        {
          name: "a lease with a broadcast VtepMAC written",
          check: "lease-unusable",
          fixable: false,
          apply: () =>
            putLease(lab, `${freeB}-24`, vxlanLease("10.250.0.97", "ff:ff:ff:ff:ff:ff"), 86_400),
        },
      ];
      // The leases the breaks write, deleted after each.
      const extraKeys = [
        `${peer.replace(/\.0$/, ".128")}-25`,
        "10.99.5.0-24",
        `${freeA}-24`,
        `${freeB}-24`,
      ];
      assert.ok(routeLine.includes("flannel.1"), routeLine);
      for (const broken of breaks) {
        await t.test(broken.name, async () => {
          await broken.apply();
          const { code, report } = await doctor(lab, h1);
          const expected = ["flanneld-not-running", broken.check, ...(broken.also ?? [])];
          assert.deepEqual(
            checksOf(report),
            expected.sort(),
            JSON.stringify(report.findings, null, 2),
          );
          assert.equal(code, 1);
          const named = report.findings.find((f) => f.check === broken.check);
          assert.ok(named !== undefined && named.fix !== "");
          assert.equal(named.fixable, broken.fixable);
          const fixed = await doctor(lab, h1, { fix: true });
          if (broken.fixable) {
            assert.deepEqual(
              [
                ...new Set(fixed.report.fixed?.map((f) => `${f.check} ${f.error ?? "fixed"}`)),
              ].sort(),
              [broken.check, ...(broken.also ?? [])].map((c) => `${c} fixed`).sort(),
            );
            assert.deepEqual(checksOf(fixed.report), ["flanneld-not-running"]);
          } else {
            assert.ok(checksOf(fixed.report).includes(broken.check), "not mended by --fix");
          }
          for (const key of extraKeys)
            await labEtcdctl(lab, ["del", `/coreos.com/network/subnets/${key}`]);
        });
      }

      await t.test("flanneld back: healthy, and the pods reach each other", async () => {
        await startFlanneld(lab, h1);
        await eventually(async () => {
          const { code, report } = await doctor(lab, h1, { flags: false });
          assert.deepEqual(report.findings, []);
          assert.equal(code, 0);
        });
        await assertAllReach(lab);
      });

      await t.test("flanneld stopped by SIGSTOP: not ready (the lab serves /readyz)", async () => {
        const pid = await livePid(h1.pidFile);
        assert.ok(pid !== null);
        process.kill(pid, "SIGSTOP");
        try {
          const { code, report } = await doctor(lab, h1, { flags: false });
          assert.deepEqual(checksOf(report), ["flanneld-not-ready"]);
          assert.equal(code, 1);
        } finally {
          process.kill(pid, "SIGCONT");
        }
      });

      await t.test("cni0 deleted while pods exist: named, not skipped", async () => {
        await ip(["link", "del", "cni0"], ns);
        const { code, report } = await doctor(lab, h1, { flags: false });
        assert.deepEqual(checksOf(report), ["cni-bridge-missing"]);
        assert.equal(code, 1);
      });
    },
  );
});

/** A vxlan lease's JSON, as flanneld writes it. */
function vxlanLease(publicIP: string, mac: string): string {
  return `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
}

test("doctor in Kubernetes mode reads the Node objects: healthy, then a deleted route named and mended", async () => {
  await withLab(
    "ftdock",
    { nodes: 2, pods: 1, backend: "vxlan", datastore: "kube" },
    async (lab) => {
      const [h1, h2] = lab.nodes;
      assert.ok(h1 && h2);
      const healthy = await doctor(lab, h1, { flags: false });
      assert.deepEqual(healthy.report.findings, []);
      assert.equal(healthy.code, 0);
      await killFlanneld(h1);
      await ip(["route", "del", `${await subnetOf(h2)}/24`], h1.netns);
      const broken = await doctor(lab, h1);
      assert.deepEqual(checksOf(broken.report), ["flanneld-not-running", "route-missing"]);
      const fixed = await doctor(lab, h1, { fix: true });
      assert.deepEqual(checksOf(fixed.report), ["flanneld-not-running"]);
      await startFlanneld(lab, h1);
      await assertAllReach(lab);
    },
  );
});

test("trace shows each hop between two pods on both hosts, and names the first entry removed on either side", async () => {
  await withLab("ftrace", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const [h1, h2] = lab.nodes;
    assert.ok(h1 && h2);
    const trace = async () => {
      const halves = await labTrace(lab, "h1p1", "h2p1");
      return { halves, problem: firstProblem(halves) };
    };
    const healthy = await trace();
    assert.deepEqual(
      healthy.halves.map((h) => [h.role, h.hops.map((hop) => `${hop.hop} ${hop.state}`)]),
      [
        ["source", ["bridge ok", "route ok", "neighbour ok", "FDB ok", "underlay ok"]],
        [
          "destination",
          [
            "flannel device ok",
            "route to pod ok",
            "bridge ok",
            healthy.halves[1]?.hops[3]?.state === "ok" ? "pod ok" : "pod info",
          ],
        ],
      ],
    );
    assert.equal(healthy.problem, null);

    // The source side: a neighbour entry removed (flanneld stopped, or it puts it back at once).
    await killFlanneld(h1);
    const gateway = await subnetOf(h2);
    await ip(["neigh", "del", gateway, "dev", "flannel.1"], h1.netns);
    const broken = await trace();
    assert.deepEqual(
      [broken.problem?.host, broken.problem?.hop.hop, broken.problem?.hop.state],
      [h1.address, "neighbour", "missing"],
    );
    await startFlanneld(lab, h1);
    await eventually(async () => assert.equal((await trace()).problem, null));

    // The destination side: the route to its pods removed; the default route takes the packet.
    await killFlanneld(h2);
    await ip(["route", "del", `${gateway}/24`, "dev", "cni0"], h2.netns);
    const broken2 = await trace();
    assert.match(broken2.problem?.hop.detail ?? "", /^0\.0\.0\.0\/0 via/);
    assert.deepEqual(
      [broken2.problem?.host, broken2.problem?.hop.hop, broken2.problem?.hop.state],
      [h2.address, "route to pod", "wrong"],
    );
  });
});
