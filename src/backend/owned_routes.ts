/** Which routes of the main table a backend counts as its own. */
import { IPNet } from "../ip/ip.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../net/netlink.js";
import type { KernelEntry, Netlink } from "../net/netlink.js";

/**
 * Unicast routes into the flannel networks (IPv4, and IPv6 when it is on) that flannel-ts tagged,
 * plus every unicast route into them through one of `ownDevices` (devices only flannel uses, such
 * as flannel.1, whoever wrote the route: this also clears what flannel itself left there).
 */
export async function listOwnedRoutes(
  netlink: Netlink,
  networks: readonly (IPNet | null)[],
  ownDevices: readonly number[],
): Promise<KernelEntry[]> {
  const routes = await netlink.listRoutes();
  const within = networks.filter((n): n is IPNet => n !== null);
  return routes
    .filter((r) => {
      const dst = IPNet.parse(r.dst);
      const ours = r.protocol === FLANNEL_ROUTE_PROTOCOL || ownDevices.includes(r.linkIndex);
      return (
        r.unicast &&
        ours &&
        dst !== null &&
        within.some((n) => n.family === dst.family && n.containsNet(dst))
      );
    })
    .map((r): KernelEntry => ({
      kind: "route",
      route: { dst: r.dst, gateway: r.gateway, linkIndex: r.linkIndex, onlink: r.onlink },
    }));
}
