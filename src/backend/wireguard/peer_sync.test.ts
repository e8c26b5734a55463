import assert from "node:assert/strict";
import { test } from "node:test";
import { IPNet } from "../../ip/ip.js";
import type { Lease } from "../../lease/lease.js";
import { silentLogger } from "../../log/logger.js";
import { ManualClock } from "../../../test/helpers/test_clock.js";
import { waitFor } from "../../../lab/poll.js";
import { parseWireGuardConfig } from "./config.js";
import type { WgChange, WgControl, WgDeviceState, WgPeerState } from "./control.js";
import type { WireGuardDevice } from "./device.js";
import { generatePrivateKey, publicKeyOf } from "./keys.js";
import { PeerSync, RECHECK_MS } from "./peer_sync.js";

/** A device in memory, as WgControl sees it. */
class MemoryControl implements WgControl {
  readonly via = "memory";
  state: WgDeviceState = { publicKey: null, listenPort: 0, peers: [] };
  applied: WgChange[] = [];
  get(): Promise<WgDeviceState> {
    return Promise.resolve(this.state);
  }
  apply(change: WgChange): Promise<void> {
    this.applied.push(change);
    let peers = this.state.peers.filter((p) => !change.remove.includes(p.publicKey));
    for (const u of change.upsert) {
      const peer: WgPeerState = { ...u, lastHandshakeMs: null, rxBytes: 0, txBytes: 0 };
      peers = [...peers.filter((p) => p.publicKey !== u.publicKey), peer];
    }
    const publicKey =
      change.privateKey === undefined
        ? this.state.publicKey
        : publicKeyOf(Buffer.from(change.privateKey, "base64")).toString("base64");
    this.state = { publicKey, listenPort: change.listenPort ?? this.state.listenPort, peers };
    return Promise.resolve();
  }
}

const key = () => publicKeyOf(generatePrivateKey()).toString("base64");
const remote = (i: number, publicKey: string): Lease => ({
  subnet: IPNet.parse(`10.244.${i}.0/24`),
  ipv6Subnet: null,
  attrs: {
    publicIP: `10.0.0.${i}`,
    publicIPv6: null,
    backendType: "wireguard",
    backendData: { PublicKey: publicKey },
  },
  expiration: null,
  reserved: false,
});

/** A PeerSync on a device in memory; `keepalive` as the config's. */
function newSync(clock: ManualClock, keepalive: number) {
  const control = new MemoryControl();
  const device: WireGuardDevice = {
    name: "flannel-wg",
    implementation: "wireguard-go",
    control,
    link: () => Promise.resolve(null),
    onRestart: () => undefined,
    stop: () => Promise.resolve(),
  };
  const privateKey = generatePrivateKey();
  const own = publicKeyOf(privateKey).toString("base64");
  const sync = new PeerSync(
    device,
    {
      family: "ipv4",
      endpointFamily: 4,
      listenPort: 51_820,
      config: parseWireGuardConfig({ PersistentKeepaliveInterval: keepalive }),
      ownPublicKey: own,
      publicIPv6Usable: false,
    },
    { privateKey: privateKey.toString("base64"), publicKey: own, listenPort: 51_820 },
    { log: silentLogger(), clock },
  );
  return { control, sync, own };
}

test("PeerSync: syncs on lease changes, and sets back a peer removed by hand at the next check", async () => {
  const clock = new ManualClock();
  // A keepalive configured: no handshake is opened by hand (see the last test).
  const { control, sync, own } = newSync(clock, 25);
  const controller = new AbortController();
  const running = sync.run({ signal: controller.signal });
  try {
    const [a, b] = [key(), key()];
    const synced = async (n: number) => {
      await waitFor(`sync ${n}`, () => Promise.resolve(sync.stats.syncs >= n));
      await clock.sleeping(); // and waiting again
    };
    sync.leasesChanged([remote(2, a), remote(3, b)]);
    await synced(1);
    assert.equal(control.state.publicKey, own, "the device got its key");
    assert.equal(control.state.listenPort, 51_820);
    assert.deepEqual(control.state.peers.map((p) => p.publicKey).sort(), [a, b].sort());
    assert.equal(sync.stats.driftRepairs, 0);

    // Removed by hand: nothing happens until the periodic check, which sets it back.
    control.state = {
      ...control.state,
      peers: control.state.peers.filter((p) => p.publicKey !== a),
    };
    const applied = control.applied.length;
    clock.advance(RECHECK_MS);
    await synced(2);
    assert.equal(control.applied.length, applied + 1);
    assert.ok(
      control.state.peers.some((p) => p.publicKey === a),
      "the peer is back",
    );
    assert.equal(sync.stats.driftRepairs, 1);

    // A lease gone: its peer goes at once.
    sync.leasesChanged([remote(3, b)]);
    await synced(3);
    assert.deepEqual(
      control.state.peers.map((p) => p.publicKey),
      [b],
    );
  } finally {
    controller.abort();
    await running;
  }
});

test("PeerSync: a new peer's handshake is opened by the end whose key sorts first, the other a second later", async () => {
  const clock = new ManualClock();
  const { control, sync, own } = newSync(clock, 0);
  // Keys on both sides of ours.
  let before = key();
  while (before > own) before = key();
  let after = key();
  while (after < own) after = key();
  const controller = new AbortController();
  const running = sync.run({ signal: controller.signal });
  const pokes = (publicKey: string) =>
    control.applied
      .flatMap((c) => c.upsert)
      .filter((p) => p.publicKey === publicKey)
      .map((p) => p.keepaliveSeconds);
  try {
    sync.leasesChanged([remote(2, before), remote(3, after)]);
    await waitFor("the peer with the later key opened", () =>
      Promise.resolve(pokes(after).length === 3),
    );
    assert.deepEqual(pokes(after), [0, 25, 0], "added, then a keepalive for a moment");
    assert.deepEqual(pokes(before), [0], "the other end opens this one first");
    // A second on: no handshake with it yet, so this end opens it too.
    await clock.sleepingUntil(clock.now() + 1_000);
    clock.advance(1_000);
    await waitFor("the peer with the earlier key opened", () =>
      Promise.resolve(pokes(before).length === 3),
    );
    // The handshakes are done: no more opening.
    control.state = {
      ...control.state,
      peers: control.state.peers.map((p) => ({ ...p, lastHandshakeMs: clock.now() })),
    };
    clock.advance(2_000);
    await clock.sleeping();
    assert.deepEqual([pokes(after).length, pokes(before).length], [3, 3]);
  } finally {
    controller.abort();
    await running;
  }
});

test("PeerSync: more than 64 peers new at once (a host starting into a large cluster) get no handshake ahead of traffic", async () => {
  const clock = new ManualClock();
  const { control, sync } = newSync(clock, 0);
  const controller = new AbortController();
  const running = sync.run({ signal: controller.signal });
  try {
    const keyed = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => remote(from + i, key()));
    const opened = () => control.applied.flatMap((c) => c.upsert).filter((p) => p.keepaliveSeconds);
    sync.leasesChanged(keyed(65, 1));
    await waitFor("the first sync", () => Promise.resolve(sync.stats.syncs >= 1));
    for (const ms of [1_000, 1_000, 1_000, 1_000]) {
      await clock.sleeping();
      clock.advance(ms);
    }
    assert.equal(control.state.peers.length, 65);
    assert.equal(opened().length, 0, "no keepalive turned on");
    // A few more joining afterwards are opened as usual (so the check above can fail).
    const known = control.state.peers.map((p, i) => remote(i + 1, p.publicKey));
    sync.leasesChanged([...known, remote(100, key())]);
    await waitFor("the new peer opened", async () => {
      await clock.sleeping();
      clock.advance(1_000);
      return opened().length > 0;
    });
  } finally {
    controller.abort();
    await running;
  }
});

test("PeerSync: a check that takes long waits longer before the next, so checks take at most a small share of the time", async () => {
  const clock = new ManualClock();
  const { control, sync } = newSync(clock, 25);
  // Each read of the device takes 100 ms (as thousands of peers do).
  const get = control.get.bind(control);
  control.get = () => {
    clock.advance(100);
    return get();
  };
  const controller = new AbortController();
  const running = sync.run({ signal: controller.signal });
  try {
    sync.leasesChanged([remote(2, key())]);
    await waitFor("the first sync", () => Promise.resolve(sync.stats.syncs >= 1));
    await clock.sleeping();
    const syncs = sync.stats.syncs;
    clock.advance(RECHECK_MS);
    await clock.sleeping();
    assert.equal(sync.stats.syncs, syncs, "no check after RECHECK_MS");
    clock.advance(10 * 60_000);
    await waitFor("the next check", () => Promise.resolve(sync.stats.syncs > syncs));
  } finally {
    controller.abort();
    await running;
  }
});
