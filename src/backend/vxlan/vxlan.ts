/**
 * The vxlan backend (flannel's pkg/backend/vxlan), entry for entry compatible with flannel hosts.
 *
 * Per host: a device `flannel.<VNI>` (kernel VXLAN, id VNI, local = public IP, parent = the
 * external interface, port 8472 unless `Port`, learning off unless `Learning`, GBP when set),
 * MTU = (`MTU` or the interface MTU) - 50, address `<subnet IP>/32`. The lease carries
 * `BackendData {"VNI":1,"VtepMAC":"<mac>"}`. Per remote vxlan lease, as flannel writes them:
 *   neighbour  <remote subnet IP> lladdr <VtepMAC> permanent, on flannel.<VNI>
 *   FDB        <VtepMAC> dst <remote public IP> self permanent, on flannel.<VNI>
 *   route      <remote subnet> via <remote subnet IP> dev flannel.<VNI> onlink
 * With `DirectRouting`, a remote whose public IP is on-link gets `<subnet> via <public IP>` on
 * the external interface instead. RouteNetwork keeps these in the kernel.
 */
import { z } from "zod";
import { formatIssues, goJson, goJsonField } from "../../config/go_json.js";
import type { NetworkConfig } from "../../config/network_config.js";
import { ConfigError } from "../../errors.js";
import { IPNet, parseIPv4 } from "../../ip/ip.js";
import type { Lease } from "../../lease/lease.js";
import { FLANNEL_ROUTE_PROTOCOL } from "../../net/netlink.js";
import type { KernelEntry, Link, Route } from "../../net/netlink.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Backend, BackendDeps, Network } from "../backend.js";
import { listOwnedRoutes } from "../owned_routes.js";
import { RouteNetwork, subnetLenOf } from "../route_network.js";
import type { DataPlane } from "../route_network.js";
import { ensureVxlanDevice } from "./device.js";

/** The VXLAN encapsulation overhead flannel subtracts from the MTU. */
export const VXLAN_OVERHEAD = 50;

const VxlanConfigSchema = goJson({
  VNI: z.number().int().min(0).max(16_777_215, "expected a VNI from 0 to 16777215").default(1),
  Port: z.number().int().min(0).max(65_535, "expected a UDP port from 0 to 65535").default(0),
  MTU: z
    .number()
    .int()
    .min(68 + VXLAN_OVERHEAD, `expected an MTU of at least ${68 + VXLAN_OVERHEAD}`)
    .optional(),
  GBP: z.boolean().default(false),
  Learning: z.boolean().default(false),
  DirectRouting: z.boolean().default(false),
});

/** The vxlan options of the Backend object. */
export type VxlanConfig = z.infer<typeof VxlanConfigSchema>;

/** Decodes the Backend object's vxlan options (keys in any case, as in Go). */
export function parseVxlanConfig(backend: Readonly<Record<string, unknown>>): VxlanConfig {
  const parsed = VxlanConfigSchema.safeParse(backend);
  if (!parsed.success)
    throw new ConfigError(`Invalid vxlan backend config: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/** The VtepMAC of a remote vxlan lease. Throws when the lease does not carry a usable one. */
export function vtepMacOf(lease: Lease): string {
  const data = lease.attrs.backendData;
  const mac =
    typeof data === "object" && data !== null && !Array.isArray(data)
      ? goJsonField(data, "VtepMAC")
      : undefined;
  if (typeof mac !== "string" || !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) {
    throw new Error(
      `lease of ${lease.subnet.toString()} (public IP ${lease.attrs.publicIP}) has no usable BackendData.VtepMAC`,
    );
  }
  return mac.toLowerCase();
}

/** Whether `ip` is reached without a gateway through `linkIndex`, by longest prefix match. */
export function isOnLink(routes: readonly Route[], ip: string, linkIndex: number): boolean {
  const value = parseIPv4(ip);
  if (value === null) return false;
  let best: { route: Route; len: number } | null = null;
  for (const route of routes) {
    const dst = IPNet.parse(route.dst);
    if (!route.unicast || dst === null || dst.family !== 4 || !dst.contains(value)) continue;
    if (best === null || dst.prefixLen > best.len) best = { route, len: dst.prefixLen };
  }
  return best !== null && best.route.gateway === null && best.route.linkIndex === linkIndex;
}

interface VxlanContext {
  readonly device: Link;
  readonly mainRoutes: readonly Route[];
}

/** Makes the vxlan backend. */
export function createVxlanBackend(deps: BackendDeps): Backend {
  const { extIface, netlink, log } = deps;
  return {
    async registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network> {
      const cfg = parseVxlanConfig(config.backend);
      const network = config.network;
      if (network === null || extIface.extAddr === null) {
        throw new ConfigError(
          'Cannot start backend "vxlan": flannel-ts programs an IPv4 data plane only: set Network and give the host an IPv4 address',
        );
      }
      const mtu = (cfg.MTU ?? extIface.mtu) - VXLAN_OVERHEAD;
      const spec = {
        name: `flannel.${cfg.VNI}`,
        vni: cfg.VNI,
        local: extIface.extAddr,
        parentIndex: extIface.index,
        port: cfg.Port,
        learning: cfg.Learning,
        gbp: cfg.GBP,
        mtu,
        publicIP: extIface.extAddr,
      };
      // The device comes first: the lease carries its MAC. A MAC this node announced before
      // (Kubernetes mode keeps it in the Node's backend-data) is reused for a new device.
      const stored = await deps.subnetManager.getStoredMacAddresses?.(opts);
      const device = await ensureVxlanDevice(
        netlink,
        stored?.v4 != null ? { ...spec, mac: stored.v4 } : spec,
        { subnet: null, network },
        log,
      );
      const lease = await deps.subnetManager.acquireLease(
        {
          publicIP: extIface.extAddr,
          publicIPv6: null,
          backendType: "vxlan",
          backendData: { VNI: cfg.VNI, VtepMAC: device.mac },
        },
        opts,
      );
      const address = { subnet: lease.subnet, network };
      await ensureVxlanDevice(netlink, spec, address, log);

      const plane: DataPlane<VxlanContext> = {
        async prepare() {
          // A device removed by hand comes back with the MAC the lease announces.
          const now = await ensureVxlanDevice(netlink, { ...spec, mac: device.mac }, address, log);
          if (now.mac !== device.mac) {
            log.warn(
              { device: spec.name, mac: now.mac, leased: device.mac },
              "VXLAN device MAC differs from the lease's VtepMAC",
            );
          }
          return { device: now, mainRoutes: cfg.DirectRouting ? await netlink.listRoutes() : [] };
        },
        entriesFor(remote, { device: dev, mainRoutes }): KernelEntry[] {
          const publicIP = remote.attrs.publicIP;
          if (cfg.DirectRouting && isOnLink(mainRoutes, publicIP, extIface.index)) {
            return [
              {
                kind: "route",
                route: {
                  dst: remote.subnet.toString(),
                  gateway: publicIP,
                  linkIndex: extIface.index,
                  onlink: false,
                },
              },
            ];
          }
          const mac = vtepMacOf(remote);
          const gateway = remote.subnet.ipString;
          return [
            { kind: "neighbor", neighbor: { linkIndex: dev.index, ip: gateway, mac } },
            { kind: "fdb", fdb: { linkIndex: dev.index, mac, dst: publicIP } },
            {
              kind: "route",
              route: { dst: remote.subnet.toString(), gateway, linkIndex: dev.index, onlink: true },
            },
          ];
        },
        // Anything on the device (or the device itself going), and routes of ours elsewhere
        // (DirectRouting's, on the external interface).
        concerns: (change, { device: dev }) =>
          change.linkIndex === dev.index ||
          (change.kind === "link" && change.removed) ||
          (change.kind === "route" && change.protocol === FLANNEL_ROUTE_PROTOCOL),
        async listOwned({ device: dev }) {
          const [routes, neighbors, fdb] = await Promise.all([
            listOwnedRoutes(netlink, network, dev.index),
            netlink.listNeighbors(dev.index),
            netlink.listFdb(dev.index),
          ]);
          return [
            ...routes,
            ...neighbors
              .filter((n) => n.permanent)
              .map((n): KernelEntry => ({
                kind: "neighbor",
                neighbor: { linkIndex: n.linkIndex, ip: n.ip, mac: n.mac },
              })),
            ...fdb
              .filter((f) => f.permanent)
              .map((f): KernelEntry => ({
                kind: "fdb",
                fdb: { linkIndex: f.linkIndex, mac: f.mac, dst: f.dst },
              })),
          ];
        },
      };
      return new RouteNetwork(
        lease,
        mtu,
        { ...deps, backendType: "vxlan", subnetLen: subnetLenOf(config) },
        plane,
      );
    },
  };
}
