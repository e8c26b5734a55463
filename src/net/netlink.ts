/**
 * The kernel's network configuration as flanneld needs it: links (VXLAN), addresses, routes,
 * neighbours and FDB entries. One interface, with rtnetlink.ts (a real rtnetlink socket) and
 * fake_netlink.ts (in memory, for unit tests) beside it, and kernel_entries.ts, the vocabulary
 * of the entries flannel programs. IPv4 and IPv6 alike.
 */
import { FlannelError } from "../errors.js";

/** The metric of the blackhole route for this host's subnet (`--ip-blackhole-route`). */
export const BLACKHOLE_ROUTE_METRIC = 4_294_967_294;

/** The protocol number flannel-ts tags its routes with (rtnetlink `protocol`), to know its own. */
export const FLANNEL_ROUTE_PROTOCOL = 76;

/** The main routing table. */
export const MAIN_TABLE = 254;

/** VXLAN settings of a link. */
export interface VxlanInfo {
  readonly vni: number;
  /** Local (source) address; null when unset. */
  readonly local: string | null;
  /** Index of the parent (underlay) device; null when unset. */
  readonly parentIndex: number | null;
  /** UDP destination port; 0 means the kernel default (8472). */
  readonly port: number;
  readonly learning: boolean;
  readonly gbp: boolean;
}

/** A network link. */
export interface Link {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  /** Hardware address as `aa:bb:cc:dd:ee:ff`. */
  readonly mac: string;
  /** Administratively up. */
  readonly up: boolean;
  /** The link kind (`vxlan`, `bridge`, `veth`...); null for none. */
  readonly kind: string | null;
  readonly vxlan: VxlanInfo | null;
}

/** What a VXLAN link is made with. */
export interface VxlanLinkSpec extends VxlanInfo {
  readonly name: string;
  readonly mtu: number;
  readonly mac: string;
}

/** An IPv4 address on a link. */
export interface Address {
  readonly linkIndex: number;
  readonly ip: string;
  readonly prefixLen: number;
}

/** An IPv4 route in a table. */
export interface Route {
  /** Destination as `a.b.c.d/n`. */
  readonly dst: string;
  readonly gateway: string | null;
  readonly linkIndex: number;
  readonly onlink: boolean;
  readonly protocol: number;
  readonly table: number;
  /** Unicast routes only are flannel's business; local, broadcast and others come as false. */
  readonly unicast: boolean;
  /** A route that drops what it matches (`ip route add blackhole ...`). */
  readonly blackhole: boolean;
}

/** What a route is made with. */
export interface RouteSpec {
  readonly dst: string;
  readonly gateway: string | null;
  readonly linkIndex: number;
  readonly onlink: boolean;
}

/** A permanent IPv4 neighbour (ARP) entry. */
export interface Neighbor {
  readonly linkIndex: number;
  readonly ip: string;
  readonly mac: string;
  readonly permanent: boolean;
}

/** A permanent FDB entry on a VXLAN device: frames for `mac` go to the VTEP at `dst`. */
export interface FdbEntry {
  readonly linkIndex: number;
  readonly mac: string;
  readonly dst: string;
  readonly permanent: boolean;
}

/** One kernel entry flanneld keeps for a remote host. */
export type KernelEntry =
  | { readonly kind: "neighbor"; readonly neighbor: Omit<Neighbor, "permanent"> }
  | { readonly kind: "fdb"; readonly fdb: Omit<FdbEntry, "permanent"> }
  | { readonly kind: "route"; readonly route: RouteSpec };

/** One write of a batch: an entry created or replaced, or removed. */
export interface EntryWrite {
  readonly op: "replace" | "delete";
  readonly entry: KernelEntry;
}

/**
 * A change the kernel announced on rtnetlink's multicast groups (link, address, IPv4 route,
 * neighbour and FDB), whoever made it: flanneld repairs its entries from these.
 */
export interface NetlinkChange {
  readonly kind: "link" | "address" | "route" | "neighbor";
  /** A DEL message rather than a NEW one. */
  readonly removed: boolean;
  /** The link concerned (a route's output link); null when the message names none. */
  readonly linkIndex: number | null;
  /** A route's protocol; null for other kinds. */
  readonly protocol: number | null;
  /**
   * The route, neighbour or FDB entry announced, in the form flanneld writes it (a unicast route
   * of the main table, an IPv4 neighbour, an FDB entry with an IPv4 destination); null for
   * links, addresses and anything else.
   */
  readonly entry: KernelEntry | null;
  /** A neighbour or FDB entry the kernel learned (not permanent): never one flanneld wrote. */
  readonly learned: boolean;
}

/** rtnetlink, as far as flanneld uses it. Every call acts on the caller's network namespace. */
export interface Netlink {
  listLinks(): Promise<Link[]>;
  /** The link with that name; null when there is none. */
  getLink(name: string): Promise<Link | null>;
  addVxlanLink(spec: VxlanLinkSpec): Promise<Link>;
  /**
   * Creates a kernel WireGuard link; rejects with NetlinkError code EOPNOTSUPP when the kernel
   * has no WireGuard (then wireguard-go makes the device over a TUN).
   */
  addWireguardLink(name: string, mtu: number): Promise<Link>;
  deleteLink(index: number): Promise<void>;
  setLinkMtu(index: number, mtu: number): Promise<void>;
  setLinkUp(index: number): Promise<void>;
  /** Sets a link's hardware address (`ip link set <dev> address <mac>`). */
  setLinkMac(index: number, mac: string): Promise<void>;

  listAddresses(linkIndex: number): Promise<Address[]>;
  addAddress(address: Address): Promise<void>;
  deleteAddress(address: Address): Promise<void>;

  /** IPv4 routes of one table (main by default). */
  listRoutes(table?: number): Promise<Route[]>;
  /** Creates or replaces the route to `dst` in the main table, tagged FLANNEL_ROUTE_PROTOCOL. */
  replaceRoute(route: RouteSpec): Promise<void>;
  deleteRoute(route: RouteSpec): Promise<void>;
  /**
   * Creates or replaces a blackhole route to `dst` in the main table, tagged
   * FLANNEL_ROUTE_PROTOCOL, at metric BLACKHOLE_ROUTE_METRIC so that a connected route to the
   * same subnet (the CNI bridge's) stays in front of it.
   */
  replaceBlackholeRoute(dst: string): Promise<void>;

  listNeighbors(linkIndex: number): Promise<Neighbor[]>;
  replaceNeighbor(neighbor: Omit<Neighbor, "permanent">): Promise<void>;
  deleteNeighbor(neighbor: Omit<Neighbor, "permanent" | "mac">): Promise<void>;

  /**
   * The kernel's change announcements until the signal aborts. When the kernel drops some
   * (the socket overran), a change of kind "link" with linkIndex null is yielded: anything may
   * have changed.
   */
  watchChanges(opts: { readonly signal: AbortSignal }): AsyncIterable<NetlinkChange>;

  listFdb(linkIndex: number): Promise<FdbEntry[]>;
  replaceFdb(entry: Omit<FdbEntry, "permanent">): Promise<void>;
  deleteFdb(entry: Omit<FdbEntry, "permanent">): Promise<void>;

  /**
   * Applies the writes in order, many to a system call, as replaceRoute(), deleteNeighbor() and
   * the others would one by one. Resolves with one result per write, in the same order: null
   * when the kernel applied it, or the NetlinkError it answered (the other writes are applied
   * all the same). Rejects only when the batch as a whole failed (the socket failed), and then
   * which writes were applied is not known: list the kernel again.
   */
  writeEntries(writes: readonly EntryWrite[]): Promise<(NetlinkError | null)[]>;

  close(): void;
}

/** A netlink call the kernel refused; `errno` is the kernel's (e.g. ENETUNREACH). */
export class NetlinkError extends FlannelError {
  constructor(
    message: string,
    readonly errno: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
