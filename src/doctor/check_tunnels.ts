/**
 * The wireguard backend's devices: readable, with this host's key and port, the key file kept
 * private, and each peer as the leases ask (key, endpoint, AllowedIPs), with a recent handshake
 * while traffic is sent to it.
 */
import type { TunnelInspection, TunnelPeerSeen, TunnelPeerWanted } from "../backend/backend.js";
import { servedRemotes } from "./check_data_plane.js";
import { finding } from "./finding.js";
import type { CheckGroup, Finding } from "./finding.js";
import type { HostView } from "./host_view.js";

/** WireGuard rekeys every 2 minutes while traffic flows: older than this, there is no session. */
const HANDSHAKE_STALE_MS = 3 * 60_000;
/** Two handshake initiations (148 bytes each): tried at least twice, 5 s apart. */
const TRIED_TWICE_BYTES = 2 * 148;
const RESTART = "restart flanneld (it sets the device's peers back from the leases)";

function deviceFindings(t: TunnelInspection): Finding[] {
  const found: Finding[] = [];
  const { keyFile } = t;
  if (keyFile.problem !== null)
    found.push(
      finding(
        "wg-key-file",
        "error",
        keyFile.path,
        `the WireGuard key file cannot be read: ${keyFile.problem}`,
        "the lease's public key cannot be checked, and flanneld makes a new key at its next start (every peer must learn it)",
        `check ${keyFile.path} (WIREGUARD_KEY_FILE), then ${RESTART}`,
      ),
    );
  else if (keyFile.mode !== null && (keyFile.mode & 0o077) !== 0)
    found.push(
      finding(
        "wg-key-file-mode",
        "warning",
        keyFile.path,
        `the WireGuard private key is readable by others (mode ${keyFile.mode.toString(8)})`,
        "whoever reads it can decrypt this host's pod traffic",
        `chmod 0400 ${keyFile.path}`,
      ),
    );
  if (t.unreadable !== null) {
    found.push(
      finding(
        "wg-device-unreadable",
        "error",
        t.device,
        `the WireGuard device cannot be read: ${t.unreadable}`,
        "its peers cannot be checked; if it is missing, no pod traffic leaves this host",
        `${RESTART}; for wireguard-go, run doctor where its socket is (/var/run/wireguard)`,
      ),
    );
    return found;
  }
  if (t.publicKey.want !== null && t.publicKey.got !== t.publicKey.want)
    found.push(
      finding(
        "wg-key-mismatch",
        "error",
        t.device,
        `the device's public key ${t.publicKey.got ?? "(none)"} is not the key file's ${t.publicKey.want}, which the lease announces`,
        "every peer encrypts to the lease's key: nothing they send can be read here",
        RESTART,
      ),
    );
  if (t.listenPort.got !== t.listenPort.want)
    found.push(
      finding(
        "wg-listen-port",
        "error",
        t.device,
        `the device listens on UDP port ${t.listenPort.got ?? "(none)"}, expected ${t.listenPort.want}`,
        "peers send to the port in the network config: their packets are not received",
        RESTART,
      ),
    );
  return found;
}

/** Whether two lists hold the same items, in any order. */
export function sameLists(a: readonly string[], b: readonly string[]): boolean {
  return [...a].sort().join(",") === [...b].sort().join(",");
}

/** A peer that is there as the lease asks, but has no session while traffic is sent to it. */
function handshakeFinding(
  t: TunnelInspection,
  want: TunnelPeerWanted,
  seen: TunnelPeerSeen,
  now: number,
): Finding | null {
  const age = seen.lastHandshakeMs === null ? null : now - seen.lastHandshakeMs;
  const stale =
    age === null ? seen.txBytes >= TRIED_TWICE_BYTES : age > HANDSHAKE_STALE_MS && seen.txBytes > 0;
  if (!stale) return null;
  const since =
    age === null
      ? "never completed a handshake"
      : `has had no handshake for ${Math.round(age / 1000)} s`;
  return finding(
    "wg-peer-no-handshake",
    "error",
    `${t.device} peer ${want.lease}`,
    `the peer ${want.publicKey} (${want.endpoint}) ${since}, though traffic is sent to it (${seen.txBytes} bytes)`,
    "no pod traffic passes between this host and that one",
    "likely causes: a PSK that differs between the two hosts (the network config's Backend.PSK), UDP to the listen port blocked between them, or a wrong public IP in that host's lease (--public-ip); check `wg show` on both ends",
  );
}

function peerFindings(t: TunnelInspection, now: number): Finding[] {
  if (t.unreadable !== null) return [];
  const found: Finding[] = [];
  const actual = new Map(t.actual.map((p) => [p.publicKey, p]));
  const wanted = new Set(t.wanted.map((p) => p.publicKey));
  for (const want of t.wanted) {
    const seen = actual.get(want.publicKey);
    const subject = `${t.device} peer ${want.lease}`;
    if (seen === undefined) {
      found.push(
        finding(
          "wg-peer-missing",
          "error",
          subject,
          `the device has no peer with the lease's key ${want.publicKey}`,
          "pod traffic to that host's subnet has nowhere to go",
          RESTART,
        ),
      );
      continue;
    }
    if (seen.endpoint !== want.endpoint || !sameLists(seen.allowedIPs, want.allowedIPs)) {
      found.push(
        finding(
          "wg-peer-wrong",
          "error",
          subject,
          `the peer has endpoint ${seen.endpoint ?? "(none)"} and AllowedIPs ${seen.allowedIPs.join(",") || "(none)"}, the lease asks for ${want.endpoint} and ${want.allowedIPs.join(",")}`,
          "packets for that host go elsewhere, or are dropped on arrival",
          RESTART,
        ),
      );
      continue;
    }
    const stale = handshakeFinding(t, want, seen, now);
    if (stale !== null) found.push(stale);
  }
  for (const seen of t.actual)
    if (!wanted.has(seen.publicKey))
      found.push(
        finding(
          "wg-peer-stale",
          "warning",
          `${t.device} peer ${seen.publicKey}`,
          `a peer no lease asks for (AllowedIPs ${seen.allowedIPs.join(",") || "(none)"})`,
          "stale peers pile up when hosts restart with new keys (flannel issue 1421), and can take traffic meant for a subnet",
          `wg set ${t.device} peer ${seen.publicKey} remove (flanneld removes it at its next check, within 10 s, longer with thousands of peers)`,
        ),
      );
  return found;
}

/** The wireguard checks; skipped for other backends. */
export async function checkTunnels(view: HostView): Promise<CheckGroup> {
  const { inspection, own } = view;
  if (inspection?.tunnels === undefined)
    return { name: "tunnels", findings: [], skipped: "the backend has no tunnels" };
  if (own === null) return { name: "tunnels", findings: [], skipped: "no lease" };
  const inspected = await inspection.tunnels(servedRemotes(view, own));
  const now = view.now.getTime();
  return {
    name: "tunnels",
    findings: inspected.flatMap((t) => [...deviceFindings(t), ...peerFindings(t, now)]),
  };
}
