/**
 * Subnet keys: the last part of `<prefix>/subnets/<key>`, e.g. `10.244.3.0-24` or, dual-stack,
 * `10.244.3.0-24&fd00:10:244:3::-64` (flannel's MakeSubnetKey / ParseSubnetKey).
 */
import { IPNet, parseIPv4, parseIPv6 } from "../ip/ip.js";

export { makeSubnetKey } from "../lease/lease.js";

/**
 * Parses a subnet key. Stricter than flannel's regex: the addresses must be valid and carry no
 * host bits. Returns null for anything else, so that a foreign key can be skipped.
 */
export function parseSubnetKey(key: string): { subnet: IPNet; ipv6Subnet: IPNet | null } | null {
  const match = /^(\d+\.\d+\.\d+\.\d+)-(\d{1,2})(?:&([0-9a-f:]+)-(\d{1,3}))?$/.exec(key);
  if (match === null) return null;
  const v4 = parseIPv4(match[1] ?? "");
  const len4 = Number(match[2]);
  if (v4 === null || len4 > 32) return null;
  const subnet = new IPNet(4, v4, len4);
  if (subnet.ip !== v4) return null;
  if (match[3] === undefined) return { subnet, ipv6Subnet: null };
  const v6 = parseIPv6(match[3]);
  const len6 = Number(match[4]);
  if (v6 === null || len6 > 128) return null;
  const ipv6Subnet = new IPNet(6, v6, len6);
  if (ipv6Subnet.ip !== v6) return null;
  return { subnet, ipv6Subnet };
}
