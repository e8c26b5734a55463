/**
 * The wireguard backend end to end on the lab's hosts, on wireguard-go (this kernel has no
 * WireGuard): three hosts reach each other; the lease, device, MTU, route and key file are
 * flannel's; pod traffic is encrypted on the wire (and the same check on vxlan sees it in the
 * clear); peers are kept at the level of the leases.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import {
  LAB_IPV6_NETWORK,
  killFlanneld,
  labEtcdctl,
  listPods,
  livePid,
  restartFlanneld,
  wgOn,
} from "../../lab/cluster.js";
import type { Lab, LabNode, LabPod } from "../../lab/cluster.js";
import { ping } from "../../lab/lab_check.js";
import { flannelctlOn, labTrace } from "../../lab/lab_doctor.js";
import type { TraceHalf } from "../../src/doctor/trace.js";
import { ip } from "../../lab/netns.js";
import { handHostReaches } from "../helpers/hand_host.js";
import { buildHandWireguardHost } from "../helpers/wireguard_go.js";
import { publicKeyOf, parseKey } from "../../src/backend/wireguard/keys.js";
import { parseWgDump } from "../../src/backend/wireguard/wg_tool.js";
import { assertAllReach, eventually, putLease, subnetOf, withLab } from "../helpers/lab_fixture.js";
import { sendMarker, startCapture } from "../helpers/wire_capture.js";

const leaseKey = (subnet: string) => `/coreos.com/network/subnets/${subnet}-24`;

const wg = wgOn;

const peersOf = async (node: LabNode) =>
  parseWgDump(await wg(node, ["show", "flannel-wg", "dump"])).peers;

async function hostKey(node: LabNode): Promise<string> {
  const text = await readFile(join(dirname(node.subnetFile), "wgkey"), "utf8");
  return publicKeyOf(parseKey(text, "key")).toString("base64");
}

function podsByHost(pods: readonly LabPod[], lab: Lab): LabPod[] {
  return lab.nodes.map((n) => {
    const pod = pods.find((p) => p.node === n.name);
    assert.ok(pod, `a pod on ${n.name}`);
    return pod;
  });
}

test("wireguard: three hosts reach each other, with flannel's lease, device, route and key file", async () => {
  await withLab("ftwg", { nodes: 3, pods: 1, backend: "wireguard" }, async (lab) => {
    const [h1, h2, h3] = lab.nodes;
    assert.ok(h1 && h2 && h3);
    await assertAllReach(lab);

    // The lease, byte for byte as flannel's wireguard backend writes it.
    const s1 = await subnetOf(h1);
    const key1 = await hostKey(h1);
    assert.equal(
      (await labEtcdctl(lab, ["get", "--print-value-only", leaseKey(s1)])).trim(),
      `{"PublicIP":"10.250.0.11","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${key1}"}}`,
    );
    const keyFile = await stat(join(dirname(h1.subnetFile), "wgkey"));
    assert.equal(keyFile.mode & 0o777, 0o400, "the key file is 0400");

    // The device: MTU 1500 - 80, this host's address, the Network's one link-scope route.
    const link = await ip(["-d", "addr", "show", "flannel-wg"], h1.netns);
    assert.match(link, /mtu 1420 /);
    assert.match(link, new RegExp(`inet ${s1.replace(/\.0$/, ".0").replace(/\./g, "\\.")}/32 `));
    assert.match(await readFile(h1.subnetFile, "utf8"), /^FLANNEL_MTU=1420$/m);
    assert.match(
      await ip(["route", "show", "10.244.0.0/16"], h1.netns),
      /dev flannel-wg .*scope link/,
    );

    // One peer per other host: its key, endpoint and subnet.
    const peers = await peersOf(h1);
    const expected = await Promise.all(
      [h2, h3].map(async (n) => [
        await hostKey(n),
        `${n.address}:51820`,
        `${await subnetOf(n)}/24`,
      ]),
    );
    assert.deepEqual(
      peers.map((p) => [p.publicKey, p.endpoint, p.allowedIPs.join(",")]).sort(),
      expected.sort(),
    );

    // trace names the tunnel peer of the other end on both halves, with its session.
    const [p1, p2] = podsByHost(await listPods(lab), lab);
    assert.ok(p1 && p2);
    const tunnelHop = (halves: readonly TraceHalf[], role: string) =>
      halves.find((h) => h.role === role)?.hops.find((hop) => hop.hop === "tunnel peer");
    const traced = await labTrace(lab, p1.name, p2.name);
    assert.equal(tunnelHop(traced, "source")?.state, "ok", JSON.stringify(traced));
    assert.match(
      tunnelHop(traced, "source")?.detail ?? "",
      new RegExp(`for ${await subnetOf(h2)}/24: .*encrypted`),
    );
    assert.match(tunnelHop(traced, "destination")?.detail ?? "", new RegExp(`for ${s1}/24: `));
    // With flanneld paused (nothing sets the peer back), a peer removed by hand is named.
    const pid1 = await livePid(h1.pidFile);
    assert.ok(pid1 !== null);
    process.kill(pid1, "SIGSTOP");
    try {
      await wg(h1, ["set", "flannel-wg", "peer", await hostKey(h2), "remove"]);
      const broken = await labTrace(lab, p1.name, p2.name);
      assert.equal(tunnelHop(broken, "source")?.state, "missing", JSON.stringify(broken));
    } finally {
      process.kill(pid1, "SIGCONT");
    }

    // A peer removed by hand comes back; so does the device.
    const [first] = peers;
    assert.ok(first);
    await wg(h1, ["set", "flannel-wg", "peer", first.publicKey, "remove"]);
    await eventually(
      async () => assert.equal((await peersOf(h1)).length, 2, "the peers are back"),
      {
        timeoutMs: 30_000,
      },
    );
    await ip(["link", "del", "flannel-wg"], h1.netns);
    await eventually(async () => assertAllReach(lab), { timeoutMs: 60_000 });

    // flanneld restarted: the same key, and traffic again.
    await killFlanneld(h1, "SIGTERM");
    await restartFlanneld(lab, h1);
    await eventually(async () => assertAllReach(lab), { timeoutMs: 60_000 });
    assert.equal(await hostKey(h1), key1);

    // h3's lease removed: its peer goes from h1 (h3's flanneld stops, as flannel's does).
    await labEtcdctl(lab, ["del", leaseKey(await subnetOf(h3))]);
    const key3 = await hostKey(h3);
    await eventually(async () => {
      assert.ok(!(await peersOf(h1)).some((p) => p.publicKey === key3), "h3's peer is gone");
    });
  });
});

test("wireguard: pod traffic is encrypted on the underlay; on vxlan the same check sees it", async () => {
  const marker = `FTS-MARKER-${randomBytes(6).toString("hex")}`;
  const captured = async (lab: Lab) => {
    const [p1, p2] = podsByHost(await listPods(lab), lab);
    assert.ok(p1 && p2 && lab.nodes[0]);
    const capture = await startCapture(lab.nodes[0].netns);
    await sendMarker(p1, p2, marker);
    return capture.stop();
  };
  await withLab("ftwge", { nodes: 2, pods: 1, backend: "wireguard" }, async (lab) => {
    await assertAllReach(lab);
    const { bytes, summary } = await captured(lab);
    assert.equal(
      bytes.includes(Buffer.from(marker)),
      false,
      "the marker never crosses in the clear",
    );
    // Between the two hosts (etcd's traffic to the hub aside): WireGuard's UDP and nothing else.
    const [a, b] = lab.nodes.map((n) => n.address);
    const between = summary
      .split("\n")
      .filter(
        (l) => a !== undefined && b !== undefined && l.includes(`${a}.`) && l.includes(`${b}.`),
      );
    assert.ok(
      between.some((l) => /\.51820: UDP/.test(l)),
      `WireGuard's UDP seen:\n${summary}`,
    );
    const others = between.filter((l) => !/\.51820[: ].*UDP/.test(l));
    assert.deepEqual(others, [], "only UDP to and from the listen port crosses between the hosts");
  });
  await withLab("ftwgv", { nodes: 2, pods: 1, backend: "vxlan" }, async (lab) => {
    const { bytes } = await captured(lab);
    assert.equal(bytes.includes(Buffer.from(marker)), true, "on vxlan the capture sees the marker");
  });
});

test("wireguard: a host configured by hand with wireguard-go and wg, exactly as flannel configures one, shares the network", async () => {
  await withLab("ftwgi", { nodes: 2, pods: 1, backend: "wireguard" }, async (lab) => {
    const taken = new Set(await Promise.all(lab.nodes.map((n) => subnetOf(n))));
    const index = [99, 98, 97].find((i) => !taken.has(`10.244.${i}.0`));
    assert.ok(index !== undefined);
    const handWg = await buildHandWireguardHost(lab, index);
    const hand = handWg.host;
    try {
      // Its peers as flannel adds them from the leases.
      const peers = await Promise.all(
        lab.nodes.map(async (n) => {
          const subnet = await subnetOf(n);
          const stored = JSON.parse(
            await labEtcdctl(lab, ["get", "--print-value-only", leaseKey(subnet)]),
          ) as { PublicIP: string; BackendData: { PublicKey: string } };
          return { subnet, publicIP: stored.PublicIP, publicKey: stored.BackendData.PublicKey };
        }),
      );
      await handWg.addPeers(peers);
      // Its lease, in flannel's bytes.
      await putLease(lab, `${hand.subnet}-24`, handWg.leaseJSON);
      for (const pod of await listPods(lab)) {
        await eventually(async () => {
          assert.ok((await ping(pod, hand.pod)).ok, `${pod.name} reaches the hand-made host`);
        });
        assert.ok(await handHostReaches(hand, pod), `the hand-made host reaches ${pod.name}`);
      }
    } finally {
      await handWg.stop();
    }
  });
});

test("wireguard: 50 restarts of a host, each with a fresh key, leave exactly one peer for it on the other host", async () => {
  await withLab("ftwgs", { nodes: 2, pods: 1, backend: "wireguard" }, async (lab) => {
    const [h1, h2] = lab.nodes;
    assert.ok(h1 && h2);
    const keyFile = join(dirname(h2.subnetFile), "wgkey");
    for (let i = 0; i < 50; i++) {
      await killFlanneld(h2, "SIGKILL"); // its wireguard-go left behind, as after a crash
      await rm(keyFile);
      await restartFlanneld(lab, h2);
      await eventually(async () => {
        const key = await hostKey(h2);
        assert.ok(
          (await peersOf(h1)).some((p) => p.publicKey === key),
          `round ${i}: h1 has h2's new key`,
        );
      });
    }
    const peers = await peersOf(h1);
    assert.deepEqual(
      peers.map((p) => p.publicKey),
      [await hostKey(h2)],
      "one peer, with h2's last key",
    );
    await eventually(async () => assertAllReach(lab), { timeoutMs: 30_000 });
  });
});

test("wireguard dual-stack (separate mode): a device per family, flannel's lease, every pod reaches every other over both", async () => {
  const config = JSON.stringify({
    Network: "10.244.0.0/16",
    EnableIPv6: true,
    IPv6Network: LAB_IPV6_NETWORK,
    Backend: { Type: "wireguard" },
  });
  await withLab(
    "ftwg6",
    { nodes: 3, pods: 1, backend: "wireguard", networkConfig: config },
    async (lab) => {
      const [h1, h2] = lab.nodes;
      assert.ok(h1 && h2);
      await eventually(async () => assertAllReach(lab), { timeoutMs: 30_000 }); // both families
      const key1 = await hostKey(h1);
      const stored = (
        await labEtcdctl(lab, [
          "get",
          "--prefix",
          "--print-value-only",
          "/coreos.com/network/subnets/",
        ])
      )
        .split("\n")
        .find((l) => l.includes(key1));
      assert.equal(
        stored,
        `{"PublicIP":"${h1.address}","PublicIPv6":"${h1.address6}","BackendType":"wireguard","BackendData":{"PublicKey":"${key1}"},"BackendV6Data":{"PublicKey":"${key1}"}}`,
      );
      assert.match(
        await ip(["-6", "route", "show", LAB_IPV6_NETWORK], h1.netns),
        /dev flannel-wg-v6/,
      );
      const peers6 = parseWgDump(await wg(h1, ["show", "flannel-wg-v6", "dump"])).peers;
      assert.equal(peers6.length, 2);
      const h2Peer = peers6.find((p) => p.endpoint === `[${h2.address6}]:51821`);
      assert.ok(h2Peer, JSON.stringify(peers6));
      assert.equal(h2Peer.publicKey, await hostKey(h2));
      assert.ok(h2Peer.allowedIPs.length === 1 && h2Peer.allowedIPs[0]?.startsWith("fd00:10:244:"));
    },
  );
});

test("wireguard (Kubernetes mode): a PSK on one host only cuts its pairs, doctor names the peer and the PSK, the other pair works", async () => {
  await withLab(
    "ftwgp",
    { nodes: 3, pods: 1, backend: "wireguard", datastore: "kube" },
    async (lab) => {
      const [h1, h2, h3] = lab.nodes;
      assert.ok(h1 && h2 && h3);
      await assertAllReach(lab);
      // h1 alone reads a net-conf.json with a PSK (each host reads its own file in this mode).
      const conf = join(lab.dir, "net-conf-psk.json");
      const psk = Buffer.alloc(32, 9).toString("base64");
      await writeFile(
        conf,
        JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "wireguard", PSK: psk } }),
      );
      await killFlanneld(h1, "SIGTERM");
      await restartFlanneld(
        { ...lab, flanneldArgs: [...lab.flanneldArgs, `--net-config-path=${conf}`] },
        h1,
      );
      await eventually(async () => {
        const peers = await peersOf(h1);
        assert.ok(
          peers.length === 2 && peers.every((p) => p.presharedKey === psk),
          "h1's peers carry the PSK",
        );
      });
      const pods = podsByHost(await listPods(lab), lab);
      const [p1, p2, p3] = pods;
      assert.ok(p1 && p2 && p3);
      // h1 keeps trying h2 (pings), and doctor on h1 names the peer, with the PSK as a likely cause.
      const h2Subnet = (await subnetOf(h2)).replace(/\./g, "\\.");
      await eventually(
        async () => {
          await ping(p1, p2);
          const result = await flannelctlOn(lab, h1, ["doctor", "--json"]);
          const report = JSON.parse(result.stdout) as {
            findings: { check: string; subject: string; fix: string }[];
          };
          const found = report.findings.find(
            (f) => f.check === "wg-peer-no-handshake" && new RegExp(h2Subnet).test(f.subject),
          );
          assert.ok(found, result.stdout);
          assert.match(found.fix, /PSK/);
        },
        { timeoutMs: 60_000 },
      );
      assert.equal((await ping(p2, p1)).ok, false, "h2 and h1 do not talk");
      assert.equal((await ping(p3, p1)).ok, false, "h3 and h1 do not talk");
      await eventually(async () => assert.ok((await ping(p2, p3)).ok, "h2 and h3 still talk"), {
        timeoutMs: 30_000,
      });
    },
  );
});
