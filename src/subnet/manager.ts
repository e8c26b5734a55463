/**
 * The subnet manager (flannel's subnet.Manager): where leases live. Two implementations sit
 * beside this file, etcd/ and kube/; code outside this folder imports this file (and the lease
 * watch, watch_leases.ts).
 */
import type { NetworkConfig } from "../config/network_config.js";
import type { Lease, LeaseAttrs, LeaseEvent } from "../lease/lease.js";
import type { CallOptions } from "../util/call_options.js";

export type { CallOptions } from "../util/call_options.js";
export type { Lease, LeaseAttrs, LeaseEvent } from "../lease/lease.js";

/**
 * One step of a lease watch: either a whole snapshot of the current leases (at the start, and
 * after the watch lost its place, e.g. to a compaction) or the changes since the previous step.
 */
export type LeaseWatchResult =
  | { readonly kind: "snapshot"; readonly leases: readonly Lease[] }
  | { readonly kind: "events"; readonly events: readonly LeaseEvent[] };

/** Where leases are stored and how this node gets, keeps and follows them. */
/** Something that happened to the store or this node's lease. */
export type StoreEvent =
  | { readonly kind: "renewed"; readonly expiration: Date | null }
  | { readonly kind: "disconnected"; readonly reason: string }
  | { readonly kind: "connected"; readonly downMs: number };

/** How a list-and-watch of the datastore went: listings, watches opened, 410s, failures. */
export interface NodeWatchFigures {
  lists: number;
  watches: number;
  expired: number;
  failures: number;
}

export interface SubnetManager {
  /** A short name for logs: "etcd" or "kube". */
  readonly name: string;
  /** Lease acquisition figures, for metrics; absent where they do not apply. */
  readonly stats?: { readonly conflicts: number };
  /** The Node watch's figures (Kubernetes mode), for metrics; absent where they do not apply. */
  readonly watchStats?: Readonly<NodeWatchFigures>;
  /** Reads the network config; etcd mode also checks it (flannel's CheckNetworkConfig). */
  getNetworkConfig(opts: CallOptions): Promise<NetworkConfig>;
  /** Leases a subnet for this node, keeping the one it had when possible. */
  acquireLease(attrs: LeaseAttrs, opts: CallOptions): Promise<Lease>;
  /** Extends a lease's life; a reservation stays a reservation. */
  renewLease(lease: Lease, opts: CallOptions): Promise<Lease>;
  /**
   * Keeps this node's lease alive until `opts.signal` aborts: renews it before it expires and
   * follows it. Rejects with LeaseRevokedError when someone else deletes it.
   */
  completeLease(lease: Lease, opts: CallOptions): Promise<void>;
  /** Yields the leases of every node: a snapshot first, then changes, until the signal aborts. */
  watchLeases(opts: CallOptions): AsyncIterable<LeaseWatchResult>;
  /** Every lease now stored, with expirations; for flannelctl. */
  listLeases(opts: CallOptions): Promise<readonly Lease[]>;
  /**
   * The VTEP MACs this node announced before (Kubernetes mode: its backend-data annotations,
   * flannel's GetStoredMacAddresses), so that a new device keeps them. Absent where the MAC
   * is not stored apart from the lease.
   */
  getStoredMacAddresses?(opts: CallOptions): Promise<{ v4: string | null; v6: string | null }>;
  /**
   * The public addresses this node's store imposes over --public-ip[v6] (Kubernetes mode: the
   * `node-public-ip[v6]` annotations); absent where there is no such setting.
   */
  getNodePublicIPs?(opts: CallOptions): Promise<{ v4: string | null; v6: string | null }>;
  /**
   * Tells `listener` what happens behind the manager (etcd mode: this node's lease renewed, the
   * store lost and back), for the service manager's status line. Absent where nothing is told.
   */
  onStoreEvent?(listener: (event: StoreEvent) => void): void;
  /** Releases connections. */
  close(): Promise<void>;
}
