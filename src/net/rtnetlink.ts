/**
 * The Netlink interface over real rtnetlink sockets, in the process's network namespace:
 * - routes, neighbours and FDB entries (written in batches, listed with kernel-side filters) and
 *   the kernel's announcements go over our own sockets (rtnetlink_socket.ts, netlink_socket.ts);
 *   the `netlink` npm package aborts the process when a socket it polls reports an error, which
 *   an announcement socket does whenever a burst overruns it;
 * - links and addresses over the `netlink` package (pinned, early stage; kept behind this file).
 *
 * The package leaves IFLA_LINKINFO as raw bytes, so the VXLAN link is encoded here
 * (IFLA_INFO_KIND "vxlan", IFLA_INFO_DATA with IFLA_VXLAN_* attributes) and decoded with its
 * parseVxlan. Message flags are raw NLM_F_* numbers: create|replace is 0x500, create|excl 0x600.
 */
import { createRtNetlink } from "netlink";
import type { RtNetlinkSocket, rt } from "netlink";
import { formatIPv4, parseIPv4 } from "../ip/ip.js";
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
  VxlanInfo,
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
import { NETLINK_OPTION, NetlinkSocket } from "./netlink_socket.js";
import { errnoName, forEachMessage, NETLINK_ROUTE, RtnlSocket } from "./rtnetlink_socket.js";
import type { NetlinkRequest } from "./rtnetlink_socket.js";

const NLM_F_CREATE_REPLACE = 0x500;
const NLM_F_CREATE_EXCL = 0x600;
const AF_INET = 2;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const NLA_F_NESTED = 0x8000;
const IFLA_VXLAN = { ID: 1, LINK: 3, LOCAL: 4, LEARNING: 7, PORT: 15, GBP: 23 } as const;

function attr(type: number, payload: Buffer): Buffer {
  const length = 4 + payload.length;
  const out = Buffer.alloc((length + 3) & ~3);
  out.writeUInt16LE(length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function ipv4Bytes(ip: string): Buffer {
  const value = parseIPv4(ip);
  if (value === null) throw new RangeError(`Invalid IPv4 address "${ip}"`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(Number(value));
  return b;
}

function ipv4Text(bytes: Buffer | undefined): string | null {
  return bytes?.length === 4 ? formatIPv4(BigInt(bytes.readUInt32BE(0))) : null;
}

function macBytes(mac: string): Buffer {
  const hex = mac.replace(/:/g, "");
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new RangeError(`Invalid MAC address "${mac}"`);
  return Buffer.from(hex, "hex");
}

function macText(bytes: Buffer | undefined): string {
  return bytes ? [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":") : "";
}

/** Splits nested netlink attributes into type → payload. */
function parseAttrs(buffer: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let offset = 0; offset + 4 <= buffer.length;) {
    const length = buffer.readUInt16LE(offset);
    const type = buffer.readUInt16LE(offset + 2) & ~NLA_F_NESTED;
    if (length < 4) break;
    out.set(type, buffer.subarray(offset + 4, offset + length));
    offset += (length + 3) & ~3;
  }
  return out;
}

function encodeVxlanLinkinfo(spec: VxlanInfo): Buffer {
  const parts = [
    attr(IFLA_VXLAN.ID, u32(spec.vni)),
    attr(IFLA_VXLAN.LEARNING, Buffer.from([spec.learning ? 1 : 0])),
  ];
  if (spec.parentIndex !== null) parts.push(attr(IFLA_VXLAN.LINK, u32(spec.parentIndex)));
  if (spec.local !== null) parts.push(attr(IFLA_VXLAN.LOCAL, ipv4Bytes(spec.local)));
  if (spec.port !== 0) {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(spec.port);
    parts.push(attr(IFLA_VXLAN.PORT, port));
  }
  if (spec.gbp) parts.push(attr(IFLA_VXLAN.GBP, Buffer.alloc(0)));
  return Buffer.concat([
    attr(IFLA_INFO_KIND, Buffer.from("vxlan\0")),
    attr(IFLA_INFO_DATA | NLA_F_NESTED, Buffer.concat(parts)),
  ]);
}

function decodeLinkinfo(linkinfo: Buffer | undefined): {
  kind: string | null;
  vxlan: VxlanInfo | null;
} {
  if (linkinfo === undefined) return { kind: null, vxlan: null };
  const info = parseAttrs(linkinfo);
  const kind = info.get(IFLA_INFO_KIND)?.toString("latin1").replace(/\0+$/, "") ?? null;
  const data = info.get(IFLA_INFO_DATA);
  if (kind !== "vxlan" || data === undefined) return { kind, vxlan: null };
  const vx = parseAttrs(data);
  const port = vx.get(IFLA_VXLAN.PORT);
  return {
    kind,
    vxlan: {
      vni: vx.get(IFLA_VXLAN.ID)?.readUInt32LE(0) ?? 0,
      local: ipv4Text(vx.get(IFLA_VXLAN.LOCAL)),
      parentIndex: vx.get(IFLA_VXLAN.LINK)?.readUInt32LE(0) ?? null,
      port: port?.length === 2 ? port.readUInt16BE(0) : 0,
      learning: (vx.get(IFLA_VXLAN.LEARNING)?.[0] ?? 0) !== 0,
      gbp: vx.has(IFLA_VXLAN.GBP),
    },
  };
}

function toLink(message: rt.LinkMessage): Link {
  const { kind, vxlan } = decodeLinkinfo(message.attrs.linkinfo);
  return {
    index: message.data.index ?? 0,
    name: message.attrs.ifname ?? "",
    mtu: message.attrs.mtu ?? 0,
    mac: macText(message.attrs.address),
    up: message.data.flags?.up === true,
    kind,
    vxlan,
  };
}

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
const RTNLGRP = { LINK: 1, NEIGH: 3, IPV4_IFADDR: 5, IPV4_ROUTE: 7 } as const;

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
  return null; // another family (IPv6 neighbours), or an FDB entry without an IPv4 destination
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
  readonly #socket: RtNetlinkSocket;
  /** One request at a time: the kernel answers a second dump on a socket with EBUSY. */
  #queue: Promise<unknown> = Promise.resolve();

  /** Routes, neighbours and FDB entries: batches and filtered dumps, encoded here. */
  readonly #entries: RtnlSocket;

  constructor() {
    this.#socket = createRtNetlink();
    this.#entries = new RtnlSocket();
  }

  async #do<T>(action: string, fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    try {
      return await run;
    } catch (err) {
      const errno = /Request rejected: (\w+)/.exec((err as Error).message)?.[1] ?? "EUNKNOWN";
      throw new NetlinkError(`Cannot ${action}: ${errno}`, errno, { cause: err });
    }
  }

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

  async listLinks(): Promise<Link[]> {
    return (await this.#do("list links", () => this.#socket.getLinks())).map(toLink);
  }

  async getLink(name: string): Promise<Link | null> {
    return (await this.listLinks()).find((link) => link.name === name) ?? null;
  }

  async addVxlanLink(spec: VxlanLinkSpec): Promise<Link> {
    await this.#do(`create VXLAN link ${spec.name}`, () =>
      this.#socket.newLink(
        {},
        {
          ifname: spec.name,
          mtu: spec.mtu,
          address: macBytes(spec.mac),
          linkinfo: encodeVxlanLinkinfo(spec),
        },
        { flags: NLM_F_CREATE_EXCL },
      ),
    );
    const link = await this.getLink(spec.name);
    if (link === null)
      throw new NetlinkError(
        `Cannot find VXLAN link ${spec.name} right after creating it`,
        "ENODEV",
      );
    return link;
  }

  async deleteLink(index: number): Promise<void> {
    await this.#do(`delete link ${index}`, () => this.#socket.delLink({ index }));
  }

  async setLinkMtu(index: number, mtu: number): Promise<void> {
    await this.#do(`set MTU ${mtu} on link ${index}`, () =>
      this.#socket.setLink({ index }, { mtu }),
    );
  }

  async setLinkUp(index: number): Promise<void> {
    await this.#do(`set link ${index} up`, () =>
      this.#socket.setLink({ index, change: { up: true }, flags: { up: true } }),
    );
  }

  async listAddresses(linkIndex: number): Promise<Address[]> {
    const messages = await this.#do("list addresses", () =>
      this.#socket.getAddresses({ family: AF_INET }),
    );
    return messages
      .filter((m) => m.data.index === linkIndex)
      .flatMap((m) => {
        const ip = ipv4Text(m.attrs.local ?? m.attrs.address);
        return ip === null ? [] : [{ linkIndex, ip, prefixLen: m.data.prefixlen ?? 32 }];
      });
  }

  async addAddress(address: Address): Promise<void> {
    const bytes = ipv4Bytes(address.ip);
    await this.#do(`add address ${address.ip}/${address.prefixLen}`, () =>
      this.#socket.newAddress(
        { family: AF_INET, prefixlen: address.prefixLen, index: address.linkIndex },
        { local: bytes, address: bytes },
        { flags: NLM_F_CREATE_REPLACE },
      ),
    );
  }

  async deleteAddress(address: Address): Promise<void> {
    const bytes = ipv4Bytes(address.ip);
    await this.#do(`delete address ${address.ip}/${address.prefixLen}`, () =>
      this.#socket.delAddress(
        { family: AF_INET, prefixlen: address.prefixLen, index: address.linkIndex },
        { local: bytes, address: bytes },
      ),
    );
  }

  async listRoutes(table = MAIN_TABLE): Promise<Route[]> {
    const messages = await this.#entries.dump(routeDumpRequest(table), "list routes");
    const routes: Route[] = [];
    for (const m of messages) {
      if (m.type !== ROUTE_MESSAGE) continue;
      const route = decodeRoute(m.payload);
      if (route !== null && route.table === table) routes.push(route);
    }
    return routes;
  }

  async replaceRoute(route: RouteSpec): Promise<void> {
    await this.#write({ op: "replace", entry: { kind: "route", route } });
  }

  async replaceBlackholeRoute(dst: string): Promise<void> {
    await this.#entries.request(blackholeRouteRequest(dst), `replace blackhole route ${dst}`);
  }

  async deleteRoute(route: RouteSpec): Promise<void> {
    await this.#write({ op: "delete", entry: { kind: "route", route } });
  }

  async listNeighbors(linkIndex: number): Promise<Neighbor[]> {
    const messages = await this.#entries.dump(neighborDumpRequest(linkIndex), "list neighbours");
    const neighbors: Neighbor[] = [];
    for (const m of messages) {
      if (m.type !== NEIGHBOR_MESSAGE) continue;
      const neighbor = decodeNeighbor(m.payload);
      if (neighbor?.linkIndex === linkIndex) neighbors.push(neighbor);
    }
    return neighbors;
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
    const messages = await this.#entries.dump(fdbDumpRequest(linkIndex), "list FDB entries");
    const entries: FdbEntry[] = [];
    for (const m of messages) {
      if (m.type !== NEIGHBOR_MESSAGE) continue;
      const entry = decodeFdb(m.payload);
      if (entry?.linkIndex === linkIndex) entries.push(entry);
    }
    return entries;
  }

  async replaceFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    await this.#write({ op: "replace", entry: { kind: "fdb", fdb: entry } });
  }

  async deleteFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    await this.#write({ op: "delete", entry: { kind: "fdb", fdb: entry } });
  }

  async #write(write: EntryWrite): Promise<void> {
    await this.#entries.request(entryRequest(write.entry, write.op), describeWrite(write));
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
    const errnos = await this.#entries.batch(requests);
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
    this.#socket.socket.close();
    this.#entries.close();
  }
}
