/**
 * etcd wiped and rebuilt empty under a running lab (the `etcd-wipe` drill), as happens when an
 * operator rebuilds the cluster's store: flannel (and flannel-ts before) then split the cluster
 * silently.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { addNode, labEtcdctl } from "../../lab/cluster.js";
import type { Lab } from "../../lab/cluster.js";
import { runDrill } from "../../lab/drills.js";
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
      // Writes enough before the wipe that the rebuilt store (the config and two leases again)
      // is surely below the old revision when it is read.
      for (let i = 0; i < 10; i++)
        await labEtcdctl(lab, ["put", "/flannel-ts-test/filler", `${i}`]);
      const revisionBefore = await revision();
      let grown: Lab = lab;
      const result = await runDrill(lab, "etcd-wipe", {
        // Right after the config is written again into the empty store.
        during: async () => {
          const revisionAfter = await revision();
          assert.ok(revisionAfter < revisionBefore, `etcd went back to revision ${revisionAfter}`);
          await eventually(
            async () => {
              assert.deepEqual(await leaseKeys(), before, "each host's lease, with its subnet");
            },
            { timeoutMs: 60_000 },
          );
          // A host that joins the new store: the old hosts route to it and it to them.
          grown = (await addNode(lab, quiet)).lab;
          await eventually(() => assertAllReach(grown), { timeoutMs: 60_000 });
        },
      });
      t.diagnostic(`etcd-wipe: ${result.pings.sent} pings sent, ${result.pings.lost} lost`);
      assert.ok(result.pings.sent > 50, "pings were sent throughout");
      assert.equal(result.pings.lost, 0);
    },
  );
});
