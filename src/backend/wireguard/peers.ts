/**
 * The peers a WireGuard device should have, from the other hosts' leases, and the change that
 * takes the device's peers there. Reconciled at the level: a peer nothing asks for is removed
 * (stale keys of restarted hosts), one changed by hand is set back, and two leases naming one
 * key make one peer. Hosts behind one public IP (NAT) are separate peers: unlike flannel, a peer
 * is never removed for sharing another's endpoint IP.
 */
import type { Lease } from "../../lease/lease.js";
import type { WgChange, WgDeviceState, WgPeer, WgPeerState } from "./control.js";
import { parseKey } from "./keys.js";
import type { WireGuardConfig } from "./config.js";

/** Which family of each lease a device carries. */
export type DeviceFamily = "ipv4" | "ipv6" | "both";

/** A lease's wireguard BackendData: its public key, and (newer flannel) its port. */
export function wireguardDataOf(data: unknown): { publicKey: string; port: number | null } {
  const o = (typeof data === "object" && data !== null ? data : {}) as Record<string, unknown>;
  const key = Object.entries(o).find(([k]) => k.toLowerCase() === "publickey")?.[1];
  if (typeof key !== "string") throw new Error("its BackendData has no PublicKey");
  parseKey(key, "the lease's PublicKey");
  const port = Object.entries(o).find(([k]) => k.toLowerCase() === "port")?.[1];
  return {
    publicKey: key,
    port: typeof port === "number" && port > 0 && port < 65_536 ? port : null,
  };
}

/** How one device reaches its peers. */
export interface PeerPlan {
  readonly family: DeviceFamily;
  /**
   * The family of the endpoint address: the device's own in separate mode, the mode's in ipv4
   * and ipv6 mode; "auto" picks per lease, as flannel does.
   */
  readonly endpointFamily: 4 | 6 | "auto";
  readonly listenPort: number;
  readonly config: WireGuardConfig;
  /** This host's public key: a lease that names it is no peer. */
  readonly ownPublicKey: string;
  /** Whether this host has a public IPv6 address that is not private (auto mode's choice). */
  readonly publicIPv6Usable: boolean;
}

/** IPv4's private ranges (RFC 1918) and IPv6's unique local one, as Go's IP.IsPrivate. */
export function isPrivate(address: string): boolean {
  if (address.includes(":")) return /^f[cd]/i.test(address);
  const [a, b] = address.split(".").map(Number);
  return a === 10 || (a === 172 && (b ?? 0) >= 16 && (b ?? 0) < 32) || (a === 192 && b === 168);
}

/**
 * Auto mode's endpoint, as flannel picks it: IPv4 unless the lease has no public IPv6; IPv4 when
 * its IPv4 address is public; IPv6 when both ends have public IPv6; else IPv4.
 */
function autoFamily(lease: Lease, plan: PeerPlan): 4 | 6 {
  const v6 = lease.attrs.publicIPv6;
  if (v6 === null || v6 === "") return 4;
  if (lease.attrs.publicIP !== "" && !isPrivate(lease.attrs.publicIP)) return 4;
  if (!isPrivate(v6) && plan.publicIPv6Usable) return 6;
  return lease.attrs.publicIP === "" ? 6 : 4;
}

/** One lease's peer on this device; null when the lease has nothing for it. Throws when bad. */
export function peerOf(lease: Lease, plan: PeerPlan): WgPeer | null {
  const { family } = plan;
  const endpointFamily =
    plan.endpointFamily === "auto" ? autoFamily(lease, plan) : plan.endpointFamily;
  const allowed = [
    ...(family !== "ipv6" && lease.subnet !== null ? [lease.subnet.toString()] : []),
    ...(family !== "ipv4" && lease.ipv6Subnet !== null ? [lease.ipv6Subnet.toString()] : []),
  ];
  if (allowed.length === 0) return null;
  // As flannel: the IPv6 data's key when the lease has an IPv6 subnet (both carry one key).
  const data = wireguardDataOf(
    family === "ipv6" || (family === "both" && lease.ipv6Subnet !== null)
      ? lease.attrs.backendV6Data
      : lease.attrs.backendData,
  );
  if (data.publicKey === plan.ownPublicKey)
    throw new Error("it carries this host's own public key");
  const address = endpointFamily === 4 ? lease.attrs.publicIP : lease.attrs.publicIPv6;
  if (address === null || address === "")
    throw new Error(`it has no ${endpointFamily === 4 ? "PublicIP" : "PublicIPv6"} to reach it at`);
  const port = data.port ?? plan.listenPort;
  return {
    publicKey: data.publicKey,
    presharedKey: plan.config.psk?.toString("base64") ?? null,
    endpoint: endpointFamily === 4 ? `${address}:${port}` : `[${address}]:${port}`,
    allowedIPs: allowed,
    keepaliveSeconds: plan.config.keepaliveSeconds,
  };
}

/** A lease that could not become a peer, and why. */
export interface PeerSkip {
  readonly lease: Lease;
  readonly reason: string;
}

/**
 * The peers these leases want, one per key: two leases with one key (a host that restarted into
 * a new subnet, its old lease not yet expired) give one peer with both subnets, reached at the
 * endpoint of the lease that expires last.
 */
export function desiredPeers(
  leases: Iterable<Lease>,
  plan: PeerPlan,
  skipped: (skip: PeerSkip) => void = () => undefined,
): Map<string, WgPeer> {
  const peers = new Map<string, { peer: WgPeer; expires: number }>();
  for (const lease of leases) {
    let peer: WgPeer | null;
    try {
      peer = peerOf(lease, plan);
    } catch (err) {
      skipped({ lease, reason: (err as Error).message });
      continue;
    }
    if (peer === null) continue;
    const expires = lease.expiration?.getTime() ?? Number.MAX_SAFE_INTEGER;
    const other = peers.get(peer.publicKey);
    if (other === undefined) {
      peers.set(peer.publicKey, { peer, expires });
      continue;
    }
    const allowedIPs = [...new Set([...other.peer.allowedIPs, ...peer.allowedIPs])].sort();
    const newest = expires > other.expires ? peer : other.peer;
    peers.set(peer.publicKey, {
      peer: { ...newest, allowedIPs },
      expires: Math.max(expires, other.expires),
    });
  }
  return new Map([...peers].map(([key, { peer }]) => [key, peer]));
}

/** Whether the device's peer is the peer wanted. */
export function samePeer(actual: WgPeerState, wanted: WgPeer): boolean {
  const sorted = (ips: readonly string[]) => [...ips].sort().join(",");
  return (
    actual.endpoint === wanted.endpoint &&
    actual.presharedKey === wanted.presharedKey &&
    actual.keepaliveSeconds === wanted.keepaliveSeconds &&
    sorted(actual.allowedIPs) === sorted(wanted.allowedIPs)
  );
}

/** The change that takes the device's peers to the wanted ones; null when there is none. */
export function peerChange(
  state: WgDeviceState,
  wanted: ReadonlyMap<string, WgPeer>,
): WgChange | null {
  const actual = new Map(state.peers.map((p) => [p.publicKey, p]));
  const remove = [...actual.keys()].filter((key) => !wanted.has(key));
  const upsert = [...wanted.values()].filter((peer) => {
    const now = actual.get(peer.publicKey);
    return now === undefined || !samePeer(now, peer);
  });
  return remove.length === 0 && upsert.length === 0 ? null : { upsert, remove };
}
