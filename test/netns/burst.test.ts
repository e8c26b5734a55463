/**
 * A burst of lease changes on a real kernel: 1,000 leases added and 400 of them removed again in
 * quick transactions while flanneld follows; the host must end with exactly the entries of the
 * 600 leases left (routes, neighbours and FDB entries on flannel.1), nothing more, nothing less.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { execIn, ip } from "../../lab/netns.js";
import type { Lab } from "../../lab/cluster.js";
import { eventually, withLab } from "../helpers/lab_fixture.js";

const COUNT = 1_000;
const subnet = (i: number) => `10.${100 + Math.floor(i / 250)}.${i % 250}.0`;
const vtep = (i: number) => `10.251.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const mac = (i: number) =>
  `0e:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
const key = (i: number) => `/coreos.com/network/subnets/${subnet(i)}-24`;
const leaseJson = (i: number) =>
  JSON.stringify({
    PublicIP: vtep(i),
    PublicIPv6: null,
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: mac(i) },
  });

/** One etcd transaction of puts or deletes (etcd takes at most 128 operations in one). */
async function txn(lab: Lab, ops: readonly string[]): Promise<void> {
  const out = await execIn(
    lab.hub,
    "etcdctl",
    ["--endpoints", lab.etcdEndpoint, "--dial-timeout", "2s", "txn"],
    { input: `\n${ops.join("\n")}\n\n\n` },
  );
  assert.match(out, /^SUCCESS/, out);
}

const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

test("vxlan: a burst of 1,000 lease adds and removes converges to exactly the leases left", async () => {
  await withLab(
    "ftbu",
    {
      nodes: 1,
      pods: 0,
      backend: "vxlan",
      networkConfig: '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}',
    },
    async (lab) => {
      const h1 = lab.nodes[0]!.netns;
      const removed = (i: number) => i % 5 === 1 || i % 5 === 3; // 400 of the 1,000
      // Adds and removes interleaved: each removal follows its add by a few transactions.
      for (let start = 0; start < COUNT; start += 100) {
        const batch = Array.from({ length: 100 }, (_, j) => start + j);
        await txn(
          lab,
          batch.map((i) => `put ${key(i)} ${JSON.stringify(leaseJson(i))}`),
        );
        if (start >= 200) {
          const earlier = Array.from({ length: 100 }, (_, j) => start - 200 + j).filter(removed);
          await txn(
            lab,
            earlier.map((i) => `del ${key(i)}`),
          );
        }
      }
      const tail = Array.from({ length: 200 }, (_, j) => COUNT - 200 + j).filter(removed);
      await txn(
        lab,
        tail.map((i) => `del ${key(i)}`),
      );

      const left = Array.from({ length: COUNT }, (_, i) => i).filter((i) => !removed(i));
      const wantRoutes = left.map((i) => `${subnet(i)}/24 via ${subnet(i)}`).sort();
      const wantNeighbors = left.map((i) => `${subnet(i)} ${mac(i)}`).sort();
      const wantFdb = left.map((i) => `${mac(i)} ${vtep(i)}`).sort();
      await eventually(
        async () => {
          const routes = lines(await ip(["route", "show", "dev", "flannel.1"], h1)).map((l) =>
            l.split(" ").slice(0, 3).join(" "),
          );
          const neighbors = lines(await ip(["neigh", "show", "dev", "flannel.1"], h1)).map((l) => {
            const [ip_, , mac_] = l.split(" ");
            return `${ip_} ${mac_}`;
          });
          const fdb = lines(await execIn(h1, "bridge", ["fdb", "show", "dev", "flannel.1"]))
            .filter((l) => l.includes(" dst "))
            .map((l) => `${l.split(" ")[0]} ${/ dst (\S+)/.exec(l)?.[1]}`);
          assert.deepEqual(routes.sort(), wantRoutes);
          assert.deepEqual(neighbors.sort(), wantNeighbors);
          assert.deepEqual(fdb.sort(), wantFdb);
        },
        { timeoutMs: 60_000 },
      );
    },
  );
});
