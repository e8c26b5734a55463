/**
 * The part every kernel backend shares (flannel's route_network.go, reworked): the kernel state
 * is derived from the leases, and kept so.
 *
 * Scheme: the network keeps the other nodes' leases (from the lease watch) and asks its data
 * plane for the kernel entries each lease needs (routes, neighbours, FDB entries). A sync
 * compares those with the entries of ours that the kernel holds, and only changes what differs:
 * missing or changed entries are written (neighbour, FDB, then route, as flannel orders them),
 * entries of ours that no lease justifies are removed (route first). A sync runs after each batch
 * of lease changes (against what it last saw, without listing), and against a fresh listing
 * whenever the kernel announces a change that concerns the data plane (rtnetlink's multicast
 * groups: an entry or the device deleted or changed by hand), REPAIR_DEBOUNCE_MS after the
 * first of a burst. A full check against a fresh listing also runs every FULL_CHECK_INTERVAL_MS
 * as a safety net, counting what it finds (it should find nothing), and a failed sync is retried
 * every RECONCILE_INTERVAL_MS. Nothing is removed before the first snapshot of leases has
 * arrived, and a restart that finds the kernel already right changes nothing.
 *
 * What flannel did: host-gw re-added missing routes every 10 s; vxlan never checked; no backend
 * removed stale entries at start (flannel issue #2554).
 */
import { hasIPv4, leaseKeyOf } from "../lease/lease.js";
import type { IPv4Lease, Lease, LeaseAttrs, LeaseEvent } from "../lease/lease.js";
import {
  describeEntry,
  diffEntries,
  entryKey,
  leaseOfEntry,
  sameEntry,
} from "../net/kernel_entries.js";
import type { Logger } from "../log/logger.js";
import type { PeerLeaseRules } from "../lease/peer_rules.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../net/netlink.js";
import type {
  EntryWrite,
  KernelEntry,
  Netlink,
  NetlinkChange,
  NetlinkError,
} from "../net/netlink.js";
import type { SubnetManager } from "../subnet/manager.js";
import { warnSkippedLeases, watchLeases } from "../subnet/watch_leases.js";
import type { CallOptions } from "../util/call_options.js";
import { runTogether } from "../util/run_together.js";
import { type Clock, systemClock } from "../util/clock.js";
import type { DataPlaneStats, LeaseSkip, Network, PlaneInspection } from "./backend.js";

/** An entry of a diff, with its key. */
type DiffEntry = [string, KernelEntry];
import { FlannelError } from "../errors.js";

/** How often a failed sync is retried (and how often the full check looks whether it is due). */
export const RECONCILE_INTERVAL_MS = 5_000;

/** How often the kernel is listed and checked without any announced change: a safety net. */
export const FULL_CHECK_INTERVAL_MS = 5 * 60_000;

/** The most leases a batch logs one line each for at info level. */
const MAX_LEASE_LINES = 20;

/** How long after an announced change the repair sync starts, so that a burst makes one sync. */
export const REPAIR_DEBOUNCE_MS = 20;

/**
 * A line per item of a batch: at info level for a small batch, at debug level for a big one
 * (whose summary is one info line). The fields are built only when the line is written.
 */
function perItemLog(
  log: Logger,
  big: boolean,
): (fields: () => Record<string, unknown>, message: string) => void {
  const level = big ? "debug" : "info";
  const on = log.isLevelEnabled(level);
  return (fields, message) => {
    if (on) log[level](fields(), message);
  };
}

/** What a backend plugs into RouteNetwork: its devices, its entries per lease, what it owns. */
export interface DataPlane<Context> {
  /** Brings the backend's devices into shape before a sync; returns what entriesFor needs. */
  prepare(): Promise<Context>;
  /**
   * The entries a remote lease's IPv4 subnet needs (not called for IPv6-only leases). Throws when
   * the lease cannot be served (logged, skipped).
   */
  entriesFor(remote: IPv4Lease, context: Context): KernelEntry[];
  /**
   * The entries a remote lease's IPv6 subnet needs, on a dual-stack plane (absent otherwise);
   * called for leases that have one. Throws when the lease's IPv6 part cannot be served: that
   * part is skipped with one warning, and its IPv4 entries still go in.
   */
  entriesForV6?(remote: Lease, context: Context): KernelEntry[];
  /** The entries of this backend that the kernel holds now. */
  listOwned(context: Context): Promise<KernelEntry[]>;
  /** Whether a change the kernel announced can have touched this plane's entries or devices. */
  concerns(change: NetlinkChange, context: Context): boolean;
  /** Entries the plane needs whatever the leases (udp: the Network route through its TUN). */
  fixedEntries?(context: Context): KernelEntry[];
  /**
   * Told the other nodes' leases after each batch of changes, before the kernel is synced
   * (udp: its forwarder's table of hosts).
   */
  leasesChanged?(remotes: ReadonlyMap<string, Lease>): void;
}

/**
 * The entries a data plane needs for these remote leases (keyed by entryKey): its fixed ones,
 * then each lease's IPv4 and IPv6 ones. A lease the plane cannot serve is passed to `skipped`
 * (its IPv6 part alone when only that fails) and left out.
 */
export function wantedEntries<Context>(
  plane: DataPlane<Context>,
  context: Context,
  leases: ReadonlyMap<string, Lease>,
  skipped: (skip: LeaseSkip) => void,
): Map<string, KernelEntry> {
  const wanted = new Map<string, KernelEntry>();
  for (const entry of plane.fixedEntries?.(context) ?? []) wanted.set(entryKey(entry), entry);
  for (const [subnet, lease] of leases) {
    let entries: KernelEntry[] = [];
    try {
      if (hasIPv4(lease)) entries = plane.entriesFor(lease, context);
    } catch (err) {
      skipped({ subnet, lease, v6: false, message: (err as Error).message });
      continue;
    }
    for (const entry of entries) wanted.set(entryKey(entry), entry);
    if (plane.entriesForV6 === undefined || lease.ipv6Subnet === null) continue;
    try {
      for (const entry of plane.entriesForV6(lease, context)) wanted.set(entryKey(entry), entry);
    } catch (err) {
      skipped({ subnet, lease, v6: true, message: (err as Error).message });
    }
  }
  return wanted;
}

/** Whether a lease's BackendType is served by a network of `backendType` (flannel skips others). */
export function servesLease(
  lease: Lease,
  backendType: string,
  alsoAccepts: readonly string[] = [],
): boolean {
  const type = lease.attrs.backendType;
  return type === backendType || alsoAccepts.includes(type);
}

/**
 * A data plane's wanted and owned entries for these remote leases, for an inspection: its
 * prepare() must find the devices, never make them.
 */
export async function inspectEntries<Context>(
  plane: DataPlane<Context>,
  remotes: ReadonlyMap<string, Lease>,
): ReturnType<PlaneInspection["entries"]> {
  const context = await plane.prepare();
  const skipped: LeaseSkip[] = [];
  const wanted = wantedEntries(plane, context, remotes, (skip) => skipped.push(skip));
  const owned = new Map((await plane.listOwned(context)).map((e) => [entryKey(e), e]));
  return { wanted, owned, skipped };
}

/** What RouteNetwork needs besides its data plane. */
export interface RouteNetworkDeps {
  readonly subnetManager: SubnetManager;
  readonly netlink: Netlink;
  readonly log: Logger;
  /** The BackendType this network serves; leases of other types are skipped, as in flannel. */
  readonly backendType: string;
  /** Other BackendTypes taken as this one (udp: none at all, as flannel's udp leases have). */
  readonly alsoAccepts?: readonly string[];
  /**
   * The rules every remote lease must meet (lease/peer_rules.ts: SubnetLen, the networks, public
   * addresses); leases that break them are kept out by the lease watch, as the doctor judges.
   */
  readonly rules: PeerLeaseRules;
  /** What the checks and repairs wait on. Default: the system's. */
  readonly clock?: Clock;
}

/** Figures for logs, metrics and the bench (DataPlaneStats, counted here). */
export type SyncStats = { -readonly [K in keyof DataPlaneStats]: DataPlaneStats[K] };

/**
 * How many syncs in a row may fail (each retried at the next tick, RECONCILE_INTERVAL_MS) before
 * the failure is taken as lasting and stops flanneld: one netlink hiccup (EBUSY, ENOBUFS) must
 * not, a kernel that refuses every request for a minute must.
 */
export const MAX_CONSECUTIVE_SYNC_FAILURES = 12;

/** The data plane could not be programmed for a long time in a row. */
export class DataPlaneError extends FlannelError {}

/** A Network whose kernel state follows the leases. */
export class RouteNetwork<Context> implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  readonly stats: SyncStats = {
    remoteLeases: 0,
    syncs: 0,
    written: 0,
    removed: 0,
    failed: 0,
    syncFailures: 0,
    eventSyncs: 0,
    relistRepairs: 0,
    echoes: 0,
    checkFindings: 0,
  };
  #consecutiveFailures = 0;
  /** What the data plane's last prepare() returned; null before the first sync. */
  #context: Context | null = null;
  #repairPending = false;
  /** A few of the entries the last sync wrote or removed, for the full check's report. */
  #lastChanged: string[] = [];
  /** Whether the pending repair must list the kernel first. */
  #repairRelist = false;
  #lastFullCheck = 0;
  /** Set when the kernel's announcements cannot be followed: check at every tick. */
  #polling = false;
  readonly #deps: RouteNetworkDeps;
  readonly #clock: Clock;
  readonly #plane: DataPlane<Context>;
  readonly #leases = new Map<string, Lease>();
  /** Entries of ours the kernel holds, as last listed or written; null before the first listing. */
  #kernel: Map<string, KernelEntry> | null = null;
  #synced = false;
  #queue: Promise<void> = Promise.resolve();
  readonly #failures = new Map<string, string>();

  constructor(lease: Lease, mtu: number, deps: RouteNetworkDeps, plane: DataPlane<Context>) {
    this.lease = lease;
    this.mtu = mtu;
    this.#deps = deps;
    this.#plane = plane;
    this.#clock = deps.clock ?? systemClock;
  }

  /** Whether the first snapshot of leases has been applied. */
  get synced(): boolean {
    return this.#synced;
  }

  async run(opts: CallOptions): Promise<void> {
    const follow = async ({ signal }: CallOptions) => {
      const watch = watchLeases(this.#deps.subnetManager, this.lease, {
        signal,
        rules: this.#deps.rules,
        onSkip: warnSkippedLeases(this.#deps.log),
      });
      for await (const batch of watch) {
        this.#apply(batch);
        await this.#serialized(() => this.#trySync(!this.#synced));
        if (!this.#synced) this.#lastFullCheck = this.#clock.now(); // the first sync listed everything
        this.#synced = true;
      }
    };
    const check = async ({ signal }: CallOptions) => {
      try {
        while (await this.#clock.sleep(RECONCILE_INTERVAL_MS, signal)) {
          if (!this.#synced) continue;
          const due =
            this.#polling || this.#clock.now() - this.#lastFullCheck >= FULL_CHECK_INTERVAL_MS;
          if (this.#consecutiveFailures === 0 && !due) continue;
          await this.#serialized(async () => {
            // Lease changes already applied but not yet synced are not findings: sync them
            // first, so that the count is only what the kernel lost or gained behind our back.
            await this.#trySync(false);
            const before = this.stats.written + this.stats.removed;
            await this.#trySync(true);
            this.#lastFullCheck = this.#clock.now();
            const found = this.stats.written + this.stats.removed - before;
            if (due && found > 0) {
              this.stats.checkFindings += found;
              this.#deps.log.warn(
                { entries: found, sample: this.#lastChanged },
                "The full check found entries to repair",
              );
            }
          });
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    };
    const react = async ({ signal }: CallOptions) => {
      try {
        for await (const change of this.#deps.netlink.watchChanges({ signal })) {
          if (!this.#synced) continue; // the first sync lists everything anyway
          const repair = this.#repairFor(change);
          if (repair !== "none") void this.#repairSoon(repair === "relist", signal);
        }
      } catch (err) {
        if (signal.aborted) return;
        // Without announcements, fall back to a full check at every tick, as before.
        this.#polling = true;
        this.#deps.log.warn(
          { err: (err as Error).message, everyMs: RECONCILE_INTERVAL_MS },
          "Cannot follow the kernel's announcements; checking the kernel at every tick instead",
        );
      }
    };
    try {
      await runTogether([follow, check, react], opts);
    } catch (err) {
      if (!opts.signal.aborted) throw err;
    }
  }

  /**
   * What an announced change calls for. An entry of ours the kernel announces as we hold it is
   * the echo of our own write: nothing. One of ours removed, or changed by hand, is noted in what
   * we hold, and a sync without listing writes exactly that entry back. A change the entry does
   * not tell (the device, an address, lost announcements, an entry we do not hold) calls for a
   * sync against a fresh listing.
   */
  #repairFor(change: NetlinkChange): "none" | "entry" | "relist" {
    const context = this.#context;
    const kernel = this.#kernel;
    if (change.linkIndex === null || context === null || kernel === null) return "relist";
    if (!this.#plane.concerns(change, context)) return "none";
    if (change.entry === null) return "relist";
    const key = entryKey(change.entry);
    const held = kernel.get(key);
    const foreignRoute = change.kind === "route" && change.protocol !== FLANNEL_ROUTE_PROTOCOL;
    if (change.learned) {
      // The kernel learned an entry under one of our keys: ours was displaced.
      if (held === undefined || change.removed) return "none";
      kernel.delete(key);
      return "entry";
    }
    if (change.removed) {
      // The echo of our own removal, or a removal of something that was not ours.
      if (held === undefined || !sameEntry(held, change.entry)) {
        if (held === undefined) this.stats.echoes++;
        return "none";
      }
      kernel.delete(key);
      return "entry";
    }
    if (held === undefined) return foreignRoute ? "none" : "relist";
    if (foreignRoute) {
      kernel.delete(key); // ours was replaced by someone else's route to the same subnet
      return "entry";
    }
    if (sameEntry(held, change.entry)) {
      this.stats.echoes++;
      return "none";
    }
    kernel.set(key, change.entry);
    return "entry";
  }

  /** One repair sync, REPAIR_DEBOUNCE_MS after the first change of a burst. */
  async #repairSoon(relist: boolean, signal: AbortSignal): Promise<void> {
    this.#repairRelist ||= relist;
    if (this.#repairPending) return;
    this.#repairPending = true;
    try {
      const waited = await this.#clock.sleep(REPAIR_DEBOUNCE_MS, signal);
      this.#repairPending = false;
      if (!waited) return;
      this.stats.eventSyncs++;
      await this.#serialized(() => {
        const fresh = this.#repairRelist;
        this.#repairRelist = false;
        if (fresh) this.stats.relistRepairs++;
        return this.#trySync(fresh);
      });
    } catch (err) {
      this.#repairPending = false;
      // A repair that fails for good is reported by the next sync's failure count.
      this.#deps.log.warn({ err: (err as Error).message }, "Repair sync failed");
    }
  }

  #apply(batch: readonly LeaseEvent[]): void {
    // A big batch (the first snapshot of a large cluster) is summed up in one line; each lease
    // is then a debug line, so that start-up does not write thousands of lines.
    const big = batch.length > MAX_LEASE_LINES;
    const each = perItemLog(this.#deps.log, big);
    if (big) {
      const added = batch.filter((e) => e.type === "added").length;
      this.#deps.log.info({ added, removed: batch.length - added }, "Subnets changed");
    }
    for (const event of batch) {
      const key = leaseKeyOf(event.lease);
      if (event.type === "removed") {
        this.#leases.delete(key);
        each(() => ({ subnet: key, publicIP: event.lease.attrs.publicIP }), "Subnet removed");
        continue;
      }
      if (!servesLease(event.lease, this.#deps.backendType, this.#deps.alsoAccepts)) {
        this.#deps.log.warn(
          { subnet: key, backendType: event.lease.attrs.backendType },
          "Ignoring a lease of another backend type",
        );
        this.#leases.delete(key);
        continue;
      }
      const known = this.#leases.get(key);
      this.#leases.set(key, event.lease);
      if (known === undefined)
        each(() => ({ subnet: key, publicIP: event.lease.attrs.publicIP }), "Subnet added");
      else
        each(
          () => ({ subnet: key, changed: changedAttrs(known.attrs, event.lease.attrs) }),
          "Subnet changed",
        );
    }
    this.#plane.leasesChanged?.(this.#leases);
  }

  async #serialized(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * One sync; a failure of the whole sync (the device or a listing could not be read) is logged
   * once per distinct message, counted, and retried at the next tick with a fresh listing. Only
   * MAX_CONSECUTIVE_SYNC_FAILURES in a row stop flanneld, with the reason.
   */
  async #trySync(relist: boolean): Promise<void> {
    try {
      await this.#sync(relist || this.#consecutiveFailures > 0);
      if (this.#consecutiveFailures > 0) {
        this.#deps.log.info(
          { failedBefore: this.#consecutiveFailures },
          "Data plane sync works again",
        );
        this.#failures.delete("sync");
      }
      this.#consecutiveFailures = 0;
    } catch (err) {
      this.#consecutiveFailures++;
      this.stats.syncFailures++;
      this.#kernel = null; // what the kernel holds is not known any more: list again
      const message = (err as Error).message;
      if (this.#consecutiveFailures >= MAX_CONSECUTIVE_SYNC_FAILURES) {
        throw new DataPlaneError(
          `Cannot program the data plane: ${message}: the sync failed ${this.#consecutiveFailures} times in a row; check that flanneld has CAP_NET_ADMIN and that the ${this.#deps.backendType} device can be read`,
          { cause: err },
        );
      }
      if (this.#failures.get("sync") !== message) {
        this.#failures.set("sync", message);
        this.#deps.log.warn(
          { err: message, failures: this.#consecutiveFailures },
          "Data plane sync failed; retrying at the next tick",
        );
      }
    }
  }

  /** One sync in its three steps: what differs, one batched write, and what the log says. */
  async #sync(relist: boolean): Promise<void> {
    const { stale, missing } = await this.#diff(relist);
    if (stale.length === 0 && missing.length === 0) return;
    const results = await this.#write(stale, missing);
    this.#report(stale, missing, results);
  }

  /** Step 1: the kernel's entries of ours (listed again when asked) against the wanted ones. */
  async #diff(relist: boolean): Promise<ReturnType<typeof diffEntries>> {
    const context = await this.#plane.prepare();
    this.#context = context;
    if (relist || this.#kernel === null) {
      this.#kernel = new Map((await this.#plane.listOwned(context)).map((e) => [entryKey(e), e]));
    }
    this.stats.syncs++;
    this.stats.remoteLeases = this.#leases.size;
    const wanted = wantedEntries(this.#plane, context, this.#leases, (skip) => {
      this.#noteSkip(skip);
    });
    return diffEntries(this.#kernel, wanted);
  }

  /** A remote lease (or its IPv6 part) the data plane cannot serve: one warning per reason. */
  #noteSkip(skip: LeaseSkip): void {
    if (skip.v6)
      this.#noteFailure(
        `lease ${skip.subnet} v6`,
        skip.message,
        { subnet: skip.subnet, publicIPv6: skip.lease.attrs.publicIPv6 },
        false,
        "IPv6 part of a remote lease skipped; its IPv4 part is served",
      );
    else
      this.#noteFailure(
        `lease ${skip.subnet}`,
        skip.message,
        { subnet: skip.subnet, publicIP: skip.lease.attrs.publicIP },
        false,
        "Ignoring a lease this backend cannot serve; nothing is written for it",
      );
  }

  /**
   * Step 2: one batch, in order: stale entries out (route first), then missing ones in (route
   * last). What we hold is updated before writing, so that the kernel's announcements of these
   * very writes (which may be read before writeEntries returns) are recognised as their echo; a
   * write that fails puts back what was held.
   */
  async #write(stale: DiffEntry[], missing: DiffEntry[]): Promise<(NetlinkError | null)[]> {
    const kernel = this.#kernel ?? new Map<string, KernelEntry>();
    const writes: EntryWrite[] = [
      ...stale.map(([, entry]): EntryWrite => ({ op: "delete", entry })),
      ...missing.map(([, entry]): EntryWrite => ({ op: "replace", entry })),
    ];
    for (const [key] of stale) kernel.delete(key);
    const previous = missing.map(([key]) => kernel.get(key));
    for (const [key, entry] of missing) kernel.set(key, entry);
    const results = await this.#deps.netlink.writeEntries(writes);
    missing.forEach(([key], i) => {
      if ((results[stale.length + i] ?? null) === null) return;
      const was = previous[i];
      if (was === undefined) kernel.delete(key);
      else kernel.set(key, was);
    });
    this.#lastChanged = writes.slice(0, 5).map((w) => `${w.op} ${describeEntry(w.entry)}`);
    return results.map((r) => r ?? null);
  }

  /**
   * Step 3: the figures and the log. A small batch gets a line per entry; a big one (the first
   * sync of a large cluster) one summary line, and its failures summed up by errno.
   */
  #report(stale: DiffEntry[], missing: DiffEntry[], results: (NetlinkError | null)[]): void {
    const { log } = this.#deps;
    const big = stale.length + missing.length > MAX_LEASE_LINES;
    const each = perItemLog(log, big);
    let removed = 0;
    let written = 0;
    const failures = new Map<string, { count: number; sample: string }>();
    const failed = (err: NetlinkError, entry: KernelEntry) => {
      const seen = failures.get(err.errno);
      if (seen === undefined) failures.set(err.errno, { count: 1, sample: describeEntry(entry) });
      else seen.count++;
    };
    stale.forEach(([, entry], i) => {
      const err = results[i] ?? null;
      if (err === null) {
        removed++;
        each(() => ({ entry: describeEntry(entry) }), "Removed a kernel entry no lease needs");
      } else if (big) failed(err, entry);
      else
        log.warn({ err: err.message, entry: describeEntry(entry) }, "Cannot remove a kernel entry");
    });
    missing.forEach(([key, entry], i) => {
      const err = results[stale.length + i] ?? null;
      if (err !== null) {
        this.stats.failed++;
        if (big) failed(err, entry);
        const fields = { entry: describeEntry(entry), host: hostOf(entry, this.#leases) };
        this.#noteFailure(key, err.message, fields, big);
        return;
      }
      written++;
      if (this.#failures.delete(key))
        each(
          () => ({ entry: describeEntry(entry) }),
          "Kernel entry written after earlier failures",
        );
      else if (this.#synced) each(() => ({ entry: describeEntry(entry) }), "Kernel entry written");
    });
    this.stats.removed += removed;
    this.stats.written += written;
    if (!big) return;
    const failedCount = results.length - written - removed;
    log.info({ written, removed, failed: failedCount }, "Kernel entries changed");
    for (const [errno, { count, sample }] of failures)
      log.error(
        { errno, entries: count, sample },
        "The kernel refused entries; other hosts are not affected",
      );
  }

  /** Logs a failure once per distinct message, so a lasting problem does not flood the log. */
  #noteFailure(
    key: string,
    message: string,
    fields: Record<string, unknown>,
    quiet = false,
    warning?: string,
  ): void {
    if (this.#failures.get(key) === message) return;
    this.#failures.set(key, message);
    if (quiet) return; // summed up by the caller
    if (warning !== undefined) {
      this.#deps.log.warn({ ...fields, err: message }, warning);
      return;
    }
    this.#deps.log.error(
      { ...fields, err: message },
      "Cannot program the kernel for a remote host; other hosts are not affected",
    );
  }
}

/** What differs between two versions of a lease's attributes: each field, from and to. */
function changedAttrs(
  before: LeaseAttrs,
  after: LeaseAttrs,
): Record<string, { from: unknown; to: unknown }> {
  const fields = [
    ["PublicIP", before.publicIP, after.publicIP],
    ["PublicIPv6", before.publicIPv6, after.publicIPv6],
    ["BackendType", before.backendType, after.backendType],
    ["BackendData", before.backendData ?? null, after.backendData ?? null],
    ["BackendV6Data", before.backendV6Data ?? null, after.backendV6Data ?? null],
  ] as const;
  const changed: Record<string, { from: unknown; to: unknown }> = {};
  for (const [name, from, to] of fields)
    if (JSON.stringify(from) !== JSON.stringify(to)) changed[name] = { from, to };
  return changed;
}

function hostOf(entry: KernelEntry, leases: ReadonlyMap<string, Lease>): string | undefined {
  return entry.kind === "route" ? leaseOfEntry(entry, leases.values())?.attrs.publicIP : undefined;
}
