/**
 * The vocabulary of the kernel entries flannel programs (routes, neighbours, FDB entries): an
 * entry's identity, what it is about, whether two say the same, how to describe one, and what
 * differs between what the kernel holds and what is wanted. RouteNetwork programs with it, and
 * flannelctl doctor and trace judge with it, so the three never disagree.
 */
import type { Lease } from "../lease/lease.js";
import type { KernelEntry } from "./netlink.js";

const CREATE_ORDER: Record<KernelEntry["kind"], number> = { neighbor: 0, fdb: 1, route: 2 };

/** The identity of an entry: two entries with one key cannot both be in the kernel. */
export function entryKey(entry: KernelEntry): string {
  switch (entry.kind) {
    case "neighbor":
      return `neigh ${entry.neighbor.linkIndex} ${entry.neighbor.ip}`;
    case "fdb":
      return `fdb ${entry.fdb.linkIndex} ${entry.fdb.mac} ${entry.fdb.dst}`;
    case "route":
      return `route ${entry.route.dst}`;
  }
}

/**
 * What an entry is about: a route's destination (`10.244.2.0/24`), a neighbour's IP, an FDB
 * entry's underlay destination.
 */
export function entryTarget(entry: KernelEntry): string {
  switch (entry.kind) {
    case "route":
      return entry.route.dst;
    case "neighbor":
      return entry.neighbor.ip;
    case "fdb":
      return entry.fdb.dst;
  }
}

/** The remote lease an entry serves: its subnet, its subnet's first address or its public one. */
export function leaseOfEntry(entry: KernelEntry, leases: Iterable<Lease>): Lease | undefined {
  const target = entryTarget(entry);
  for (const l of leases) {
    const names = [
      l.subnet?.toString(),
      l.ipv6Subnet?.toString(),
      l.subnet?.ipString,
      l.ipv6Subnet?.ipString,
      l.attrs.publicIP,
      l.attrs.publicIPv6,
    ];
    if (names.includes(target)) return l;
  }
  return undefined;
}

/** Whether two entries with one key say the same (a route's gateway, device and flags...). */
export function sameEntry(a: KernelEntry, b: KernelEntry): boolean {
  if (a.kind === "neighbor" && b.kind === "neighbor") return a.neighbor.mac === b.neighbor.mac;
  if (a.kind === "fdb" && b.kind === "fdb") return true; // the key holds all of it
  if (a.kind === "route" && b.kind === "route") {
    return (
      a.route.gateway === b.route.gateway &&
      a.route.linkIndex === b.route.linkIndex &&
      a.route.onlink === b.route.onlink
    );
  }
  return false;
}

/** One line describing an entry, for logs: `route 10.244.2.0/24 via 10.244.2.0 dev 5 onlink`. */
export function describeEntry(entry: KernelEntry): string {
  switch (entry.kind) {
    case "neighbor":
      return `neighbour ${entry.neighbor.ip} lladdr ${entry.neighbor.mac}`;
    case "fdb":
      return `FDB ${entry.fdb.mac} dst ${entry.fdb.dst}`;
    case "route":
      return `route ${entry.route.dst} via ${entry.route.gateway ?? "-"} dev ${entry.route.linkIndex}${entry.route.onlink ? " onlink" : ""}`;
  }
}

/**
 * What differs between the entries of ours the kernel holds and the wanted ones: `stale` (held,
 * not wanted; routes first, the order they must go) and `missing` (wanted, absent or different;
 * routes last, the order they must be written).
 */
export function diffEntries(
  kernel: ReadonlyMap<string, KernelEntry>,
  wanted: ReadonlyMap<string, KernelEntry>,
): { stale: [string, KernelEntry][]; missing: [string, KernelEntry][] } {
  const stale = [...kernel].filter(([key]) => !wanted.has(key));
  stale.sort(([, a], [, b]) => CREATE_ORDER[b.kind] - CREATE_ORDER[a.kind]);
  const missing = [...wanted].filter(([key, entry]) => {
    const present = kernel.get(key);
    return present === undefined || !sameEntry(present, entry);
  });
  missing.sort(([, a], [, b]) => CREATE_ORDER[a.kind] - CREATE_ORDER[b.kind]);
  return { stale, missing };
}
