import assert from "node:assert/strict";
import { test } from "node:test";
import type { PlaneInspection, TunnelInspection, TunnelPeerSeen } from "../backend/backend.js";
import { IPNet } from "../ip/ip.js";
import type { Lease } from "../lease/lease.js";
import type { HostView } from "./host_view.js";
import { tunnelHops } from "./trace_tunnel.js";

const KEY = Buffer.alloc(32, 7).toString("base64");
const NOW = new Date("2026-12-01T12:00:00Z");

const other: Lease = {
  subnet: IPNet.parse("10.244.2.0/24"),
  ipv6Subnet: IPNet.parse("fd00:10:244:2::/64"),
  attrs: {
    publicIP: "10.250.0.12",
    publicIPv6: "fd00:250::12",
    backendType: "wireguard",
    backendData: { PublicKey: KEY },
  },
  expiration: null,
  reserved: false,
};

/** A device inspection: flannel-wg wants the IPv4 peer, flannel-wg-v6 the IPv6 one. */
function devices(v4: readonly TunnelPeerSeen[], unreadable: string | null = null) {
  const base = {
    listenPort: { want: 51_820, got: 51_820 },
    publicKey: { want: null, got: null },
    keyFile: { path: "/run/flannel/wgkey", mode: 0o400, problem: null },
  };
  const v4Device: TunnelInspection = {
    ...base,
    device: "flannel-wg",
    unreadable,
    wanted: [
      {
        publicKey: KEY,
        endpoint: "10.250.0.12:51820",
        allowedIPs: ["10.244.2.0/24"],
        lease: "10.244.2.0/24",
      },
    ],
    actual: v4,
  };
  const v6Device: TunnelInspection = {
    ...base,
    device: "flannel-wg-v6",
    unreadable: null,
    wanted: [
      {
        publicKey: KEY,
        endpoint: "[fd00:250::12]:51821",
        allowedIPs: ["fd00:10:244:2::/64"],
        lease: "10.244.2.0/24",
      },
    ],
    actual: [],
  };
  return [v4Device, v6Device];
}

function viewOf(inspected: readonly TunnelInspection[] | null): HostView {
  const inspection = {
    ...(inspected === null ? {} : { tunnels: () => Promise.resolve(inspected) }),
  } as unknown as PlaneInspection;
  return { inspection, now: NOW } as unknown as HostView;
}

const seen = (over: Partial<TunnelPeerSeen>): TunnelPeerSeen => ({
  device: "flannel-wg",
  publicKey: KEY,
  endpoint: "10.250.0.12:51820",
  allowedIPs: ["10.244.2.0/24"],
  lastHandshakeMs: NOW.getTime() - 42_000,
  rxBytes: 0,
  txBytes: 0,
  ...over,
});

test("tunnelHops(): the peer as the lease asks is ok, with its session's age; only the device of the family", async () => {
  const hops = await tunnelHops(viewOf(devices([seen({})])), other, false);
  assert.equal(hops.length, 1);
  assert.equal(hops[0]?.state, "ok");
  assert.match(
    hops[0]?.detail ?? "",
    /flannel-wg peer for 10\.244\.2\.0\/24: .* at 10\.250\.0\.12:51820, encrypted; latest handshake 42 s ago/,
  );
  // The IPv6 device has no peer: only an IPv6 destination names it.
  const v6 = await tunnelHops(viewOf(devices([seen({})])), other, true);
  assert.deepEqual(
    v6.map((h) => [h.state, h.detail.split(":")[0]]),
    [["missing", "flannel-wg-v6 peer for 10.244.2.0/24"]],
  );
});

test("tunnelHops(): a peer missing, different or unreadable is named with what it must be; no tunnels, no hop", async () => {
  const missing = await tunnelHops(viewOf(devices([])), other, false);
  assert.equal(missing[0]?.state, "missing");
  assert.match(
    missing[0]?.expected ?? "",
    /peer .* endpoint 10\.250\.0\.12:51820 allowed-ips 10\.244\.2\.0\/24/,
  );
  const wrong = await tunnelHops(
    viewOf(devices([seen({ endpoint: "10.250.0.99:51820", allowedIPs: [] })])),
    other,
    false,
  );
  assert.equal(wrong[0]?.state, "wrong");
  assert.match(wrong[0]?.detail ?? "", /endpoint 10\.250\.0\.99:51820 allowed-ips \(none\)/);
  const never = await tunnelHops(viewOf(devices([seen({ lastHandshakeMs: null })])), other, false);
  assert.match(never[0]?.detail ?? "", /no handshake yet/);
  const unreadable = await tunnelHops(viewOf(devices([], "no socket")), other, false);
  assert.equal(unreadable[0]?.state, "missing");
  assert.match(unreadable[0]?.detail ?? "", /flannel-wg: no socket/);
  assert.deepEqual(await tunnelHops(viewOf(null), other, false), []);
});
