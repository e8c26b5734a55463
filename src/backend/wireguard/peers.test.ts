import assert from "node:assert/strict";
import { test } from "node:test";
import { IPNet } from "../../ip/ip.js";
import type { Lease } from "../../lease/lease.js";
import { parseWireGuardConfig } from "./config.js";
import { generatePrivateKey, publicKeyOf } from "./keys.js";
import { desiredPeers, peerChange } from "./peers.js";
import type { PeerPlan } from "./peers.js";

const key = () => publicKeyOf(generatePrivateKey()).toString("base64");
const OWN = key();
const plan = (over: Partial<PeerPlan> = {}): PeerPlan => ({
  family: "ipv4",
  endpointFamily: 4,
  listenPort: 51_820,
  config: parseWireGuardConfig({}),
  ownPublicKey: OWN,
  publicIPv6Usable: false,
  ...over,
});

function lease(
  subnet: string,
  publicIP: string,
  publicKey: string,
  extra: Partial<Lease> = {},
): Lease {
  return {
    subnet: IPNet.parse(subnet),
    ipv6Subnet: null,
    attrs: {
      publicIP,
      publicIPv6: null,
      backendType: "wireguard",
      backendData: { PublicKey: publicKey },
    },
    expiration: new Date(2_000_000_000_000),
    reserved: false,
    ...extra,
  };
}

test("desiredPeers(): one peer per lease, flannel's endpoint and AllowedIPs", () => {
  const k = key();
  const peers = desiredPeers([lease("10.244.2.0/24", "10.0.0.2", k)], plan());
  assert.deepEqual(
    [...peers.values()],
    [
      {
        publicKey: k,
        presharedKey: null,
        endpoint: "10.0.0.2:51820",
        allowedIPs: ["10.244.2.0/24"],
        keepaliveSeconds: 0,
      },
    ],
  );
});

test("desiredPeers(): hosts behind one public IP (NAT) are separate peers", () => {
  const [a, b] = [key(), key()];
  const peers = desiredPeers(
    [
      lease("10.244.2.0/24", "203.0.113.9", a),
      lease("10.244.3.0/24", "203.0.113.9", b, {
        attrs: {
          publicIP: "203.0.113.9",
          publicIPv6: null,
          backendType: "wireguard",
          backendData: { PublicKey: b, Port: 51_999 },
        },
      }),
    ],
    plan(),
  );
  assert.deepEqual([...peers.values()].map((p) => p.endpoint).sort(), [
    "203.0.113.9:51820",
    "203.0.113.9:51999",
  ]);
});

test("desiredPeers(): two leases with one key are one peer with both subnets, at the newer endpoint", () => {
  const k = key();
  const old = lease("10.244.2.0/24", "10.0.0.2", k, { expiration: new Date(1_000) });
  const now = lease("10.244.9.0/24", "10.0.0.9", k);
  const peers = desiredPeers([now, old], plan());
  assert.deepEqual(
    [...peers.values()].map((p) => [p.endpoint, p.allowedIPs]),
    [["10.0.0.9:51820", ["10.244.2.0/24", "10.244.9.0/24"]]],
  );
});

test("desiredPeers(): a lease with no or a bad key, or this host's own key, is skipped with the reason", () => {
  const skipped: string[] = [];
  const peers = desiredPeers(
    [
      lease("10.244.2.0/24", "10.0.0.2", "nope"),
      lease("10.244.3.0/24", "10.0.0.3", OWN),
      {
        ...lease("10.244.4.0/24", "10.0.0.4", key()),
        attrs: { publicIP: "10.0.0.4", publicIPv6: null, backendType: "wireguard" },
      },
    ],
    plan(),
    ({ reason }) => skipped.push(reason),
  );
  assert.equal(peers.size, 0);
  assert.deepEqual(
    skipped.map((r) => r.replace(/:.*/, "")),
    [
      "could not parse the lease's PublicKey",
      "it carries this host's own public key",
      "its BackendData has no PublicKey",
    ],
  );
});

test("desiredPeers(): the PSK and keepalive of the config go on every peer", () => {
  const psk = Buffer.alloc(32, 1).toString("base64");
  const cfg = parseWireGuardConfig({ PSK: psk, PersistentKeepaliveInterval: 25 });
  const [peer] = desiredPeers(
    [lease("10.244.2.0/24", "10.0.0.2", key())],
    plan({ config: cfg }),
  ).values();
  assert.equal(peer?.presharedKey, psk);
  assert.equal(peer?.keepaliveSeconds, 25);
});

test("peerChange(): removes peers no lease asks for, sets changed ones, leaves the rest", () => {
  const [a, b, stale] = [key(), key(), key()];
  const wanted = desiredPeers(
    [lease("10.244.2.0/24", "10.0.0.2", a), lease("10.244.3.0/24", "10.0.0.3", b)],
    plan(),
  );
  const state = {
    publicKey: OWN,
    listenPort: 51_820,
    peers: [
      {
        publicKey: a,
        presharedKey: null,
        endpoint: "10.0.0.2:51820",
        allowedIPs: ["10.244.2.0/24"],
        keepaliveSeconds: 0,
        lastHandshakeMs: null,
        rxBytes: 0,
        txBytes: 0,
      },
      {
        publicKey: b,
        presharedKey: null,
        endpoint: "10.0.0.3:51820",
        allowedIPs: [],
        keepaliveSeconds: 0,
        lastHandshakeMs: null,
        rxBytes: 0,
        txBytes: 0,
      },
      {
        publicKey: stale,
        presharedKey: null,
        endpoint: null,
        allowedIPs: [],
        keepaliveSeconds: 0,
        lastHandshakeMs: null,
        rxBytes: 0,
        txBytes: 0,
      },
    ],
  };
  const change = peerChange(state, wanted);
  assert.deepEqual(change?.remove, [stale]);
  assert.deepEqual(
    change?.upsert.map((p) => p.publicKey),
    [b],
  );
  assert.equal(
    peerChange({ ...state, peers: state.peers.slice(0, 1) }, new Map([...wanted].slice(0, 1))),
    null,
  );
});
