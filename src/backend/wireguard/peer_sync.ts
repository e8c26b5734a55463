/**
 * Keeps a WireGuard device's peers at the level the leases ask for: after each batch of lease
 * changes, every RECHECK_MS against what the device holds (a peer removed or changed by hand, a
 * wireguard-go that was restarted), and at once when asked. One transaction per sync.
 */
import type { Lease } from "../../lease/lease.js";
import type { Logger } from "../../log/logger.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Clock } from "../../util/clock.js";
import type { WgDeviceState, WgPeer } from "./control.js";
import type { WireGuardDevice } from "./device.js";
import { desiredPeers, peerChange } from "./peers.js";
import type { PeerPlan } from "./peers.js";

/** The keepalive turned on for a moment to open a new peer's handshake. */
const POKE_KEEPALIVE_S = 25;

/**
 * How often the device's peers are compared with the leases' when nothing else asks (wireguard-go
 * tells no one of changes made by hand, so this is how drift is found).
 */
export const RECHECK_MS = 10_000;

/**
 * The periodic check's share of the time at most: a check that took d ms waits at least
 * d / CHECK_SHARE before the next (a 5,000-peer device takes about 60 ms to read and compare,
 * and is then checked about every 25 s), so that an idle host stays well under 1 % of a core.
 */
const CHECK_SHARE = 0.0025;

/**
 * Handshakes are opened ahead of traffic only when a sync adds at most this many peers: a host
 * that starts into a large cluster would otherwise send thousands of handshakes at once (and
 * repeat them for 90 s to hosts that are down); WireGuard then opens each on its first packet.
 */
const OPEN_AHEAD_MAX = 64;

/** The device's own settings: its key and port. */
export interface DeviceSettings {
  readonly privateKey: string;
  readonly publicKey: string;
  readonly listenPort: number;
}

/** Figures, for logs and metrics. */
export interface PeerSyncStats {
  syncs: number;
  peersAdded: number;
  peersRemoved: number;
  /** Changes found by the periodic check that no lease change explains (drift repaired). */
  driftRepairs: number;
  failures: number;
}

export class PeerSync {
  readonly stats: PeerSyncStats = {
    syncs: 0,
    peersAdded: 0,
    peersRemoved: 0,
    driftRepairs: 0,
    failures: 0,
  };
  #wanted: ReadonlyMap<string, WgPeer> = new Map();
  #leasesSeen = false;
  #dirty = false;
  #wake: (() => void) | null = null;
  /** The device's state after the last sync, for doctor-like reads and metrics. */
  lastState: WgDeviceState | null = null;
  readonly #skipWarned = new Map<string, string>();

  constructor(
    readonly device: WireGuardDevice,
    readonly plan: PeerPlan,
    readonly settings: DeviceSettings,
    readonly deps: { readonly log: Logger; readonly clock: Clock },
  ) {
    device.onRestart(() => {
      this.#kick();
    });
  }

  /** The other hosts' leases changed: a sync follows. */
  leasesChanged(remotes: Iterable<Lease>): void {
    this.#wanted = desiredPeers(remotes, this.plan, ({ lease, reason }) => {
      const key = String(lease.subnet ?? lease.ipv6Subnet);
      if (this.#skipWarned.get(key) === reason) return;
      this.#skipWarned.set(key, reason);
      this.deps.log.warn(
        { device: this.device.name, subnet: key, reason },
        "Ignoring a lease that cannot be a WireGuard peer",
      );
    });
    this.#leasesSeen = true;
    this.#kick();
  }

  /** Whether a sync was asked for since the last began (read afresh: awaits change it). */
  #pending(): boolean {
    return this.#dirty;
  }

  #kick(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  /** Syncs until the signal aborts. */
  async run({ signal }: CallOptions): Promise<void> {
    while (!signal.aborted) {
      const asked = this.#dirty;
      this.#dirty = false;
      const began = this.deps.clock.now();
      if (this.#leasesSeen) await this.#trySync(asked, signal);
      const took = this.deps.clock.now() - began;
      if (this.#pending()) continue;
      const woken = new AbortController();
      this.#wake = () => {
        woken.abort();
      };
      const wait = Math.max(RECHECK_MS, took / CHECK_SHARE);
      await this.deps.clock.sleep(wait, AbortSignal.any([signal, woken.signal]));
      this.#wake = null;
    }
  }

  async #trySync(asked: boolean, signal: AbortSignal): Promise<void> {
    try {
      await this.sync(asked, { signal });
    } catch (err) {
      if (signal.aborted) return;
      this.stats.failures++;
      this.deps.log.warn(
        { device: this.device.name, err: (err as Error).message },
        "Cannot sync the WireGuard peers; trying again",
      );
    }
  }

  /**
   * Opens the handshake with each new peer before pods send anything. When both ends start one
   * at once (both pods send first), each drops the other's answer, and WireGuard tries again
   * only after 5 s. So the two ends take turns, a second apart, while there is no handshake:
   * the end whose public key sorts first at 0 and 2 s, the other at 1 and 3 s (a first try can
   * come before the other end knows this one, or before wireguard-go has brought the device
   * up). Opening means turning a keepalive on for a moment: the device sends one at once. With
   * a keepalive configured both ends send one anyway; past OPEN_AHEAD_MAX new peers, none.
   */
  #handshakeNew(upserted: readonly WgPeer[], before: WgDeviceState, opts: CallOptions): void {
    if (this.plan.config.keepaliveSeconds !== 0) return;
    const known = new Set(before.peers.map((p) => p.publicKey));
    const own = this.settings.publicKey;
    const fresh = upserted.filter((p) => !known.has(p.publicKey));
    if (fresh.length > OPEN_AHEAD_MAX) return;
    const first = fresh.filter((p) => own < p.publicKey);
    const second = fresh.filter((p) => own > p.publicKey);
    if (first.length > 0) void this.#openHandshakes(first, [0, 2_000], opts);
    if (second.length > 0) void this.#openHandshakes(second, [1_000, 3_000], opts);
  }

  async #openHandshakes(peers: readonly WgPeer[], at: readonly number[], opts: CallOptions) {
    let waited = 0;
    try {
      for (const ms of at) {
        if (!(await this.deps.clock.sleep(ms - waited, opts.signal))) return;
        waited = ms;
        const state = await this.device.control.get(opts);
        const open = new Set(
          state.peers.filter((p) => p.lastHandshakeMs === null).map((p) => p.publicKey),
        );
        const still = peers.filter((p) => open.has(p.publicKey));
        if (still.length === 0) return;
        await this.#poke(still, opts);
      }
    } catch (err) {
      if (!opts.signal.aborted)
        this.deps.log.debug({ err: (err as Error).message }, "Cannot open WireGuard handshakes");
    }
  }

  async #poke(peers: readonly WgPeer[], opts: CallOptions): Promise<void> {
    if (peers.length === 0) return;
    const poke = peers.map((p) => ({ ...p, keepaliveSeconds: POKE_KEEPALIVE_S }));
    await this.device.control.apply({ upsert: poke, remove: [] }, opts);
    await this.device.control.apply({ upsert: peers, remove: [] }, opts);
  }

  /** One sync: the device's key and port, then its peers; `asked` when leases changed. */
  async sync(asked: boolean, opts: CallOptions): Promise<void> {
    const { control, name } = this.device;
    let state = await control.get(opts);
    const { privateKey, publicKey, listenPort } = this.settings;
    if (state.publicKey !== publicKey || state.listenPort !== listenPort) {
      await control.apply({ privateKey, listenPort, upsert: [], remove: [] }, opts);
      state = await control.get(opts);
    }
    this.stats.syncs++;
    const change = peerChange(state, this.#wanted);
    if (change !== null) {
      await control.apply(change, opts);
      this.#handshakeNew(change.upsert, state, opts);
      this.stats.peersAdded += change.upsert.length;
      this.stats.peersRemoved += change.remove.length;
      const figures = { device: name, set: change.upsert.length, removed: change.remove.length };
      if (asked) this.deps.log.info(figures, "WireGuard peers synced");
      else {
        this.stats.driftRepairs += change.upsert.length + change.remove.length;
        this.deps.log.warn(figures, "WireGuard peers had drifted from the leases; set back");
      }
      state = await control.get(opts);
    }
    this.lastState = state;
  }
}
