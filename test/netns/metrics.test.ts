/**
 * Every /metrics figure read from a running flanneld, as Prometheus would scrape it, moving
 * when the thing it counts happens.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ip } from "../../lab/netns.js";
import { healthzGet, metricValue } from "../helpers/healthz.js";
import { eventually, withLab } from "../helpers/lab_fixture.js";

const scrape = async (netns: string) => (await healthzGet(netns, "/metrics")).body;

const value = (text: string, name: string): number => {
  const found = metricValue(text, name);
  assert.ok(!Number.isNaN(found), `${name} is exported`);
  return found;
};

test("flanneld's /metrics: readiness, the lease, the peers and the data plane's work, each moving when it happens", async () => {
  await withLab(
    "ftmx",
    { nodes: 2, pods: 0, backend: "vxlan", flanneldArgs: ["--healthz-port=8081"] },
    async (lab) => {
      const h1 = lab.nodes[0]!.netns;
      let text = "";
      await eventually(async () => {
        text = await scrape(h1);
        assert.equal(value(text, "flannel_remote_leases"), 1);
        assert.ok(
          value(text, "flannel_dataplane_entries_written_total") >= 3,
          "neighbour, FDB, route",
        );
      });
      assert.equal(value(text, "flannel_ready"), 1);
      const expires = value(text, "flannel_lease_expiration_timestamp_seconds");
      const now = Date.now() / 1000;
      assert.ok(expires > now + 23 * 3600 && expires < now + 25 * 3600, "a 24 h lease");
      assert.equal(value(text, "flannel_lease_conflicts_total"), 0);
      assert.ok(value(text, "flannel_dataplane_syncs_total") >= 1);
      assert.equal(value(text, "flannel_dataplane_failures_total"), 0);
      assert.equal(value(text, "flannel_dataplane_sync_failures_total"), 0);
      assert.equal(value(text, "flannel_traffic_rule_repairs_total"), 0);

      // An entry deleted by hand is written again; a route of ours no lease needs is removed.
      const written = value(text, "flannel_dataplane_entries_written_total");
      const removed = value(text, "flannel_dataplane_entries_removed_total");
      await ip(["neigh", "flush", "dev", "flannel.1", "nud", "permanent"], h1);
      await ip(
        [
          "route",
          "add",
          "10.244.99.0/24",
          "via",
          "10.244.99.0",
          "dev",
          "flannel.1",
          "onlink",
          "proto",
          "76",
        ],
        h1,
      );
      await eventually(async () => {
        const now2 = await scrape(h1);
        assert.ok(value(now2, "flannel_dataplane_entries_written_total") > written);
        assert.ok(value(now2, "flannel_dataplane_entries_removed_total") > removed);
      });
    },
  );
});
