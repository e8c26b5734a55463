/** Test helpers for lab-based tests: a lab that is always taken down, polling, reachability. */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { labDown, labEtcdctl, labUp, listPods } from "../../lab/cluster.js";
import type { Lab, LabNode, LabSpec } from "../../lab/cluster.js";
import { hostCniPaths } from "../../lab/host_cni.js";
import { pingAll } from "../../lab/lab_check.js";
import { uniquePrefix } from "../../lab/netns.js";

const quiet = () => undefined;

/** Runs a test body against a fresh lab with a unique name; the lab is taken down in any case. */
export async function withLab(
  tag: string,
  spec: Omit<LabSpec, "name">,
  body: (lab: Lab) => Promise<void>,
): Promise<void> {
  const name = uniquePrefix(tag);
  try {
    await body(await labUp({ ...spec, name }, quiet));
  } finally {
    await labDown(name, quiet);
  }
}

export { eventually } from "../../lab/poll.js";

/** A lab host's subnet as its lease key starts (`10.244.7.0`), read from its subnet.env. */
export async function subnetOf(node: LabNode): Promise<string> {
  const env = await readFile(node.subnetFile, "utf8");
  const match = /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/.exec(env);
  assert.ok(match, env);
  return `${match[1]}.0`;
}

/** The IPv4 addresses host-local holds for a host's pods (network cbr0), sorted. */
export async function leasedAddresses(lab: Lab, node: LabNode): Promise<string[]> {
  const dir = join(hostCniPaths(lab, node).ipamDataDir, "cbr0");
  return (await readdir(dir).catch(() => [])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
}

/** Asserts that every pod of the lab reaches every other, naming the pairs that do not. */
export async function assertAllReach(lab: Lab): Promise<void> {
  const results = await pingAll(await listPods(lab));
  const failed = results.filter((r) => !r.ok).map((r) => `${r.from}->${r.to}`);
  assert.deepEqual(failed, [], `pairs that failed: ${failed.join(", ")}`);
}

/**
 * Writes a lease into the lab's etcd as a flannel host would: the key under an etcd lease (of
 * an hour by default; flannel's are a day), so that it is a lease and not a reservation.
 */
export async function putLease(
  lab: Lab,
  subnetKey: string,
  value: string,
  ttlSeconds = 3600,
): Promise<void> {
  const grant = await labEtcdctl(lab, ["lease", "grant", String(ttlSeconds)]);
  const leaseID = /lease ([0-9a-f]+) granted/.exec(grant)?.[1];
  assert.ok(leaseID, grant);
  await labEtcdctl(lab, [
    "put",
    "--lease",
    leaseID,
    `/coreos.com/network/subnets/${subnetKey}`,
    value,
  ]);
}
