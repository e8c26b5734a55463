/**
 * trace's hop through an encrypting backend's device (wireguard): the peer that the other end's
 * lease asks for, as the device holds it, and its session. On the source's host the packet is
 * encrypted to the destination host's peer; on the destination's host it is accepted only from
 * the source host's peer.
 */
import { leaseKeyOf } from "../lease/lease.js";
import type { Lease } from "../lease/lease.js";
import type { TunnelInspection, TunnelPeerWanted } from "../backend/backend.js";
import { sameLists } from "./check_tunnels.js";
import type { HostView } from "./host_view.js";
import type { TraceHop } from "./trace_hop.js";

const HOP = "tunnel peer";

function sessionText(lastHandshakeMs: number | null, now: number): string {
  return lastHandshakeMs === null
    ? "no handshake yet (WireGuard opens one with the first packet)"
    : `latest handshake ${Math.max(0, Math.round((now - lastHandshakeMs) / 1000))} s ago`;
}

function peerHop(t: TunnelInspection, want: TunnelPeerWanted, now: number): TraceHop {
  const subject = `${t.device} peer for ${want.lease}`;
  const expected = `peer ${want.publicKey} endpoint ${want.endpoint} allowed-ips ${want.allowedIPs.join(",")} (flanneld sets it from the lease; run flannelctl doctor)`;
  if (t.unreadable !== null)
    return { hop: HOP, state: "missing", detail: `${t.device}: ${t.unreadable}`, expected };
  const seen = t.actual.find((p) => p.publicKey === want.publicKey);
  if (seen === undefined)
    return {
      hop: HOP,
      state: "missing",
      detail: `${subject}: no peer with the lease's key`,
      expected,
    };
  if (seen.endpoint !== want.endpoint || !sameLists(seen.allowedIPs, want.allowedIPs))
    return {
      hop: HOP,
      state: "wrong",
      detail: `${subject}: endpoint ${seen.endpoint ?? "(none)"} allowed-ips ${seen.allowedIPs.join(",") || "(none)"}`,
      expected,
    };
  return {
    hop: HOP,
    state: "ok",
    detail: `${subject}: ${want.publicKey.slice(0, 8)}… at ${want.endpoint}, encrypted; ${sessionText(seen.lastHandshakeMs, now)}`,
  };
}

/**
 * The hop for the other end's lease, when the backend has tunnels (none otherwise); only the
 * device of the address's family (`v6`) is looked at.
 */
export async function tunnelHops(view: HostView, other: Lease, v6: boolean): Promise<TraceHop[]> {
  const inspection = view.inspection;
  if (inspection?.tunnels === undefined) return [];
  const inspected = await inspection.tunnels(new Map([[leaseKeyOf(other), other]]));
  const now = view.now.getTime();
  return inspected.flatMap((t) =>
    t.wanted
      .filter((want) => want.allowedIPs.some((cidr) => cidr.includes(":") === v6))
      .map((want) => peerHop(t, want, now)),
  );
}
