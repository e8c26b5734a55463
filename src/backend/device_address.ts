/** The one address a flannel device holds in the flannel network: `<subnet IP>/32`. */
import { IPNet } from "../ip/ip.js";
import type { Netlink } from "../net/netlink.js";

/** Which subnet the device's address comes from, and which network it must be alone in. */
export interface DeviceAddress {
  readonly subnet: IPNet | null;
  readonly network: IPNet | null;
}

/**
 * Makes `<subnet IP>/32` the device's only address inside the network (other addresses of the
 * network, left by an earlier lease, are removed; addresses outside it are not ours).
 */
export async function ensureSubnetAddress(
  netlink: Netlink,
  linkIndex: number,
  address: DeviceAddress,
): Promise<void> {
  if (address.subnet === null || address.network === null) return;
  const want = address.subnet.ipString;
  const present = await netlink.listAddresses(linkIndex);
  for (const a of present) {
    const ip = IPNet.parse(`${a.ip}/32`);
    const inNetwork = ip !== null && address.network.containsNet(ip);
    if (inNetwork && (a.ip !== want || a.prefixLen !== 32)) await netlink.deleteAddress(a);
  }
  if (!present.some((a) => a.ip === want && a.prefixLen === 32)) {
    await netlink.addAddress({ linkIndex, ip: want, prefixLen: 32 });
  }
}
