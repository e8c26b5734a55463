/**
 * The host-gw backend (flannel's pkg/backend/hostgw): every remote subnet is reached through a
 * plain route via the remote host's public IP on the external interface, and with EnableIPv6
 * every remote IPv6 subnet via its public IPv6. All hosts must share one L2 segment; a remote
 * that is not on-link is logged as an error naming the host, and the other routes still go in.
 */
import { ConfigError } from "../../errors.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../../net/netlink.js";
import type { NetworkConfig } from "../../config/network_config.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Backend, BackendDeps, Network } from "../backend.js";
import { ipv6SideOf, remoteIPv6Of } from "../dual_stack.js";
import { listOwnedRoutes } from "../owned_routes.js";
import { RouteNetwork, subnetLenOf } from "../route_network.js";
import type { DataPlane } from "../route_network.js";

/** Makes the host-gw backend. */
export function createHostGwBackend(deps: BackendDeps): Backend {
  const { extIface } = deps;
  if (extIface.extAddr !== extIface.ifaceAddr) {
    throw new ConfigError(
      `Cannot start backend "host-gw": your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend (public IP ${extIface.extAddr ?? "none"}, interface ${extIface.name} has ${extIface.ifaceAddr ?? "none"})`,
    );
  }
  return {
    async registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network> {
      const network = config.enableIPv4 ? config.network : null;
      const v6 = ipv6SideOf("host-gw", config, extIface);
      if (network === null && v6 === null)
        throw new ConfigError(
          'Cannot start backend "host-gw": the config enables neither IPv4 (Network) nor IPv6 (EnableIPv6 with IPv6Network)',
        );
      const lease = await deps.subnetManager.acquireLease(
        {
          publicIP: extIface.extAddr ?? "",
          publicIPv6: v6?.publicIPv6 ?? null,
          backendType: "host-gw",
        },
        opts,
      );
      const plane: DataPlane<null> = {
        prepare: () => Promise.resolve(null),
        entriesFor: (remote) => [
          {
            kind: "route",
            route: {
              dst: remote.subnet.toString(),
              gateway: remote.attrs.publicIP,
              linkIndex: extIface.index,
              onlink: false,
            },
          },
        ],
        ...(v6 === null
          ? {}
          : {
              entriesForV6: (remote) => {
                const { subnet, publicIPv6 } = remoteIPv6Of(remote);
                return [
                  {
                    kind: "route",
                    route: {
                      dst: subnet.toString(),
                      gateway: publicIPv6,
                      linkIndex: extIface.index,
                      onlink: false,
                    },
                  },
                ];
              },
            }),
        listOwned: () => listOwnedRoutes(deps.netlink, [network, v6?.network ?? null], []),
        // Only routes are host-gw's: its own (protocol 76), or any on the external interface.
        concerns: (change) =>
          change.kind === "route" &&
          (change.protocol === FLANNEL_ROUTE_PROTOCOL || change.linkIndex === extIface.index),
      };
      return new RouteNetwork(
        lease,
        extIface.mtu,
        { ...deps, backendType: "host-gw", subnetLen: subnetLenOf(config) },
        plane,
      );
    },
  };
}
