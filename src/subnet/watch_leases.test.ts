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
  events.map((e) => `${e.type} ${e.lease.subnet.toString()} ${e.lease.attrs.publicIP}`);

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
