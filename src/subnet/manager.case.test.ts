/**
 * The behaviour every SubnetManager must show, as one suite each implementation runs
 * (`describeSubnetManager("etcd", ...)`). Implementation-specific behaviour is tested beside
 * the implementation.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LeaseAttrs, LeaseEvent } from "../lease/lease.js";
import type { SubnetManager } from "./manager.js";
import { watchLeases } from "./watch_leases.js";

/** What a contract run needs from an implementation: nodes that share one store. */
export interface ManagerHarness {
  /** Stores the config `{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}` or an equivalent. */
  setup(networkJson: string): Promise<void>;
  /**
   * A manager acting for a node. Two calls with the same `machine` are the same machine's
   * flanneld started again (etcd knows it by its public IP, Kubernetes by its Node name); each
   * call without one is a new machine.
   */
  node(machine?: string): Promise<SubnetManager>;
  cleanup(): Promise<void>;
}

const attrs = (publicIP: string): LeaseAttrs => ({
  publicIP,
  publicIPv6: null,
  backendType: "alloc",
});

/** Runs the contract suite against one implementation. */
export function describeSubnetManager(name: string, open: () => Promise<ManagerHarness>): void {
  describe(`SubnetManager contract: ${name}`, () => {
    test("acquireLease() leases a subnet of the configured length inside the network", async () => {
      const h = await open();
      try {
        await h.setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}');
        const lease = await (
          await h.node()
        ).acquireLease(attrs("192.0.2.1"), { signal: AbortSignal.timeout(10_000) });
        assert.equal(lease.subnet?.prefixLen, 24);
        assert.ok(lease.subnet?.toString().startsWith("10.5."));
        assert.notEqual(lease.subnet?.toString(), "10.5.0.0/24", "the first subnet is skipped");
        assert.equal(lease.attrs.publicIP, "192.0.2.1");
      } finally {
        await h.cleanup();
      }
    });

    test("acquireLease() gives a node the same subnet again", async () => {
      const h = await open();
      try {
        await h.setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}');
        const signal = AbortSignal.timeout(10_000);
        const first = await (await h.node("m1")).acquireLease(attrs("192.0.2.2"), { signal });
        const again = await (await h.node("m1")).acquireLease(attrs("192.0.2.2"), { signal });
        assert.equal(again.subnet?.toString(), first.subnet?.toString());
      } finally {
        await h.cleanup();
      }
    });

    test("watchLeases() reports another node's lease and never this node's", async () => {
      const h = await open();
      const controller = new AbortController();
      try {
        await h.setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}');
        const me = await h.node();
        const mine = await me.acquireLease(attrs("192.0.2.3"), { signal: controller.signal });
        const seen: LeaseEvent[][] = [];
        const watching = (async () => {
          for await (const batch of watchLeases(me, mine, { signal: controller.signal })) {
            seen.push([...batch]);
            if (seen.flat().length > 0) return;
          }
        })();
        const other = await (
          await h.node()
        ).acquireLease(attrs("192.0.2.4"), { signal: controller.signal });
        await watching;
        const events = seen.flat();
        assert.equal(events.length, 1);
        assert.equal(events[0]?.type, "added");
        assert.equal(events[0]?.lease.subnet?.toString(), other.subnet?.toString());
      } finally {
        controller.abort();
        await h.cleanup();
      }
    });
  });
}
