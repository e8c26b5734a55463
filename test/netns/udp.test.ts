/**
 * The udp backend end to end on the lab's namespace hosts: flanneld (etcd mode) on each host,
 * pods wired by the CNI plugin, and a host forwarding the way flannel (Go)'s C proxy does.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { killFlanneld, labEtcdctl, listPods, restartFlanneld } from "../../lab/cluster.js";
import type { Lab, LabPod } from "../../lab/cluster.js";
import { ping } from "../../lab/lab_check.js";
import { execIn, ip } from "../../lab/netns.js";
import { startCProxy } from "../helpers/c_udp_proxy.js";
import { buildBareHost, handHostReaches } from "../helpers/hand_host.js";
import { checkedTransfer } from "../helpers/tcp_transfer.js";
import { assertAllReach, eventually, putLease, subnetOf, withLab } from "../helpers/lab_fixture.js";

const leaseKey = (subnet: string) => `/coreos.com/network/subnets/${subnet}-24`;

/** What a TCP connection from `pod` to `ip` ends with: "connected" or the shell's error text. */
async function tcpConnect(pod: LabPod, address: string): Promise<string> {
  return execIn(pod.netns, "timeout", [
    "5",
    "bash",
    "-c",
    `exec 3<>/dev/tcp/${address}/80 && echo connected`,
  ]).then(
    (out) => out.trim(),
    (err: unknown) => (err as Error).message,
  );
}

/** A subnet of the lab's Network that no lab host leased. */
async function freeSubnet(lab: Lab): Promise<number> {
  const taken = new Set(await Promise.all(lab.nodes.map((n) => subnetOf(n))));
  return [99, 98, 97].find((i) => !taken.has(`10.244.${i}.0`)) ?? 96;
}

test("udp: three hosts; TTL, net-unreachable, a removed lease and a restarted flanneld", async () => {
  await withLab("ftudp", { nodes: 3, pods: 1, backend: "udp" }, async (lab) => {
    const [h1, h2, h3] = lab.nodes;
    assert.ok(h1 && h2 && h3);
    await assertAllReach(lab);
    // The lease as flannel's udp backend writes it: no BackendType, no BackendData.
    const s1 = await subnetOf(h1);
    assert.equal(
      (await labEtcdctl(lab, ["get", "--print-value-only", leaseKey(s1)])).trim(),
      '{"PublicIP":"10.250.0.11","PublicIPv6":null}',
    );
    assert.match(await readFile(h1.subnetFile, "utf8"), /^FLANNEL_MTU=1472$/m);
    assert.match(await ip(["route", "show", "10.244.0.0/16"], h1.netns), /dev flannel0/);

    const pods = await listPods(lab);
    const onNode = (name: string) => pods.find((p) => p.node === name)!;
    const [p1, p2, p3] = [onNode(h1.name), onNode(h2.name), onNode(h3.name)];
    // Bulk TCP both ways, bytes checked: with offloads the forwarders cut the kernel's TCP
    // super-packets into packets of the MTU and merge them again on the other side.
    assert.match(await readFile(h1.logFile, "utf8"), /"offload":true/);
    for (const [a, b] of [
      [p1, p2],
      [p2, p1],
    ] as const) {
      const { sent, received } = await checkedTransfer(a, b, 64 << 20);
      assert.match(sent, /^67108864 [0-9a-f]{64}$/);
      assert.equal(received, sent, `${a.name} -> ${b.name}: the bytes arrive as sent`);
    }

    // Both forwarders decrement the TTL, as flannel's do (64, minus two kernels, minus two
    // forwarders): a ping's reply arrives with 60, and a ping sent with TTL 4 dies on the way.
    assert.match(await execIn(p1.netns, "ping", ["-c", "1", "-W", "2", p2.ip]), /ttl=60 /);
    assert.ok(
      await execIn(p1.netns, "ping", ["-c", "1", "-W", "2", "-t", "5", p2.ip]).then(
        () => true,
        () => false,
      ),
    );
    assert.equal(
      await execIn(p1.netns, "ping", ["-c", "1", "-W", "2", "-t", "4", p2.ip]).then(
        () => true,
        () => false,
      ),
      false,
      "a packet whose TTL runs out in the forwarders is dropped",
    );

    // flannel0 deleted by hand: made again with its address, MTU and route, traffic goes on.
    await ip(["link", "del", "flannel0"], h1.netns);
    await eventually(async () => {
      assert.ok((await ping(p1, p2)).ok, "h1's pod reaches h2's pod again");
      assert.ok((await ping(p2, p1)).ok, "h2's pod reaches h1's pod again");
    });
    const tun = await ip(["addr", "show", "flannel0"], h1.netns);
    assert.match(tun, /mtu 1472 /);
    assert.match(tun, new RegExp(`inet ${s1.replace(/\./g, "\\.")}/32 `));
    assert.match(await ip(["route", "show", "10.244.0.0/16"], h1.netns), /dev flannel0/);

    // A subnet with no lease: the forwarder answers with ICMP net-unreachable at once.
    const free = await freeSubnet(lab);
    assert.match(await tcpConnect(p1, `10.244.${free}.5`), /Network is unreachable/);

    // h3's lease removed: h1's forwarder stops sending to it from its next packet.
    assert.equal(await tcpConnect(p1, p3.ip).then((r) => /unreachable/.test(r)), false);
    await labEtcdctl(lab, ["del", leaseKey(await subnetOf(h3))]);
    await eventually(async () => {
      assert.match(await tcpConnect(p1, p3.ip), /Network is unreachable/);
    });

    // flanneld on h2 stopped and started again: same subnet, and its pod is reached again.
    const before = await readFile(h2.subnetFile, "utf8");
    await killFlanneld(h2, "SIGTERM");
    await restartFlanneld(lab, h2);
    await eventually(async () => {
      const log = await readFile(h2.logFile, "utf8");
      assert.equal(log.split("Wrote subnet file").length, 3, "started twice");
    });
    assert.equal(await readFile(h2.subnetFile, "utf8"), before);
    await eventually(async () => {
      assert.ok((await ping(p1, p2)).ok, "h1's pod reaches h2's pod again");
      assert.ok((await ping(p2, p1)).ok, "h2's pod reaches h1's pod again");
    });
  });
});

test("udp: a host forwarding as flannel (Go)'s C proxy does exchanges pod traffic with flannel-ts hosts", async () => {
  await withLab("ftudpi", { nodes: 2, pods: 1, backend: "udp" }, async (lab) => {
    const index = await freeSubnet(lab);
    const host = await buildBareHost(lab, index);
    const proxy = await startCProxy({
      netns: host.netns,
      bindIP: host.publicIP,
      port: 8285,
      subnet: `${host.subnet}/24`,
      network: "10.244.0.0/16",
      mtu: 1472,
    });
    try {
      // Its lease written by hand, byte for byte as flannel's udp backend writes one.
      await putLease(lab, `${host.subnet}-24`, `{"PublicIP":"${host.publicIP}","PublicIPv6":null}`);
      // The C host learns the flannel-ts hosts from their leases, as flannel's SET_ROUTE does.
      for (const n of lab.nodes) {
        const subnet = await subnetOf(n);
        const stored = JSON.parse(
          await labEtcdctl(lab, ["get", "--print-value-only", leaseKey(subnet)]),
        ) as { PublicIP: string };
        await proxy.addRoute(`${subnet}/24`, stored.PublicIP, 8285);
      }
      for (const pod of await listPods(lab)) {
        await eventually(async () => {
          assert.ok((await ping(pod, host.pod)).ok, `${pod.name} reaches the C proxy's host`);
        });
        assert.ok(await handHostReaches(host, pod), `the C proxy's host reaches ${pod.name}`);
      }
      // Bulk TCP both ways, bytes checked: flannel-ts's segments are whole packets to the C
      // host, and the C host's plain datagrams are taken by flannel-ts.
      const [pod] = await listPods(lab);
      assert.ok(pod);
      for (const [a, b] of [
        [pod, host.pod],
        [host.pod, pod],
      ] as const) {
        const { sent, received } = await checkedTransfer(a, b, 16 << 20);
        assert.match(sent, /^16777216 [0-9a-f]{64}$/);
        assert.equal(received, sent, `${a.name} -> ${b.name}: the bytes arrive as sent`);
      }
    } finally {
      await proxy.stop();
    }
  });
});
