/**
 * rtnetlink messages for links (struct ifinfomsg: the VXLAN device, the external interface) and
 * IPv4 addresses (struct ifaddrmsg), encoded and decoded by hand as in rtnetlink_codec.ts
 * (linux/if_link.h, linux/if_addr.h). The VXLAN link's IFLA_LINKINFO is nested: IFLA_INFO_KIND
 * "vxlan" and IFLA_INFO_DATA with the IFLA_VXLAN_* attributes.
 */
import type { Address, Link, VxlanInfo, VxlanLinkSpec } from "./netlink.js";
import {
  PayloadWriter,
  attrSize,
  familyOf,
  forEachAttr,
  ipAt,
  ipBytes,
  macAt,
} from "./rtnetlink_codec.js";
import type { NetlinkRequest } from "./rtnetlink_socket.js";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const CREATE_EXCL = 0x600;
const CREATE_REPLACE = 0x500;
const AF_INET = 2;
const IFF_UP = 1;
const NLA_F_NESTED = 0x8000;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINKINFO: 18 } as const;
const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
const IFLA_VXLAN = {
  ID: 1,
  LINK: 3,
  LOCAL: 4,
  LEARNING: 7,
  PORT: 15,
  LOCAL6: 17,
  GBP: 23,
} as const;
const IFA = { ADDRESS: 1, LOCAL: 2, FLAGS: 8 } as const;
/** An IPv6 address usable at once: no duplicate address detection (flannel's /128s are unique). */
const IFA_F_NODAD = 0x02;
const AF_INET6 = 10;

/** The kinds of message the dumps answer with. */
export const LINK_MESSAGE = RTM_NEWLINK;
export const ADDRESS_MESSAGE = RTM_NEWADDR;

/** struct ifinfomsg (16 bytes) followed by room for `attrBytes`. */
function ifinfomsg(
  fields: { index: number; flags: number; change: number },
  attrBytes: number,
): PayloadWriter {
  const w = new PayloadWriter(16, attrBytes);
  w.buffer.writeInt32LE(fields.index, 4);
  w.buffer.writeUInt32LE(fields.flags, 8);
  w.buffer.writeUInt32LE(fields.change, 12);
  return w;
}

/** IFLA_INFO_DATA of a VXLAN link. */
function vxlanData(spec: VxlanInfo): Buffer {
  const parts: [number, Buffer][] = [
    [IFLA_VXLAN.ID, u32(spec.vni)],
    [IFLA_VXLAN.LEARNING, Buffer.from([spec.learning ? 1 : 0])],
  ];
  if (spec.parentIndex !== null) parts.push([IFLA_VXLAN.LINK, u32(spec.parentIndex)]);
  if (spec.local !== null) {
    const local = ipBytes(spec.local);
    parts.push([local.length === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, local]);
  }
  if (spec.port !== 0) {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(spec.port);
    parts.push([IFLA_VXLAN.PORT, port]);
  }
  if (spec.gbp) parts.push([IFLA_VXLAN.GBP, Buffer.alloc(0)]);
  return attributes(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Attributes, one after the other, each padded to 4 bytes. */
function attributes(parts: readonly [number, Buffer][]): Buffer {
  const w = new PayloadWriter(
    0,
    parts.reduce((sum, [, bytes]) => sum + attrSize(bytes.length), 0),
  );
  for (const [type, bytes] of parts) w.bytes(type, bytes);
  return w.buffer;
}

/**
 * The request that creates a kernel WireGuard link (EEXIST when the name is taken; EOPNOTSUPP
 * when the kernel has no WireGuard).
 */
export function newWireguardLinkRequest(name: string, mtu: number): NetlinkRequest {
  const ifname = Buffer.from(`${name}\0`, "latin1");
  const linkinfo = attributes([[IFLA_INFO.KIND, Buffer.from("wireguard\0", "latin1")]]);
  const w = ifinfomsg(
    { index: 0, flags: 0, change: 0 },
    attrSize(ifname.length) + attrSize(4) + attrSize(linkinfo.length),
  )
    .bytes(IFLA.IFNAME, ifname)
    .u32(IFLA.MTU, mtu)
    .bytes(IFLA.LINKINFO | NLA_F_NESTED, linkinfo);
  return { type: RTM_NEWLINK, flags: CREATE_EXCL, payload: w.buffer };
}

/** The request that creates a VXLAN link (failing with EEXIST when the name is taken). */
export function newVxlanLinkRequest(spec: VxlanLinkSpec): NetlinkRequest {
  const name = Buffer.from(`${spec.name}\0`, "latin1");
  const linkinfo = attributes([
    [IFLA_INFO.KIND, Buffer.from("vxlan\0", "latin1")],
    [IFLA_INFO.DATA | NLA_F_NESTED, vxlanData(spec)],
  ]);
  const w = ifinfomsg(
    { index: 0, flags: 0, change: 0 },
    attrSize(name.length) + attrSize(4) + attrSize(6) + attrSize(linkinfo.length),
  )
    .bytes(IFLA.IFNAME, name)
    .u32(IFLA.MTU, spec.mtu)
    .mac(IFLA.ADDRESS, spec.mac)
    .bytes(IFLA.LINKINFO | NLA_F_NESTED, linkinfo);
  return { type: RTM_NEWLINK, flags: CREATE_EXCL, payload: w.buffer };
}

export function deleteLinkRequest(index: number): NetlinkRequest {
  return {
    type: RTM_DELLINK,
    flags: 0,
    payload: ifinfomsg({ index, flags: 0, change: 0 }, 0).buffer,
  };
}

export function setLinkMtuRequest(index: number, mtu: number): NetlinkRequest {
  const w = ifinfomsg({ index, flags: 0, change: 0 }, attrSize(4)).u32(IFLA.MTU, mtu);
  return { type: RTM_NEWLINK, flags: 0, payload: w.buffer };
}

export function setLinkMacRequest(index: number, mac: string): NetlinkRequest {
  const w = ifinfomsg({ index, flags: 0, change: 0 }, attrSize(6)).mac(IFLA.ADDRESS, mac);
  return { type: RTM_NEWLINK, flags: 0, payload: w.buffer };
}

export function setLinkUpRequest(index: number): NetlinkRequest {
  const w = ifinfomsg({ index, flags: IFF_UP, change: IFF_UP }, 0);
  return { type: RTM_NEWLINK, flags: 0, payload: w.buffer };
}

/** Dump request: every link (strictly checked: an all-zero header). */
export function linkDumpRequest(): NetlinkRequest {
  return { type: RTM_GETLINK, flags: 0, payload: Buffer.alloc(16) };
}

function vxlanInfo(payload: Buffer, offset: number, length: number): VxlanInfo {
  const data = payload.subarray(offset, offset + length);
  const info: {
    vni: number;
    local: string | null;
    parentIndex: number | null;
    port: number;
    learning: boolean;
    gbp: boolean;
  } = { vni: 0, local: null, parentIndex: null, port: 0, learning: false, gbp: false };
  forEachAttr(data, 0, (type, at, size) => {
    if (type === IFLA_VXLAN.ID && size >= 4) info.vni = data.readUInt32LE(at);
    else if ((type === IFLA_VXLAN.LOCAL || type === IFLA_VXLAN.LOCAL6) && size >= 4)
      info.local = ipAt(data, at, size);
    else if (type === IFLA_VXLAN.LINK && size >= 4) info.parentIndex = data.readUInt32LE(at);
    else if (type === IFLA_VXLAN.PORT && size === 2) info.port = data.readUInt16BE(at);
    else if (type === IFLA_VXLAN.LEARNING && size >= 1) info.learning = data.readUInt8(at) !== 0;
    else if (type === IFLA_VXLAN.GBP) info.gbp = true;
  });
  return info;
}

/** A link from a RTM_NEWLINK message. */
export function decodeLink(payload: Buffer): Link | null {
  if (payload.length < 16) return null;
  const link: {
    name: string;
    mtu: number;
    mac: string;
    kind: string | null;
    vxlan: VxlanInfo | null;
  } = { name: "", mtu: 0, mac: "", kind: null, vxlan: null };
  forEachAttr(payload, 16, (type, offset, length) => {
    if (type === IFLA.IFNAME) link.name = text(payload, offset, length);
    else if (type === IFLA.MTU && length >= 4) link.mtu = payload.readUInt32LE(offset);
    else if (type === IFLA.ADDRESS && length === 6) link.mac = macAt(payload, offset);
    else if (type === IFLA.LINKINFO) {
      const info = payload.subarray(offset, offset + length);
      forEachAttr(info, 0, (infoType, at, size) => {
        if (infoType === IFLA_INFO.KIND) link.kind = text(info, at, size);
      });
      if (link.kind === "vxlan")
        forEachAttr(info, 0, (infoType, at, size) => {
          if (infoType === IFLA_INFO.DATA) link.vxlan = vxlanInfo(info, at, size);
        });
    }
  });
  return {
    index: payload.readInt32LE(4),
    up: (payload.readUInt32LE(8) & IFF_UP) !== 0,
    ...link,
  };
}

/** A NUL-terminated string attribute. */
function text(buffer: Buffer, offset: number, length: number): string {
  return buffer.toString("latin1", offset, offset + length).replace(/\0+$/, "");
}

/** struct ifaddrmsg (8 bytes) for an address, followed by room for `attrBytes`. */
function ifaddrmsg(
  family: number,
  prefixLen: number,
  index: number,
  attrBytes: number,
): PayloadWriter {
  const w = new PayloadWriter(8, attrBytes);
  w.buffer.writeUInt8(family, 0);
  w.buffer.writeUInt8(prefixLen, 1);
  w.buffer.writeUInt32LE(index, 4);
  return w;
}

export function addressRequest(address: Address, op: "add" | "delete"): NetlinkRequest {
  const family = familyOf(address.ip);
  const size = family === AF_INET ? 4 : 16;
  const w = ifaddrmsg(
    family,
    address.prefixLen,
    address.linkIndex,
    2 * attrSize(size) + (family === AF_INET6 ? attrSize(4) : 0),
  )
    .ip(IFA.LOCAL, address.ip)
    .ip(IFA.ADDRESS, address.ip);
  if (family === AF_INET6) w.u32(IFA.FLAGS, IFA_F_NODAD);
  return op === "add"
    ? { type: RTM_NEWADDR, flags: CREATE_REPLACE, payload: w.buffer }
    : { type: RTM_DELADDR, flags: 0, payload: w.buffer };
}

/**
 * Dump request: the addresses of one family (4 or 6) on one link (ifa_index, honoured with
 * strict checking).
 */
export function addressDumpRequest(linkIndex: number, family: 4 | 6 = 4): NetlinkRequest {
  const af = family === 4 ? AF_INET : AF_INET6;
  return { type: RTM_GETADDR, flags: 0, payload: ifaddrmsg(af, 0, linkIndex, 0).buffer };
}

/** An IPv4 or IPv6 address from a RTM_NEWADDR message; null for another family. */
export function decodeAddress(payload: Buffer): Address | null {
  const family = payload.length < 8 ? -1 : payload.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return null;
  const found: { local: string | null; address: string | null } = { local: null, address: null };
  forEachAttr(payload, 8, (type, offset, length) => {
    if (type === IFA.LOCAL) found.local = ipAt(payload, offset, length);
    else if (type === IFA.ADDRESS) found.address = ipAt(payload, offset, length);
  });
  const ip = found.local ?? found.address;
  if (ip === null) return null;
  return { linkIndex: payload.readUInt32LE(4), ip, prefixLen: payload.readUInt8(1) };
}
