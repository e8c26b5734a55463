/**
 * IPv4 and IPv6 addresses and networks, as flannel's pkg/ip holds them (IP4, IP4Net, IP6Net).
 *
 * An address is a bigint so that one type covers both families. Text is parsed strictly and
 * printed the way Go's net package prints it (RFC 5952 for IPv6: `fc00:0:0:1::`), so that keys
 * and JSON written here match flannel's byte for byte.
 */

/** The address family: 4 or 6. */
export type IPFamily = 4 | 6;

const BITS: Record<IPFamily, number> = { 4: 32, 6: 128 };

/** Parses dotted-quad IPv4 text; returns null when it is not exactly that. */
export function parseIPv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part.startsWith("0"))) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

/** Parses IPv6 text (with `::` and an optional trailing dotted quad); null when it is not one. */
export function parseIPv6(text: string): bigint | null {
  if (text.length < 2 || text.includes("%")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? "";
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (v4 === null) return null;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groupsOf(halves[0] ?? "");
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  if (head === null || tail === null) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Parses an address of either family. */
export function parseIP(text: string): { family: IPFamily; value: bigint } | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, value: v4 };
  const v6 = parseIPv6(text);
  if (v6 !== null) return { family: 6, value: v6 };
  return null;
}

/** Formats an IPv4 address as a dotted quad. */
export function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
}

/**
 * Formats an IPv6 address as Go's net.IP.String() does (RFC 5952), which flannel's ip.IP6 uses:
 * an IPv4-mapped address (`::ffff:a.b.c.d`) prints as the IPv4 address alone.
 */
export function formatIPv6(value: bigint): string {
  if (value >> 32n === 0xffffn) return formatIPv4(value & 0xffffffffn);
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // The first longest run of two or more zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Formats an address of the given family. */
export function formatIP(family: IPFamily, value: bigint): string {
  return family === 4 ? formatIPv4(value) : formatIPv6(value);
}

/** A network (address and prefix length) with its host bits cleared, as Go's ParseCIDR gives. */
export class IPNet {
  readonly family: IPFamily;
  readonly ip: bigint;
  readonly prefixLen: number;

  constructor(family: IPFamily, ip: bigint, prefixLen: number) {
    const bits = BITS[family];
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > bits) {
      throw new RangeError(
        `Cannot make an IPv${family} network: prefix length ${prefixLen} is not in 0..${bits}`,
      );
    }
    this.family = family;
    this.prefixLen = prefixLen;
    this.ip = ip & maskOf(family, prefixLen);
  }

  /** Parses `a.b.c.d/n` or `x::/n`; host bits are masked off. Null when the text is not a CIDR. */
  static parse(text: string): IPNet | null {
    const slash = text.indexOf("/");
    if (slash < 0) return null;
    const addr = parseIP(text.slice(0, slash));
    const lenText = text.slice(slash + 1);
    if (addr === null || !/^\d{1,3}$/.test(lenText)) return null;
    const prefixLen = Number(lenText);
    if (prefixLen > BITS[addr.family]) return null;
    return new IPNet(addr.family, addr.value, prefixLen);
  }

  /** The number of bits in an address of this family (32 or 128). */
  get bits(): number {
    return BITS[this.family];
  }

  /** How many addresses the network holds. */
  get size(): bigint {
    return 1n << BigInt(this.bits - this.prefixLen);
  }

  /** The network address as text. */
  get ipString(): string {
    return formatIP(this.family, this.ip);
  }

  /** Whether the address lies in this network. */
  contains(ip: bigint): boolean {
    return (ip & maskOf(this.family, this.prefixLen)) === this.ip;
  }

  /** Whether `other` lies wholly inside this network. */
  containsNet(other: IPNet): boolean {
    return (
      other.family === this.family && other.prefixLen >= this.prefixLen && this.contains(other.ip)
    );
  }

  /** Whether the two networks share any address. */
  overlaps(other: IPNet): boolean {
    if (other.family !== this.family) return false;
    return this.prefixLen <= other.prefixLen ? this.contains(other.ip) : other.contains(this.ip);
  }

  /** The network of the same size right after this one (flannel's `Next()`). */
  next(): IPNet {
    return new IPNet(this.family, this.ip + this.size, this.prefixLen);
  }

  /** The first host address (network address + 1), as subnet.env's FLANNEL_SUBNET uses it. */
  firstHost(): bigint {
    return this.ip + 1n;
  }

  equals(other: IPNet): boolean {
    return (
      other.family === this.family && other.ip === this.ip && other.prefixLen === this.prefixLen
    );
  }

  toString(): string {
    return `${this.ipString}/${this.prefixLen}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** The netmask of a prefix length, as a bigint. */
export function maskOf(family: IPFamily, prefixLen: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLen))) & all;
}
