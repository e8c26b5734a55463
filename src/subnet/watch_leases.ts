/**
 * Turns a subnet manager's watch into the lease changes a backend acts on (flannel's
 * subnet.WatchLeases and lease.LeaseWatcher): this node's own lease is never reported, a fresh
 * snapshot is diffed against what was known so that only differences come out, and a removal
 * carries the lease as it was last seen, so the backend still knows its MAC and public IP.
 *
 * Unlike flannel, a remote lease that cannot be a real host's is kept out, with one warning
 * naming its key: one that breaks the rules of lease/peer_rules.ts (another prefix length than
 * SubnetLen, outside the network, a public address no other host can have), or one that
 * overlaps this host's subnet or a lease already accepted. Without this, one lease
 * written by anyone with write access (`<h1's subnet>.0-25`, another MAC) takes h1's gateway
 * address on every peer and cuts h1 off. When the lease that was in the way goes, a lease kept
 * out is looked at again.
 */
import { encodeLeaseAttrs, leaseKeyOf, primarySubnetOf } from "../lease/lease.js";
import { refusePeerLease } from "../lease/peer_rules.js";
import type { LeaseRefusal, PeerLeaseRules } from "../lease/peer_rules.js";
import type { IPNet } from "../ip/ip.js";
import type { Lease, LeaseEvent } from "../lease/lease.js";
import type { CallOptions } from "../util/call_options.js";
import type { Logger } from "../log/logger.js";
import type { LeaseWatchResult, SubnetManager } from "./manager.js";

/** The onSkip that logs each lease kept out as one warning naming its key, field and reason. */
export function warnSkippedLeases(log: Logger): NonNullable<LeaseWatcherOptions["onSkip"]> {
  return (lease, reason, refusal) => {
    log.warn(
      { subnet: leaseKeyOf(lease), publicIP: lease.attrs.publicIP, field: refusal.field, reason },
      "Ignoring a lease that cannot be a host's",
    );
  };
}

/** What a LeaseWatcher checks and whom it tells about leases it keeps out. */
export interface LeaseWatcherOptions {
  /** The rules every remote lease must meet (peerLeaseRulesOf); absent: overlaps only. */
  readonly rules?: PeerLeaseRules;
  /** Told once per key and reason when a lease is kept out. */
  readonly onSkip?: (lease: Lease, reason: string, refusal: LeaseRefusal) => void;
}

const NO_RULES: PeerLeaseRules = {
  subnetLen: null,
  network: null,
  ipv6Network: null,
  ownAddresses: [],
  localNetworks: [],
};

/**
 * Accepted leases ordered by subnet start, for overlap checks in O(log n): accepted subnets never
 * overlap each other, so a new one can only overlap its neighbours in that order.
 */
class DisjointSubnets {
  readonly #items: { readonly start: bigint; readonly end: bigint; readonly key: string }[] = [];
  /** Each key's start, so that removing one is a search too (thousands are added at start). */
  readonly #startOf = new Map<string, bigint>();

  /** The index of the first item that starts after `start`. */
  #upperBound(start: bigint): number {
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#items[mid]?.start ?? 0n) <= start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The key of an accepted lease other than `key` that `subnet` overlaps; null for none. */
  overlapping(subnet: IPNet, key: string): string | null {
    const start = subnet.ip;
    const end = subnet.ip + subnet.size - 1n;
    const at = this.#upperBound(start);
    for (const item of [this.#items[at - 2], this.#items[at - 1], this.#items[at]]) {
      if (item === undefined || item.key === key) continue;
      if (item.start <= end && start <= item.end) return item.key;
    }
    return null;
  }

  add(subnet: IPNet, key: string): void {
    this.remove(key);
    const start = subnet.ip;
    this.#items.splice(this.#upperBound(start), 0, {
      start,
      end: subnet.ip + subnet.size - 1n,
      key,
    });
    this.#startOf.set(key, start);
  }

  remove(key: string): void {
    const start = this.#startOf.get(key);
    if (start === undefined) return;
    this.#startOf.delete(key);
    // Items with this start sit just before its upper bound.
    for (let at = this.#upperBound(start) - 1; at >= 0; at--) {
      const item = this.#items[at];
      if (item === undefined || item.start !== start) return;
      if (item.key === key) {
        this.#items.splice(at, 1);
        return;
      }
    }
  }
}

/** Keeps the set of other nodes' leases and turns watch results into changes. */
export class LeaseWatcher {
  readonly #own: Pick<Lease, "subnet" | "ipv6Subnet"> | null;
  readonly #ownKey: string | null;
  readonly #rules: PeerLeaseRules;
  readonly #onSkip: NonNullable<LeaseWatcherOptions["onSkip"]>;
  readonly #leases = new Map<string, Lease>();
  #index = new DisjointSubnets();
  /** Leases kept out, by key, with the reason last reported. */
  readonly #skipped = new Map<string, { lease: Lease; refusal: LeaseRefusal }>();

  constructor(
    ownLease: Pick<Lease, "subnet" | "ipv6Subnet"> | null,
    options: LeaseWatcherOptions = {},
  ) {
    this.#own = ownLease;
    this.#ownKey = ownLease === null ? null : leaseKeyOf(ownLease);
    this.#rules = options.rules ?? NO_RULES;
    this.#onSkip = options.onSkip ?? (() => undefined);
  }

  /** The leases known now, keyed by subnet key. */
  get leases(): ReadonlyMap<string, Lease> {
    return this.#leases;
  }

  /** The leases kept out now, by key, with the refusal. */
  get refused(): ReadonlyMap<string, { readonly lease: Lease; readonly refusal: LeaseRefusal }> {
    return this.#skipped;
  }

  /** Applies one watch result and returns the changes it makes. */
  apply(result: LeaseWatchResult): LeaseEvent[] {
    return result.kind === "snapshot" ? this.reset(result.leases) : this.update(result.events);
  }

  /** Why `lease` cannot be accepted next to those in `index`; null when it can. */
  #refusal(
    lease: Lease,
    key: string,
    accepted: ReadonlyMap<string, Lease>,
    index: DisjointSubnets,
  ): LeaseRefusal | null {
    const refusal = refusePeerLease(lease, this.#rules);
    if (refusal !== null) return refusal;
    const subnet = primarySubnetOf(lease);
    const overlap = (message: string): LeaseRefusal => ({
      rule: "overlap",
      field: "subnet",
      message,
    });
    const own = this.#own === null ? undefined : primarySubnetOf(this.#own);
    if (own !== undefined && own.family === subnet.family && own.overlaps(subnet)) {
      return overlap(`it overlaps this host's subnet ${own.toString()}`);
    }
    const other = index.overlapping(subnet, key);
    if (other !== null) {
      const known = accepted.get(other);
      return overlap(`it overlaps the lease ${other} (public IP ${known?.attrs.publicIP ?? "?"})`);
    }
    return null;
  }

  #skip(key: string, lease: Lease, refusal: LeaseRefusal): void {
    const before = this.#skipped.get(key);
    this.#skipped.set(key, { lease, refusal });
    if (before?.refusal.message !== refusal.message) this.#onSkip(lease, refusal.message, refusal);
  }

  /** Replaces the known set with a snapshot: Added for new or changed leases, Removed for gone ones. */
  reset(snapshot: readonly Lease[]): LeaseEvent[] {
    const others = snapshot.filter((l) => leaseKeyOf(l) !== this.#ownKey);
    // Leases accepted before keep their place; the rest are looked at in the store's order.
    const ordered = [
      ...others.filter((l) => this.#leases.has(leaseKeyOf(l))),
      ...others.filter((l) => !this.#leases.has(leaseKeyOf(l))),
    ];
    const accepted = new Map<string, Lease>();
    const index = new DisjointSubnets();
    const seenSkipped = new Set<string>();
    for (const lease of ordered) {
      const key = leaseKeyOf(lease);
      const refusal = this.#refusal(lease, key, accepted, index);
      if (refusal === null) {
        accepted.set(key, lease);
        index.add(primarySubnetOf(lease), key);
      } else {
        this.#skip(key, lease, refusal);
        seenSkipped.add(key);
      }
    }
    for (const key of [...this.#skipped.keys()])
      if (!seenSkipped.has(key)) this.#skipped.delete(key);
    const events: LeaseEvent[] = [];
    for (const [key, lease] of accepted) {
      const known = this.#leases.get(key);
      if (known === undefined || !sameLease(known, lease)) events.push({ type: "added", lease });
    }
    for (const [key, lease] of this.#leases)
      if (!accepted.has(key)) events.push({ type: "removed", lease });
    this.#leases.clear();
    for (const [key, lease] of accepted) this.#leases.set(key, lease);
    this.#index = index;
    return events;
  }

  /** Applies changes: Added replaces or adds, Removed is answered with the lease as last known. */
  update(changes: readonly LeaseEvent[]): LeaseEvent[] {
    const events: LeaseEvent[] = [];
    for (const change of changes) {
      const key = leaseKeyOf(change.lease);
      if (key === this.#ownKey) continue;
      if (change.type === "added") {
        const refusal = this.#refusal(change.lease, key, this.#leases, this.#index);
        if (refusal === null) {
          this.#skipped.delete(key);
          this.#leases.set(key, change.lease);
          this.#index.add(primarySubnetOf(change.lease), key);
          events.push(change);
        } else {
          this.#skip(key, change.lease, refusal);
        }
        continue;
      }
      this.#skipped.delete(key);
      const known = this.#leases.get(key);
      if (known === undefined) continue; // never reported as added: nothing to take back
      this.#leases.delete(key);
      this.#index.remove(key);
      events.push({ type: "removed", lease: known });
      // A lease kept out because this one was in the way may fit now.
      for (const [other, { lease }] of [...this.#skipped]) {
        if (this.#refusal(lease, other, this.#leases, this.#index) !== null) continue;
        this.#skipped.delete(other);
        this.#leases.set(other, lease);
        this.#index.add(primarySubnetOf(lease), other);
        events.push({ type: "added", lease });
      }
    }
    return events;
  }
}

function sameLease(a: Lease, b: Lease): boolean {
  return encodeLeaseAttrs(a.attrs) === encodeLeaseAttrs(b.attrs);
}

/**
 * Yields batches of changes to the other nodes' leases until the signal aborts. The first batch
 * holds every lease present at the start (possibly none).
 */
export async function* watchLeases(
  manager: Pick<SubnetManager, "watchLeases">,
  ownLease: Pick<Lease, "subnet" | "ipv6Subnet"> | null,
  opts: CallOptions & LeaseWatcherOptions,
): AsyncGenerator<readonly LeaseEvent[]> {
  const watcher = new LeaseWatcher(ownLease, opts);
  let first = true;
  for await (const result of manager.watchLeases(opts)) {
    const events = watcher.apply(result);
    if (events.length > 0 || first) yield events;
    first = false;
  }
}
