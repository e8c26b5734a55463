/**
 * Turns a subnet manager's watch into the lease changes a backend acts on (flannel's
 * subnet.WatchLeases and lease.LeaseWatcher): this node's own lease is never reported, a fresh
 * snapshot is diffed against what was known so that only differences come out, and a removal
 * carries the lease as it was last seen, so the backend still knows its MAC and public IP.
 */
import { encodeLeaseAttrs, leaseKeyOf } from "../lease/lease.js";
import type { Lease, LeaseEvent } from "../lease/lease.js";
import type { CallOptions } from "../util/call_options.js";
import type { LeaseWatchResult, SubnetManager } from "./manager.js";

/** Keeps the set of other nodes' leases and turns watch results into changes. */
export class LeaseWatcher {
  readonly #ownKey: string | null;
  readonly #leases = new Map<string, Lease>();

  constructor(ownLease: Pick<Lease, "subnet" | "ipv6Subnet"> | null) {
    this.#ownKey = ownLease === null ? null : leaseKeyOf(ownLease);
  }

  /** The leases known now, keyed by subnet key. */
  get leases(): ReadonlyMap<string, Lease> {
    return this.#leases;
  }

  /** Applies one watch result and returns the changes it makes. */
  apply(result: LeaseWatchResult): LeaseEvent[] {
    return result.kind === "snapshot" ? this.reset(result.leases) : this.update(result.events);
  }

  /** Replaces the known set with a snapshot: Added for new or changed leases, Removed for gone ones. */
  reset(snapshot: readonly Lease[]): LeaseEvent[] {
    const events: LeaseEvent[] = [];
    const seen = new Set<string>();
    for (const lease of snapshot) {
      const key = leaseKeyOf(lease);
      if (key === this.#ownKey) continue;
      seen.add(key);
      const known = this.#leases.get(key);
      if (known === undefined || !sameLease(known, lease)) events.push({ type: "added", lease });
      this.#leases.set(key, lease);
    }
    for (const [key, lease] of this.#leases) {
      if (!seen.has(key)) {
        this.#leases.delete(key);
        events.push({ type: "removed", lease });
      }
    }
    return events;
  }

  /** Applies changes: Added replaces or adds, Removed is answered with the lease as last known. */
  update(changes: readonly LeaseEvent[]): LeaseEvent[] {
    const events: LeaseEvent[] = [];
    for (const change of changes) {
      const key = leaseKeyOf(change.lease);
      if (key === this.#ownKey) continue;
      if (change.type === "added") {
        this.#leases.set(key, change.lease);
        events.push(change);
      } else {
        const known = this.#leases.get(key);
        if (known === undefined) continue; // never reported as added: nothing to take back
        this.#leases.delete(key);
        events.push({ type: "removed", lease: known });
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
  opts: CallOptions,
): AsyncGenerator<readonly LeaseEvent[]> {
  const watcher = new LeaseWatcher(ownLease);
  let first = true;
  for await (const result of manager.watchLeases(opts)) {
    const events = watcher.apply(result);
    if (events.length > 0 || first) yield events;
    first = false;
  }
}
