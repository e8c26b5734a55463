/**
 * The Netlink interface over a real rtnetlink socket (the npm package `netlink`, pinned, early
 * stage; kept behind this file). One socket per process, in the process's network namespace.
 *
 * The package leaves IFLA_LINKINFO as raw bytes, so the VXLAN link is encoded here
 * (IFLA_INFO_KIND "vxlan", IFLA_INFO_DATA with IFLA_VXLAN_* attributes) and decoded with its
 * parseVxlan. Message flags are raw NLM_F_* numbers: create|replace is 0x500, create|excl 0x600.
 */
import { createRtNetlink, rt } from "netlink";
import type { RtNetlinkSocket } from "netlink";
import { IPNet, formatIPv4, parseIPv4 } from "../ip/ip.js";
import {
  BLACKHOLE_ROUTE_METRIC,
  FLANNEL_ROUTE_PROTOCOL,
  MAIN_TABLE,
  NetlinkError,
} from "./netlink.js";
import type {
  Address,
  FdbEntry,
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

const NLM_F_CREATE_REPLACE = 0x500;
const NLM_F_CREATE_EXCL = 0x600;
const AF_INET = 2;
const AF_BRIDGE = 7;
const RTNH_F_ONLINK = 4;
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

/**
 * The kernel takes any protocol number (0..255); the package's enum names only the registered
 * ones, so ours goes in as a number.
 */
function routeProtocol(n: number): rt.RouteProtocol {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- any u8 is valid here
  const value: rt.RouteProtocol = n;
  return value;
}

function protocolNumber(protocol: rt.Route["protocol"]): number {
  if (protocol === undefined) return 0;
  return typeof protocol === "number" ? protocol : rt.RouteProtocol[protocol];
}

function dstOf(route: RouteSpec): { bytes: Buffer; len: number } {
  const net = IPNet.parse(route.dst);
  if (net === null || net.family !== 4)
    throw new RangeError(`Invalid IPv4 route destination "${route.dst}"`);
  return { bytes: ipv4Bytes(net.ipString), len: net.prefixLen };
}

/** What a lost or unreadable announcement means: anything may have changed. */
const ANYTHING_CHANGED: NetlinkChange = {
  kind: "link",
  removed: false,
  linkIndex: null,
  protocol: null,
};

type Announcement = Omit<NetlinkChange, "removed">;

/**
 * The rtnetlink message types flanneld follows (linux/rtnetlink.h), NEW and DEL of each kind,
 * and how to read the link (and a route's protocol) from each.
 */
const ANNOUNCEMENTS = new Map<number, { removed: boolean; read: (data: Buffer) => Announcement }>();
for (const [newType, read] of [
  [
    16,
    (d: Buffer): Announcement => {
      const m = rt.parseLinkMessage(d);
      return { kind: "link", linkIndex: m.data.index ?? null, protocol: null };
    },
  ],
  [
    20,
    (d: Buffer): Announcement => {
      const m = rt.parseAddressMessage(d);
      return { kind: "address", linkIndex: m.data.index ?? null, protocol: null };
    },
  ],
  [
    24,
    (d: Buffer): Announcement => {
      const m = rt.parseRouteMessage(d);
      return {
        kind: "route",
        linkIndex: m.attrs.oif ?? null,
        protocol: protocolNumber(m.data.protocol),
      };
    },
  ],
  [
    28,
    (d: Buffer): Announcement => {
      const m = rt.parseNeighborMessage(d);
      return { kind: "neighbor", linkIndex: m.data.ifindex ?? null, protocol: null };
    },
  ],
] as const) {
  ANNOUNCEMENTS.set(newType, { removed: false, read }); // RTM_NEW*
  ANNOUNCEMENTS.set(newType + 1, { removed: true, read }); // RTM_DEL*
}

/** Reads one announcement; null for message types flanneld does not follow. */
function changeOf(type: number, data: Buffer): NetlinkChange | null {
  const known = ANNOUNCEMENTS.get(type);
  if (known === undefined) return null;
  try {
    return { ...known.read(data), removed: known.removed };
  } catch {
    return ANYTHING_CHANGED;
  }
}

/** The Netlink interface over an rtnetlink socket in this process's namespace. */
export class RtNetlink implements Netlink {
  readonly #socket: RtNetlinkSocket;
  /** One request at a time: the kernel answers a second dump on a socket with EBUSY. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor() {
    this.#socket = createRtNetlink();
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
    const socket = createRtNetlink();
    const queue = new AsyncQueue<NetlinkChange>(signal);
    for (const group of ["LINK", "NEIGH", "IPV4_ROUTE", "IPV4_IFADDR"] as const)
      socket.addMembership(group);
    socket.socket.on("message", (messages: { type: number; data: Buffer }[]) => {
      for (const raw of messages) {
        const change = changeOf(raw.type, raw.data);
        if (change !== null) queue.push(change);
      }
    });
    // ENOBUFS: the kernel dropped announcements; say that anything may have changed.
    socket.socket.on("error", () => {
      queue.push(ANYTHING_CHANGED);
    });
    try {
      yield* queue;
    } finally {
      queue.close();
      socket.socket.close();
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
    const messages = await this.#do("list routes", () =>
      this.#socket.getRoutes({ family: AF_INET }),
    );
    return messages
      .filter((m) => (m.attrs.table ?? m.data.table) === table)
      .map((m) => {
        const dst = ipv4Text(m.attrs.dst) ?? "0.0.0.0";
        const protocol = m.data.protocol;
        return {
          dst: `${dst}/${m.data.dstLen ?? 0}`,
          gateway: ipv4Text(m.attrs.gateway),
          linkIndex: m.attrs.oif ?? 0,
          onlink: ((m.data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
          protocol: protocolNumber(protocol),
          table,
          unicast: m.data.type === "UNICAST" || m.data.type === rt.RouteType.UNICAST,
          blackhole: m.data.type === "BLACKHOLE" || m.data.type === rt.RouteType.BLACKHOLE,
        };
      });
  }

  #routeMessage(route: RouteSpec): [rt.Route, rt.RouteAttrs] {
    const { bytes, len } = dstOf(route);
    const data: rt.Route = {
      family: AF_INET,
      dstLen: len,
      table: MAIN_TABLE,
      protocol: routeProtocol(FLANNEL_ROUTE_PROTOCOL),
      scope: route.gateway === null ? rt.RouteScope.LINK : rt.RouteScope.UNIVERSE,
      type: rt.RouteType.UNICAST,
      flags: route.onlink ? { __unknown: RTNH_F_ONLINK } : {},
    };
    const attrs: rt.RouteAttrs = { dst: bytes, oif: route.linkIndex, table: MAIN_TABLE };
    if (route.gateway !== null) attrs.gateway = ipv4Bytes(route.gateway);
    return [data, attrs];
  }

  async replaceRoute(route: RouteSpec): Promise<void> {
    const [data, attrs] = this.#routeMessage(route);
    await this.#do(`replace route ${route.dst} via ${route.gateway ?? "-"}`, () =>
      this.#socket.newRoute(data, attrs, { flags: NLM_F_CREATE_REPLACE }),
    );
  }

  async replaceBlackholeRoute(dst: string): Promise<void> {
    const { bytes, len } = dstOf({ dst, gateway: null, linkIndex: 0, onlink: false });
    const data: rt.Route = {
      family: AF_INET,
      dstLen: len,
      table: MAIN_TABLE,
      protocol: routeProtocol(FLANNEL_ROUTE_PROTOCOL),
      scope: rt.RouteScope.UNIVERSE,
      type: rt.RouteType.BLACKHOLE,
    };
    await this.#do(`replace blackhole route ${dst}`, () =>
      this.#socket.newRoute(
        data,
        { dst: bytes, table: MAIN_TABLE, priority: BLACKHOLE_ROUTE_METRIC },
        { flags: NLM_F_CREATE_REPLACE },
      ),
    );
  }

  async deleteRoute(route: RouteSpec): Promise<void> {
    const [data, attrs] = this.#routeMessage(route);
    await this.#do(`delete route ${route.dst}`, () =>
      this.#socket.delRoute(
        { ...data, protocol: routeProtocol(0), scope: rt.RouteScope.NOWHERE },
        attrs,
      ),
    );
  }

  async listNeighbors(linkIndex: number): Promise<Neighbor[]> {
    const messages = await this.#do("list neighbours", () =>
      this.#socket.getNeighbors({ family: AF_INET }),
    );
    return messages
      .filter((m) => m.data.ifindex === linkIndex)
      .flatMap((m) => {
        const ip = ipv4Text(m.attrs.dst);
        return ip === null
          ? []
          : [
              {
                linkIndex,
                ip,
                mac: macText(m.attrs.lladdr),
                permanent: m.data.state?.permanent === true,
              },
            ];
      });
  }

  async replaceNeighbor(neighbor: Omit<Neighbor, "permanent">): Promise<void> {
    await this.#do(`replace neighbour ${neighbor.ip}`, () =>
      this.#socket.newNeighbor(
        {
          family: AF_INET,
          ifindex: neighbor.linkIndex,
          state: { permanent: true },
          type: rt.RouteType.UNICAST,
        },
        { dst: ipv4Bytes(neighbor.ip), lladdr: macBytes(neighbor.mac) },
        { flags: NLM_F_CREATE_REPLACE },
      ),
    );
  }

  async deleteNeighbor(neighbor: Omit<Neighbor, "permanent" | "mac">): Promise<void> {
    await this.#do(`delete neighbour ${neighbor.ip}`, () =>
      this.#socket.delNeighbor(
        { family: AF_INET, ifindex: neighbor.linkIndex },
        { dst: ipv4Bytes(neighbor.ip) },
      ),
    );
  }

  async listFdb(linkIndex: number): Promise<FdbEntry[]> {
    const messages = await this.#do("list FDB entries", () =>
      this.#socket.getNeighbors({ family: AF_BRIDGE }),
    );
    return messages
      .filter((m) => m.data.ifindex === linkIndex)
      .flatMap((m) => {
        const dst = ipv4Text(m.attrs.dst);
        return dst === null
          ? []
          : [
              {
                linkIndex,
                mac: macText(m.attrs.lladdr),
                dst,
                permanent: m.data.state?.permanent === true,
              },
            ];
      });
  }

  #fdbMessage(entry: Omit<FdbEntry, "permanent">): [rt.Neighbor, rt.NeighborAttrs] {
    return [
      {
        family: AF_BRIDGE,
        ifindex: entry.linkIndex,
        state: { permanent: true },
        flags: { self: true },
      },
      { lladdr: macBytes(entry.mac), dst: ipv4Bytes(entry.dst) },
    ];
  }

  async replaceFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    const [data, attrs] = this.#fdbMessage(entry);
    await this.#do(`replace FDB entry ${entry.mac} dst ${entry.dst}`, () =>
      this.#socket.newNeighbor(data, attrs, { flags: NLM_F_CREATE_REPLACE }),
    );
  }

  async deleteFdb(entry: Omit<FdbEntry, "permanent">): Promise<void> {
    const [data, attrs] = this.#fdbMessage(entry);
    await this.#do(`delete FDB entry ${entry.mac} dst ${entry.dst}`, () =>
      this.#socket.delNeighbor(data, attrs),
    );
  }

  close(): void {
    this.#socket.socket.close();
  }
}
