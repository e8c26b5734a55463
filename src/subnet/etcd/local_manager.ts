/**
 * The etcd subnet manager (flannel's pkg/subnet/etcd/local_manager.go).
 *
 * Allocation: keep this node's lease (found by PublicIP) when it still fits the config; else take
 * the subnet subnet.env names from the last run when it is free; else pick at random among free
 * subnets between SubnetMin and SubnetMax. Creation is a create-if-absent transaction, so two
 * nodes never share a subnet. Where flannel differs:
 * - a lost race is retried with another subnet (flannel exits: its retry test never matches);
 * - a reservation (a key with no etcd lease) is rewritten without a lease, so it stays one
 *   (flannel turns it into a 24 h lease, its issue #1329);
 * - renewal only rewrites a key that still exists, so a deleted lease is reported, not revived;
 * - the watch skips keys and values it cannot read, with a warning, instead of reporting every
 *   other lease as removed.
 */
import { randomInt } from "node:crypto";
import { checkNetworkConfig, parseNetworkConfig } from "../../config/network_config.js";
import type { CheckedNetworkConfig, SubnetRange } from "../../config/network_config.js";
import type { PreviousSubnets } from "../../config/subnet_env.js";
import {
  ConfigError,
  FlannelError,
  LeaseRevokedError,
  LeaseConflictError,
  NetworkFullError,
  UnreadableLeaseError,
} from "../../errors.js";
import { IPNet, formatIP } from "../../ip/ip.js";
import { leaseKeyOf } from "../../lease/lease.js";
import type { IPv4Lease, LeaseAttrs, LeaseEvent } from "../../lease/lease.js";
import type { Logger } from "../../log/logger.js";
import type { CallOptions } from "../../util/call_options.js";
import { runTogether } from "../../util/run_together.js";
import { type Clock, systemClock } from "../../util/clock.js";
import { backoff } from "../../util/sleep.js";
import type { LeaseWatchResult, StoreEvent, SubnetManager } from "../manager.js";
import { EtcdRegistry, SUBNET_TTL_SECONDS } from "./registry.js";
import type { EtcdConfig, SubnetChange, SubnetListing } from "./registry.js";

/** How many free subnets a random pick chooses among. flannel uses 100; more means fewer races. */
const MAX_CANDIDATES = 1024;
/** How many lost races AcquireLease retries before it gives up. */
const MAX_ACQUIRE_ATTEMPTS = 100;
/** Wait before retrying a failed renewal, as flannel does. */
const RENEW_RETRY_MS = 60_000;
/** How soon a failed write-back of this node's unreadable lease is tried again. */
const WRITE_BACK_RETRY_MS = 5_000;
/**
 * How often etcd is checked for having gone back in time (wiped, or restored from a backup),
 * besides each time a watch connects again (a wipe restarts etcd, so the connection drops).
 * One small read per host per period: 5,000 hosts make 83 reads a second.
 */
const STORE_CHECK_MS = 60_000;
/**
 * After etcd went back in time, how long the lease watch waits before reading every lease again,
 * so that the other hosts have written theirs again and none of their routes is dropped.
 */
const REWIND_GRACE_MS = 15_000;

/** etcd went back in time: another cluster ID, or a revision below one already seen. */
class StoreRewoundError extends FlannelError {
  constructor() {
    super("etcd went back in time");
  }
}

/** This node's lease as completeLease() keeps it: renewed, rewritten, followed. */
interface OwnLease {
  lease: IPv4Lease;
  /** The last reason an unreadable value over it was reported for (said once each). */
  unreadableSaid: string | null;
}

/** Options of LocalManager. */
export interface LocalManagerOptions {
  readonly log: Logger;
  /** Subnets from the last run's subnet.env, tried first when free. */
  readonly previous?: PreviousSubnets;
  /** What renewals, retries and store checks read the time from and wait on. */
  readonly clock?: Clock;
  /** How long before expiry the lease is renewed (`--subnet-lease-renew-margin`, in ms). */
  readonly renewMarginMs?: number;
}

/** Lease acquisition figures, for logs, metrics and the bench. */
export interface AcquireStats {
  /** Create transactions lost to another node since start. */
  conflicts: number;
}

/** The etcd v3 subnet manager. */
export class LocalManager implements SubnetManager {
  readonly name = "etcd";
  readonly stats: AcquireStats = { conflicts: 0 };
  readonly #registry: EtcdRegistry;
  readonly #log: Logger;
  readonly #previous: PreviousSubnets;
  readonly #clock: Clock;
  readonly #renewMarginMs: number;
  /** The listing of the last acquireLease(), for the first lease watch to start from. */
  #acquireListing: SubnetListing | null = null;
  /** The store as last seen: its cluster ID and the highest revision any answer carried. */
  #store: { clusterId: string | null; revision: bigint } = { clusterId: null, revision: 0n };
  /** Told when etcd is found to have gone back in time. */
  readonly #onRewind = new Set<() => void>();
  readonly #storeListeners = new Set<(event: StoreEvent) => void>();
  #checking: Promise<boolean> | null = null;

  constructor(registry: EtcdRegistry, options: LocalManagerOptions) {
    this.#registry = registry;
    this.#log = options.log.child({ component: "etcd" });
    this.#previous = options.previous ?? { subnet: null, ipv6Subnet: null };
    this.#clock = options.clock ?? systemClock;
    this.#renewMarginMs = options.renewMarginMs ?? 60 * 60_000;
    // One line when etcd goes and one when it is back, however many watches notice it.
    registry.onConnectionChange((change) => {
      if (!change.up) {
        this.#log.warn(
          { err: change.err.message },
          "Lost the connection to etcd; the data plane stays as it is, reconnecting with backoff",
        );
        this.#emit({ kind: "disconnected", reason: change.err.message });
      } else {
        this.#log.info(
          { downSeconds: Math.round(change.downMs / 100) / 10 },
          "Connected to etcd again",
        );
        this.#emit({ kind: "connected", downMs: change.downMs });
      }
    });
  }

  onStoreEvent(listener: (event: StoreEvent) => void): void {
    this.#storeListeners.add(listener);
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#storeListeners) listener(event);
  }

  /** Notes a revision an answer of the store carried. */
  #sawRevision(revision: bigint): void {
    if (revision > this.#store.revision) this.#store = { ...this.#store, revision };
  }

  /**
   * Checks whether etcd went back in time: wiped and started empty, or restored from an old
   * backup (another cluster ID, or a revision below one already seen). Watches opened before
   * would then wait forever for revisions the new store reaches only much later, and this
   * node's lease would be gone without a delete ever being announced: the cluster splits
   * silently. Returns true (and tells the watches) when it did.
   */
  async #checkStore(): Promise<boolean> {
    const now = await this.#registry.storeState();
    const known = this.#store;
    const rewound =
      (known.clusterId !== null && now.clusterId !== known.clusterId) ||
      now.revision < known.revision;
    this.#store = { clusterId: now.clusterId, revision: rewound ? now.revision : known.revision };
    if (!rewound) {
      this.#sawRevision(now.revision);
      return false;
    }
    this.#log.warn(
      {
        clusterId: now.clusterId,
        was: known.clusterId,
        revision: String(now.revision),
        highestSeen: String(known.revision),
      },
      "etcd went back in time (wiped, or restored from a backup): writing this node's lease again and reading every lease afresh",
    );
    for (const tell of this.#onRewind) tell();
    return true;
  }

  /** Checks the store now, once at a time; false when it cannot be read (checked again later). */
  #checkSoon = (): void => {
    this.#checking ??= this.#checkStore()
      .catch(() => false)
      .finally(() => {
        this.#checking = null;
      });
  };

  /** A signal aborted by `signal` or by the next time etcd is found to have gone back in time. */
  #untilRewind(signal: AbortSignal): { signal: AbortSignal; done: () => void } {
    const rewind = new AbortController();
    const tell = () => {
      rewind.abort(new StoreRewoundError());
    };
    this.#onRewind.add(tell);
    return {
      signal: AbortSignal.any([signal, rewind.signal]),
      done: () => this.#onRewind.delete(tell),
    };
  }

  /** Connects to etcd and makes a manager. */
  static async connect(etcd: EtcdConfig, options: LocalManagerOptions): Promise<LocalManager> {
    return new LocalManager(await EtcdRegistry.connect(etcd, options.clock), options);
  }

  async getNetworkConfig(_opts: CallOptions): Promise<CheckedNetworkConfig> {
    const text = await this.#registry.getNetworkConfigText();
    const config = checkNetworkConfig(parseNetworkConfig(text));
    if (config.leaseRanges.ipv4 === null) {
      throw new ConfigError(
        "Invalid network config: EnableIPv4 is false, but the etcd subnet manager always leases an IPv4 subnet: set EnableIPv4 to true, or use --kube-subnet-mgr for IPv6-only",
      );
    }
    return config;
  }

  async acquireLease(attrs: LeaseAttrs, opts: CallOptions): Promise<IPv4Lease> {
    const config = await this.getNetworkConfig(opts);
    for (let attempt = 1; ; attempt++) {
      opts.signal.throwIfAborted();
      try {
        return await this.#tryAcquireLease(config, attrs);
      } catch (err) {
        if (!(err instanceof LeaseConflictError) || attempt >= MAX_ACQUIRE_ATTEMPTS) throw err;
        this.stats.conflicts++;
        this.#log.info(
          { subnet: err.subnet, attempt },
          "Subnet taken by another node meanwhile; trying another",
        );
      }
    }
  }

  /**
   * A restart's quick way back: the subnet subnet.env names, when its key still holds this
   * node's lease and fits the config, is renewed without listing every lease (which costs a
   * big cluster hundreds of ms before subnet.env can be written). Null when that does not
   * apply; acquireLease then goes the way flannel goes.
   */
  async #tryPreviousLease(
    config: CheckedNetworkConfig,
    attrs: LeaseAttrs,
  ): Promise<IPv4Lease | null> {
    const previous = this.#previous;
    if (previous.subnet === null) return null;
    const ipv6Subnet = config.leaseRanges.ipv6 ? previous.ipv6Subnet : null;
    // Its expiration is not needed: the lease is written again with a fresh TTL.
    const { lease } = await this.#registry.getSubnet(previous.subnet, ipv6Subnet, {
      withExpiration: false,
    });
    if (lease === null || lease.attrs.publicIP !== attrs.publicIP) return null;
    if (!leaseFitsConfig(lease, config)) return null;
    const kept = await this.#registry.updateSubnet(
      lease,
      attrs,
      lease.reserved ? null : SUBNET_TTL_SECONDS,
    );
    if (kept !== null)
      this.#log.info(
        { subnet: leaseKeyOf(kept), reserved: kept.reserved },
        "Found lease for this node; reusing it",
      );
    return kept;
  }

  async #tryAcquireLease(config: CheckedNetworkConfig, attrs: LeaseAttrs): Promise<IPv4Lease> {
    const quick = await this.#tryPreviousLease(config, attrs);
    if (quick !== null) return quick;
    const listing = await this.#registry.getSubnets({ withExpiration: false });
    // The first lease watch starts from this listing rather than reading every lease again.
    this.#acquireListing = listing;
    const { leases } = listing;
    const fits = (lease: Pick<IPv4Lease, "subnet" | "ipv6Subnet">) =>
      leaseFitsConfig(lease, config);

    const own = leases.find((lease) => lease.attrs.publicIP === attrs.publicIP);
    if (own !== undefined) {
      if (fits(own)) {
        const kept = await this.#registry.updateSubnet(
          own,
          attrs,
          own.reserved ? null : SUBNET_TTL_SECONDS,
        );
        if (kept !== null) {
          this.#log.info(
            { subnet: leaseKeyOf(kept), reserved: kept.reserved },
            "Found lease for this node; reusing it",
          );
          return kept;
        }
      } else if (own.reserved) {
        // flannel deletes such a reservation and takes a new subnet; say so loudly.
        this.#log.warn(
          { subnet: leaseKeyOf(own), publicIP: attrs.publicIP },
          "Reserved subnet of this node no longer fits the network config (SubnetLen, SubnetMin, SubnetMax); deleting the reservation and taking a new subnet, as flannel does",
        );
        await this.#registry.deleteSubnet(own.subnet, own.ipv6Subnet);
      } else {
        this.#log.info(
          { subnet: leaseKeyOf(own) },
          "Lease of this node no longer fits the network config; deleting it",
        );
        await this.#registry.deleteSubnet(own.subnet, own.ipv6Subnet);
      }
    }

    const taken = leases.filter((lease) => lease !== own);
    const previous = this.#previous;
    if (previous.subnet !== null) {
      const wanted = {
        subnet: previous.subnet,
        ipv6Subnet: config.leaseRanges.ipv6 ? previous.ipv6Subnet : null,
      };
      const isFree = !taken.some((lease) => lease.subnet.overlaps(wanted.subnet));
      if (fits(wanted) && isFree) {
        const lease = await this.#registry.createSubnet(
          wanted.subnet,
          wanted.ipv6Subnet,
          attrs,
          SUBNET_TTL_SECONDS,
        );
        this.#log.info({ subnet: leaseKeyOf(lease) }, "Leased the subnet this node had before");
        return lease;
      }
    }

    const ipv4 = config.leaseRanges.ipv4;
    if (ipv4 === null) throw new TypeError("acquireLease needs a config with an IPv4 range");
    const subnet = pickFreeSubnet(
      ipv4,
      taken.map((lease) => lease.subnet),
    );
    const ipv6Subnet = config.leaseRanges.ipv6
      ? pickFreeSubnet(
          config.leaseRanges.ipv6,
          taken.flatMap((lease) => (lease.ipv6Subnet ? [lease.ipv6Subnet] : [])),
        )
      : null;
    const lease = await this.#registry.createSubnet(subnet, ipv6Subnet, attrs, SUBNET_TTL_SECONDS);
    this.#log.info({ subnet: leaseKeyOf(lease) }, "Leased a new subnet");
    return lease;
  }

  async renewLease(lease: IPv4Lease, _opts: CallOptions): Promise<IPv4Lease> {
    const renewed = await this.#registry.updateSubnet(
      lease,
      lease.attrs,
      lease.reserved ? null : SUBNET_TTL_SECONDS,
    );
    if (renewed === null) throw revoked(lease);
    return renewed;
  }

  async completeLease(lease: IPv4Lease, opts: CallOptions): Promise<void> {
    const own: OwnLease = { lease, unreadableSaid: null };
    try {
      await runTogether(
        [
          ({ signal }) => this.#keepRenewing(own, signal),
          ({ signal }) => this.#followOwnKey(own, signal),
          ({ signal }) => this.#followStore(signal),
        ],
        opts,
      );
    } catch (err) {
      if (opts.signal.aborted && !(err instanceof LeaseRevokedError)) return;
      throw err;
    }
  }

  /** Renews this node's lease `--subnet-lease-renew-margin` before it expires, until aborted. */
  async #keepRenewing(own: OwnLease, signal: AbortSignal): Promise<void> {
    for (;;) {
      const current = own.lease;
      if (current.reserved || current.expiration === null) {
        if (!(await this.#clock.sleep(RENEW_RETRY_MS, signal))) return;
        continue;
      }
      const waitMs = current.expiration.getTime() - this.#renewMarginMs - this.#clock.now();
      if (waitMs > 0) {
        // Wake at least each minute, so that an expiration changed by the watch is noticed.
        if (!(await this.#clock.sleep(Math.min(waitMs, RENEW_RETRY_MS), signal))) return;
        continue;
      }
      try {
        own.lease = await this.renewLease(current, { signal });
        this.#log.info(
          { subnet: leaseKeyOf(own.lease), expiration: own.lease.expiration },
          "Lease renewed",
        );
        this.#emit({ kind: "renewed", expiration: own.lease.expiration });
      } catch (err) {
        if (err instanceof LeaseRevokedError || signal.aborted) throw err;
        this.#log.error({ err }, "Cannot renew lease; retrying in a minute");
        if (!(await this.#clock.sleep(RENEW_RETRY_MS, signal))) return;
      }
    }
  }

  /** Writes this node's lease back over a value that is not a lease, saying so once. */
  async #writeBack(own: OwnLease, err: UnreadableLeaseError, signal: AbortSignal): Promise<void> {
    const first = own.unreadableSaid !== err.reason;
    if (first)
      this.#log.warn(
        { key: err.key, reason: err.reason },
        "This node's lease is unreadable; writing it back from what flanneld holds",
      );
    own.unreadableSaid = err.reason;
    try {
      own.lease = await this.renewLease(own.lease, { signal });
      this.#log[first ? "info" : "debug"]({ key: err.key }, "Wrote this node's lease back");
    } catch (writeErr) {
      if (writeErr instanceof LeaseRevokedError || signal.aborted) throw writeErr;
      this.#log.warn(
        { key: err.key, err: (writeErr as Error).message },
        "Cannot write this node's lease back yet; trying again",
      );
      await this.#clock.sleep(WRITE_BACK_RETRY_MS, signal);
    }
  }

  /**
   * Follows this node's own key until aborted: its deletion by someone else revokes the lease,
   * garbage over it is written back, and after etcd went back in time the lease is written again.
   */
  async #followOwnKey(own: OwnLease, signal: AbortSignal): Promise<void> {
    const delays = backoff(100, 5_000);
    /** Set when etcd went back in time: this node's lease is written again if gone. */
    let rewritePending = false;
    for (;;) {
      const watch = this.#untilRewind(signal);
      try {
        rewritePending = await this.#watchOwnKey(own, rewritePending, watch.signal);
        if (signal.aborted) return;
      } catch (err) {
        if (signal.aborted) throw err;
        if (watch.signal.aborted) {
          rewritePending = true; // etcd went back in time: see whether the lease survived
          continue;
        }
        if (err instanceof LeaseRevokedError) throw err;
        if (err instanceof UnreadableLeaseError) {
          // Someone wrote garbage over this node's lease: the subnet is still ours (its etcd
          // lease lives), so write back what flanneld holds, and watch again.
          await this.#writeBack(own, err, signal);
          continue;
        }
        this.#log.warn(
          { err: (err as Error).message },
          "Lost the watch on this node's lease; watching again",
        );
        if (!(await this.#clock.sleep(delays.next().value, signal))) return;
      } finally {
        watch.done();
      }
    }
  }

  /**
   * One look at this node's key, then a watch on it until the watch ends; resolves whether a
   * rewrite is pending (etcd went back in time meanwhile).
   */
  async #watchOwnKey(
    own: OwnLease,
    rewritePending: boolean,
    watchSignal: AbortSignal,
  ): Promise<boolean> {
    const { subnet, ipv6Subnet } = own.lease;
    const { lease: stored, revision } = await this.#registry.getSubnet(subnet, ipv6Subnet);
    this.#sawRevision(revision);
    if (stored === null && rewritePending) {
      own.lease = await this.#registry.createSubnet(
        subnet,
        ipv6Subnet,
        own.lease.attrs,
        SUBNET_TTL_SECONDS,
      );
      this.#log.info(
        { subnet: leaseKeyOf(own.lease) },
        "Wrote this node's lease again after etcd went back in time",
      );
      return false;
    }
    // Gone: revoked by someone, unless etcd went back in time (the watch may have failed before
    // the periodic check saw it).
    if (stored === null && (await this.#checkStore().catch(() => false))) return rewritePending;
    if (stored === null) throw revoked(own.lease);
    own.lease = stored;
    const key = this.#registry.subnetKey(subnet, ipv6Subnet);
    this.#log.debug({ key, revision: String(revision) }, "Watching this node's lease");
    const batches = this.#registry.watchSubnets(revision + 1n, {
      key,
      signal: watchSignal,
      onReconnect: this.#checkSoon,
    });
    for await (const batch of batches) {
      this.#sawRevision(batch.revision);
      if (batch.changes.some((change) => change.type === "delete")) throw revoked(own.lease);
      const { lease: updated } = await this.#registry.getSubnet(subnet, ipv6Subnet);
      if (updated === null) throw revoked(own.lease);
      own.lease = updated;
    }
    return watchSignal.aborted;
  }

  /** Checks every storeCheckMs whether etcd went back in time (wiped, or restored). */
  async #followStore(signal: AbortSignal): Promise<void> {
    let failing = false;
    while (await this.#clock.sleep(STORE_CHECK_MS, signal)) {
      try {
        await this.#checkStore();
        failing = false;
      } catch (err) {
        // etcd down or unreachable: the other loops say so; this one tries again.
        if (!failing) this.#log.debug({ err }, "Cannot read etcd's revision; trying again");
        failing = true;
      }
    }
  }

  async *watchLeases(opts: CallOptions): AsyncGenerator<LeaseWatchResult> {
    const { signal } = opts;
    const delays = backoff(100, 5_000);
    for (;;) {
      const watch = this.#untilRewind(signal);
      try {
        // The listing acquireLease() just read is as good a snapshot: the watch then starts
        // at its revision and brings every change since (this node's own write among them).
        const listing =
          this.#acquireListing ?? (await this.#registry.getSubnets({ withExpiration: false }));
        this.#acquireListing = null;
        this.#sawRevision(listing.revision);
        for (const { key, reason } of listing.skipped)
          this.#log.warn({ key, reason }, "Skipping a key that is not a lease");
        // Leases outside the network, and others no host can hold, are the lease watch's to
        // refuse (lease/peer_rules.ts), by the same rules as flannelctl doctor.
        yield { kind: "snapshot", leases: listing.leases };
        const batches = this.#registry.watchSubnets(listing.revision + 1n, {
          signal: watch.signal,
          onReconnect: this.#checkSoon,
        });
        for await (const batch of batches) {
          this.#sawRevision(batch.revision);
          const events = batch.changes.flatMap((change) => this.#eventOf(change));
          if (events.length > 0) yield { kind: "events", events };
        }
        if (signal.aborted) return;
        if (watch.signal.aborted) throw new StoreRewoundError();
      } catch (err) {
        if (signal.aborted) return;
        if (watch.signal.aborted) {
          // etcd went back in time. The kernel keeps every route meanwhile; the other hosts
          // write their leases again, and then all are read afresh (the watch starts again at
          // the new store's revision, so hosts that join later are seen too).
          this.#log.info(
            { waitMs: REWIND_GRACE_MS },
            "Reading every lease afresh once the other hosts have written theirs again",
          );
          if (!(await this.#clock.sleep(REWIND_GRACE_MS, signal))) return;
          continue;
        }
        this.#log.warn({ err }, "Lost the lease watch; reading all leases again");
        if (!(await this.#clock.sleep(delays.next().value, signal))) return;
      } finally {
        watch.done();
      }
    }
  }

  async listLeases(_opts: CallOptions): Promise<readonly IPv4Lease[]> {
    const listing = await this.#registry.getSubnets({ withExpiration: true });
    for (const { key, reason } of listing.skipped)
      this.#log.warn({ key, reason }, "Skipping a key that is not a lease");
    return listing.leases;
  }

  async close(): Promise<void> {
    this.#registry.close();
    return Promise.resolve();
  }

  #eventOf(change: SubnetChange): LeaseEvent[] {
    if (change.lease === null) {
      this.#log.warn(
        { key: change.key, reason: change.reason },
        "Skipping a key that is not a lease",
      );
      return [];
    }
    return [{ type: change.type === "delete" ? "removed" : "added", lease: change.lease }];
  }
}

function revoked(lease: Pick<IPv4Lease, "subnet" | "ipv6Subnet">): LeaseRevokedError {
  return new LeaseRevokedError(
    `Lease for ${leaseKeyOf(lease)} has been revoked: its key was deleted from etcd by someone else. Shutting down daemon`,
  );
}

/** flannel's isSubnetConfigCompat: the lease lies in the ranges and has the configured length. */
export function leaseFitsConfig(
  lease: Pick<IPv4Lease, "subnet" | "ipv6Subnet">,
  config: CheckedNetworkConfig,
): boolean {
  const inRange = (net: IPNet, range: SubnetRange) =>
    net.family === range.network.family &&
    net.prefixLen === range.subnetLen &&
    net.ip >= range.subnetMin &&
    net.ip <= range.subnetMax;
  if (config.leaseRanges.ipv4 === null || !inRange(lease.subnet, config.leaseRanges.ipv4))
    return false;
  if (config.leaseRanges.ipv6 === null) return lease.ipv6Subnet === null;
  return lease.ipv6Subnet !== null && inRange(lease.ipv6Subnet, config.leaseRanges.ipv6);
}

/**
 * Picks at random among the first free subnets of the range (up to MAX_CANDIDATES). Throws
 * NetworkFullError, with flannel's "out of subnets" words, when none is free.
 */
export function pickFreeSubnet(range: SubnetRange, taken: readonly IPNet[]): IPNet {
  const family = range.network.family;
  const size = 1n << BigInt(range.network.bits - range.subnetLen);
  // Taken ranges as [start, end), sorted by start: one pass over the candidates finds the gaps.
  const spans = taken
    .filter((net) => net.family === family)
    .map((net) => [net.ip, net.ip + net.size] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const free: IPNet[] = [];
  let first = 0;
  for (
    let ip = range.subnetMin;
    ip <= range.subnetMax && free.length < MAX_CANDIDATES;
    ip += size
  ) {
    while ((spans[first]?.[1] ?? ip + 1n) <= ip) first++;
    const end = ip + size;
    let overlaps = false;
    for (let i = first; !overlaps; i++) {
      const span = spans[i];
      if (span === undefined || span[0] >= end) break;
      overlaps = span[1] > ip;
    }
    if (!overlaps) free.push(new IPNet(family, ip, range.subnetLen));
  }
  const pick = free[free.length > 1 ? randomInt(free.length) : 0];
  if (pick === undefined) {
    const count = (range.subnetMax - range.subnetMin) / size + 1n;
    throw new NetworkFullError(
      `Cannot acquire lease: out of subnets: all ${count} subnets of /${range.subnetLen} in network ${range.network.toString()} between ${formatIP(family, range.subnetMin)} and ${formatIP(family, range.subnetMax)} are leased; delete unused leases or enlarge the network`,
    );
  }
  return pick;
}
