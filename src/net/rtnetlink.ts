/**
 * The Netlink interface over real rtnetlink sockets of our own, in the process's network
 * namespace: one for requests, dumps and batches (rtnetlink_socket.ts), one per watch for the
 * kernel's announcements. Messages are encoded and decoded here and in rtnetlink_codec.ts
 * (routes, neighbours, FDB entries) and rtnetlink_links.ts (links, addresses); the system calls
 * are native/kernel_sockets.c's (netlink_socket.ts).
 *
 * The `netlink` npm package did this before: it aborts the process when a socket it polls
 * reports an error (an announcement socket does whenever a burst overruns it), loads 11 MB of
 * code flanneld never uses, and offers no batches.
 */
import { MAIN_TABLE, NetlinkError } from "./netlink.js";
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
import { AsyncQueue } from "../util/async_queue.js";
import {
  blackholeRouteRequest,
  decodeFdb,
  decodeNeighbor,
  decodeRoute,
  entryRequest,
  fdbDumpRequest,
  neighborDumpRequest,
  NEIGHBOR_MESSAGE,
  ROUTE_MESSAGE,
  routeDumpRequest,
} from "./rtnetlink_codec.js";
import {
  ADDRESS_MESSAGE,
  addressDumpRequest,
  addressRequest,
  decodeAddress,
  decodeLink,
  deleteLinkRequest,
  LINK_MESSAGE,
  linkDumpRequest,
  newVxlanLinkRequest,
  newWireguardLinkRequest,
  setLinkMacRequest,
  setLinkMtuRequest,
  setLinkUpRequest,
} from "./rtnetlink_links.js";
import { NETLINK_OPTION, NetlinkSocket } from "./netlink_socket.js";
import { errnoName, forEachMessage, NETLINK_ROUTE, RtnlSocket } from "./rtnetlink_socket.js";
import type { NetlinkRequest } from "./rtnetlink_socket.js";

/** What a write does, in words: `replace route 10.244.2.0/24 via 10.244.2.0`. */
function describeWrite({ op, entry }: EntryWrite): string {
  switch (entry.kind) {
    case "route":
      return `${op} route ${entry.route.dst} via ${entry.route.gateway ?? "-"}`;
    case "neighbor":
      return `${op} neighbour ${entry.neighbor.ip}`;
    case "fdb":
      return `${op} FDB entry ${entry.fdb.mac} dst ${entry.fdb.dst}`;
  }
}

/** The multicast groups flanneld follows (linux/rtnetlink.h). */
const RTNLGRP = {
  LINK: 1,
  NEIGH: 3,
  IPV4_IFADDR: 5,
  IPV4_ROUTE: 7,
  IPV6_IFADDR: 9,
  IPV6_ROUTE: 11,
} as const;

/**
 * Room for announcements: a batch of our own writes announces each entry, and a burst that
 * overruns the buffer costs a full listing.
 */
const ANNOUNCEMENT_BUFFER = 8 * 1024 * 1024;

/** What a lost or unreadable announcement means: anything may have changed. */
const ANYTHING_CHANGED: NetlinkChange = {
  kind: "link",
  removed: false,
  linkIndex: null,
  protocol: null,
  entry: null,
  learned: false,
};

/** The index a link (struct ifinfomsg) or address (struct ifaddrmsg) message names. */
function indexAt4(payload: Buffer): number | null {
  return payload.length >= 8 ? payload.readInt32LE(4) : null;
}

function routeChange(payload: Buffer, removed: boolean): NetlinkChange | null {
  const route = decodeRoute(payload);
  if (route === null) return null;
  const entry: KernelEntry | null =
    route.unicast && route.table === MAIN_TABLE
      ? {
          kind: "route",
          route: {
            dst: route.dst,
            gateway: route.gateway,
            linkIndex: route.linkIndex,
            onlink: route.onlink,
          },
        }
      : null;
  return {
    kind: "route",
    removed,
    linkIndex: route.linkIndex,
    protocol: route.protocol,
    entry,
    learned: false,
  };
}

function neighborChange(payload: Buffer, removed: boolean): NetlinkChange | null {
  const neighbor = decodeNeighbor(payload);
  if (neighbor !== null) {
    const { permanent, ...fields } = neighbor;
    return {
      kind: "neighbor",
      removed,
      linkIndex: neighbor.linkIndex,
      protocol: null,
      entry: { kind: "neighbor", neighbor: fields },
      learned: !permanent,
    };
  }
  const fdb = decodeFdb(payload);
  if (fdb !== null) {
    const { permanent, ...fields } = fdb;
    return {
      kind: "neighbor",
      removed,
      linkIndex: fdb.linkIndex,
      protocol: null,
      entry: { kind: "fdb", fdb: fields },
      learned: !permanent,
    };
  }
  return null; // another family, or an FDB entry without a destination
}

/**
 * The rtnetlink message types flanneld follows (linux/rtnetlink.h), NEW and DEL of each kind,
 * and how to read each.
 */
const ANNOUNCEMENTS = new Map<number, (payload: Buffer) => NetlinkChange | null>();
for (const [newType, read] of [
  [
    16,
    (p: Buffer, removed: boolean): NetlinkChange => ({
      kind: "link",
      removed,
      linkIndex: indexAt4(p),
      protocol: null,
      entry: null,
      learned: false,
    }),
  ],
  [
    20,
    (p: Buffer, removed: boolean): NetlinkChange => ({
      kind: "address",
      removed,
      linkIndex: indexAt4(p),
      protocol: null,
      entry: null,
      learned: false,
    }),
  ],
  [24, routeChange],
  [28, neighborChange],
] as const) {
  ANNOUNCEMENTS.set(newType, (p) => read(p, false)); // RTM_NEW*
  ANNOUNCEMENTS.set(newType + 1, (p) => read(p, true)); // RTM_DEL*
}

/** Reads one announcement; null for message types (and families) flanneld does not follow. */
function changeOf(type: number, payload: Buffer): NetlinkChange | null {
  const read = ANNOUNCEMENTS.get(type);
  if (read === undefined) return null;
  try {
    return read(payload);
  } catch {
    return ANYTHING_CHANGED;
  }
}

/** The Netlink interface over an rtnetlink socket in this process's namespace. */
export class RtNetlink implements Netlink {
  readonly #socket = new RtnlSocket();

  async *watchChanges({ signal }: { readonly signal: AbortSignal }): AsyncGenerator<NetlinkChange> {
    // A socket of its own: multicast messages must not mix with the answers to requests.
    const queue = new AsyncQueue<NetlinkChange>(signal);
    const socket = new NetlinkSocket(
      NETLINK_ROUTE,
      { receive: ANNOUNCEMENT_BUFFER, send: 0 },
      (data) => {
        forEachMessage(data, (type, _flags, _seq, payload) => {
          const change = changeOf(type, payload);
          if (change !== null) queue.push(change);
        });
      },
      // ENOBUFS: the kernel dropped announcements; say that anything may have changed.
      () => {
        queue.push(ANYTHING_CHANGED);
      },
    );
    socket.ref(true); // a watch keeps the process alive until its signal aborts
    try {
      for (const group of Object.values(RTNLGRP))
        socket.setOption(NETLINK_OPTION.ADD_MEMBERSHIP, group);
      yield* queue;
    } finally {
      queue.close();
      socket.close();
    }
  }

  /**
   * One dump: the messages of `type` that `decode` reads and `keep` accepts (the kernel filters
   * what the request asks it to; this checks again).
   */
  async #list<T>(
    request: NetlinkRequest,
    action: string,
    type: number,
    decode: (payload: Buffer) => T | null,
    keep: (item: T) => boolean = () => true,
  ): Promise<T[]> {
    const items: T[] = [];
    for (const m of await this.#socket.dump(request, action)) {
      if (m.type !== type) continue;
      const item = decode(m.payload);
      if (item !== null && keep(item)) items.push(item);
    }
    return items;
  }

  async listLinks(): Promise<Link[]> {
    return this.#list(linkDumpRequest(), "list links", LINK_MESSAGE, decodeLink);
  }

  async getLink(name: string): Promise<Link | null> {
    return (await this.listLinks()).find((link) => link.name === name) ?? null;
  }

  async addVxlanLink(spec: VxlanLinkSpec): Promise<Link> {
    await this.#socket.request(newVxlanLinkRequest(spec), `create VXLAN link ${spec.name}`);
    const link = await this.getLink(spec.name);
    if (link === null)
      throw new NetlinkError(
        `Cannot find VXLAN link ${spec.name} right after creating it`,
        "ENODEV",
      );
    return link;
  }

  async addWireguardLink(name: string, mtu: number): Promise<Link> {
    await this.#socket.request(newWireguardLinkRequest(name, mtu), `create WireGuard link ${name}`);
    const link = await this.getLink(name);
    if (link === null)
      throw new NetlinkError(
        `Cannot find WireGuard link ${name} right after creating it`,
        "ENODEV",
      );
    return link;
  }

  async deleteLink(index: number): Promise<void> {
    await this.#socket.request(deleteLinkRequest(index), `delete link ${index}`);
  }

  async setLinkMtu(index: number, mtu: number): Promise<void> {
    await this.#socket.request(setLinkMtuRequest(index, mtu), `set MTU ${mtu} on link ${index}`);
  }

  async setLinkMac(index: number, mac: string): Promise<void> {
    await this.#socket.request(setLinkMacRequest(index, mac), `set MAC ${mac} on link ${index}`);
  }

  async setLinkUp(index: number): Promise<void> {
    await this.#socket.request(setLinkUpRequest(index), `set link ${index} up`);
  }

  async listAddresses(linkIndex: number): Promise<Address[]> {
    const list = (family: 4 | 6) =>
      this.#list(
        addressDumpRequest(linkIndex, family),
        `list IPv${family} addresses`,
        ADDRESS_MESSAGE,
        decodeAddress,
        (a) => a.linkIndex === linkIndex,
      );
    return [...(await list(4)), ...(await list(6))];
  }

  async addAddress(address: Address): Promise<void> {
    await this.#socket.request(
      addressRequest(address, "add"),
      `add address ${address.ip}/${address.prefixLen}`,
    );
  }

  async deleteAddress(address: Address): Promise<void> {
    await this.#socket.request(
      addressRequest(address, "delete"),
      `delete address ${address.ip}/${address.prefixLen}`,
    );
  }

  async listRoutes(table = MAIN_TABLE): Promise<Route[]> {
    const list = (family: 4 | 6) =>
      this.#list(
        routeDumpRequest(table, family),
        `list IPv${family} routes`,
        ROUTE_MESSAGE,
        decodeRoute,
        (r) => r.table === table,
      );
    return [...(await list(4)), ...(await list(6))];
  }

  async replaceRoute(route: RouteSpec): Promise<void> {
    await this.#write({ op: "replace", entry: { kind: "route", route } });
  }

  async replaceBlackholeRoute(dst: string): Promise<void> {
    await this.#socket.request(blackholeRouteRequest(dst), `replace blackhole route ${dst}`);
  }

  async deleteRoute(route: RouteSpec): Promise<void> {
    await this.#write({ op: "delete", entry: { kind: "route", route } });
  }

  async listNeighbors(linkIndex: number): Promise<Neighbor[]> {
    return this.#list(
      neighborDumpRequest(linkIndex),
      "list neighbours",
      NEIGHBOR_MESSAGE,
      decodeNeighbor,
      (n) => n.linkIndex === linkIndex,
    );
  }

  async replaceNeighbor(neighbor: Omit<Neighbor, "permanent">): Promise<void> {
    await this.#write({ op: "replace", entry: { kind: "neighbor", neighbor } });
  }

  async deleteNeighbor(neighbor: Omit<Neighbor, "permanent" | "mac">): Promise<void> {
    // The delete request carries no MAC; any will do for the encoder's shape.
    await this.#write({
      op: "delete",
      entry: { kind: "neighbor", neighbor: { ...neighbor, mac: "00:00:00:00:00:00" } },
    });
  }

  async listFdb(linkIndex: number): Promise<FdbEntry[]> {
    return this.#list(
      fdbDumpRequest(linkIndex),
      "list FDB entries",
      NEIGHBOR_MESSAGE,
      decodeFdb,
      (f) => f.linkIndex === linkIndex,
    );
  }

  async replaceFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    await this.#write({ op: "replace", entry: { kind: "fdb", fdb: entry } });
  }

  async deleteFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    await this.#write({ op: "delete", entry: { kind: "fdb", fdb: entry } });
  }

  async #write(write: EntryWrite): Promise<void> {
    await this.#socket.request(entryRequest(write.entry, write.op), describeWrite(write));
  }

  async writeEntries(writes: readonly EntryWrite[]): Promise<(NetlinkError | null)[]> {
    const results = new Array<NetlinkError | null>(writes.length).fill(null);
    const requests: NetlinkRequest[] = [];
    const indexes: number[] = [];
    writes.forEach((write, i) => {
      try {
        requests.push(entryRequest(write.entry, write.op));
        indexes.push(i);
      } catch (err) {
        results[i] = new NetlinkError((err as Error).message, "EINVAL", { cause: err });
      }
    });
    const errnos = await this.#socket.batch(requests);
    errnos.forEach((errno, j) => {
      const i = indexes[j];
      const write = i === undefined ? undefined : writes[i];
      if (errno === 0 || i === undefined || write === undefined) return;
      const name = errnoName(errno);
      results[i] = new NetlinkError(`Cannot ${describeWrite(write)}: ${name}`, name);
    });
    return results;
  }

  close(): void {
    this.#socket.close();
  }
}
