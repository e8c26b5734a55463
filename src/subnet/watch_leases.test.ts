import assert from "node:assert/strict";
import { test } from "node:test";
import { IPNet } from "../ip/ip.js";
import type { Lease } from "../lease/lease.js";
import { LeaseWatcher, watchLeases } from "./watch_leases.js";
import type { LeaseWatchResult } from "./manager.js";

function lease(subnet: string, publicIP: string, mac = "aa:aa:aa:aa:aa:aa"): Lease {
  return {
    subnet: IPNet.parse(subnet)!,
    ipv6Subnet: null,
    attrs: {
      publicIP,
      publicIPv6: null,
      backendType: "vxlan",
      backendData: { VNI: 1, VtepMAC: mac },
    },
    expiration: null,
    reserved: false,
  };
}
const summary = (events: { type: string; lease: Lease }[]) =>
  events.map((e) => `${e.type} ${e.lease.subnet?.toString()} ${e.lease.attrs.publicIP}`);

test("LeaseWatcher.reset() never reports this node's own lease", () => {
  const watcher = new LeaseWatcher(lease("10.0.1.0/24", "1.1.1.1"));
  assert.deepEqual(
    summary(watcher.reset([lease("10.0.1.0/24", "1.1.1.1"), lease("10.0.2.0/24", "2.2.2.2")])),
    ["added 10.0.2.0/24 2.2.2.2"],
  );
});

test("LeaseWatcher.reset() emits only the differences from what it knew", () => {
  const watcher = new LeaseWatcher(null);
  watcher.reset([
    lease("10.0.1.0/24", "1.1.1.1"),
    lease("10.0.2.0/24", "2.2.2.2"),
    lease("10.0.3.0/24", "3.3.3.3"),
  ]);
  const events = watcher.reset([
    lease("10.0.1.0/24", "1.1.1.1"),
    lease("10.0.2.0/24", "2.2.2.2", "bb:bb:bb:bb:bb:bb"),
    lease("10.0.4.0/24", "4.4.4.4"),
  ]);
  assert.deepEqual(summary(events).sort(), [
    "added 10.0.2.0/24 2.2.2.2",
    "added 10.0.4.0/24 4.4.4.4",
    "removed 10.0.3.0/24 3.3.3.3",
  ]);
});

test("LeaseWatcher.update() answers a removal with the lease as last known", () => {
  const watcher = new LeaseWatcher(null);
  watcher.reset([lease("10.0.2.0/24", "2.2.2.2", "cc:cc:cc:cc:cc:cc")]);
  const bare: Lease = {
    ...lease("10.0.2.0/24", ""),
    attrs: { publicIP: "", publicIPv6: null, backendType: "" },
  };
  const [event] = watcher.update([{ type: "removed", lease: bare }]);
  assert.equal(event?.lease.attrs.publicIP, "2.2.2.2");
  assert.deepEqual(event?.lease.attrs.backendData, { VNI: 1, VtepMAC: "cc:cc:cc:cc:cc:cc" });
  assert.deepEqual(watcher.update([{ type: "removed", lease: bare }]), []);
});

test("watchLeases() yields the first snapshot even when it is empty", async () => {
  const results: LeaseWatchResult[] = [
    { kind: "snapshot", leases: [] },
    { kind: "events", events: [{ type: "added", lease: lease("10.0.5.0/24", "5.5.5.5") }] },
  ];
  const manager = {
    async *watchLeases() {
      for (const r of results) yield await Promise.resolve(r);
    },
  };
  const batches = [];
  for await (const batch of watchLeases(manager, null, { signal: new AbortController().signal }))
    batches.push(summary([...batch]));
  assert.deepEqual(batches, [[], ["added 10.0.5.0/24 5.5.5.5"]]);
});

test("LeaseWatcher keeps out leases that cannot be a host's, telling once per key and reason", () => {
  const told: string[] = [];
  const watcher = new LeaseWatcher(lease("10.0.1.0/24", "1.1.1.1"), {
    rules: { subnetLen: 24, network: null, ipv6Network: null, ownAddresses: [], localNetworks: [] },
    onSkip: (l, reason) => told.push(`${l.subnet?.toString()}: ${reason}`),
  });
  const events = watcher.reset([
    lease("10.0.2.0/24", "2.2.2.2"),
    lease("10.0.1.0/25", "6.6.6.6", "bb:bb:bb:bb:bb:bb"), // half of this host's subnet
    lease("10.0.2.128/25", "7.7.7.7"), // another prefix length, inside h2's
    lease("10.0.3.0/24", "8.8.8.8"),
    lease("10.0.3.0/24", "8.8.8.8"),
  ]);
  assert.deepEqual(summary(events), ["added 10.0.2.0/24 2.2.2.2", "added 10.0.3.0/24 8.8.8.8"]);
  assert.deepEqual(told, [
    "10.0.1.0/25: its prefix length /25 is not the network's SubnetLen /24",
    "10.0.2.128/25: its prefix length /25 is not the network's SubnetLen /24",
  ]);
  // The same leases again: nothing new to tell, nothing new to do.
  assert.deepEqual(watcher.update([{ type: "added", lease: lease("10.0.1.0/25", "6.6.6.6") }]), []);
  assert.equal(told.length, 2);
});

test("LeaseWatcher keeps out a lease that overlaps this host's or an accepted one, and admits it once the other goes", () => {
  const told: string[] = [];
  const watcher = new LeaseWatcher(lease("10.0.1.0/24", "1.1.1.1"), {
    rules: {
      subnetLen: null,
      network: null,
      ipv6Network: null,
      ownAddresses: [],
      localNetworks: [],
    }, // Kubernetes mode: pod CIDRs of any size
    onSkip: (l, reason) => told.push(`${l.subnet?.toString()}: ${reason}`),
  });
  watcher.reset([lease("10.0.2.0/24", "2.2.2.2")]);
  assert.deepEqual(
    watcher
      .update([
        { type: "added", lease: lease("10.0.1.0/25", "6.6.6.6") },
        { type: "added", lease: lease("10.0.2.0/23", "7.7.7.7") },
        { type: "added", lease: lease("10.0.8.0/22", "8.8.8.8") },
      ])
      .map((e) => `${e.type} ${e.lease.subnet?.toString()}`),
    ["added 10.0.8.0/22"],
  );
  assert.deepEqual(told, [
    "10.0.1.0/25: it overlaps this host's subnet 10.0.1.0/24",
    "10.0.2.0/23: it overlaps the lease 10.0.2.0-24 (public IP 2.2.2.2)",
  ]);
  assert.deepEqual(
    summary(watcher.update([{ type: "removed", lease: lease("10.0.2.0/24", "2.2.2.2") }])),
    ["removed 10.0.2.0/24 2.2.2.2", "added 10.0.2.0/23 7.7.7.7"],
  );
  assert.deepEqual([...watcher.refused.keys()], ["10.0.1.0-25"]);
});
