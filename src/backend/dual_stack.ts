/**
 * What the dual-stack backends (vxlan, host-gw) share: whether this node carries IPv6, and the
 * IPv6 facts of a remote lease, checked, so that a lease with a bad IPv6 part loses only that
 * part (flannel drops such a lease whole, or crashes on it).
 */
import type { NetworkConfig } from "../config/network_config.js";
import { ConfigError } from "../errors.js";
import type { IPNet } from "../ip/ip.js";
import { formatIPv6, parseIPv6 } from "../ip/ip.js";
import type { Lease } from "../lease/lease.js";
import type { ExternalInterface } from "./backend.js";

/** This node's IPv6 side: the IPv6 network and the public IPv6 it advertises. */
export interface IPv6Side {
  readonly network: IPNet;
  readonly publicIPv6: string;
}

/**
 * This node's IPv6 side when the config enables IPv6; null when it does not. Throws
 * ConfigError when IPv6 is enabled but the host has no IPv6 address to advertise.
 */
export function ipv6SideOf(
  backend: string,
  config: NetworkConfig,
  extIface: ExternalInterface,
): IPv6Side | null {
  if (!config.enableIPv6 || config.ipv6Network === null) return null;
  if (extIface.extV6Addr === null) {
    throw new ConfigError(
      `Cannot start backend "${backend}" with EnableIPv6: interface ${extIface.name} has no IPv6 address to advertise; give it one, or set --public-ipv6`,
    );
  }
  return { network: config.ipv6Network, publicIPv6: canonicalIPv6(extIface.extV6Addr) };
}

/** An IPv6 address in the kernel's canonical text (`fd00::1`), as listings give it back. */
export function canonicalIPv6(ip: string): string {
  const value = parseIPv6(ip);
  if (value === null) throw new RangeError(`"${ip}" is not an IPv6 address`);
  return formatIPv6(value);
}

/** A remote lease's IPv6 subnet and public IPv6; throws, naming what is missing. */
export function remoteIPv6Of(remote: Lease): { subnet: IPNet; publicIPv6: string } {
  if (remote.ipv6Subnet === null) throw new Error("the lease has no IPv6 subnet");
  if (remote.attrs.publicIPv6 === null)
    throw new Error("the lease has an IPv6 subnet but no PublicIPv6");
  return { subnet: remote.ipv6Subnet, publicIPv6: canonicalIPv6(remote.attrs.publicIPv6) };
}
