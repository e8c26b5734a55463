/**
 * rtnetlink messages for the entries flanneld keeps by the thousand, encoded and decoded by hand
 * (linux/rtnetlink.h, linux/neighbour.h): routes (struct rtmsg), neighbours and FDB entries
 * (struct ndmsg), and the dump requests that list them, filtered in the kernel by device where
 * the kernel can (routes by table, neighbours by NDA_IFINDEX, FDB entries by the bridge port).
 */
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
const AF_INET = 2;
const AF_BRIDGE = 7;
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

/** `a.b.c.d/n` → address and prefix length. */
function splitCidr(dst: string): { ip: string; len: number } {
  const slash = dst.indexOf("/");
  const len = Number(dst.slice(slash + 1));
  if (slash < 0 || !Number.isInteger(len) || len < 0 || len > 32)
    throw new RangeError(`Invalid IPv4 route destination "${dst}"`);
  return { ip: dst.slice(0, slash), len };
}

/** struct rtmsg (12 bytes) followed by room for `attrBytes`. */
function rtmsg(
  fields: { dstLen: number; protocol: number; scope: number; type: number; flags: number },
  attrBytes: number,
): PayloadWriter {
  const w = new PayloadWriter(12, attrBytes);
  const b = w.buffer;
  b[0] = AF_INET;
  b[1] = fields.dstLen;
  b[4] = MAIN_TABLE;
  b[5] = fields.protocol;
  b[6] = fields.scope;
  b[7] = fields.type;
  b.writeUInt32LE(fields.flags, 8);
  return w;
}

function routeRequest(route: RouteSpec, op: "replace" | "delete"): NetlinkRequest {
  const { ip, len } = splitCidr(route.dst);
  const replace = op === "replace";
  const w = rtmsg(
    {
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
    attrSize(4) * (route.gateway === null ? 3 : 4),
  )
    .u32(RTA.TABLE, MAIN_TABLE)
    .ipv4(RTA.DST, ip)
    .u32(RTA.OIF, route.linkIndex);
  if (route.gateway !== null) w.ipv4(RTA.GATEWAY, route.gateway);
  return {
    type: replace ? RTM_NEWROUTE : RTM_DELROUTE,
    flags: replace ? CREATE_REPLACE : 0,
    payload: w.buffer,
  };
}

/** The request that creates or replaces the blackhole route to `dst`. */
export function blackholeRouteRequest(dst: string): NetlinkRequest {
  const { ip, len } = splitCidr(dst);
  const w = rtmsg(
    {
      dstLen: len,
      protocol: FLANNEL_ROUTE_PROTOCOL,
      scope: RT_SCOPE.UNIVERSE,
      type: RTN.BLACKHOLE,
      flags: 0,
    },
    attrSize(4) * 3,
  )
    .u32(RTA.TABLE, MAIN_TABLE)
    .ipv4(RTA.DST, ip)
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
  if (op === "delete") {
    const w = ndmsg(
      { family: AF_INET, ifindex: neighbor.linkIndex, state: 0, flags: 0, type: 0 },
      attrSize(4),
    ).ipv4(NDA.DST, neighbor.ip);
    return { type: RTM_DELNEIGH, flags: 0, payload: w.buffer };
  }
  const w = ndmsg(
    {
      family: AF_INET,
      ifindex: neighbor.linkIndex,
      state: NUD_PERMANENT,
      flags: 0,
      type: RTN.UNICAST,
    },
    attrSize(4) + attrSize(6),
  )
    .ipv4(NDA.DST, neighbor.ip)
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
    attrSize(6) + attrSize(4),
  )
    .mac(NDA.LLADDR, entry.mac)
    .ipv4(NDA.DST, entry.dst);
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

/** Dump request: the IPv4 routes of one table. */
export function routeDumpRequest(table: number): NetlinkRequest {
  const w = new PayloadWriter(12, attrSize(4)).u32(RTA.TABLE, table);
  w.buffer[0] = AF_INET;
  w.buffer[4] = table < 256 ? table : 0;
  return { type: RTM_GETROUTE, flags: 0, payload: w.buffer };
}

/** Dump request: the IPv4 neighbours of one device (NDA_IFINDEX). */
export function neighborDumpRequest(linkIndex: number): NetlinkRequest {
  const w = ndmsg({ family: AF_INET, ifindex: 0, state: 0, flags: 0, type: 0 }, attrSize(4)).u32(
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

/** A route from a RTM_NEWROUTE message; null for another family. */
export function decodeRoute(payload: Buffer): Route | null {
  if (payload.length < 12 || payload.readUInt8(0) !== AF_INET) return null;
  let table = payload.readUInt8(4);
  let dst = "0.0.0.0";
  let gateway: string | null = null;
  let linkIndex = 0;
  forEachAttr(payload, 12, (type, offset, length) => {
    if (type === RTA.TABLE && length >= 4) table = payload.readUInt32LE(offset);
    else if (type === RTA.DST && length === 4) dst = ipv4At(payload, offset);
    else if (type === RTA.GATEWAY && length === 4) gateway = ipv4At(payload, offset);
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
 * The fields of a RTM_NEWNEIGH/RTM_DELNEIGH message of one family (AF_INET: a neighbour;
 * AF_BRIDGE: an FDB entry): its device, NDA_DST as IPv4, NDA_LLADDR, and whether it is
 * permanent. Null for another family or without an IPv4 NDA_DST.
 */
function decodeNdmsg(
  payload: Buffer,
  family: number,
): { linkIndex: number; ip: string; mac: string; permanent: boolean } | null {
  if (payload.length < 12 || payload.readUInt8(0) !== family) return null;
  const found: { ip: string | null; mac: string } = { ip: null, mac: "" };
  forEachAttr(payload, 12, (type, offset, length) => {
    if (type === NDA.DST && length === 4) found.ip = ipv4At(payload, offset);
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

/** An IPv4 neighbour from a RTM_NEWNEIGH message; null for another kind. */
export function decodeNeighbor(payload: Buffer): Neighbor | null {
  return decodeNdmsg(payload, AF_INET);
}

/** An FDB entry with an IPv4 destination from a bridge-family RTM_NEWNEIGH; null otherwise. */
export function decodeFdb(payload: Buffer): FdbEntry | null {
  const fields = decodeNdmsg(payload, AF_BRIDGE);
  if (fields === null) return null;
  const { linkIndex, ip, mac, permanent } = fields;
  return { linkIndex, mac, dst: ip, permanent };
}
