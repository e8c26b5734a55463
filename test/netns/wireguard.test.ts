/**
 * The wireguard backend end to end on the lab's hosts, on wireguard-go (this kernel has no
 * WireGuard): three hosts reach each other; the lease, device, MTU, route and key file are
 * flannel's; pod traffic is encrypted on the wire (and the same check on vxlan sees it in the
 * clear); peers are kept at the level of the leases.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { killFlanneld, labEtcdctl, listPods, restartFlanneld, wgOn } from "../../lab/cluster.js";
import type { Lab, LabNode, LabPod } from "../../lab/cluster.js";
import { ip } from "../../lab/netns.js";
import { publicKeyOf, parseKey } from "../../src/backend/wireguard/keys.js";
import { parseWgDump } from "../../src/backend/wireguard/wg_tool.js";
import { assertAllReach, eventually, subnetOf, withLab } from "../helpers/lab_fixture.js";
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

    // A peer removed by hand comes back; so does the device.
    const [first] = peers;
    assert.ok(first);
    await wg(h1, ["set", "flannel-wg", "peer", first.publicKey, "remove"]);
    await eventually(async () => assert.equal((await peersOf(h1)).length, 2, "the peer is back"), {
      timeoutMs: 30_000,
    });
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
