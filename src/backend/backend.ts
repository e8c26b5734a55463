/**
 * The backend seam (flannel's pkg/backend/common.go): a backend turns the network config and the
 * external interface into a Network, which holds this node's lease and, while it runs, programs
 * the data plane from the other nodes' leases. Implementations sit in folders beside this file;
 * only registry.ts names them.
 */
import type { NetworkConfig } from "../config/network_config.js";
import type { ExternalInterface } from "../iface/external_interface.js";
import type { Lease } from "../lease/lease.js";
import type { Logger } from "../log/logger.js";
import type { KernelEntry, Netlink } from "../net/netlink.js";
import type { SubnetManager } from "../subnet/manager.js";
import type { CallOptions } from "../util/call_options.js";
import type { Clock } from "../util/clock.js";

export type { ExternalInterface } from "../iface/external_interface.js";

/** What every backend is given. */
export interface BackendDeps {
  readonly subnetManager: SubnetManager;
  readonly extIface: ExternalInterface;
  readonly log: Logger;
  /** The kernel; used by the backends that program a data plane. */
  readonly netlink: Netlink;
  /** What periodic checks and retries wait on. Default: the system's. */
  readonly clock?: Clock;
  /** Where a backend keeps what it must remember across restarts (subnet.env's folder). */
  readonly stateDir?: string;
}

/** A kind of data plane: vxlan, host-gw, udp, alloc. */
export interface Backend {
  /** Prepares the data plane for this node and acquires its lease. */
  registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network>;
}

/** This node's place in the flannel network, as one backend runs it. */
export interface Network {
  /** This node's lease. */
  readonly lease: Lease;
  /** The MTU pods must use (FLANNEL_MTU). */
  readonly mtu: number;
  /** Follows the other nodes' leases and programs the data plane until the signal aborts. */
  run(opts: CallOptions): Promise<void>;
  /** Data-plane figures, for metrics; absent for backends that program nothing. */
  readonly stats?: DataPlaneStats;
  /** Packets moved in userspace, for metrics; only the udp backend has these. */
  readonly forwarding?: ForwardingStats;
  /** Each tunnel peer as last read from its device, for metrics; only wireguard has these. */
  readonly tunnelPeers?: readonly TunnelPeerStats[];
}

/** One peer of an encrypting backend's device (wireguard), as last read. */
export interface TunnelPeerStats {
  readonly device: string;
  readonly publicKey: string;
  readonly endpoint: string | null;
  /** When its latest handshake completed (ms since the epoch); null: never. */
  readonly lastHandshakeMs: number | null;
  readonly rxBytes: number;
  readonly txBytes: number;
}

/** What a userspace packet loop (the udp backend's) has done since start. */
export interface ForwardingStats {
  /** Packets and bytes read from the TUN and sent to a host. */
  readonly txPackets: number;
  readonly txBytes: number;
  /** Packets and bytes received from a host and written into the TUN. */
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** ICMP net-unreachable messages written back for packets to subnets without a lease. */
  readonly icmpUnreachable: number;
  /** System calls: reads from the TUN, sendmmsg calls, recvmmsg calls with data, TUN writes. */
  readonly tunReads: number;
  readonly sendCalls: number;
  readonly recvCalls: number;
  readonly tunWrites: number;
  /** Workers that stopped on an error (each restarted). */
  readonly workerExits: number;
  /** Packets dropped, by reason. */
  readonly drops: Readonly<Record<string, number>>;
}

/** What a data plane has done since start. */
export interface DataPlaneStats {
  readonly remoteLeases: number;
  readonly syncs: number;
  readonly written: number;
  readonly removed: number;
  readonly failed: number;
  /** Whole syncs that failed (a listing or the device could not be read), retried at the next tick. */
  readonly syncFailures: number;
  /** Syncs started by a change the kernel announced. */
  readonly eventSyncs: number;
  /** Of those, the ones that had to list the kernel (the announcement did not name the entry). */
  readonly relistRepairs: number;
  /** Announcements of flanneld's own writes, recognised as such (no repair). */
  readonly echoes: number;
  /** Entries the periodic full check had to repair: what the event path missed (should be 0). */
  readonly checkFindings: number;
}

/**
 * One backend as the registry lists it (src/backend/registry.ts): each backend folder's index.ts
 * exports one. Its options are decoded once, at the edge, and the factory and the inspector get
 * the typed values, never the raw JSON.
 */
export interface BackendDescriptor {
  /** The config's Backend.Type ("vxlan"); matched in any case, as flannel does. */
  readonly type: string;
  /**
   * Decodes the Backend object's options (keys in any case, as in Go); throws ConfigError naming
   * the option and what it expects.
   */
  configure(backend: Readonly<Record<string, unknown>>): ConfiguredBackend;
  /**
   * For the lab: `lab up --dual-stack` and `--ipv6-only` need its IPv6 side; the dashboard
   * labels links by whether pod traffic between hosts is encrypted.
   */
  readonly lab: { readonly dualStack: boolean; readonly encrypts: boolean };
}

/** A backend with its options decoded: what flanneld makes and what doctor inspects. */
export interface ConfiguredBackend {
  create(deps: BackendDeps): Backend;
  readonly inspect: PlaneInspector;
  /** The shell commands the config makes every host run as root (extension), by option name. */
  readonly commands?: Readonly<Record<string, string>>;
}

/** A device a backend keeps, as it must be (flannelctl doctor compares the kernel's with it). */
export interface ExpectedDevice {
  readonly name: string;
  readonly kind: "vxlan" | "tun" | "wireguard";
  readonly mtu: number;
  /** The MAC this host's lease announces to its peers; null where the lease announces none. */
  readonly mac: string | null;
  /** A VXLAN device's identity; null for others. Port 0 is the kernel's default, 8472. */
  readonly vxlan: { readonly vni: number; readonly port: number; readonly local: string } | null;
  /** The one address it holds in the network, `<subnet IP>/32` (`/128`); null for none. */
  readonly address: string | null;
}

/** A remote lease (or its IPv6 part) whose entries could not be made. */
export interface LeaseSkip {
  readonly subnet: string;
  readonly lease: Lease;
  readonly v6: boolean;
  readonly message: string;
}

/** A backend's data plane on this host, seen and never changed: flannelctl doctor's view. */
export interface PlaneInspection {
  /** The devices it keeps. */
  readonly devices: readonly ExpectedDevice[];
  /** The MTU pods must use (FLANNEL_MTU). */
  readonly podMtu: number;
  /** Whether it follows a remote lease (flannel skips leases of another BackendType). */
  serves(lease: Lease): boolean;
  /**
   * The kernel entries these remote leases need, with the devices as found (none is made), and
   * the entries of ours the kernel holds. Both keyed by entryKey.
   */
  entries(remotes: ReadonlyMap<string, Lease>): Promise<{
    readonly wanted: ReadonlyMap<string, KernelEntry>;
    readonly owned: ReadonlyMap<string, KernelEntry>;
    readonly skipped: readonly LeaseSkip[];
  }>;
  /** An encrypting backend's devices against these remote leases (wireguard only). */
  tunnels?(remotes: ReadonlyMap<string, Lease>): Promise<readonly TunnelInspection[]>;
  /** What the operator's commands last did, per remote lease (extension only). */
  hooks?(): Promise<HookInspection>;
}

/** One command's last run for one lease. */
export interface HookRunInspection {
  readonly hook: string;
  readonly ok: boolean;
  /** How it ended: "exit 0", "killed after the 60 s timeout". */
  readonly end: string;
  /** When it ended (ms since the epoch), and how long it took. */
  readonly at: number;
  readonly ms: number;
  /** The end of its output. */
  readonly output: string;
}

/** The extension backend's commands as doctor sees them, from the state flanneld keeps. */
export interface HookInspection {
  /** The file flanneld keeps them in. */
  readonly stateFile: string;
  /** Whether a SubnetAddCommand / SubnetRemoveCommand is configured. */
  readonly addCommand: boolean;
  readonly removeCommand: boolean;
  /** By lease key (`10.244.2.0-24`): whether an add command succeeded, and the last runs. */
  readonly leases: ReadonlyMap<
    string,
    { readonly added: boolean; readonly last: readonly HookRunInspection[] }
  >;
}

/** A peer a tunnel device should have, from a lease. */
export interface TunnelPeerWanted {
  readonly publicKey: string;
  readonly endpoint: string;
  readonly allowedIPs: readonly string[];
  /** The lease it comes from, for naming it (`10.244.2.0/24`). */
  readonly lease: string;
}

/** A peer as the device holds it. */
export interface TunnelPeerSeen extends TunnelPeerStats {
  readonly allowedIPs: readonly string[];
}

/** An encrypting backend's device (wireguard) as doctor compares it with the leases. */
export interface TunnelInspection {
  readonly device: string;
  /** Why the device could not be read; null when it was. */
  readonly unreadable: string | null;
  readonly listenPort: { readonly want: number; readonly got: number | null };
  /** The key file's public key (what the lease announces) and the device's. */
  readonly publicKey: { readonly want: string | null; readonly got: string | null };
  readonly keyFile: {
    readonly path: string;
    /** Its mode bits; null when it cannot be read. */
    readonly mode: number | null;
    readonly problem: string | null;
  };
  readonly wanted: readonly TunnelPeerWanted[];
  readonly actual: readonly TunnelPeerSeen[];
}

/** Makes a backend's inspection for this host's lease, under this network config. */
export type PlaneInspector = (
  config: NetworkConfig,
  extIface: ExternalInterface,
  netlink: Netlink,
  lease: Lease,
  /** Where flanneld keeps its state (subnet.env's folder). */
  stateDir: string,
) => PlaneInspection;
