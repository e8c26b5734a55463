/**
 * rtnetlink messages for the entries flanneld keeps by the thousand, encoded and decoded by hand
 * (linux/rtnetlink.h, linux/neighbour.h): routes (struct rtmsg), neighbours and FDB entries
 * (struct ndmsg), and the dump requests that list them, filtered in the kernel by device where
 * the kernel can (routes by table, neighbours by NDA_IFINDEX, FDB entries by the bridge port).
 */
import { formatIPv6, parseIPv4, parseIPv6 } from "../ip/ip.js";
import type { FdbEntry, KernelEntry, Neighbor, Route, RouteSpec } from "./netlink.js";
import { BLACKHOLE_ROUTE_METRIC, FLANNEL_ROUTE_PROTOCOL, MAIN_TABLE } from "./netlink.js";
import type { NetlinkRequest } from "./rtnetlink_socket.js";

const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const RTM_GETNEIGH = 30;
/** Flags of a write that replaces: NLM_F_CREATE | NLM_F_REPLACE. */
const CREATE_REPLACE = 0x500;
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_BRIDGE = 7;
const AF_INET6 = 10;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, TABLE: 15 } as const;
const NDA = { DST: 1, LLADDR: 2, IFINDEX: 8 } as const;
const RT_SCOPE = { UNIVERSE: 0, LINK: 253, NOWHERE: 255 } as const;
const RTN = { UNICAST: 1, BLACKHOLE: 6 } as const;
const RTNH_F_ONLINK = 4;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

/** The kinds of message a dump answers with. */
export const ROUTE_MESSAGE = RTM_NEWROUTE;
export const NEIGHBOR_MESSAGE = RTM_NEWNEIGH;

/** Writes attributes after a fixed header; the payload of a request. */
export class PayloadWriter {
  readonly buffer: Buffer;
  #offset: number;

  constructor(headerSize: number, attrBytes: number) {
    this.buffer = Buffer.alloc(headerSize + attrBytes);
    this.#offset = headerSize;
  }

  #attr(type: number, length: number): number {
    this.buffer.writeUInt16LE(4 + length, this.#offset);
    this.buffer.writeUInt16LE(type, this.#offset + 2);
    const at = this.#offset + 4;
    this.#offset += (4 + length + 3) & ~3;
    return at;
  }

  u32(type: number, value: number): this {
    this.buffer.writeUInt32LE(value >>> 0, this.#attr(type, 4));
    return this;
  }

  ipv4(type: number, ip: string): this {
    writeIPv4(this.buffer, this.#attr(type, 4), ip);
    return this;
  }

  /** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
  ip(type: number, ip: string): this {
    const bytes = ipBytes(ip);
    bytes.copy(this.buffer, this.#attr(type, bytes.length));
    return this;
  }

  mac(type: number, mac: string): this {
    writeMac(this.buffer, this.#attr(type, 6), mac);
    return this;
  }

  /** An attribute holding `bytes` as they are (a nested attribute's content, a string). */
  bytes(type: number, bytes: Buffer): this {
    bytes.copy(this.buffer, this.#attr(type, bytes.length));
    return this;
  }
}

/** Room for one attribute of `length` bytes. */
export function attrSize(length: number): number {
  return (4 + length + 3) & ~3;
}

export function writeIPv4(buffer: Buffer, offset: number, ip: string): void {
  const parts = ip.split(".");
  if (parts.length !== 4) throw new RangeError(`Invalid IPv4 address "${ip}"`);
  parts.forEach((part, i) => {
    const n = Number(part);
    if (!/^\d{1,3}$/.test(part) || n > 255) throw new RangeError(`Invalid IPv4 address "${ip}"`);
    buffer[offset + i] = n;
  });
}

/** The address family (AF_INET or AF_INET6) of an address in text. */
export function familyOf(ip: string): number {
  return ip.includes(":") ? AF_INET6 : AF_INET;
}

/** An address's bytes: 4 for IPv4, 16 for IPv6. Throws RangeError for anything else. */
export function ipBytes(ip: string): Buffer {
  if (familyOf(ip) === AF_INET) {
    const out = Buffer.alloc(4);
    writeIPv4(out, 0, ip);
    return out;
  }
  const value = parseIPv6(ip);
  if (value === null) throw new RangeError(`Invalid IPv6 address "${ip}"`);
  return Buffer.from(value.toString(16).padStart(32, "0"), "hex");
}

/** The address in an attribute of 4 (IPv4) or 16 (IPv6) bytes; null for another length. */
export function ipAt(buffer: Buffer, offset: number, length: number): string | null {
  if (length === 4) return ipv4At(buffer, offset);
  if (length === 16) return formatIPv6(BigInt(`0x${buffer.toString("hex", offset, offset + 16)}`));
  return null;
}

function writeMac(buffer: Buffer, offset: number, mac: string): void {
  const hex = mac.replace(/:/g, "");
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new RangeError(`Invalid MAC address "${mac}"`);
  buffer.write(hex, offset, 6, "hex");
}

export function ipv4At(buffer: Buffer, offset: number): string {
  return `${buffer.readUInt8(offset)}.${buffer.readUInt8(offset + 1)}.${buffer.readUInt8(offset + 2)}.${buffer.readUInt8(offset + 3)}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function macAt(buffer: Buffer, offset: number): string {
  const byte = (i: number) => HEX[buffer.readUInt8(offset + i)] ?? "00";
  return `${byte(0)}:${byte(1)}:${byte(2)}:${byte(3)}:${byte(4)}:${byte(5)}`;
}

/** `a.b.c.d/n` or `fd00::/64` → address, prefix length, family and address size. */
function splitCidr(dst: string): { ip: string; len: number; family: number; size: number } {
  const slash = dst.indexOf("/");
  const len = Number(dst.slice(slash + 1));
  const ip = dst.slice(0, slash);
  const family = familyOf(ip);
  const max = family === AF_INET ? 32 : 128;
  const valid = family === AF_INET ? parseIPv4(ip) !== null : parseIPv6(ip) !== null;
  if (slash < 0 || !valid || !Number.isInteger(len) || len < 0 || len > max)
    throw new RangeError(`Invalid route destination "${dst}"`);
  return { ip, len, family, size: family === AF_INET ? 4 : 16 };
}

/** struct rtmsg (12 bytes) followed by room for `attrBytes`. */
function rtmsg(
  fields: {
    family: number;
    dstLen: number;
    protocol: number;
    scope: number;
    type: number;
    flags: number;
  },
  attrBytes: number,
): PayloadWriter {
  const w = new PayloadWriter(12, attrBytes);
  const b = w.buffer;
  b[0] = fields.family;
  b[1] = fields.dstLen;
  b[4] = MAIN_TABLE;
  b[5] = fields.protocol;
  b[6] = fields.scope;
  b[7] = fields.type;
  b.writeUInt32LE(fields.flags, 8);
  return w;
}

function routeRequest(route: RouteSpec, op: "replace" | "delete"): NetlinkRequest {
  const { ip, len, family, size } = splitCidr(route.dst);
  if (route.gateway !== null && familyOf(route.gateway) !== family)
    throw new RangeError(`Route ${route.dst} has a gateway of the other family: ${route.gateway}`);
  const replace = op === "replace";
  const w = rtmsg(
    {
      family,
      dstLen: len,
      protocol: replace ? FLANNEL_ROUTE_PROTOCOL : 0,
      scope: replace
        ? route.gateway === null
          ? RT_SCOPE.LINK
          : RT_SCOPE.UNIVERSE
        : RT_SCOPE.NOWHERE,
      type: RTN.UNICAST,
      flags: route.onlink ? RTNH_F_ONLINK : 0,
    },
    attrSize(4) * 2 + attrSize(size) * (route.gateway === null ? 1 : 2),
  )
    .u32(RTA.TABLE, MAIN_TABLE)
    .ip(RTA.DST, ip)
    .u32(RTA.OIF, route.linkIndex);
  if (route.gateway !== null) w.ip(RTA.GATEWAY, route.gateway);
  return {
    type: replace ? RTM_NEWROUTE : RTM_DELROUTE,
    flags: replace ? CREATE_REPLACE : 0,
    payload: w.buffer,
  };
}

/** The request that creates or replaces the blackhole route to `dst`. */
export function blackholeRouteRequest(dst: string): NetlinkRequest {
  const { ip, len, family, size } = splitCidr(dst);
  const w = rtmsg(
    {
      family,
      dstLen: len,
      protocol: FLANNEL_ROUTE_PROTOCOL,
      scope: RT_SCOPE.UNIVERSE,
      type: RTN.BLACKHOLE,
      flags: 0,
    },
    attrSize(4) * 2 + attrSize(size),
  )
    .u32(RTA.TABLE, MAIN_TABLE)
    .ip(RTA.DST, ip)
    .u32(RTA.PRIORITY, BLACKHOLE_ROUTE_METRIC);
  return { type: RTM_NEWROUTE, flags: CREATE_REPLACE, payload: w.buffer };
}

/** struct ndmsg (12 bytes) followed by room for `attrBytes`. */
function ndmsg(
  fields: { family: number; ifindex: number; state: number; flags: number; type: number },
  attrBytes: number,
): PayloadWriter {
  const w = new PayloadWriter(12, attrBytes);
  const b = w.buffer;
  b[0] = fields.family;
  b.writeInt32LE(fields.ifindex, 4);
  b.writeUInt16LE(fields.state, 8);
  b[10] = fields.flags;
  b[11] = fields.type;
  return w;
}

function neighborRequest(
  neighbor: Omit<Neighbor, "permanent">,
  op: "replace" | "delete",
): NetlinkRequest {
  const family = familyOf(neighbor.ip);
  const size = family === AF_INET ? 4 : 16;
  if (op === "delete") {
    const w = ndmsg(
      { family, ifindex: neighbor.linkIndex, state: 0, flags: 0, type: 0 },
      attrSize(size),
    ).ip(NDA.DST, neighbor.ip);
    return { type: RTM_DELNEIGH, flags: 0, payload: w.buffer };
  }
  const w = ndmsg(
    {
      family,
      ifindex: neighbor.linkIndex,
      state: NUD_PERMANENT,
      flags: 0,
      type: RTN.UNICAST,
    },
    attrSize(size) + attrSize(6),
  )
    .ip(NDA.DST, neighbor.ip)
    .mac(NDA.LLADDR, neighbor.mac);
  return { type: RTM_NEWNEIGH, flags: CREATE_REPLACE, payload: w.buffer };
}

function fdbRequest(entry: Omit<FdbEntry, "permanent">, op: "replace" | "delete"): NetlinkRequest {
  const w = ndmsg(
    {
      family: AF_BRIDGE,
      ifindex: entry.linkIndex,
      state: NUD_PERMANENT,
      flags: NTF_SELF,
      type: 0,
    },
    attrSize(6) + attrSize(familyOf(entry.dst) === AF_INET ? 4 : 16),
  )
    .mac(NDA.LLADDR, entry.mac)
    .ip(NDA.DST, entry.dst);
  return op === "replace"
    ? { type: RTM_NEWNEIGH, flags: CREATE_REPLACE, payload: w.buffer }
    : { type: RTM_DELNEIGH, flags: 0, payload: w.buffer };
}

/** The request that writes or removes one entry. Throws RangeError for a malformed entry. */
export function entryRequest(entry: KernelEntry, op: "replace" | "delete"): NetlinkRequest {
  switch (entry.kind) {
    case "route":
      return routeRequest(entry.route, op);
    case "neighbor":
      return neighborRequest(entry.neighbor, op);
    case "fdb":
      return fdbRequest(entry.fdb, op);
  }
}

/*
 * Dump requests, for a socket that asks for strict checking (NETLINK_GET_STRICT_CHK): header
 * fields other than the family are zero, and the filters the kernel honours are given.
 */

/** Dump request: the routes of one table, of one family (4 or 6). */
export function routeDumpRequest(table: number, family: 4 | 6 = 4): NetlinkRequest {
  const w = new PayloadWriter(12, attrSize(4)).u32(RTA.TABLE, table);
  w.buffer[0] = family === 4 ? AF_INET : AF_INET6;
  w.buffer[4] = table < 256 ? table : 0;
  return { type: RTM_GETROUTE, flags: 0, payload: w.buffer };
}

/** Dump request: the IPv4 and IPv6 neighbours of one device (NDA_IFINDEX). */
export function neighborDumpRequest(linkIndex: number): NetlinkRequest {
  const w = ndmsg({ family: AF_UNSPEC, ifindex: 0, state: 0, flags: 0, type: 0 }, attrSize(4)).u32(
    NDA.IFINDEX,
    linkIndex,
  );
  return { type: RTM_GETNEIGH, flags: 0, payload: w.buffer };
}

/**
 * Dump request: the FDB of one device (the bridge port index in ndm_ifindex), so that only that
 * device's entries are dumped, never the whole bridge FDB.
 */
export function fdbDumpRequest(linkIndex: number): NetlinkRequest {
  const w = ndmsg({ family: AF_BRIDGE, ifindex: linkIndex, state: 0, flags: 0, type: 0 }, 0);
  return { type: RTM_GETNEIGH, flags: 0, payload: w.buffer };
}

/** Walks the attributes after a fixed header, calling `visit(type, offset, length)`. */
export function forEachAttr(
  payload: Buffer,
  start: number,
  visit: (type: number, offset: number, length: number) => void,
): void {
  for (let offset = start; offset + 4 <= payload.length;) {
    const length = payload.readUInt16LE(offset);
    if (length < 4 || offset + length > payload.length) return;
    visit(payload.readUInt16LE(offset + 2) & 0x3fff, offset + 4, length - 4);
    offset += (length + 3) & ~3;
  }
}

/** An IPv4 or IPv6 route from a RTM_NEWROUTE message; null for another family. */
export function decodeRoute(payload: Buffer): Route | null {
  const family = payload.length < 12 ? -1 : payload.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return null;
  let table = payload.readUInt8(4);
  let dst = family === AF_INET ? "0.0.0.0" : "::";
  let gateway: string | null = null;
  let linkIndex = 0;
  forEachAttr(payload, 12, (type, offset, length) => {
    if (type === RTA.TABLE && length >= 4) table = payload.readUInt32LE(offset);
    else if (type === RTA.DST) dst = ipAt(payload, offset, length) ?? dst;
    else if (type === RTA.GATEWAY) gateway = ipAt(payload, offset, length);
    else if (type === RTA.OIF && length >= 4) linkIndex = payload.readUInt32LE(offset);
  });
  const type = payload.readUInt8(7);
  return {
    dst: `${dst}/${payload.readUInt8(1)}`,
    gateway,
    linkIndex,
    onlink: (payload.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
    protocol: payload.readUInt8(5),
    table,
    unicast: type === RTN.UNICAST,
    blackhole: type === RTN.BLACKHOLE,
  };
}

/**
 * The fields of a RTM_NEWNEIGH/RTM_DELNEIGH message of the given families (AF_INET, AF_INET6: a
 * neighbour; AF_BRIDGE: an FDB entry): its device, NDA_DST (IPv4 or IPv6), NDA_LLADDR, and
 * whether it is permanent. Null for another family or without NDA_DST.
 */
function decodeNdmsg(
  payload: Buffer,
  families: readonly number[],
): { linkIndex: number; ip: string; mac: string; permanent: boolean } | null {
  if (payload.length < 12 || !families.includes(payload.readUInt8(0))) return null;
  const found: { ip: string | null; mac: string } = { ip: null, mac: "" };
  forEachAttr(payload, 12, (type, offset, length) => {
    if (type === NDA.DST) found.ip = ipAt(payload, offset, length);
    else if (type === NDA.LLADDR && length === 6) found.mac = macAt(payload, offset);
  });
  if (found.ip === null) return null;
  return {
    linkIndex: payload.readInt32LE(4),
    ip: found.ip,
    mac: found.mac,
    permanent: (payload.readUInt16LE(8) & NUD_PERMANENT) !== 0,
  };
}

/** An IPv4 or IPv6 neighbour from a RTM_NEWNEIGH message; null for another kind. */
export function decodeNeighbor(payload: Buffer): Neighbor | null {
  return decodeNdmsg(payload, [AF_INET, AF_INET6]);
}

/** An FDB entry with a destination from a bridge-family RTM_NEWNEIGH; null otherwise. */
export function decodeFdb(payload: Buffer): FdbEntry | null {
  const fields = decodeNdmsg(payload, [AF_BRIDGE]);
  if (fields === null) return null;
  const { linkIndex, ip, mac, permanent } = fields;
  return { linkIndex, mac, dst: ip, permanent };
}
