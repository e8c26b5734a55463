/**
 * etcd wiped and rebuilt empty under a running lab, as happens when an operator rebuilds the
 * cluster's store: flannel (and flannel-ts before) then split the cluster silently.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { addNode, labEtcdctl, listPods, wipeEtcd } from "../../src/lab/cluster.js";
import { spawnIn } from "../../src/lab/netns.js";
import { assertAllReach, eventually, withLab } from "../helpers/lab_fixture.js";

const quiet = () => undefined;
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';

test("etcd wiped and rebuilt empty: every host writes its lease again with its subnet, no ping is lost, a host that joins later is reached", async (t) => {
  await withLab(
    "ftwipe",
    { nodes: 2, pods: 1, backend: "vxlan", networkConfig: CONFIG },
    async (lab) => {
      const leaseKeys = async () =>
        (await labEtcdctl(lab, ["get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"]))
          .split("\n")
          .filter((l) => l.trim() !== "")
          .sort();
      const before = await leaseKeys();
      assert.equal(before.length, 2);
      // The store's revision: a wipe sends it back to the start (the cluster ID stays: etcd
      // derives it from the member names and URLs, which the rebuilt cluster shares).
      const revision = async () =>
        (
          JSON.parse(await labEtcdctl(lab, ["endpoint", "status", "-w", "json"])) as {
            Status: { header: { revision: number } };
          }[]
        )[0]?.Status.header.revision ?? 0;
      const revisionBefore = await revision();
      const [p1, p2] = await listPods(lab);
      assert.ok(p1 && p2);
      // Pings every 0.1 s for the whole drill; stopped with SIGINT, ping prints its count.
      const ping = spawnIn(p1.netns, "ping", ["-i", "0.1", "-W", "1", p2.ip], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      let output = "";
      ping.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const pingDone = new Promise((resolve) => ping.once("exit", resolve));
      try {
        await wipeEtcd(lab);
        const revisionAfter = await revision();
        assert.ok(revisionAfter < revisionBefore, `etcd went back to revision ${revisionAfter}`);
        await labEtcdctl(lab, ["put", "/coreos.com/network/config", CONFIG]);
        await eventually(
          async () => {
            assert.deepEqual(await leaseKeys(), before, "each host's lease, with its subnet");
          },
          { timeoutMs: 60_000 },
        );
        // A host that joins the new store: the old hosts route to it and it to them.
        const { lab: grown } = await addNode(lab, quiet);
        await eventually(() => assertAllReach(grown), { timeoutMs: 60_000 });
      } finally {
        ping.kill("SIGINT");
        await pingDone;
      }
      const counts = /(\d+) packets transmitted, (\d+) received/.exec(output);
      assert.ok(counts, output);
      assert.ok(Number(counts[1]) > 50, `pings were sent throughout: ${counts[0]}`);
      assert.equal(counts[2], counts[1], `no ping lost: ${counts[0]}`);
      t.diagnostic(counts[0]);
    },
  );
});
