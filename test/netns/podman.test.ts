/**
 * Pods as real containers: podman (its CNI backend) starts them in lab hosts' namespaces and
 * calls flannel-ts's plugin through the conflist `flannelctl cni install` writes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { addPodContainer, listPods } from "../../lab/cluster.js";
import { ping } from "../../lab/lab_check.js";
import { inspectPodContainer, podman } from "../../lab/podman.js";
import { assertAllReach, withLab, leasedAddresses } from "../helpers/lab_fixture.js";

test("podman pods on two hosts: ADD on run, each reaches the other, a restarted container works, DEL on rm -f releases the address, 20 at once get 20 addresses", async (t) => {
  await withLab(
    "ftpod",
    { nodes: 2, pods: 1, backend: "vxlan", runtime: "podman" },
    async (lab) => {
      const [h1, h2] = lab.nodes;
      assert.ok(h1 && h2);
      const pods = await listPods(lab);
      assert.deepEqual(
        pods.map((p) => [p.name, p.container]),
        [
          ["h1p1", `${lab.name}-h1p1`],
          ["h2p1", `${lab.name}-h2p1`],
        ],
      );
      // ADD: the container got an address of its host's subnet and the MTU of subnet.env.
      const [p1] = pods;
      assert.ok(p1);
      assert.deepEqual(await leasedAddresses(lab, h1), [p1.ip]);
      const link = await podman(lab, h1, [
        "exec",
        `${lab.name}-h1p1`,
        "ip",
        "link",
        "show",
        "eth0",
      ]);
      assert.match(link.stdout, /mtu 1450/);
      await assertAllReach(lab);
      let h1p1 = p1;

      await t.test(
        "a restarted container gets its network again and reaches the other host",
        async () => {
          const restarted = await podman(lab, h1, ["restart", "-t", "0", `${lab.name}-h1p1`]);
          assert.equal(restarted.code, 0, restarted.stderr);
          const again = await inspectPodContainer(lab, h1, `${lab.name}-h1p1`);
          assert.ok(again.ip !== null);
          const p2 = pods[1];
          assert.ok(p2);
          h1p1 = { ...p1, netns: again.netns, ip: again.ip };
          const result = await ping(h1p1, p2);
          assert.ok(result.ok, "h1p1 -> h2p1 after restart");
          assert.deepEqual(await leasedAddresses(lab, h1), [again.ip], "one address, no leak");
        },
      );

      await t.test("podman rm -f runs DEL: the address is released", async () => {
        const removed = await podman(lab, h2, ["rm", "-f", "-t", "0", `${lab.name}-h2p1`]);
        assert.equal(removed.code, 0, removed.stderr);
        assert.deepEqual(await leasedAddresses(lab, h2), []);
      });

      await t.test(
        "20 containers started at once on one host get 20 distinct addresses",
        async () => {
          const started = await Promise.all(
            Array.from({ length: 20 }, (_, i) => addPodContainer(lab, h2, `x${i + 1}`)),
          );
          const addresses = new Set(started.map((p) => p.ip));
          assert.equal(addresses.size, 20);
          assert.deepEqual(await leasedAddresses(lab, h2), [...addresses].sort());
          for (const pod of started.slice(0, 3))
            assert.ok((await ping(pod, h1p1)).ok, `${pod.name} -> h1p1`);
        },
      );
    },
  );
});
