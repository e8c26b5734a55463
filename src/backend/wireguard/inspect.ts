/**
 * What flannelctl doctor reads of a WireGuard device: its key and port against the key file's,
 * and its peers against the ones the leases ask for. The device is read as flanneld configures
 * it: a kernel device through `wg`, wireguard-go's through its socket (in this mount namespace).
 */
import { stat } from "node:fs/promises";
import type { Lease } from "../../lease/lease.js";
import type { Netlink } from "../../net/netlink.js";
import type { TunnelInspection } from "../backend.js";
import type { WireGuardConfig } from "./config.js";
import { loadKeysIfAny } from "./keys.js";
import { desiredPeers } from "./peers.js";
import type { PeerPlan } from "./peers.js";
import { controlFor } from "./device.js";

/** One device to inspect: its name, and how it reaches its peers. */
export interface InspectedDevice {
  readonly name: string;
  readonly plan: Omit<PeerPlan, "ownPublicKey">;
}

/** The key file as doctor sees it. */
async function readKeyFileState(path: string) {
  try {
    const keys = await loadKeysIfAny(path);
    const { mode } = await stat(path);
    return {
      publicKey: keys?.publicKey ?? null,
      mode: mode & 0o777,
      problem: keys === null ? "missing" : null,
    };
  } catch (err) {
    return { publicKey: null, mode: null, problem: (err as Error).message };
  }
}

/** Reads each device and compares it with what the leases ask for. */
export async function inspectTunnels(
  devices: readonly InspectedDevice[],
  remotes: ReadonlyMap<string, Lease>,
  deps: { readonly netlink: Netlink; readonly keyFile: string; readonly config: WireGuardConfig },
): Promise<TunnelInspection[]> {
  const key = await readKeyFileState(deps.keyFile);
  const keyFile = { path: deps.keyFile, mode: key.mode, problem: key.problem };
  const out: TunnelInspection[] = [];
  for (const device of devices) {
    const plan: PeerPlan = { ...device.plan, ownPublicKey: key.publicKey ?? "" };
    const wanted = [...desiredPeers(remotes.values(), plan).values()].map((p) => ({
      publicKey: p.publicKey,
      endpoint: p.endpoint,
      allowedIPs: p.allowedIPs,
      lease: p.allowedIPs.join(" "),
    }));
    const base = {
      device: device.name,
      listenPort: { want: device.plan.listenPort, got: null },
      publicKey: { want: key.publicKey, got: null },
      keyFile,
      wanted,
    };
    const link = await deps.netlink.getLink(device.name);
    if (link === null) {
      out.push({ ...base, unreadable: "the device is missing", actual: [] });
      continue;
    }
    const control = controlFor(device.name, link.kind);
    try {
      const state = await control.get({ signal: AbortSignal.timeout(10_000) });
      out.push({
        ...base,
        unreadable: null,
        listenPort: { want: device.plan.listenPort, got: state.listenPort },
        publicKey: { want: key.publicKey, got: state.publicKey },
        actual: state.peers.map((p) => ({ device: device.name, ...p })),
      });
    } catch (err) {
      out.push({ ...base, unreadable: (err as Error).message, actual: [] });
    }
  }
  return out;
}
