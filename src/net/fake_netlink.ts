/**
 * An in-memory Netlink for unit tests: links, addresses, routes, neighbours and FDB entries, with
 * the calls that changed them recorded in `calls`. It checks what the kernel checks where flannel
 * relies on it: a gateway must be on-link (reachable through a connected route) unless the route
 * says `onlink`.
 */
import { IPNet, parseIPv4 } from "../ip/ip.js";
import { AsyncQueue } from "../util/async_queue.js";
import { FLANNEL_ROUTE_PROTOCOL, MAIN_TABLE, NetlinkError } from "./netlink.js";
import type {
  Address,
  EntryWrite,
  FdbEntry,
  KernelEntry,
  Link,
  Neighbor,
  Netlink,
  NetlinkChange,
  Route,
  RouteSpec,
  VxlanLinkSpec,
} from "./netlink.js";

/** A Netlink that keeps its state in memory. */
export class FakeNetlink implements Netlink {
  readonly links = new Map<number, Link>();
  readonly addresses: Address[] = [];
  routes: Route[] = [];
  neighbors: Neighbor[] = [];
  fdb: FdbEntry[] = [];
  readonly calls: string[] = [];
  /** How many writeEntries() batches were applied. */
  batches = 0;
  /** How many listings of routes, neighbours or FDB entries were asked for. */
  listings = 0;
  /** Whether this fake kernel has WireGuard (addWireguardLink), as a real one may not. */
  wireguard = true;
  readonly #watchers = new Set<AsyncQueue<NetlinkChange>>();
  /**
   * Errors the next listings throw, one per call, first in first out (a test's stand-in for
   * EBUSY or ENOBUFS from the kernel).
   */
  readonly listFailures: NetlinkError[] = [];
  /** An error every listing throws while set (a kernel that keeps refusing). */
  failListingsWith: NetlinkError | null = null;
  #nextIndex = 1;

  /** Announces a change of its own, as the kernel announces every change. */
  #say(
    kind: NetlinkChange["kind"],
    removed: boolean,
    linkIndex: number | null,
    protocol: number | null,
    entry: KernelEntry | null = null,
  ): void {
    this.announce({ kind, removed, linkIndex, protocol, entry, learned: false });
  }

  /** Announces a change to every watcher, as the kernel does for a change made by hand. */
  announce(change: NetlinkChange): void {
    for (const queue of this.#watchers) queue.push(change);
  }

  /** How many watchChanges() iterations are open. */
  get watchers(): number {
    return this.#watchers.size;
  }

  async *watchChanges({ signal }: { readonly signal: AbortSignal }): AsyncGenerator<NetlinkChange> {
    const queue = new AsyncQueue<NetlinkChange>(signal);
    this.#watchers.add(queue);
    try {
      yield* queue;
    } finally {
      queue.close();
      this.#watchers.delete(queue);
    }
  }

  #failListing(): Promise<never> | null {
    this.listings++;
    const err = this.failListingsWith ?? this.listFailures.shift();
    return err === undefined ? null : Promise.reject(err);
  }

  /** Adds an ordinary link (an underlay interface) with an address; returns its index. */
  addEthernet(name: string, ip: string, prefixLen: number, mtu = 1500): number {
    const index = this.#nextIndex++;
    this.links.set(index, {
      index,
      name,
      mtu,
      mac: "02:00:00:00:00:01",
      up: true,
      kind: "veth",
      vxlan: null,
    });
    this.addresses.push({ linkIndex: index, ip, prefixLen });
    const net = new IPNet(4, parseIPv4(ip) ?? 0n, prefixLen);
    this.routes.push({
      dst: net.toString(),
      gateway: null,
      linkIndex: index,
      onlink: false,
      protocol: 2,
      table: MAIN_TABLE,
      unicast: true,
      blackhole: false,
    });
    return index;
  }

  listLinks(): Promise<Link[]> {
    return Promise.resolve([...this.links.values()]);
  }

  getLink(name: string): Promise<Link | null> {
    return Promise.resolve([...this.links.values()].find((l) => l.name === name) ?? null);
  }

  addVxlanLink(spec: VxlanLinkSpec): Promise<Link> {
    this.calls.push(`link add ${spec.name} vni ${spec.vni} mac ${spec.mac}`);
    if ([...this.links.values()].some((l) => l.name === spec.name))
      return Promise.reject(new NetlinkError("exists", "EEXIST"));
    const index = this.#nextIndex++;
    const { name, mtu, mac, ...vxlan } = spec;
    const link: Link = { index, name, mtu, mac, up: false, kind: "vxlan", vxlan };
    this.links.set(index, link);
    this.#say("link", false, index, null);
    return Promise.resolve(link);
  }

  /** Kernels with WireGuard, or (wireguard false) without: as this fake was made. */
  addWireguardLink(name: string, mtu: number): Promise<Link> {
    this.calls.push(`link add ${name} type wireguard`);
    if (!this.wireguard)
      return Promise.reject(new NetlinkError("Operation not supported", "EOPNOTSUPP"));
    if ([...this.links.values()].some((l) => l.name === name))
      return Promise.reject(new NetlinkError("exists", "EEXIST"));
    const index = this.#nextIndex++;
    const link: Link = {
      index,
      name,
      mtu,
      mac: "00:00:00:00:00:00",
      up: false,
      kind: "wireguard",
      vxlan: null,
    };
    this.links.set(index, link);
    this.#say("link", false, index, null);
    return Promise.resolve(link);
  }

  deleteLink(index: number): Promise<void> {
    this.calls.push(`link del ${index}`);
    this.links.delete(index);
    this.routes = this.routes.filter((r) => r.linkIndex !== index);
    this.neighbors = this.neighbors.filter((n) => n.linkIndex !== index);
    this.fdb = this.fdb.filter((f) => f.linkIndex !== index);
    this.#say("link", true, index, null);
    return Promise.resolve();
  }

  #update(index: number, change: Partial<Link>): Promise<void> {
    const link = this.links.get(index);
    if (link === undefined) return Promise.reject(new NetlinkError("no such link", "ENODEV"));
    this.links.set(index, { ...link, ...change });
    return Promise.resolve();
  }

  setLinkMtu(index: number, mtu: number): Promise<void> {
    this.calls.push(`link set ${index} mtu ${mtu}`);
    return this.#update(index, { mtu });
  }

  setLinkMac(index: number, mac: string): Promise<void> {
    this.calls.push(`link set ${index} address ${mac}`);
    return this.#update(index, { mac });
  }

  setLinkUp(index: number): Promise<void> {
    this.calls.push(`link set ${index} up`);
    return this.#update(index, { up: true });
  }

  listAddresses(linkIndex: number): Promise<Address[]> {
    return Promise.resolve(this.addresses.filter((a) => a.linkIndex === linkIndex));
  }

  addAddress(address: Address): Promise<void> {
    this.calls.push(`addr add ${address.ip}/${address.prefixLen} dev ${address.linkIndex}`);
    this.addresses.push(address);
    this.#say("address", false, address.linkIndex, null);
    return Promise.resolve();
  }

  deleteAddress(address: Address): Promise<void> {
    this.calls.push(`addr del ${address.ip}/${address.prefixLen} dev ${address.linkIndex}`);
    const i = this.addresses.findIndex(
      (a) => a.linkIndex === address.linkIndex && a.ip === address.ip,
    );
    if (i >= 0) this.addresses.splice(i, 1);
    return Promise.resolve();
  }

  listRoutes(table = MAIN_TABLE): Promise<Route[]> {
    const failed = this.#failListing();
    if (failed !== null) return failed;
    return Promise.resolve(this.routes.filter((r) => r.table === table));
  }

  replaceRoute(route: RouteSpec): Promise<void> {
    this.calls.push(
      `route replace ${route.dst} via ${route.gateway ?? "-"} dev ${route.linkIndex}${route.onlink ? " onlink" : ""}`,
    );
    if (route.gateway !== null && !route.onlink) {
      const gw = parseIPv4(route.gateway) ?? 0n;
      const reachable = this.routes.some(
        (r) =>
          r.linkIndex === route.linkIndex && r.gateway === null && IPNet.parse(r.dst)?.contains(gw),
      );
      if (!reachable)
        return Promise.reject(
          new NetlinkError(`Cannot replace route ${route.dst}: ENETUNREACH`, "ENETUNREACH"),
        );
    }
    this.routes = this.routes.filter(
      (r) => r.dst !== route.dst || r.table !== MAIN_TABLE || r.blackhole,
    );
    this.routes.push({
      ...route,
      protocol: FLANNEL_ROUTE_PROTOCOL,
      table: MAIN_TABLE,
      unicast: true,
      blackhole: false,
    });
    this.#say("route", false, route.linkIndex, FLANNEL_ROUTE_PROTOCOL, { kind: "route", route });
    return Promise.resolve();
  }

  replaceBlackholeRoute(dst: string): Promise<void> {
    this.calls.push(`route replace blackhole ${dst}`);
    this.routes = this.routes.filter((r) => !(r.dst === dst && r.blackhole));
    this.routes.push({
      dst,
      gateway: null,
      linkIndex: 0,
      onlink: false,
      protocol: FLANNEL_ROUTE_PROTOCOL,
      table: MAIN_TABLE,
      unicast: false,
      blackhole: true,
    });
    this.#say("route", false, null, FLANNEL_ROUTE_PROTOCOL);
    return Promise.resolve();
  }

  deleteRoute(route: RouteSpec): Promise<void> {
    this.calls.push(`route del ${route.dst}`);
    const gone = this.routes.find((r) => r.dst === route.dst && r.table === MAIN_TABLE);
    if (gone === undefined) return Promise.reject(new NetlinkError("no such route", "ESRCH"));
    this.routes = this.routes.filter((r) => r !== gone);
    const { dst, gateway, linkIndex, onlink } = gone;
    this.#say("route", true, linkIndex, gone.protocol, {
      kind: "route",
      route: { dst, gateway, linkIndex, onlink },
    });
    return Promise.resolve();
  }

  listNeighbors(linkIndex: number): Promise<Neighbor[]> {
    const failed = this.#failListing();
    if (failed !== null) return failed;
    return Promise.resolve(this.neighbors.filter((n) => n.linkIndex === linkIndex));
  }

  replaceNeighbor(neighbor: Omit<Neighbor, "permanent">): Promise<void> {
    this.calls.push(
      `neigh replace ${neighbor.ip} lladdr ${neighbor.mac} dev ${neighbor.linkIndex}`,
    );
    this.neighbors = this.neighbors.filter(
      (n) => !(n.linkIndex === neighbor.linkIndex && n.ip === neighbor.ip),
    );
    this.neighbors.push({ ...neighbor, permanent: true });
    this.#say("neighbor", false, neighbor.linkIndex, null, { kind: "neighbor", neighbor });
    return Promise.resolve();
  }

  deleteNeighbor(neighbor: Omit<Neighbor, "permanent" | "mac">): Promise<void> {
    this.calls.push(`neigh del ${neighbor.ip} dev ${neighbor.linkIndex}`);
    const gone = this.neighbors.find(
      (n) => n.linkIndex === neighbor.linkIndex && n.ip === neighbor.ip,
    );
    this.neighbors = this.neighbors.filter((n) => n !== gone);
    if (gone !== undefined) {
      const { linkIndex, ip, mac } = gone;
      this.#say("neighbor", true, linkIndex, null, {
        kind: "neighbor",
        neighbor: { linkIndex, ip, mac },
      });
    }
    return Promise.resolve();
  }

  listFdb(linkIndex: number): Promise<FdbEntry[]> {
    this.listings++;
    return Promise.resolve(this.fdb.filter((f) => f.linkIndex === linkIndex));
  }

  replaceFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    this.calls.push(`fdb replace ${entry.mac} dst ${entry.dst} dev ${entry.linkIndex}`);
    this.fdb = this.fdb.filter((f) => !(f.linkIndex === entry.linkIndex && f.mac === entry.mac));
    this.fdb.push({ ...entry, permanent: true });
    this.#say("neighbor", false, entry.linkIndex, null, { kind: "fdb", fdb: entry });
    return Promise.resolve();
  }

  deleteFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    this.calls.push(`fdb del ${entry.mac} dst ${entry.dst} dev ${entry.linkIndex}`);
    this.fdb = this.fdb.filter(
      (f) => !(f.linkIndex === entry.linkIndex && f.mac === entry.mac && f.dst === entry.dst),
    );
    this.#say("neighbor", true, entry.linkIndex, null, { kind: "fdb", fdb: entry });
    return Promise.resolve();
  }

  /** Applies each write in turn, as the kernel applies a batch; counts batches in `batches`. */
  async writeEntries(writes: readonly EntryWrite[]): Promise<(NetlinkError | null)[]> {
    this.batches++;
    const results: (NetlinkError | null)[] = [];
    for (const { op, entry } of writes) {
      try {
        await this.#apply(op, entry);
        results.push(null);
      } catch (err) {
        if (!(err instanceof NetlinkError)) throw err;
        results.push(err);
      }
    }
    return results;
  }

  #apply(op: EntryWrite["op"], entry: KernelEntry): Promise<void> {
    switch (entry.kind) {
      case "route":
        return op === "replace" ? this.replaceRoute(entry.route) : this.deleteRoute(entry.route);
      case "neighbor":
        return op === "replace"
          ? this.replaceNeighbor(entry.neighbor)
          : this.deleteNeighbor(entry.neighbor);
      case "fdb":
        return op === "replace" ? this.replaceFdb(entry.fdb) : this.deleteFdb(entry.fdb);
    }
  }

  close(): void {
    // nothing to release
  }
}
