/**
 * The one address a flannel device holds in the flannel network: `<subnet IP>/32`, or `/128` on
 * an IPv6 device.
 */
import { IPNet } from "../ip/ip.js";
import type { Netlink } from "../net/netlink.js";

/** Which subnet the device's address comes from, and which network it must be alone in. */
export interface DeviceAddress {
  readonly subnet: IPNet | null;
  readonly network: IPNet | null;
}

/**
 * Makes `<subnet IP>/32` (`/128`) the device's only address inside the network (other addresses
 * of the network, left by an earlier lease, are removed; addresses outside it are not ours).
 */
export async function ensureSubnetAddress(
  netlink: Netlink,
  linkIndex: number,
  address: DeviceAddress,
): Promise<void> {
  if (address.subnet === null || address.network === null) return;
  const want = address.subnet.ipString;
  const bits = address.subnet.bits;
  const present = await netlink.listAddresses(linkIndex);
  for (const a of present) {
    const ip = IPNet.parse(`${a.ip}/${bits}`);
    const inNetwork =
      ip !== null && ip.family === address.network.family && address.network.containsNet(ip);
    if (inNetwork && (a.ip !== want || a.prefixLen !== bits)) await netlink.deleteAddress(a);
  }
  if (!present.some((a) => a.ip === want && a.prefixLen === bits)) {
    await netlink.addAddress({ linkIndex, ip: want, prefixLen: bits });
  }
}
