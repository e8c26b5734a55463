/** Which routes of the main table a backend counts as its own. */
import { IPNet } from "../ip/ip.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../net/netlink.js";
import type { KernelEntry, Netlink } from "../net/netlink.js";

/**
 * Unicast routes into the flannel network that flannel-ts tagged, plus every unicast route into
 * the network through `ownDevice` (a device only flannel uses, such as flannel.1, whoever wrote
 * the route: this also clears what flannel itself left there).
 */
export async function listOwnedRoutes(
  netlink: Netlink,
  network: IPNet,
  ownDevice: number | null,
): Promise<KernelEntry[]> {
  const routes = await netlink.listRoutes();
  return routes
    .filter((r) => {
      const dst = IPNet.parse(r.dst);
      const ours =
        r.protocol === FLANNEL_ROUTE_PROTOCOL || (ownDevice !== null && r.linkIndex === ownDevice);
      return r.unicast && ours && dst !== null && network.containsNet(dst);
    })
    .map((r): KernelEntry => ({
      kind: "route",
      route: { dst: r.dst, gateway: r.gateway, linkIndex: r.linkIndex, onlink: r.onlink },
    }));
}
