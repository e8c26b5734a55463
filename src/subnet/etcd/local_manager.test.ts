import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openFixture, startEtcd } from "../../../test/helpers/etcd_fixture.js";
import type { EtcdFixture } from "../../../test/helpers/etcd_fixture.js";
import { startTcpProxy } from "../../../test/helpers/tcp_proxy.js";
import { LeaseRevokedError, NetworkFullError } from "../../errors.js";
import { freePort } from "../../../lab/etcd_server.js";
import type { EtcdServer } from "../../../lab/etcd_server.js";
import { makeSubnetKey } from "../../lease/lease.js";
import type { IPv4Lease, LeaseAttrs, LeaseEvent } from "../../lease/lease.js";
import { ManualClock, fastClock } from "../../../test/helpers/test_clock.js";
import { waitFor } from "../../../lab/poll.js";
import { capturingLogger } from "../../../test/helpers/capturing_logger.js";
import { describeSubnetManager } from "../manager.case.test.js";
import { LIST_PAGE_SIZE } from "./registry.js";
import type { LeaseWatchResult } from "../manager.js";
import { watchLeases } from "../watch_leases.js";
import { peerLeaseRulesOf } from "../../lease/peer_rules.js";

const attrs = (publicIP: string): LeaseAttrs => ({
  publicIP,
  publicIPv6: null,
  backendType: "alloc",
});
const signal = () => AbortSignal.timeout(30_000);
const keyOf = (lease: IPv4Lease) => makeSubnetKey(lease.subnet, lease.ipv6Subnet);

let server: EtcdServer;
before(async () => {
  server = await startEtcd();
});
after(async () => {
  await server.stop();
});

describeSubnetManager("etcd", async () => {
  const fixture = await openFixture(server);
  return {
    setup: (json) => fixture.setConfig(json),
    node: () => fixture.manager(),
    cleanup: () => fixture.cleanup(),
  };
});

/** Collects lease events from a watch until `until` says enough, or the time runs out. */
async function collect(
  events: AsyncIterable<readonly LeaseEvent[]>,
  seen: LeaseEvent[],
  until: (seen: readonly LeaseEvent[]) => boolean,
): Promise<void> {
  for await (const batch of events) {
    seen.push(...batch);
    if (until(seen)) return;
  }
}

const describeEvents = (events: readonly LeaseEvent[]) =>
  events.map((e) => `${e.type} ${e.lease.subnet?.toString()}`);

describe("LocalManager", () => {
  let fx: EtcdFixture;
  before(async () => {
    fx = await openFixture(server);
  });
  after(async () => {
    await fx.cleanup();
  });

  test("acquireLease() gives 50 concurrent nodes 50 different subnets, retrying lost races", async () => {
    const f = await openFixture(server);
    try {
      // 63 subnets for 50 nodes: many picks collide, and every collision must be retried.
      await f.setConfig('{"Network":"10.20.0.0/16","SubnetLen":22,"Backend":{"Type":"alloc"}}');
      const managers = await Promise.all(Array.from({ length: 50 }, () => f.manager()));
      const leases = await Promise.all(
        managers.map((m, i) => m.acquireLease(attrs(`192.0.2.${i + 1}`), { signal: signal() })),
      );
      const subnets = new Set(leases.map((l) => l.subnet?.toString()));
      assert.equal(subnets.size, 50);
      const stored = await f.registry.getSubnets({ withExpiration: false });
      assert.equal(stored.leases.length, 50);
      for (const lease of stored.leases) {
        const mine = leases.find((l) => l.subnet.equals(lease.subnet));
        assert.equal(lease.attrs.publicIP, mine?.attrs.publicIP);
      }
    } finally {
      await f.cleanup();
    }
  });

  test("acquireLease() writes flannel's key and value, with a 24 h TTL", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.21.0.0/16","Backend":{"Type":"alloc"}}');
      const lease = await (
        await f.manager()
      ).acquireLease(
        {
          publicIP: "192.0.2.9",
          publicIPv6: null,
          backendType: "vxlan",
          backendData: { VNI: 1, VtepMAC: "c6:d2:32:6f:8f:44" },
        },
        { signal: signal() },
      );
      const key = `${f.prefix}/subnets/${lease.subnet?.ipString}-24`;
      const response = await f.client.get(key).exec();
      const kv = response.kvs[0]!;
      assert.equal(
        kv.value.toString(),
        '{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
      );
      const ttl = await f.client.leaseClient.leaseTimeToLive({ ID: kv.lease });
      assert.ok(Number(ttl.TTL) > 86_000 && Number(ttl.TTL) <= 86_400, `TTL ${ttl.TTL}`);
    } finally {
      await f.cleanup();
    }
  });

  test("acquireLease() gives a restarted node its subnet back, by PublicIP or from subnet.env", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.22.0.0/16","Backend":{"Type":"alloc"}}');
      const first = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.10"), { signal: signal() });
      const byIP = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.10"), { signal: signal() });
      assert.equal(byIP.subnet.toString(), first.subnet.toString());
      // The lease is gone (expired) but subnet.env still names the subnet: it is taken again.
      await f.registry.deleteSubnet(first.subnet, null);
      const fromEnv = await (
        await f.manager({ previous: { subnet: first.subnet, ipv6Subnet: null } })
      ).acquireLease(attrs("192.0.2.10"), { signal: signal() });
      assert.equal(fromEnv.subnet.toString(), first.subnet.toString());
    } finally {
      await f.cleanup();
    }
  });

  test("acquireLease() ignores a previous subnet another node holds", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.23.0.0/16","Backend":{"Type":"alloc"}}');
      const other = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.11"), { signal: signal() });
      const mine = await (
        await f.manager({ previous: { subnet: other.subnet, ipv6Subnet: null } })
      ).acquireLease(attrs("192.0.2.12"), { signal: signal() });
      assert.notEqual(mine.subnet.toString(), other.subnet.toString());
    } finally {
      await f.cleanup();
    }
  });

  test("acquireLease() honours a reservation and never turns it into an expiring lease", async () => {
    const f = await openFixture(server);
    try {
      // Three subnets: 10.24.1.0, .2.0 and .3.0. The middle one is reserved for 192.0.2.20.
      await f.setConfig('{"Network":"10.24.0.0/22","Backend":{"Type":"alloc"}}');
      const reservedKey = `${f.prefix}/subnets/10.24.2.0-24`;
      await f.client.put(reservedKey).value('{"PublicIP":"192.0.2.20","PublicIPv6":null}').exec();
      const a = await (await f.manager()).acquireLease(attrs("192.0.2.21"), { signal: signal() });
      const b = await (await f.manager()).acquireLease(attrs("192.0.2.22"), { signal: signal() });
      assert.deepEqual([a.subnet.toString(), b.subnet.toString()].sort(), [
        "10.24.1.0/24",
        "10.24.3.0/24",
      ]);
      await assert.rejects(
        (await f.manager()).acquireLease(attrs("192.0.2.23"), { signal: signal() }),
        NetworkFullError,
      );

      const owner = await f.manager();
      const reserved = await owner.acquireLease(attrs("192.0.2.20"), { signal: signal() });
      assert.equal(reserved.subnet.toString(), "10.24.2.0/24");
      assert.equal(reserved.reserved, true);
      assert.equal(reserved.expiration, null);
      await owner.renewLease(reserved, { signal: signal() });
      // The two leases expire (their etcd leases end): the reservation must outlive them.
      for (const lease of [a, b]) await f.expire(`${f.prefix}/subnets/${keyOf(lease)}`);
      assert.deepEqual(await f.client.getAll().prefix(`${f.prefix}/subnets/`).keys(), [
        reservedKey,
      ]);
      const kv = (await f.client.get(reservedKey).exec()).kvs[0];
      assert.ok(kv, "the reservation is still there");
      assert.equal(kv.lease, "0", "and still has no etcd lease");
      assert.equal(
        kv.value.toString(),
        '{"PublicIP":"192.0.2.20","PublicIPv6":null,"BackendType":"alloc"}',
      );
    } finally {
      await f.cleanup();
    }
  });

  test("acquireLease() replaces this node's reservation that no longer fits the network, as flannel does", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.24.0.0/22","Backend":{"Type":"alloc"}}');
      // A /25 reservation: SubnetLen is 24 now.
      const stale = `${f.prefix}/subnets/10.24.2.0-25`;
      await f.client.put(stale).value('{"PublicIP":"192.0.2.30","PublicIPv6":null}').exec();
      const lease = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.30"), { signal: signal() });
      assert.equal(lease.subnet?.prefixLen, 24);
      assert.equal(lease.reserved, false);
      assert.equal((await f.client.get(stale).exec()).kvs.length, 0, "the old reservation is gone");
    } finally {
      await f.cleanup();
    }
  });

  test("acquireLease() reports a full network clearly, naming the network and its size", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.25.0.0/28","Backend":{"Type":"alloc"}}');
      const signalled = { signal: signal() };
      for (let i = 0; i < 3; i++)
        await (await f.manager()).acquireLease(attrs(`192.0.2.${30 + i}`), signalled);
      await assert.rejects(
        (await f.manager()).acquireLease(attrs("192.0.2.39"), signalled),
        (err: Error) => {
          assert.ok(err instanceof NetworkFullError);
          assert.match(
            err.message,
            /out of subnets: all 3 subnets of \/30 in network 10\.25\.0\.0\/28/,
          );
          return true;
        },
      );
    } finally {
      await f.cleanup();
    }
  });

  test("renewLease() extends the lease and keeps its attributes", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.26.0.0/16","Backend":{"Type":"alloc"}}');
      const clock = new ManualClock();
      const m = await f.manager({ clock });
      const lease = await m.acquireLease(attrs("192.0.2.40"), { signal: signal() });
      assert.equal(lease.expiration?.getTime(), clock.now() + 24 * 3600_000, "flannel's 24 h");
      clock.advance(3600_000);
      const key = `${f.prefix}/subnets/${keyOf(lease)}`;
      const before = (await f.client.get(key).exec()).kvs[0]!.lease;
      const renewed = await (await f.manager({ clock })).renewLease(lease, { signal: signal() });
      assert.equal(renewed.subnet.toString(), lease.subnet?.toString());
      assert.deepEqual(renewed.attrs, lease.attrs);
      assert.equal(renewed.expiration?.getTime(), clock.now() + 24 * 3600_000, "24 h from now");
      // etcd's own view: the key is under a new lease with ~24 h to run.
      const kv = (await f.client.get(key).exec()).kvs[0];
      assert.notEqual(kv!.lease, before);
      const { TTL } = await f.client.leaseClient.leaseTimeToLive({ ID: kv!.lease });
      assert.ok(Number(TTL) > 86_000, `etcd's TTL ${TTL} s`);
      // The lease it replaced is revoked (without the renewal waiting for it): etcd forgets it.
      await waitFor("the replaced etcd lease revoked", async () => {
        const old = await f.client.leaseClient.leaseTimeToLive({ ID: before });
        return Number(old.TTL) === -1;
      });
    } finally {
      await f.cleanup();
    }
  });

  test("completeLease() renews before expiry and rejects with LeaseRevokedError when the key is deleted", async () => {
    const f = await openFixture(server);
    const controller = new AbortController();
    try {
      await f.setConfig('{"Network":"10.27.0.0/16","Backend":{"Type":"alloc"}}');
      const clock = new ManualClock();
      const { log, lines } = capturingLogger("debug");
      const m = await f.manager({ clock, renewMarginMs: 2_000, log });
      const lease = await m.acquireLease(attrs("192.0.2.50"), { signal: controller.signal });
      const key = `${f.prefix}/subnets/${keyOf(lease)}`;
      const etcdLeaseOf = async () => (await f.client.get(key).exec()).kvs[0]?.lease;
      const first = await etcdLeaseOf();
      const keeping = m.completeLease(lease, { signal: controller.signal });
      // The watch may see the deletion before deleteSubnet() below has its answer.
      keeping.catch(() => undefined);
      // The own-key watch reads the lease's expiry off the (hand-moved) clock: let it read it
      // before the clock moves, or it would see a lease a day younger.
      await waitFor("the watch on this node's lease", () =>
        Promise.resolve(lines.some((l) => l.msg === "Watching this node's lease")),
      );
      // completeLease() waits for the renewal time, 2 s before the end of the lease as it read
      // it back (etcd counts the TTL in whole seconds: a second or a few before the end acquireLease()
      // gave). Move the clock to just before that, find the sleep, then move it there.
      const end = lease.expiration!.getTime();
      clock.advance(end - 8_000 - clock.now());
      const renewAt = await clock.sleepingWithin(end - 7_000, end - 2_000);
      assert.equal(await etcdLeaseOf(), first, "not renewed before its time");
      clock.advance(renewAt - clock.now());
      await waitFor("the lease to be renewed", async () => (await etcdLeaseOf()) !== first);
      assert.ok((await f.registry.getSubnet(lease.subnet, null)).lease, "renewed in time");
      await f.registry.deleteSubnet(lease.subnet, null);
      await assert.rejects(keeping, (err: Error) => {
        assert.ok(err instanceof LeaseRevokedError);
        assert.match(err.message, /has been revoked/);
        return true;
      });
    } finally {
      controller.abort();
      await f.cleanup();
    }
  });

  test("watchLeases() after acquireLease() misses no lease written in between", async () => {
    const f = await openFixture(server);
    const controller = new AbortController();
    try {
      await f.setConfig('{"Network":"10.27.0.0/16","Backend":{"Type":"alloc"}}');
      const watcherNode = await f.manager();
      const own = await watcherNode.acquireLease(attrs("192.0.2.70"), {
        signal: controller.signal,
      });
      // Between this node's lease and its watch: another node comes, and one goes.
      const comes = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.71"), { signal: controller.signal });
      const goes = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.72"), { signal: controller.signal });
      await f.registry.deleteSubnet(goes.subnet, null);
      const known = new Set<string>();
      const watching = AbortSignal.any([controller.signal, signal()]);
      for await (const result of watcherNode.watchLeases({ signal: watching })) {
        const events: readonly LeaseEvent[] =
          result.kind === "snapshot"
            ? result.leases.map((lease) => ({ type: "added", lease }))
            : result.events;
        for (const e of events) {
          if (e.type === "added") known.add(String(e.lease.subnet));
          else known.delete(String(e.lease.subnet));
        }
        if (known.has(comes.subnet.toString()) && !known.has(goes.subnet.toString())) break;
      }
      assert.ok(known.has(own.subnet.toString()));
      assert.ok(known.has(comes.subnet.toString()));
      assert.ok(!known.has(goes.subnet.toString()));
    } finally {
      controller.abort();
      await f.cleanup();
    }
  });

  test("the lease listing reads a big cluster in pages, as one snapshot", async () => {
    const f = await openFixture(server);
    try {
      await f.setConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"alloc"}}');
      const count = 2 * LIST_PAGE_SIZE + 500; // three pages
      const subnet = (i: number) => `10.${100 + Math.floor(i / 250)}.${i % 250}.0`;
      for (let start = 0; start < count; start += 100) {
        const txn = f.client.if(`${f.prefix}/config`, "Version", ">", 0);
        const puts = Array.from({ length: Math.min(100, count - start) }, (_, j) =>
          f.client
            .put(`${f.prefix}/subnets/${subnet(start + j)}-24`)
            .value(
              JSON.stringify({ PublicIP: `192.0.2.${(start + j) % 250}`, BackendType: "alloc" }),
            ),
        );
        await txn.then(...puts).commit();
      }
      const listing = await f.registry.getSubnets({ withExpiration: false });
      assert.equal(listing.leases.length, count);
      assert.equal(new Set(listing.leases.map((l) => l.subnet?.toString())).size, count);
      assert.deepEqual(listing.skipped, []);
      const { header } = await f.client.get(`${f.prefix}/config`).exec();
      assert.equal(listing.revision, BigInt(header.revision));
    } finally {
      await f.cleanup();
    }
  });

  test("watchLeases() delivers an add, a delete and a TTL expiry", async () => {
    const f = await openFixture(server);
    const controller = new AbortController();
    try {
      await f.setConfig('{"Network":"10.28.0.0/16","Backend":{"Type":"alloc"}}');
      const watcherNode = await f.manager();
      const own = await watcherNode.acquireLease(attrs("192.0.2.60"), {
        signal: controller.signal,
      });
      const seen: LeaseEvent[] = [];
      const iterator = watchLeases(watcherNode, own, { signal: controller.signal })[
        Symbol.asyncIterator
      ]();
      const first = await iterator.next(); // the (empty) snapshot: the watch is in place
      assert.deepEqual(first.value, []);
      const rest = { [Symbol.asyncIterator]: () => iterator };

      const deleted = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.61"), { signal: controller.signal });
      const expiring = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.62"), { signal: controller.signal });
      await f.registry.deleteSubnet(deleted.subnet, null);
      await f.expire(`${f.prefix}/subnets/${keyOf(expiring)}`);
      await collect(rest, seen, (s) => s.length >= 4);
      assert.deepEqual(describeEvents(seen), [
        `added ${deleted.subnet.toString()}`,
        `added ${expiring.subnet.toString()}`,
        `removed ${deleted.subnet.toString()}`,
        `removed ${expiring.subnet.toString()}`, // its etcd lease ended
      ]);
      assert.equal(
        seen[2]?.lease.attrs.publicIP,
        "192.0.2.61",
        "a removal carries the lease as it was",
      );
    } finally {
      controller.abort();
      await f.cleanup();
    }
  });

  test("watchLeases() skips a foreign key, bad JSON and a subnet outside the network, and keeps the other leases", async () => {
    const f = await openFixture(server);
    const controller = new AbortController();
    try {
      await f.setConfig('{"Network":"10.29.0.0/16","Backend":{"Type":"alloc"}}');
      const a = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.70"), { signal: controller.signal });
      const watcherNode = await f.manager();
      const seen: LeaseEvent[] = [];
      // The rules flanneld's backends give the watch (the network is one of them).
      const rules = peerLeaseRulesOf(
        await watcherNode.getNetworkConfig({ signal: controller.signal }),
        {
          ifaceAddr: null,
          ifaceV6Addr: null,
          extAddr: null,
          extV6Addr: null,
          ifaceNet: null,
          ifaceV6Net: null,
        },
      );
      const iterator = watchLeases(watcherNode, null, { signal: controller.signal, rules })[
        Symbol.asyncIterator
      ]();
      assert.deepEqual(describeEvents((await iterator.next()).value as LeaseEvent[]), [
        `added ${a.subnet.toString()}`,
      ]);
      const rest = { [Symbol.asyncIterator]: () => iterator };

      const put = (key: string, value: string) =>
        f.client.put(`${f.prefix}/subnets/${key}`).value(value).exec();
      await put("not-a-subnet", '{"PublicIP":"192.0.2.71"}');
      await put("10.29.200.0-24", "{ not json");
      await put("10.99.1.0-24", '{"PublicIP":"192.0.2.72","PublicIPv6":null}');
      await f.client.delete().key(`${f.prefix}/subnets/not-a-subnet`).exec();
      const b = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.73"), { signal: controller.signal });
      await collect(rest, seen, (s) => s.length >= 1);
      assert.deepEqual(describeEvents(seen), [`added ${b.subnet.toString()}`]);
    } finally {
      controller.abort();
      await f.cleanup();
    }
  });

  test("watchLeases() resumes after a dropped connection without a new snapshot", async () => {
    const f = await openFixture(server);
    const proxy = await startTcpProxy("127.0.0.1", Number(new URL(server.endpoint).port));
    const controller = new AbortController();
    try {
      await f.setConfig('{"Network":"10.31.0.0/16","Backend":{"Type":"alloc"}}');
      const first = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.90"), { signal: controller.signal });
      const watcherNode = await f.manager({}, `http://127.0.0.1:${proxy.port}`);
      const results = watcherNode
        .watchLeases({ signal: controller.signal })
        [Symbol.asyncIterator]();
      const snapshot = (await results.next()).value as LeaseWatchResult | undefined;
      assert.equal(snapshot?.kind, "snapshot");
      proxy.cut();
      const second = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.91"), { signal: controller.signal });
      proxy.restore();
      const next = (await results.next()).value as LeaseWatchResult | undefined;
      assert.equal(next?.kind, "events", "resumed from the last revision, not re-listed");
      assert.deepEqual(
        next?.kind === "events"
          ? next.events.map((e) => `${e.type} ${e.lease.subnet?.toString()}`)
          : [],
        [`added ${second.subnet.toString()}`],
      );
      assert.notEqual(first.subnet.toString(), second.subnet.toString());
    } finally {
      controller.abort();
      await proxy.close();
      await f.cleanup();
    }
  });

  test("watchLeases() after a compacted revision takes a fresh snapshot and emits only the differences", async () => {
    const f = await openFixture(server);
    const proxy = await startTcpProxy("127.0.0.1", Number(new URL(server.endpoint).port));
    const controller = new AbortController();
    try {
      await f.setConfig('{"Network":"10.30.0.0/16","Backend":{"Type":"alloc"}}');
      const stays = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.80"), { signal: controller.signal });
      const goes = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.81"), { signal: controller.signal });
      // The watching node reaches etcd through the proxy, which the test cuts.
      const watcherNode = await f.manager({}, `http://127.0.0.1:${proxy.port}`);
      const iterator = watchLeases(watcherNode, null, { signal: controller.signal })[
        Symbol.asyncIterator
      ]();
      assert.equal(((await iterator.next()).value as LeaseEvent[]).length, 2);
      const rest = { [Symbol.asyncIterator]: () => iterator };

      proxy.cut();
      await f.registry.deleteSubnet(goes.subnet, null);
      const comes = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.82"), { signal: controller.signal });
      const churn = await (
        await f.manager()
      ).acquireLease(attrs("192.0.2.83"), { signal: controller.signal });
      await f.registry.deleteSubnet(churn.subnet, null); // came and went while the watch was away
      const { header } = await f.client.get("compact-marker").exec();
      await f.client.kv.compact({ revision: header.revision, physical: true });
      proxy.restore();

      const seen: LeaseEvent[] = [];
      await collect(rest, seen, (s) => s.length >= 2);
      assert.deepEqual(
        describeEvents(seen).sort(),
        [`added ${comes.subnet.toString()}`, `removed ${goes.subnet.toString()}`].sort(),
      );
      assert.ok(
        !describeEvents(seen).some((e) => e.endsWith(stays.subnet.toString())),
        "an unchanged lease is not re-announced",
      );
    } finally {
      controller.abort();
      await proxy.close();
      await f.cleanup();
    }
  });
});

test("etcd wiped and started again empty: each node writes its lease again, and the watch follows the new store", async () => {
  // An etcd of this test's own on fixed ports, so that an empty one can take its place.
  const clientPort = await freePort();
  const peerPort = await freePort();
  let etcd = await startEtcd({ clientPort, peerPort });
  const f = await openFixture(etcd);
  const controller = new AbortController();
  const { signal: running } = controller;
  const config = '{"Network":"10.29.0.0/16","Backend":{"Type":"alloc"}}';
  // Only speeds the test up: the store checks come round 100 times faster; nothing waits on
  // their period.
  const fast = { clock: fastClock(100) };
  const failures: unknown[] = [];
  try {
    await f.setConfig(config);
    const [a, b] = [await f.manager(fast), await f.manager(fast)];
    const leaseA = await a.acquireLease(attrs("192.0.2.81"), { signal: running });
    const leaseB = await b.acquireLease(attrs("192.0.2.82"), { signal: running });
    for (const [m, lease] of [
      [a, leaseA],
      [b, leaseB],
    ] as const)
      m.completeLease(lease, { signal: running }).catch((err: unknown) => failures.push(err));
    // What node a's data plane would follow: the leases its watch reports, as a set.
    const known = new Set<string>();
    const following = (async () => {
      for await (const batch of watchLeases(a, leaseA, { signal: running })) {
        for (const e of batch) {
          if (e.type === "added") known.add(String(e.lease.subnet));
          else known.delete(String(e.lease.subnet));
        }
      }
    })().catch(() => undefined);
    await waitFor("a to see b", () => Promise.resolve(known.has(String(leaseB.subnet))));

    // The wipe: etcd stops, its data goes, an empty one starts on the same port.
    await etcd.stop();
    etcd = await startEtcd({ clientPort, peerPort });
    await f.setConfig(config);

    // Each node writes its own lease again, with the subnet it had.
    await waitFor(
      "both leases written again",
      async () => {
        const subnets = (await f.registry.getSubnets({ withExpiration: false })).leases.map((l) =>
          l.subnet.toString(),
        );
        return subnets.includes(String(leaseA.subnet)) && subnets.includes(String(leaseB.subnet));
      },
      { timeoutMs: 60_000 },
    );
    // A host that joins the new store is seen by the old watch (before, it never was: the watch
    // waited for revisions the empty store reaches much later).
    const c = await f.manager(fast);
    const leaseC = await c.acquireLease(attrs("192.0.2.83"), { signal: running });
    await waitFor(
      "a to see the new host c, and b still",
      () => Promise.resolve(known.has(String(leaseC.subnet)) && known.has(String(leaseB.subnet))),
      { timeoutMs: 60_000 },
    );
    assert.deepEqual(failures, [], "no node took the wipe for a revoked lease");
    controller.abort();
    await following;
  } finally {
    controller.abort();
    await f.cleanup();
    await etcd.stop();
  }
});
