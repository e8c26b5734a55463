/**
 * The host-gw backend (flannel's pkg/backend/hostgw): every remote subnet is reached through a
 * plain route via the remote host's public IP on the external interface, and with EnableIPv6
 * every remote IPv6 subnet via its public IPv6. All hosts must share one L2 segment: a remote
 * whose public address is not a host of the external interface's network is skipped with one
 * warning naming the lease and the field, and the other routes still go in.
 */
import { ConfigError } from "../../errors.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../../net/netlink.js";
import type { NetworkConfig } from "../../config/network_config.js";
import type { CallOptions } from "../../util/call_options.js";
import { IPNet, parseIP } from "../../ip/ip.js";
import type { Lease } from "../../lease/lease.js";
import { peerLeaseRulesOf } from "../../lease/peer_rules.js";
import type { KernelEntry, Netlink } from "../../net/netlink.js";
import type {
  Backend,
  BackendDeps,
  ExternalInterface,
  Network,
  PlaneInspector,
} from "../backend.js";
import { ipv6SideOf, remoteIPv6Of } from "../dual_stack.js";
import type { IPv6Side } from "../dual_stack.js";
import { listOwnedRoutes } from "../owned_routes.js";
import { RouteNetwork, inspectEntries, servesLease } from "../route_network.js";
import type { DataPlane } from "../route_network.js";

/** A route via `gateway` on the external interface: host-gw's one entry per remote subnet. */
function routeVia(dst: string, gateway: string, linkIndex: number): KernelEntry {
  return { kind: "route", route: { dst, gateway, linkIndex, onlink: false } };
}

/**
 * A remote's public address as host-gw's gateway: it must be on the external interface's
 * network. Throws, naming the lease's field, when
 * it is not: the lease is then skipped with one warning, and no route goes in.
 */
function gatewayOn(address: string, ifaceNet: string | null, field: string): string {
  const net = ifaceNet === null ? null : IPNet.parse(ifaceNet);
  const ip = parseIP(address);
  if (net === null || ip === null || ip.family !== net.family) return address;
  const where = `the external interface's network ${net.toString()}`;
  const fail = (what: string) =>
    new Error(
      `${field} ${JSON.stringify(address)} ${what}: host-gw needs every host on one link (vxlan with DirectRouting spans networks)`,
    );
  // Its network and broadcast addresses are refused for every backend (lease/peer_rules.ts).
  if (!net.contains(ip.value)) throw fail(`is not on ${where}`);
  return address;
}

/** The host-gw data plane: a route per remote subnet via the remote's public address. */
function hostGwPlane(
  netlink: Netlink,
  extIface: ExternalInterface,
  network: IPNet | null,
  v6: IPv6Side | null,
): DataPlane<null> {
  return {
    prepare: () => Promise.resolve(null),
    entriesFor: (remote) => [
      routeVia(
        remote.subnet.toString(),
        gatewayOn(remote.attrs.publicIP, extIface.ifaceNet, "PublicIP"),
        extIface.index,
      ),
    ],
    ...(v6 === null
      ? {}
      : {
          entriesForV6: (remote: Lease) => {
            const { subnet, publicIPv6 } = remoteIPv6Of(remote);
            const gateway = gatewayOn(publicIPv6, extIface.ifaceV6Net, "PublicIPv6");
            return [routeVia(subnet.toString(), gateway, extIface.index)];
          },
        }),
    listOwned: () => listOwnedRoutes(netlink, [network, v6?.network ?? null], []),
    // Only routes are host-gw's: its own (protocol 76), or any on the external interface.
    concerns: (change) =>
      change.kind === "route" &&
      (change.protocol === FLANNEL_ROUTE_PROTOCOL || change.linkIndex === extIface.index),
  };
}

/** This host's host-gw data plane as flannelctl doctor sees it: routes only, no device. */
export const inspectHostGw: PlaneInspector = (config, extIface, netlink) => {
  const network = config.enableIPv4 ? config.network : null;
  const plane = hostGwPlane(netlink, extIface, network, ipv6SideOf("host-gw", config, extIface));
  return {
    devices: [],
    podMtu: extIface.mtu,
    serves: (remote) => servesLease(remote, "host-gw"),
    entries: (remotes) => inspectEntries(plane, remotes),
  };
};

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
      const plane = hostGwPlane(deps.netlink, extIface, network, v6);
      return new RouteNetwork(
        lease,
        extIface.mtu,
        { ...deps, backendType: "host-gw", rules: peerLeaseRulesOf(config, deps.extIface) },
        plane,
      );
    },
  };
}
